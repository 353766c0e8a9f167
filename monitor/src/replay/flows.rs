//! The kernel's unexpected-flow deduplication (monitor-ebpf/src/flows.rs),
//! in userspace: same key, same counters, same "look the other way round
//! when no SYN says which end serves", same bound on the table. Replay must
//! report a flow exactly when the live monitor would, so this mirrors the
//! kernel step by step rather than doing something smarter.

use std::collections::{HashMap, HashSet};

use monitor_common::{
    classify::{Conn, FlowLookup, Reason},
    flow::{EVENT_HEADER_BYTES, EVENT_UNEXPECTED, FlowEvent, FlowKey, FlowState, MAX_FLOWS},
    packet::{Family, Parsed},
    stats::PacketDir,
};

/// One unexpected packet, as the kernel's `Sighting`.
pub struct Sighting<'a> {
    pub parsed: &'a Parsed,
    pub conn: Conn,
    pub reason: Reason,
    pub nearest_rule: u16,
    pub ifindex: u32,
    pub dir: PacketDir,
    /// Length of the frame as the interface saw it.
    pub bytes: u64,
    /// The frame's first bytes, for the event's header copy.
    pub frame: &'a [u8],
    pub ts_ns: u64,
}

/// A slot of the table: one flow and its place in the recency list.
struct Slot {
    key: FlowKey,
    state: FlowState,
    /// Neighbours in the recency list (slot indexes, [`NIL`] at the ends):
    /// `prev` is more recent, `next` less.
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

type Hasher = foldhash::fast::RandomState;

/// A flow key whose addresses are IPv4 (the other 12 bytes zero) and whose
/// padding is zero, packed in two words: `[addresses, service port |
/// proto << 32 | direction << 40]`. Most keys are such, and 16 bytes hash
/// and compare faster and take less cache than 40; [`unpack_v4`] is the
/// inverse.
#[inline]
pub(crate) fn pack_v4(key: &FlowKey) -> Option<[u64; 2]> {
    let zero = |a: &[u8; 16]| a[4..] == [0; 12];
    if key.family != Family::V4 as u8
        || !zero(&key.initiator)
        || !zero(&key.responder)
        || key.direction > 0xff
    {
        return None;
    }
    let v4 = |a: &[u8; 16]| u64::from(u32::from_be_bytes([a[0], a[1], a[2], a[3]]));
    Some([
        v4(&key.initiator) << 32 | v4(&key.responder),
        u64::from(key.service_port) | u64::from(key.proto) << 32 | u64::from(key.direction) << 40,
    ])
}

/// The key [`pack_v4`] packed (bits 16..32 of the second word are not its).
pub(crate) fn unpack_v4(packed: [u64; 2]) -> FlowKey {
    let addr = |a: u32| {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&a.to_be_bytes());
        b
    };
    FlowKey {
        initiator: addr((packed[0] >> 32) as u32),
        responder: addr(packed[0] as u32),
        service_port: packed[1] as u16,
        proto: (packed[1] >> 32) as u8,
        family: Family::V4 as u8,
        direction: u32::from((packed[1] >> 40) as u8),
    }
}

/// Packed words hashed as two writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed(pub [u64; 2]);

impl std::hash::Hash for Packed {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0]);
        state.write_u64(self.0[1]);
    }
}

/// Key → slot, IPv4 keys packed. Every key maps to exactly one of the two.
#[derive(Default)]
struct Index {
    v4: HashMap<Packed, u32, Hasher>,
    other: HashMap<FlowKey, u32, Hasher>,
}

impl Index {
    fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.other.is_empty()
    }

    #[inline]
    fn get(&self, key: &FlowKey) -> Option<u32> {
        match pack_v4(key) {
            Some(p) => self.v4.get(&Packed(p)).copied(),
            None => self.other.get(key).copied(),
        }
    }

    fn insert(&mut self, key: FlowKey, slot: u32) {
        match pack_v4(&key) {
            Some(p) => self.v4.insert(Packed(p), slot),
            None => self.other.insert(key, slot),
        };
    }

    fn remove(&mut self, key: &FlowKey) {
        match pack_v4(key) {
            Some(p) => self.v4.remove(&Packed(p)),
            None => self.other.remove(key),
        };
    }

    fn clear(&mut self) {
        self.v4.clear();
        self.other.clear();
    }
}

/// A flow pushed out of the table to make room, with its final counts.
pub type Evicted = (FlowKey, FlowState);

/// What became of an unexpected packet.
pub enum Seen {
    /// Counted into a flow already tracked, which has now seen this many
    /// packets (both ways).
    Known(u64),
    /// A first sighting: the event the kernel would put in its ring buffer,
    /// and the flow evicted to make room, if any.
    New(Box<FlowEvent>, Option<Evicted>),
}

/// The flow table: exact LRU over at most `capacity` flows. The kernel's
/// LRU is approximate, so under eviction pressure the two may pick
/// different victims; below the bound they agree exactly.
///
/// Flows live in a slab of at most `capacity` slots threaded on a doubly
/// linked recency list, so a hit, an insert and an eviction are O(1) and
/// allocate nothing once the slab has grown. Keys come from untrusted
/// packets: the index is hashed with foldhash seeded at random per process,
/// so a capture cannot be crafted offline to collide, and the table is
/// bounded whatever it holds.
pub struct FlowTable {
    index: Index,
    slots: Vec<Slot>,
    /// Most and least recently used slots.
    head: u32,
    tail: u32,
    capacity: usize,
    pub evictions: u64,
}

impl Default for FlowTable {
    fn default() -> Self {
        Self::with_capacity(MAX_FLOWS as usize)
    }
}

impl FlowTable {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            index: Index::default(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.clamp(1, NIL as usize),
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tracked keys.
    pub fn keys(&self) -> HashSet<FlowKey> {
        self.index
            .v4
            .values()
            .chain(self.index.other.values())
            .map(|&i| self.slots[i as usize].key)
            .collect()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
        }
        match old {
            NIL => self.tail = i,
            o => self.slots[o as usize].prev = i,
        }
        self.head = i;
    }

    /// Looks a key up as the kernel's LRU lookup does: a hit makes it recent.
    fn touch(&mut self, key: &FlowKey) -> Option<&mut FlowState> {
        let i = self.index.get(key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(&mut self.slots[i as usize].state)
    }

    /// The kernel's `unexpected()`.
    pub fn unexpected(&mut self, s: &Sighting) -> Seen {
        let key = FlowKey::new(s.parsed, &s.conn);
        if let Some(state) = self.touch(&key) {
            add(state, s.conn.forward, s.bytes, s.ts_ns);
            return Seen::Known(state.packets + state.reply_packets);
        }
        // Where the classifier guessed which end serves, the flow may be
        // tracked the other way round.
        if FlowKey::orientation_guessed(s.parsed) {
            let flipped = FlowKey::flipped(s.parsed, &s.conn);
            if let Some(state) = self.touch(&flipped) {
                add(state, !s.conn.forward, s.bytes, s.ts_ns);
                return Seen::Known(state.packets + state.reply_packets);
            }
        }
        let state = FlowState::first_sighting(
            s.ts_ns,
            s.conn.forward,
            s.bytes,
            s.ifindex,
            s.reason,
            s.nearest_rule,
        );
        let (slot, evicted) = if self.index.len() >= self.capacity {
            // The least recently used flow gives up its slot.
            let i = self.tail;
            self.unlink(i);
            let old = &mut self.slots[i as usize];
            let evicted = (old.key, old.state);
            self.index.remove(&evicted.0);
            self.evictions += 1;
            old.key = key;
            old.state = state;
            (i, Some(evicted))
        } else {
            self.slots.push(Slot {
                key,
                state,
                prev: NIL,
                next: NIL,
            });
            (self.slots.len() as u32 - 1, None)
        };
        self.push_front(slot);
        self.index.insert(key, slot);
        Seen::New(Box::new(event(s, &key)), evicted)
    }

    /// Every tracked flow, oldest first sighting first (ties by key), so
    /// the closing records come out in a stable order.
    pub fn drain(&mut self) -> Vec<(FlowKey, FlowState)> {
        self.index.clear();
        self.head = NIL;
        self.tail = NIL;
        let mut all: Vec<(FlowKey, FlowState)> =
            self.slots.drain(..).map(|s| (s.key, s.state)).collect();
        all.sort_by(|a, b| {
            (
                a.1.first_seen_ns,
                a.0.initiator,
                a.0.responder,
                a.0.service_port,
            )
                .cmp(&(
                    b.1.first_seen_ns,
                    b.0.initiator,
                    b.0.responder,
                    b.0.service_port,
                ))
                .then(a.0.proto.cmp(&b.0.proto))
                .then(a.0.direction.cmp(&b.0.direction))
        });
        all
    }
}

/// The kernel's `KernelFlows`: whether the table counts a connection. A
/// lookup, not a touch: the sighting that follows touches it, as the
/// kernel's does.
impl FlowLookup for FlowTable {
    fn tracks(&self, parsed: &Parsed, conn: &Conn) -> bool {
        self.index.get(&FlowKey::new(parsed, conn)).is_some()
    }
}

fn add(state: &mut FlowState, forward: bool, bytes: u64, now: u64) {
    if forward {
        state.packets += 1;
        state.bytes += bytes;
    } else {
        state.reply_packets += 1;
    }
    state.last_seen_ns = now;
}

/// The kernel's `emit()`.
fn event(s: &Sighting, key: &FlowKey) -> FlowEvent {
    let mut header = [0u8; EVENT_HEADER_BYTES];
    let n = s.frame.len().min(EVENT_HEADER_BYTES);
    header[..n].copy_from_slice(&s.frame[..n]);
    FlowEvent {
        ts_ns: s.ts_ns,
        key: *key,
        ifindex: s.ifindex,
        packet_len: u32::try_from(s.bytes).unwrap_or(u32::MAX),
        captured: n as u16,
        kind: EVENT_UNEXPECTED,
        reason: s.reason as u8,
        packet_direction: s.dir as u8,
        tcp_flags: s.parsed.tcp_flags,
        nearest_rule: s.nearest_rule,
        sport: s.parsed.sport,
        dport: s.parsed.dport,
        forward: u32::from(s.conn.forward),
        header,
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::{flow::FlowKey, packet::Family};

    use super::{pack_v4, unpack_v4};

    #[test]
    fn ipv4_flow_keys_pack_exactly_and_nothing_else_does() {
        let mut key = FlowKey {
            service_port: 2181,
            proto: 6,
            family: Family::V4 as u8,
            direction: 1,
            ..Default::default()
        };
        key.initiator[..4].copy_from_slice(&[198, 51, 100, 7]);
        key.responder[..4].copy_from_slice(&[192, 0, 2, 1]);
        let packed = pack_v4(&key).expect("packs");
        assert_eq!(unpack_v4(packed), key);
        let mut other = key;
        other.direction = 0;
        assert_ne!(pack_v4(&other), Some(packed));
        for change in [
            |k: &mut FlowKey| k.family = Family::V6 as u8,
            |k: &mut FlowKey| k.initiator[15] = 1,
            |k: &mut FlowKey| k.responder[4] = 1,
            |k: &mut FlowKey| k.direction = 0x100,
        ] {
            let mut k = key;
            change(&mut k);
            assert_eq!(pack_v4(&k), None, "{k:?}");
        }
    }
}
