//! Map names and value types shared with userspace. Names stay ≤ 15 bytes, the
//! kernel's limit for object names.

/// Per-CPU packet/byte counters, indexed by [`crate::stats::stats_index`].
pub const STATS_MAP: &str = "PC_STATS";
/// ifindex → counter slot of the interface, written by userspace at attach.
pub const IFSLOT_MAP: &str = "PC_IFSLOT";

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
