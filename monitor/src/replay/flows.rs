//! The kernel's unexpected-flow deduplication (monitor-ebpf/src/flows.rs),
//! in userspace: same key, same counters, same "look the other way round
//! when no SYN says which end serves", same bound on the table. Replay must
//! report a flow exactly when the live monitor would, so this mirrors the
//! kernel step by step rather than doing something smarter.

use std::collections::{HashMap, HashSet};

use monitor_common::{
    classify::{Conn, Reason},
    flow::{EVENT_HEADER_BYTES, EVENT_UNEXPECTED, FlowEvent, FlowKey, FlowState, MAX_FLOWS},
    packet::Parsed,
    stats::Direction,
};

/// One unexpected packet, as the kernel's `Sighting`.
pub struct Sighting<'a> {
    pub parsed: &'a Parsed,
    pub conn: Conn,
    pub reason: Reason,
    pub nearest_rule: u16,
    pub ifindex: u32,
    pub dir: Direction,
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

/// A flow pushed out of the table to make room, with its final counts.
pub type Evicted = (FlowKey, FlowState);

/// What became of an unexpected packet.
pub enum Seen {
    /// Counted into a flow already tracked.
    Known,
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
    index: HashMap<FlowKey, u32, foldhash::fast::RandomState>,
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
            index: HashMap::default(),
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
        self.index.keys().copied().collect()
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
        let i = *self.index.get(key)?;
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
            return Seen::Known;
        }
        // Where the classifier guessed which end serves, the flow may be
        // tracked the other way round.
        if FlowKey::orientation_guessed(s.parsed) {
            let flipped = FlowKey::flipped(s.parsed, &s.conn);
            if let Some(state) = self.touch(&flipped) {
                add(state, !s.conn.forward, s.bytes, s.ts_ns);
                return Seen::Known;
            }
        }
        let state = FlowState {
            first_seen_ns: s.ts_ns,
            last_seen_ns: s.ts_ns,
            packets: u64::from(s.conn.forward),
            bytes: if s.conn.forward { s.bytes } else { 0 },
            reply_packets: u64::from(!s.conn.forward),
            ifindex: s.ifindex,
            nearest_rule: s.nearest_rule,
            reason: s.reason as u8,
            _pad: 0,
        };
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
        forward: u8::from(s.conn.forward),
        _pad: [0; 3],
        header,
    }
}
