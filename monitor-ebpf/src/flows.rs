//! The rare path: unexpected packets. Each flow is deduplicated in an LRU
//! keyed by (initiator, responder, service); only its first sighting goes to
//! userspace through the ring buffer, with the packet's headers. A per-CPU
//! direct-mapped slot array (`PC_SEEN`) in front of the LRU counts the
//! flows seen last, so a flood of one flow never reaches the LRU; new flows
//! of strangers past a budget never reach it either (`flood`).

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns, generated::bpf_jiffies64},
};
use monitor_common::{
    classify::{Conn, FlowLookup, Reason},
    flow::{EVENT_HEADER_BYTES, EVENT_UNEXPECTED, FlowEvent, FlowKey, FlowState, Kstat, SeenSlot},
    packet::Parsed,
    stats::PacketDir,
};

use crate::{
    clock, flood,
    maps::{PC_EVENTS, PC_FLOWS, PC_SEEN},
    policy::KernelPolicy,
    stats::{add_kstat, count_kstat},
};

/// Copies the first bytes of the packet being processed.
pub trait CopyHeaders {
    /// Writes up to `dst.len()` bytes from the packet's start; returns how many.
    fn copy_headers(&self, dst: &mut [u8; EVENT_HEADER_BYTES]) -> usize;
}

pub struct Sighting<'a> {
    /// For the peer's roles, should the flow be new (see `flood`).
    pub policy: &'a KernelPolicy,
    pub parsed: &'a Parsed,
    pub conn: Conn,
    pub reason: Reason,
    pub nearest_rule: u16,
    pub ifindex: u32,
    pub dir: PacketDir,
    pub bytes: u64,
}

/// The unexpected flows `PC_FLOWS` counts, for the classifier. Every flow
/// the per-CPU slots count is in the LRU too (a slot is only taken by a
/// flow found or inserted there), so one lookup answers.
pub struct KernelFlows;

impl FlowLookup for KernelFlows {
    #[inline(always)]
    fn tracks(&self, parsed: &Parsed, conn: &Conn) -> bool {
        PC_FLOWS.get_ptr_mut(FlowKey::new(parsed, conn)).is_some()
    }
}

#[inline(always)]
pub fn unexpected<H: CopyHeaders>(ctx: &H, s: &Sighting) {
    let key = FlowKey::new(s.parsed, &s.conn);
    // A stranger's SYN past the budget is only counted, in its service's
    // flood aggregate, before any per-flow lookup: the slot and the table
    // are each a cache miss when every packet of a spoofed flood is a new
    // flow, and were most of its cost. A SYN of a stranger's flow tracked
    // earlier counts there too while the budget is spent.
    if flood::bare_syn(s.parsed, s.dir)
        && let Some(now) = flood::syn_budget_spent()
        && flood::stranger(s.policy, s.parsed, &s.conn, s.dir)
    {
        over_budget(s, &key, now);
        return;
    }
    // SAFETY: helper without arguments; the verifier inlines it as a load.
    let jiffies = unsafe { bpf_jiffies64() };
    let slot = PC_SEEN.get_ptr_mut(key.seen_slot());
    if let Some(slot) = slot {
        // SAFETY: this CPU's slot: nobody else writes it while we run.
        unsafe {
            if (*slot).occupied != 0 && (*slot).key == key {
                count_seen(slot, s.conn.forward, s.bytes, jiffies);
                return;
            }
        }
    }
    // Flows past the slot are rarer: the coarse clock is a memory read
    // where the precise one reads the clock source (~30 ns in a VM).
    let now = clock::coarse_ns();
    if let Some(state) = PC_FLOWS.get_ptr_mut(key) {
        add(state, s.conn.forward, s.bytes, now);
        if let Some(slot) = slot {
            take_slot(slot, &key, now, jiffies);
        }
        return;
    }
    // Where the classifier guessed which end serves, the flow may be
    // tracked the other way round.
    if FlowKey::orientation_guessed(s.parsed)
        && let Some(state) = PC_FLOWS.get_ptr_mut(FlowKey::flipped(s.parsed, &s.conn))
    {
        add(state, !s.conn.forward, s.bytes, now);
        return;
    }
    // A new flow. A stranger's past the budget is only counted.
    if flood::stranger(s.policy, s.parsed, &s.conn, s.dir)
        && !flood::admit_stranger(s.parsed, s.dir, now)
    {
        over_budget(s, &key, now);
        return;
    }
    // A first sighting gets the precise time: it dates the event.
    let now = unsafe { bpf_ktime_get_ns() };
    let state = FlowState::first_sighting(
        now,
        s.conn.forward,
        s.bytes,
        s.ifindex,
        s.reason,
        s.nearest_rule,
    );
    if PC_FLOWS.insert(key, state, u64::from(BPF_NOEXIST)).is_ok() {
        count_kstat(Kstat::NewFlows as u32);
        if let Some(slot) = slot {
            take_slot(slot, &key, now, jiffies);
        }
    } else if let Some(existing) = PC_FLOWS.get_ptr_mut(key) {
        // Another CPU inserted it first: it sends the event.
        add(existing, s.conn.forward, s.bytes, now);
        return;
    } else {
        // Not tracked, so later packets will report it again: better a
        // duplicate event than a lost one.
        count_kstat(Kstat::FlowInsertFailed as u32);
    }
    emit(ctx, s, &key, now);
}

/// Counts a stranger's packet over budget in its service's aggregate.
#[inline(always)]
fn over_budget(s: &Sighting, key: &FlowKey, now: u64) {
    let over = flood::OverBudget {
        parsed: s.parsed,
        conn: &s.conn,
        reason: s.reason as u8,
        bytes: s.bytes,
        initiator: &key.initiator,
    };
    flood::aggregate(&over, now);
}

#[inline(always)]
fn add(state: *mut FlowState, forward: bool, bytes: u64, now: u64) {
    // SAFETY: `state` is this CPU's copy of the per-CPU LRU value: nobody
    // else writes it while we run.
    unsafe {
        if forward {
            (*state).packets += 1;
            (*state).bytes += bytes;
        } else {
            (*state).reply_packets += 1;
        }
        (*state).last_seen_ns = now;
    }
}

/// Counts a packet of the flow holding the slot; the clock is read only when
/// a tick has passed since it was last read (see `SeenSlot`).
#[inline(always)]
fn count_seen(slot: *mut SeenSlot, forward: bool, bytes: u64, jiffies: u64) {
    // SAFETY: the caller's per-CPU slot.
    unsafe {
        if forward {
            (*slot).packets += 1;
            (*slot).bytes += bytes;
        } else {
            (*slot).reply_packets += 1;
        }
        if (*slot).last_seen_jiffies != jiffies {
            (*slot).last_seen_jiffies = jiffies;
            (*slot).last_seen_ns = bpf_ktime_get_coarse_ns();
        }
    }
}

/// Hands the slot to `key`'s flow, first adding what it counted for the flow
/// holding it to that flow's LRU entry. `now` (read at `jiffies`) is when
/// the new holder was last seen.
#[inline(always)]
fn take_slot(slot: *mut SeenSlot, key: &FlowKey, now: u64, jiffies: u64) {
    // SAFETY: the caller's per-CPU slot; the LRU value is this CPU's copy.
    unsafe {
        let held = (*slot).packets + (*slot).reply_packets;
        if (*slot).occupied != 0 && held != 0 {
            match PC_FLOWS.get_ptr_mut((*slot).key) {
                Some(state) => {
                    (*state).packets += (*slot).packets;
                    (*state).bytes += (*slot).bytes;
                    (*state).reply_packets += (*slot).reply_packets;
                    if (*slot).last_seen_ns > (*state).last_seen_ns {
                        (*state).last_seen_ns = (*slot).last_seen_ns;
                    }
                }
                None => add_kstat(Kstat::SeenUnflushed as u32, held),
            }
        }
        (*slot).key = *key;
        (*slot).occupied = 1;
        (*slot).packets = 0;
        (*slot).bytes = 0;
        (*slot).reply_packets = 0;
        (*slot).last_seen_ns = now;
        (*slot).last_seen_jiffies = jiffies;
    }
}

#[inline(always)]
fn emit<H: CopyHeaders>(ctx: &H, s: &Sighting, key: &FlowKey, now: u64) {
    let Some(mut entry) = PC_EVENTS.reserve::<FlowEvent>(0) else {
        count_kstat(Kstat::RingbufFull as u32);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points to a reserved, exclusively owned ring-buffer record.
    unsafe {
        (*ev).ts_ns = now;
        (*ev).key = *key;
        (*ev).ifindex = s.ifindex;
        (*ev).packet_len = s.bytes as u32;
        (*ev).kind = EVENT_UNEXPECTED;
        (*ev).reason = s.reason as u8;
        (*ev).packet_direction = s.dir as u8;
        (*ev).tcp_flags = s.parsed.tcp_flags;
        (*ev).nearest_rule = s.nearest_rule;
        (*ev).sport = s.parsed.sport;
        (*ev).dport = s.parsed.dport;
        (*ev).forward = u32::from(s.conn.forward);
        let header = &mut (*ev).header;
        let n = ctx.copy_headers(header);
        (*ev).captured = n as u16;
    }
    entry.submit(0);
}
