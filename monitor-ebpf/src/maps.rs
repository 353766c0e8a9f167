//! Map definitions. Names must match `monitor_common::maps`.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LpmTrie, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use monitor_common::{
    drop::{LocalDrop, MAX_DROP_FLOWS},
    flood::{BUDGET_CLASSES, Budget, FloodKey, FloodStats, MAX_FLOOD_KEYS},
    flow::{FlowKey, FlowState, KSTATS, MAX_FLOWS, RING_BYTES, SEEN_SLOTS, SeenSlot},
    handshake::HandshakeKey,
    handshake::{Handshake, MAX_HANDSHAKES, MAX_WATCHED},
    maps::CpuCounters,
    policy::{Host4Key, Host6Key, MAX_HOSTS, MAX_NETS, MAX_RULES, Net4, Net6, POLICY_SETS},
};

/// BPF_F_NO_PREALLOC: LPM tries require it.
const NO_PREALLOC: u32 = 1;

#[map(name = "PC_COUNTERS")]
pub static PC_COUNTERS: PerCpuArray<CpuCounters> = PerCpuArray::with_max_entries(POLICY_SETS, 0);

// Policy maps: two sets each, see monitor_common::policy::POLICY_SETS.
#[map(name = "PC_HOST4")]
pub static PC_HOST4: HashMap<Host4Key, u64> = HashMap::with_max_entries(POLICY_SETS * MAX_HOSTS, 0);

#[map(name = "PC_HOST6")]
pub static PC_HOST6: HashMap<Host6Key, u64> = HashMap::with_max_entries(POLICY_SETS * MAX_HOSTS, 0);

#[map(name = "PC_NET4")]
pub static PC_NET4: LpmTrie<Net4, u64> =
    LpmTrie::with_max_entries(POLICY_SETS * MAX_NETS, NO_PREALLOC);

#[map(name = "PC_NET6")]
pub static PC_NET6: LpmTrie<Net6, u64> =
    LpmTrie::with_max_entries(POLICY_SETS * MAX_NETS, NO_PREALLOC);

#[map(name = "PC_FLOWS")]
pub static PC_FLOWS: LruPerCpuHashMap<FlowKey, FlowState> =
    LruPerCpuHashMap::with_max_entries(MAX_FLOWS, 0);

#[map(name = "PC_SEEN")]
pub static PC_SEEN: PerCpuArray<SeenSlot> = PerCpuArray::with_max_entries(SEEN_SLOTS, 0);

#[map(name = "PC_BUDGET")]
pub static PC_BUDGET: PerCpuArray<Budget> = PerCpuArray::with_max_entries(BUDGET_CLASSES, 0);

#[map(name = "PC_FLOODS")]
pub static PC_FLOODS: PerCpuHashMap<FloodKey, FloodStats> =
    PerCpuHashMap::with_max_entries(MAX_FLOOD_KEYS, 0);

#[map(name = "PC_FLOODZERO")]
pub static PC_FLOODZERO: PerCpuArray<FloodStats> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "PC_EVENTS")]
pub static PC_EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map(name = "PC_KSTATS")]
pub static PC_KSTATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(KSTATS, 0);

#[map(name = "PC_HANDSHAKES")]
pub static PC_HANDSHAKES: HashMap<HandshakeKey, Handshake> =
    HashMap::with_max_entries(MAX_HANDSHAKES, 0);

#[map(name = "PC_WATCH")]
pub static PC_WATCH: HashMap<FlowKey, u64> = HashMap::with_max_entries(MAX_WATCHED, 0);

#[map(name = "PC_RULEWORK")]
pub static PC_RULEWORK: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(POLICY_SETS * MAX_RULES, 0);

#[map(name = "PC_DROPS")]
pub static PC_DROPS: HashMap<FlowKey, LocalDrop> = HashMap::with_max_entries(MAX_DROP_FLOWS, 0);

#[map(name = "PC_CLOCK")]
pub static PC_CLOCK: PerCpuArray<Tick> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "PC_DROPBUF")]
pub static PC_DROPBUF: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// A CPU's coarse-clock reading and the tick it was read at (`PC_CLOCK`,
/// see `clock`).
#[repr(C)]
pub struct Tick {
    pub jiffies: u64,
    pub coarse_ns: u64,
}

/// Bytes of headers read from the skb, from its IP header: IPv6 with
/// extension headers and a TCP header fit. A power of two: offsets are
/// masked into it.
pub const WINDOW: usize = 128;
/// The scratch buffer is longer than the window by the widest read past a
/// masked offset (a 40-byte IPv6 header span's last 8-byte field), so every
/// access the verifier sees is inside the map value.
pub const DROPBUF_BYTES: usize = WINDOW + 64;

/// The drop program's per-CPU scratch (`PC_DROPBUF`): the headers, then the
/// attempt key and record it builds, none of which fit its stack (see
/// `drops::judge`).
#[repr(C)]
pub struct Scratch {
    pub window: [u8; DROPBUF_BYTES],
    pub key: HandshakeKey,
    pub drop: LocalDrop,
}
