//! Map names and value types shared with userspace. Names stay ≤ 15 bytes, the
//! kernel's limit for object names.

/// Per-CPU packet/byte counters, indexed by [`crate::stats::stats_index`].
pub const STATS_MAP: &str = "PC_STATS";
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
/// Per-rule packet/byte counters (per CPU), indexed by rule index.
pub const RULESTATS_MAP: &str = "PC_RULESTATS";

/// Unexpected-flow dedup LRU, see [`crate::flow`].
pub const FLOWS_MAP: &str = "PC_FLOWS";
pub const SEEN_MAP: &str = "PC_SEEN";
/// Ring buffer of first sightings.
pub const EVENTS_MAP: &str = "PC_EVENTS";
/// Classifier counters (per CPU), see `KSTAT_*`.
pub const KSTATS_MAP: &str = "PC_KSTATS";
/// Pending attempts of required flows, see [`crate::handshake`].
pub const HANDSHAKES_MAP: &str = "PC_HANDSHAKES";
/// Blocked flows watched for recovery: flow key → time of the first
/// answered attempt since (0 while still blocked).
pub const WATCH_MAP: &str = "PC_WATCH";
/// Answered attempts per rule (per CPU), indexed like `PC_RULESTATS`.
pub const RULEWORK_MAP: &str = "PC_RULEWORK";
/// Switches, see `CONFIG_*`.
pub const CONFIG_MAP: &str = ".bss.pc_config";

/// Program names (≤ 15 bytes).
pub const PROG_INGRESS: &str = "pc_ingress";
pub const PROG_EGRESS: &str = "pc_egress";
/// A bare XDP_PASS, the baseline benchmarks are measured against.
pub const PROG_XDP_PASS: &str = "pc_xdp_pass";
/// A bare TC_ACT_OK, the egress baseline.
pub const PROG_TC_PASS: &str = "pc_tc_pass";

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
