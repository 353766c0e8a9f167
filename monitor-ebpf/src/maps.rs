//! Map definitions. Names must match `monitor_common::maps`.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruPerCpuHashMap, PerCpuArray, RingBuf},
};
use monitor_common::{
    flow::{FlowKey, FlowState, KSTATS, MAX_FLOWS, RING_BYTES, SEEN_SLOTS, SeenSlot},
    handshake::{Handshake, HandshakeKey, MAX_HANDSHAKES, MAX_WATCHED},
    maps::Counter,
    policy::{
        Host4Key, Host6Key, MAX_HOSTS, MAX_NETS, MAX_RULES, MAX_RULESETS, Net4, Net6, POLICY_SETS,
        PORT_TABLE_ENTRIES, RuleSet, V4_L1_ENTRIES, V4_L2_BLOCKS, V4_L3_BLOCKS, V4_MASKS,
    },
    stats::{IFINDEX_LIMIT, STATS_ENTRIES},
};

/// BPF_F_NO_PREALLOC: LPM tries require it.
const NO_PREALLOC: u32 = 1;

#[map(name = "PC_STATS")]
pub static PC_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(STATS_ENTRIES, 0);

#[map(name = "PC_IFSLOT")]
pub static PC_IFSLOT: Array<u32> = Array::with_max_entries(IFINDEX_LIMIT, 0);

#[map(name = "PC_CONFIG")]
pub static PC_CONFIG: Array<u32> = Array::with_max_entries(1, 0);

// Policy maps: two sets each, see monitor_common::policy::POLICY_SETS.
#[map(name = "PC_PORTCLASS")]
pub static PC_PORTCLASS: Array<u16> = Array::with_max_entries(POLICY_SETS * PORT_TABLE_ENTRIES, 0);

#[map(name = "PC_RULESETS")]
pub static PC_RULESETS: Array<RuleSet> = Array::with_max_entries(POLICY_SETS * MAX_RULESETS, 0);

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

#[map(name = "PC_V4L1")]
pub static PC_V4L1: Array<u32> = Array::with_max_entries(POLICY_SETS * V4_L1_ENTRIES, 0);

#[map(name = "PC_V4L2")]
pub static PC_V4L2: Array<u32> = Array::with_max_entries(POLICY_SETS * V4_L2_BLOCKS * 256, 0);

#[map(name = "PC_V4L3")]
pub static PC_V4L3: Array<u32> = Array::with_max_entries(POLICY_SETS * V4_L3_BLOCKS * 256, 0);

#[map(name = "PC_MASKS")]
pub static PC_MASKS: Array<u64> = Array::with_max_entries(POLICY_SETS * V4_MASKS, 0);

#[map(name = "PC_RULESTATS")]
pub static PC_RULESTATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(POLICY_SETS * MAX_RULES, 0);

#[map(name = "PC_FLOWS")]
pub static PC_FLOWS: LruPerCpuHashMap<FlowKey, FlowState> =
    LruPerCpuHashMap::with_max_entries(MAX_FLOWS, 0);

#[map(name = "PC_SEEN")]
pub static PC_SEEN: PerCpuArray<SeenSlot> = PerCpuArray::with_max_entries(SEEN_SLOTS, 0);

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
