//! New unexpected flows from strangers past the per-CPU budget (see
//! `monitor_common::flood`): counted in one aggregate per service, never
//! tracked one by one, so a spoofed flood neither churns the flow LRU nor
//! floods the ring buffer, and cannot evict a genuine flow.

use aya_ebpf::bindings::BPF_NOEXIST;
use monitor_common::{
    classify::{Conn, PolicyLookup, peer_addr},
    flood::{CLASS_OTHER, CLASS_SYN, FloodKey, FloodStats, register_of, source_hash},
    flow::Kstat,
    packet::{Family, IPPROTO_TCP, Parsed, TCP_ACK, TCP_SYN, v4_addr},
    policy::{ConnDir, KNOWN_PEER},
    stats::PacketDir,
};

use crate::{
    clock,
    maps::{PC_BUDGET, PC_FLOODS, PC_FLOODZERO},
    policy::KernelPolicy,
    stats::count_kstat,
};

/// Whether the packet's connection was opened by a stranger: a peer with
/// no address in the inventory (even one an "any" rule admits) that opened
/// it towards the host. The host's own connections and the inventory's
/// peers never compete for a budget.
#[inline(always)]
pub fn stranger(policy: &KernelPolicy, parsed: &Parsed, conn: &Conn, dir: PacketDir) -> bool {
    if conn.direction != ConnDir::Inbound as u32 {
        return false;
    }
    let addr = peer_addr(parsed, dir);
    let known = match parsed.family {
        Family::V4 => policy.known_peer_v4(v4_addr(addr)),
        Family::V6 => policy.peer_roles_v6(addr) & KNOWN_PEER != 0,
    };
    !known
}

/// A bare SYN arriving: it opens nothing yet, and spoofers send those.
#[inline(always)]
pub fn bare_syn(parsed: &Parsed, dir: PacketDir) -> bool {
    dir == PacketDir::Ingress
        && parsed.proto == IPPROTO_TCP
        && parsed.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

/// When the SYN class's budget on this CPU is spent: the time it was
/// found so (coarse clock), read only once the bucket is empty; `None`
/// while it lasts.
#[inline(always)]
pub fn syn_budget_spent() -> Option<u64> {
    let b = PC_BUDGET.get_ptr(CLASS_SYN)?;
    // SAFETY: this CPU's bucket, read while nobody else writes it.
    let b = unsafe { &*b };
    if b.tokens != 0 {
        return None;
    }
    let now = clock::coarse_ns();
    b.spent(now).then_some(now)
}

/// Whether a stranger's new flow may be tracked at `now`: while its class's
/// budget on this CPU lasts, and only from an inbound packet.
#[inline(always)]
pub fn admit_stranger(parsed: &Parsed, dir: PacketDir, now: u64) -> bool {
    // The host's answers to a stranger's untracked flow (the SYN-ACKs and
    // resets a spoofed SYN flood draws) are counted with the flood, never
    // tracked: they would spend the budget the packets after a genuine
    // handshake need. A genuine flow is tracked from its next inbound one.
    if dir == PacketDir::Egress {
        return false;
    }
    // Packets after a handshake draw on the other class, which a SYN flood
    // leaves alone.
    let class = if bare_syn(parsed, dir) {
        CLASS_SYN
    } else {
        CLASS_OTHER
    };
    match PC_BUDGET.get_ptr_mut(class) {
        // SAFETY: this CPU's bucket: nobody else writes it while we run.
        Some(b) => unsafe { (*b).take(now) },
        None => true,
    }
}

/// What an aggregate counts of one packet over budget.
pub struct OverBudget<'a> {
    pub parsed: &'a Parsed,
    pub conn: &'a Conn,
    pub reason: u8,
    pub bytes: u64,
    /// The flow's opening end.
    pub initiator: &'a [u8; 16],
}

/// Counts packet `p` in its service's aggregate at `now` (coarse clock).
#[inline(always)]
pub fn aggregate(p: &OverBudget, now: u64) {
    let key = FloodKey {
        direction: p.conn.direction,
        service_port: p.conn.service_port,
        proto: p.parsed.proto,
        reason: p.reason,
    };
    let Some(stats) = entry(&key) else {
        count_kstat(Kstat::FloodLost as u32);
        return;
    };
    let (register, rank) = register_of(source_hash(p.initiator));
    // SAFETY: this CPU's copy of the per-CPU value; the register index is
    // masked into the array.
    unsafe {
        if (*stats).first_ns == 0 {
            (*stats).first_ns = now;
            (*stats).first_source = *p.initiator;
            (*stats).family = p.parsed.family as u8;
        }
        (*stats).packets += 1;
        (*stats).bytes += p.bytes;
        (*stats).last_ns = now;
        (*stats).last_source = *p.initiator;
        let r = &mut (*stats).registers[register & (monitor_common::flood::HLL_REGISTERS - 1)];
        if *r < rank {
            *r = rank;
        }
    }
    count_kstat(Kstat::FloodPackets as u32);
}

/// The aggregate of `key`, created when new; past the map's size, the
/// catch-all aggregate of its direction and protocol (service port 0).
#[inline(always)]
fn entry(key: &FloodKey) -> Option<*mut FloodStats> {
    if let Some(p) = PC_FLOODS.get_ptr_mut(key) {
        return Some(p);
    }
    let zero = PC_FLOODZERO.get_ptr(0)?;
    // SAFETY: a map value, read by the helper.
    let zero = unsafe { &*zero };
    let _ = PC_FLOODS.insert(key, zero, u64::from(BPF_NOEXIST));
    if let Some(p) = PC_FLOODS.get_ptr_mut(key) {
        return Some(p);
    }
    let any = FloodKey {
        service_port: 0,
        reason: 0,
        ..*key
    };
    let _ = PC_FLOODS.insert(any, zero, u64::from(BPF_NOEXIST));
    PC_FLOODS.get_ptr_mut(any)
}
