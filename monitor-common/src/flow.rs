//! Unexpected flows: the LRU key and state the kernel deduplicates on, and
//! the ring-buffer record of a first sighting.

use crate::{
    classify::{Conn, Reason},
    packet::Parsed,
    policy::ConnDir,
};

/// Bytes of each offending packet's headers carried in its event.
pub const EVENT_HEADER_BYTES: usize = 128;
/// Flows the dedup LRU holds.
pub const MAX_FLOWS: u32 = 65536;
/// Ring buffer size (a power of two, page multiple).
pub const RING_BYTES: u32 = 1 << 22;

/// One unexpected "flow" as users think of it: this initiator reaching this
/// service. The initiator's ephemeral port is left out on purpose, so a
/// client reconnecting (or a flood with random source ports) stays one flow.
///
/// `align(8)`: the kernel programs build keys on the stack, where the
/// verifier only accepts aligned access, and copy the addresses as words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(8))]
pub struct FlowKey {
    pub initiator: [u8; 16],
    pub responder: [u8; 16],
    pub service_port: u16,
    pub proto: u8,
    pub family: u8,
    /// A [`ConnDir`] as a word: keys are read back from kernel maps, where
    /// any word may be (see [`ConnDir::of_word`]). A whole word, so the key
    /// has no padding: a 3-byte zero fill compiles to a memset call in BPF.
    pub direction: u32,
}

/// Three writes instead of one per field: userspace tables keyed by flows
/// (replay's, per packet) hash them in their hot path. Every field goes in,
/// so keys that are equal hash equally.
impl core::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.initiator);
        state.write(&self.responder);
        state.write_u64(self.tail());
    }
}

impl FlowKey {
    /// The fields after the addresses, packed in one word.
    #[inline(always)]
    fn tail(&self) -> u64 {
        u64::from(self.service_port)
            | u64::from(self.proto) << 16
            | u64::from(self.family) << 24
            | u64::from(self.direction) << 32
    }

    #[inline(always)]
    pub fn new(parsed: &Parsed, conn: &Conn) -> Self {
        let (initiator, responder) = if conn.forward {
            (parsed.src, parsed.dst)
        } else {
            (parsed.dst, parsed.src)
        };
        Self {
            initiator,
            responder,
            service_port: conn.service_port,
            proto: parsed.proto,
            family: parsed.family as u8,
            direction: conn.direction,
        }
    }
}

impl FlowKey {
    /// Whether the classifier had to guess which end of this packet serves:
    /// TCP without SYN and UDP. ICMP's type says request or reply, and a SYN
    /// says who opens, so those are never re-read the other way.
    #[inline(always)]
    pub fn orientation_guessed(parsed: &Parsed) -> bool {
        match parsed.proto {
            crate::packet::IPPROTO_TCP => parsed.tcp_flags & crate::packet::TCP_SYN == 0,
            crate::packet::IPPROTO_UDP => true,
            _ => false,
        }
    }

    /// The same packet read the other way round: the other port is the
    /// service. Without a SYN the classifier can only guess which end serves;
    /// if the flow is already tracked under this reading, that wins.
    #[inline(always)]
    pub fn flipped(parsed: &Parsed, conn: &Conn) -> Self {
        let other = Conn {
            direction: ConnDir::of_word(conn.direction).reverse() as u32,
            service_port: if conn.forward {
                parsed.sport
            } else {
                parsed.dport
            },
            forward: !conn.forward,
        };
        Self::new(parsed, &other)
    }
}

/// Counters of an unexpected flow. The LRU is per CPU: each CPU adds to its
/// own copy without atomics; the CPU that inserted the flow also holds its
/// first sighting and explanation (`first_seen_ns != 0`). Userspace merges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FlowState {
    pub first_seen_ns: u64,
    /// CLOCK_MONOTONIC_COARSE of the latest packet: a flood's timestamps
    /// need tick precision, not a clock read per packet.
    pub last_seen_ns: u64,
    /// Packets initiator → responder.
    pub packets: u64,
    pub bytes: u64,
    /// Packets responder → initiator.
    pub reply_packets: u64,
    pub ifindex: u32,
    pub nearest_rule: u16,
    pub reason: u8,
    pub _pad: u8,
}

/// The kernel's event counters (`PC_KSTATS`, per CPU), by index: what the
/// classifier did with packets beyond the traffic counters, and every way an
/// event could be lost, so nothing is lost silently.
///
/// The values are the map's indexes. Index 0 is reserved: it was an
/// "allowed" counter the kernel never bumped (the allowed total is the sum
/// of the per-rule counters). It stays empty, not reused, so every counter
/// keeps the index it always had: `bpftool map dump name PC_KSTATS` reads
/// as it did, and no reader has to change in step.
///
/// The kernel only ever names a counter as a constant (`Kstat::X as u32`, see
/// `count_kstat` in monitor-ebpf), so the index it passes to the map is an
/// immediate: nothing for the verifier to bound, no match to compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Kstat {
    Unexpected = 1,
    NewFlows = 2,
    RingbufFull = 3,
    FlowInsertFailed = 4,
    /// Later IP fragments (no ports to judge).
    Fragments = 5,
    Infrastructure = 6,
    /// A required flow's attempt found the handshake table full: not tracked.
    HandshakeFull = 7,
    /// Required-flow attempts started, answered, refused (RST / ICMP).
    Handshakes = 8,
    Answered = 9,
    Refused = 10,
    /// Packets counted in a seen-flow slot whose flow had already left the
    /// LRU when the slot was handed to another flow (part of that
    /// eviction's loss).
    SeenUnflushed = 11,
    /// Packets of required flows the host's own stack dropped (netfilter,
    /// no socket, no route...), recorded in `PC_DROPS`.
    LocalDrops = 12,
    /// Drops with a watched reason on a monitored interface of packets no
    /// required flow owns (unexpected flows, optional rules, stray packets
    /// of a connection): counted, never reported.
    LocalDropsOther = 13,
    /// Local drops of required flows not recorded: `PC_DROPS` was full.
    LocalDropsLost = 14,
    /// Local drops whose headers could not be read or parsed.
    LocalDropsUnparsed = 15,
    /// Packets of new flows from strangers over the per-CPU budget,
    /// counted in a flood aggregate instead of tracked (see `flood`).
    FloodPackets = 16,
    /// Packets over budget that no aggregate could count: `PC_FLOODS` was
    /// full, its catch-all entry too.
    FloodLost = 17,
}

impl Kstat {
    /// Every counter, in index order.
    pub const ALL: [Kstat; 17] = [
        Kstat::Unexpected,
        Kstat::NewFlows,
        Kstat::RingbufFull,
        Kstat::FlowInsertFailed,
        Kstat::Fragments,
        Kstat::Infrastructure,
        Kstat::HandshakeFull,
        Kstat::Handshakes,
        Kstat::Answered,
        Kstat::Refused,
        Kstat::SeenUnflushed,
        Kstat::LocalDrops,
        Kstat::LocalDropsOther,
        Kstat::LocalDropsLost,
        Kstat::LocalDropsUnparsed,
        Kstat::FloodPackets,
        Kstat::FloodLost,
    ];

    /// The counter's index in `PC_KSTATS`.
    #[inline(always)]
    pub const fn index(self) -> u32 {
        self as u32
    }
}

/// Entries of `PC_KSTATS`: the reserved index 0 and one per [`Kstat`].
pub const KSTATS: u32 = Kstat::FloodLost as u32 + 1;

// `ALL` lists every counter once, in index order from 1: index 0 stays
// reserved and the map has no slot nobody names.
const _: () = {
    let mut i = 0;
    while i < Kstat::ALL.len() {
        assert!(Kstat::ALL[i].index() == i as u32 + 1);
        i += 1;
    }
    assert!(Kstat::ALL.len() as u32 + 1 == KSTATS);
};

/// `PC_KSTATS` summed over CPUs, as userspace reads it, indexed by [`Kstat`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KstatTotals(pub [u64; KSTATS as usize]);

impl core::ops::Index<Kstat> for KstatTotals {
    type Output = u64;

    fn index(&self, stat: Kstat) -> &u64 {
        &self.0[stat.index() as usize]
    }
}

/// Seen-flow slots per CPU (`PC_SEEN`, a power of two).
pub const SEEN_SLOTS: u32 = 512;

/// A per-CPU, direct-mapped cache in front of the flow LRU: a flood of one
/// unexpected flow then costs an array lookup and a key compare per packet
/// instead of hashing a 40-byte key into the LRU. The slot holds the
/// packets counted since the flow took it; they are added to the flow's LRU
/// entry when another flow takes the slot, and userspace adds the slots
/// still held when it reads the flows ([`FlowState::add_seen`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SeenSlot {
    pub key: FlowKey,
    /// Non-zero once a flow holds the slot (a zeroed key is a valid key).
    pub occupied: u64,
    pub packets: u64,
    pub bytes: u64,
    pub reply_packets: u64,
    /// Coarse clock of the latest packet counted here.
    pub last_seen_ns: u64,
    /// `jiffies` when `last_seen_ns` was read. The coarse clock only moves
    /// on a timer tick, as jiffies do, so while jiffies stand still the
    /// stored time is still what the clock would say. Reading jiffies is
    /// one load (the verifier inlines it); calling the clock helper cost a
    /// flood packet about 20 ns, a third of its whole path.
    pub last_seen_jiffies: u64,
}

impl FlowKey {
    /// The key's `PC_SEEN` slot: a multiplicative hash of its five words
    /// (a few instructions; the keys of one host differ in few bits, which
    /// the multiply spreads to the top bits kept).
    #[inline(always)]
    pub fn seen_slot(&self) -> u32 {
        // SAFETY: FlowKey is repr(C, align(8)), 40 bytes without padding.
        let w = unsafe { &*(self as *const FlowKey).cast::<[u64; 5]>() };
        let mixed =
            w[0] ^ w[1].rotate_left(17) ^ w[2].rotate_left(31) ^ w[3].rotate_left(47) ^ w[4];
        (mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SEEN_SLOTS.trailing_zeros())) as u32
    }
}

/// Event kinds, stable numbers (userspace and files depend on them).
pub const EVENT_UNEXPECTED: u8 = 1;

/// First sighting of an unexpected flow, sent through the ring buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FlowEvent {
    /// bpf_ktime_get_ns (CLOCK_MONOTONIC) of the packet.
    pub ts_ns: u64,
    pub key: FlowKey,
    pub ifindex: u32,
    /// Length of the whole packet, and how much of it is in `header`.
    pub packet_len: u32,
    pub captured: u16,
    pub kind: u8,
    pub reason: u8,
    /// Direction of this packet: 0 ingress, 1 egress.
    pub packet_direction: u8,
    pub tcp_flags: u8,
    pub nearest_rule: u16,
    /// The packet's own ports (the initiator's port is here, not in the key).
    pub sport: u16,
    pub dport: u16,
    /// 1 when this packet travels initiator → responder (a word: odd-sized
    /// zero padding compiles to a memset call in BPF).
    pub forward: u32,
    pub header: [u8; EVENT_HEADER_BYTES],
}

impl FlowState {
    /// A flow's state at its first sighting, at `now`: the packet counted on
    /// its side (`forward`: initiator → responder), and the explanation.
    /// The kernel's LRU insert and replay's table build it here, so both
    /// start a flow from the same counts.
    #[inline(always)]
    pub fn first_sighting(
        now: u64,
        forward: bool,
        bytes: u64,
        ifindex: u32,
        reason: Reason,
        nearest_rule: u16,
    ) -> Self {
        Self {
            first_seen_ns: now,
            last_seen_ns: now,
            packets: u64::from(forward),
            bytes: if forward { bytes } else { 0 },
            reply_packets: u64::from(!forward),
            ifindex,
            nearest_rule,
            reason: reason as u8,
            _pad: 0,
        }
    }

    /// Adds what a seen-flow slot counted to the flow's merged state.
    pub fn add_seen(&mut self, slot: &SeenSlot) {
        self.packets += slot.packets;
        self.bytes += slot.bytes;
        self.reply_packets += slot.reply_packets;
        self.last_seen_ns = self.last_seen_ns.max(slot.last_seen_ns);
    }

    /// Folds the per-CPU copies of one flow into one view: counters add up,
    /// the first sighting is the earliest, the explanation comes from the CPU
    /// that inserted the flow.
    pub fn merge<'a>(copies: impl IntoIterator<Item = &'a FlowState>) -> FlowState {
        let mut out = FlowState::default();
        for c in copies {
            out.packets += c.packets;
            out.bytes += c.bytes;
            out.reply_packets += c.reply_packets;
            out.last_seen_ns = out.last_seen_ns.max(c.last_seen_ns);
            if c.first_seen_ns != 0
                && (out.first_seen_ns == 0 || c.first_seen_ns < out.first_seen_ns)
            {
                out.first_seen_ns = c.first_seen_ns;
                out.ifindex = c.ifindex;
                out.nearest_rule = c.nearest_rule;
                out.reason = c.reason;
            }
        }
        // Later packets are stamped with the coarse clock, which may lag
        // the precise first sighting by up to a tick.
        out.last_seen_ns = out.last_seen_ns.max(out.first_seen_ns);
        out
    }

    pub const fn reason(&self) -> Option<Reason> {
        match self.reason {
            1 => Some(Reason::NoRule),
            2 => Some(Reason::PeerNotAllowed),
            _ => None,
        }
    }
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);
const _: () = assert!(SEEN_SLOTS.is_power_of_two());
const _: () = assert!(core::mem::size_of::<FlowState>() == 48);
const _: () = assert!(core::mem::size_of::<FlowEvent>() == 72 + EVENT_HEADER_BYTES);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), explicit padding, plain integers and byte arrays.
    unsafe impl aya::Pod for super::FlowKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FlowState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FlowEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SeenSlot {}
}
