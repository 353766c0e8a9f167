//! Map names and value types shared with userspace. Names stay ≤ 15 bytes, the
//! kernel's limit for object names.

/// Per-CPU packet and byte counters, one [`CpuCounters`] per policy set.
pub const COUNTERS_MAP: &str = "PC_COUNTERS";
/// ifindex → counter slot of the interface, written by userspace at attach.
/// Names starting with `.bss.` are global-data sections of the programs
/// (`monitor-ebpf/src/tables.rs`): one-element arrays whose value is the
/// whole table, read by the programs without a lookup call.
pub const IFSLOT_MAP: &str = ".bss.pc_ifslot";

/// Policy maps, see [`crate::policy`].
pub const PORTCLASS_MAP: &str = ".bss.pc_ports";
pub const RULESETS_MAP: &str = ".bss.pc_rsets";
pub const HOST4_MAP: &str = "PC_HOST4";
pub const HOST6_MAP: &str = "PC_HOST6";
pub const NET4_MAP: &str = "PC_NET4";
pub const NET6_MAP: &str = "PC_NET6";
/// The IPv4 role trie's levels and its masks, see [`crate::policy::v4_roles`].
pub const V4L1_MAP: &str = ".bss.pc_v4l1";
pub const V4L2_MAP: &str = ".bss.pc_v4l2";
pub const V4L3_MAP: &str = ".bss.pc_v4l3";
pub const MASKS_MAP: &str = ".bss.pc_masks";
/// The /16s where a known peer may be, see [`crate::policy::v4_known_peer`].
pub const V4KNOWN_MAP: &str = ".bss.pc_v4known";

/// Unexpected-flow dedup LRU, see [`crate::flow`].
pub const FLOWS_MAP: &str = "PC_FLOWS";
pub const SEEN_MAP: &str = "PC_SEEN";
/// Per-CPU new-flow budgets of strangers, one [`crate::flood::Budget`] per
/// class; and the flood aggregates past them, see [`crate::flood`].
pub const BUDGET_MAP: &str = "PC_BUDGET";
pub const FLOODS_MAP: &str = "PC_FLOODS";
/// One zeroed [`crate::flood::FloodStats`], never written: the value a new
/// aggregate is inserted with (it does not fit the programs' stack frame
/// beside the rest, and a zero fill there would compile to a memset call).
pub const FLOODZERO_MAP: &str = "PC_FLOODZERO";
/// Each CPU's coarse-clock reading of the current tick (kernel only).
pub const CLOCK_MAP: &str = "PC_CLOCK";
/// Ring buffer of first sightings.
pub const EVENTS_MAP: &str = "PC_EVENTS";
/// Classifier counters (per CPU), indexed by [`crate::flow::Kstat`].
pub const KSTATS_MAP: &str = "PC_KSTATS";
/// Pending attempts of required flows, see [`crate::handshake`].
pub const HANDSHAKES_MAP: &str = "PC_HANDSHAKES";
/// Blocked flows watched for recovery: flow key → time of the first
/// answered attempt since (0 while still blocked).
pub const WATCH_MAP: &str = "PC_WATCH";
/// Answered attempts per rule (per CPU), indexed set * MAX_RULES + rule.
pub const RULEWORK_MAP: &str = "PC_RULEWORK";
/// Required flows' packets dropped by the host's own stack, one
/// [`crate::drop::LocalDrop`] per flow.
pub const DROPS_MAP: &str = "PC_DROPS";
/// Kernel drop reason value → [`crate::drop::DropCause`] (0: not watched).
pub const DROPWHY_MAP: &str = ".bss.pc_dropwhy";
/// The [`crate::drop::SkbLayout`] the drop program reads kernel structs by.
pub const SKBLAYOUT_MAP: &str = ".bss.pc_skblay";
/// Switches, one [`crate::policy::Config`] word.
pub const CONFIG_MAP: &str = ".bss.pc_config";

/// Program names (≤ 15 bytes).
pub const PROG_INGRESS: &str = "pc_ingress";
pub const PROG_EGRESS: &str = "pc_egress";
/// A bare XDP_PASS, the baseline benchmarks are measured against.
pub const PROG_XDP_PASS: &str = "pc_xdp_pass";
/// A bare pass on egress (TC_ACT_UNSPEC, as `pc_egress` returns), the baseline.
pub const PROG_TC_PASS: &str = "pc_tc_pass";
/// The raw tracepoint on `skb:kfree_skb` (drops by the host's own stack).
pub const PROG_DROPS: &str = "pc_drops";
/// A bare raw tracepoint program, the drop hook's baseline.
pub const PROG_RAWTP_PASS: &str = "pc_rawtp_pass";
/// The tracepoint both attach to.
pub const DROP_TRACEPOINT: &str = "kfree_skb";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<Counter>() == 16);

#[cfg(feature = "user")]
// SAFETY: Counter is repr(C), two u64s, no padding.
unsafe impl aya::Pod for Counter {}

/// What one CPU counts under one policy set: the traffic counters (indexed by
/// [`crate::stats::stats_index`]) and the set's per-rule counters. One value
/// holds both so a packet makes one map lookup for its two counters; each
/// lookup costs a stack round trip for its key and spills around what LLVM
/// sees as a call. Traffic is counted under the set live when the packet
/// came, so traffic totals are the sum over both sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct CpuCounters {
    pub traffic: [Counter; crate::stats::STATS_ENTRIES as usize],
    pub rules: [Counter; crate::policy::MAX_RULES as usize],
}

impl CpuCounters {
    pub const ZERO: CpuCounters = CpuCounters {
        traffic: [Counter {
            packets: 0,
            bytes: 0,
        }; crate::stats::STATS_ENTRIES as usize],
        rules: [Counter {
            packets: 0,
            bytes: 0,
        }; crate::policy::MAX_RULES as usize],
    };
}

// A per-CPU map value may not exceed the kernel's PCPU_MIN_UNIT_SIZE.
const _: () = assert!(core::mem::size_of::<CpuCounters>() <= 32 * 1024);

#[cfg(feature = "user")]
// SAFETY: repr(C), arrays of Counter, no padding.
unsafe impl aya::Pod for CpuCounters {}
