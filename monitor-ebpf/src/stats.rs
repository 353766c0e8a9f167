//! Per-packet accounting: one array lookup for the interface, one per-CPU
//! counter bump. No hash maps, no locks.

use monitor_common::{
    Packet, packet,
    stats::{Direction, IFINDEX_LIMIT, MAX_IFACES, slot_of, slot_of_error, stats_index},
};

use crate::maps::{PC_IFSLOT, PC_STATS};

#[inline(always)]
pub fn count<P: Packet>(frame: &P, ifindex: u32, dir: Direction, bytes: u64) {
    let slot = match packet::parse_ethernet(frame) {
        Ok(parsed) => slot_of(&parsed),
        Err(err) => slot_of_error(err),
    };
    let iface = iface_slot(ifindex);
    if let Some(counter) = PC_STATS.get_ptr_mut(stats_index(iface, dir, slot)) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe {
            (*counter).packets += 1;
            (*counter).bytes += bytes;
        }
    }
}

#[inline(always)]
fn iface_slot(ifindex: u32) -> u32 {
    if ifindex >= IFINDEX_LIMIT {
        return 0;
    }
    match PC_IFSLOT.get(ifindex) {
        Some(&slot) if slot < MAX_IFACES => slot,
        _ => 0,
    }
}
