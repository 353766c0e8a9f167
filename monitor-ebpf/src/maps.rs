//! Map definitions. Names must match `monitor_common::maps`.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use monitor_common::{
    maps::Counter,
    stats::{IFINDEX_LIMIT, STATS_ENTRIES},
};

#[map(name = "PC_STATS")]
pub static PC_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(STATS_ENTRIES, 0);

#[map(name = "PC_IFSLOT")]
pub static PC_IFSLOT: Array<u32> = Array::with_max_entries(IFINDEX_LIMIT, 0);
