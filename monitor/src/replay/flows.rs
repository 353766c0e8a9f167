//! The kernel's unexpected-flow deduplication (monitor-ebpf/src/flows.rs),
//! in userspace: same key, same counters, same "look the other way round
//! when no SYN says which end serves", same bound on the table. Replay must
//! report a flow exactly when the live monitor would, so this mirrors the
//! kernel step by step rather than doing something smarter.

use std::collections::{BTreeMap, HashMap, HashSet};

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

struct Entry {
    state: FlowState,
    /// Recency stamp; its entry in `order` is keyed by it.
    used: u64,
}

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
pub struct FlowTable {
    flows: HashMap<FlowKey, Entry>,
    order: BTreeMap<u64, FlowKey>,
    capacity: usize,
    clock: u64,
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
            flows: HashMap::new(),
            order: BTreeMap::new(),
            capacity: capacity.max(1),
            clock: 0,
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tracked keys.
    pub fn keys(&self) -> HashSet<FlowKey> {
        self.flows.keys().copied().collect()
    }

    /// Looks a key up as the kernel's LRU lookup does: a hit makes it recent.
    fn touch(&mut self, key: &FlowKey) -> Option<&mut FlowState> {
        let entry = self.flows.get_mut(key)?;
        self.clock += 1;
        self.order.remove(&entry.used);
        entry.used = self.clock;
        self.order.insert(self.clock, *key);
        Some(&mut entry.state)
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
        let evicted = if self.flows.len() >= self.capacity {
            self.evict()
        } else {
            None
        };
        self.clock += 1;
        self.order.insert(self.clock, key);
        self.flows.insert(
            key,
            Entry {
                state,
                used: self.clock,
            },
        );
        Seen::New(Box::new(event(s, &key)), evicted)
    }

    fn evict(&mut self) -> Option<Evicted> {
        let (_, key) = self.order.pop_first()?;
        let entry = self.flows.remove(&key)?;
        self.evictions += 1;
        Some((key, entry.state))
    }

    /// Every tracked flow, oldest first sighting first (ties by key), so
    /// the closing records come out in a stable order.
    pub fn drain(&mut self) -> Vec<(FlowKey, FlowState)> {
        self.order.clear();
        let mut all: Vec<(FlowKey, FlowState)> =
            self.flows.drain().map(|(k, e)| (k, e.state)).collect();
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
