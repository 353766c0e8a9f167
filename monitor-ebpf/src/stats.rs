//! Per-packet accounting: one per-CPU lookup gives the packet's traffic
//! counter and its rule's counter. No hash maps, no locks.

use monitor_common::{
    maps::{Counter, CpuCounters},
    policy::MAX_RULES,
    stats::{IFINDEX_LIMIT, MAX_IFACES, PacketDir, stats_index},
};

use crate::{
    globals::PC_IFSLOT,
    maps::{PC_COUNTERS, PC_KSTATS},
    opaque,
};

/// This CPU's counters under policy set `set` (0 or 1).
#[inline(always)]
pub fn counters(set: u32) -> Option<*mut CpuCounters> {
    PC_COUNTERS.get_ptr_mut(set)
}

#[inline(always)]
pub fn count_traffic(
    counters: Option<*mut CpuCounters>,
    ifindex: u32,
    dir: PacketDir,
    slot: u32,
    bytes: u64,
) {
    if let Some(c) = counters {
        let index = stats_index(iface_slot(ifindex), dir, slot) as usize;
        // SAFETY: this CPU's value: nobody else writes it while we run.
        bump(unsafe { (*c).traffic.get_mut(index) }, bytes);
    }
}

/// Rule indexes belong to the set whose counters `counters` are.
#[inline(always)]
pub fn count_rule(counters: Option<*mut CpuCounters>, rule: u16, bytes: u64) {
    if let Some(c) = counters {
        let i = opaque::index::<{ MAX_RULES as usize }>(usize::from(rule));
        // SAFETY: as above; `i` is masked into the array (see `opaque`).
        bump(Some(unsafe { (*c).rules.get_unchecked_mut(i) }), bytes);
    }
}

/// Adds one to counter `index`, a [`Kstat`] the caller names as a constant
/// (`Kstat::X as u32`), so the map index is an immediate. A word rather than
/// the enum: with the enum as the parameter, LLVM laid the programs' blocks
/// out differently (same instructions, another order); with the constant
/// cast at the call site the object is the one the bare constants gave.
///
/// [`Kstat`]: monitor_common::flow::Kstat
#[inline(always)]
pub fn count_kstat(index: u32) {
    add_kstat(index, 1);
}

/// Adds `n` to counter `index` (see [`count_kstat`]).
#[inline(always)]
pub fn add_kstat(index: u32, n: u64) {
    if let Some(v) = PC_KSTATS.get_ptr_mut(index) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe { *v += n };
    }
}

#[inline(always)]
fn bump(counter: Option<&mut Counter>, bytes: u64) {
    if let Some(counter) = counter {
        counter.packets += 1;
        counter.bytes += bytes;
    }
}

#[inline(always)]
fn iface_slot(ifindex: u32) -> u32 {
    // Interfaces past the table count in slot 0, as unregistered ones do.
    if ifindex >= IFINDEX_LIMIT {
        return 0;
    }
    match PC_IFSLOT.at(ifindex) {
        slot if slot < MAX_IFACES => slot,
        _ => 0,
    }
}
