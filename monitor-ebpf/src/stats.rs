//! Per-packet accounting: one array lookup for the interface, one per-CPU
//! counter bump. No hash maps, no locks.

use monitor_common::{
    maps::Counter,
    policy::MAX_RULES,
    stats::{Direction, MAX_IFACES, stats_index},
};

use crate::{
    maps::{PC_KSTATS, PC_RULESTATS, PC_STATS},
    tables::PC_IFSLOT,
};

#[inline(always)]
pub fn count_traffic(ifindex: u32, dir: Direction, slot: u32, bytes: u64) {
    bump(
        PC_STATS.get_ptr_mut(stats_index(iface_slot(ifindex), dir, slot)),
        bytes,
    );
}

/// Rule indexes belong to a map set, so do their counters.
#[inline(always)]
pub fn count_rule(set: u32, rule: u16, bytes: u64) {
    bump(
        PC_RULESTATS.get_ptr_mut(set * MAX_RULES + u32::from(rule)),
        bytes,
    );
}

#[inline(always)]
pub fn count_kstat(index: u32) {
    add_kstat(index, 1);
}

#[inline(always)]
pub fn add_kstat(index: u32, n: u64) {
    if let Some(v) = PC_KSTATS.get_ptr_mut(index) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe { *v += n };
    }
}

#[inline(always)]
fn bump(counter: Option<*mut Counter>, bytes: u64) {
    if let Some(counter) = counter {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe {
            (*counter).packets += 1;
            (*counter).bytes += bytes;
        }
    }
}

#[inline(always)]
fn iface_slot(ifindex: u32) -> u32 {
    match PC_IFSLOT.at(ifindex, 0) {
        slot if slot < MAX_IFACES => slot,
        _ => 0,
    }
}
