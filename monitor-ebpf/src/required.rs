//! Required flows: attempts and answers go into `PC_HANDSHAKES` through the
//! shared [`handshake`] logic; userspace judges timeouts and reports.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_ns};
use monitor_common::{
    Packet, Parsed,
    classify::Verdict,
    flow::Kstat,
    handshake::{self, Applied, Handshake, HandshakeKey, HandshakeTable, Track},
    policy::MAX_RULES,
    stats::PacketDir,
};

use crate::{
    maps::{PC_HANDSHAKES, PC_RULEWORK, PC_WATCH},
    stats::count_kstat,
};

struct KernelHandshakes;

impl HandshakeTable for KernelHandshakes {
    #[inline(always)]
    fn get_mut(&mut self, key: &HandshakeKey) -> Option<&mut Handshake> {
        // SAFETY: a map value stays valid while this program runs; concurrent
        // updates from other CPUs can at worst lose a retransmission count.
        PC_HANDSHAKES.get_ptr_mut(key).map(|p| unsafe { &mut *p })
    }

    #[inline(always)]
    fn insert(&mut self, key: &HandshakeKey, value: &Handshake) -> bool {
        PC_HANDSHAKES
            .insert(key, value, u64::from(BPF_NOEXIST))
            .is_ok()
    }

    #[inline(always)]
    fn remove(&mut self, key: &HandshakeKey) {
        let _ = PC_HANDSHAKES.remove(key);
    }
}

/// Only SYNs, SYN-ACKs and RSTs of required TCP rules, requests and answers
/// of required request/response UDP rules, and ICMP errors get this far.
#[inline(always)]
pub fn observe<P: Packet>(
    frame: &P,
    parsed: &Parsed,
    verdict: &Verdict,
    dir: PacketDir,
    set: u32,
    ifindex: u32,
) {
    let track = handshake::track(frame, parsed, verdict, dir);
    if matches!(track, Track::None) {
        return;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    match handshake::apply(&mut KernelHandshakes, &track, now, set as u8, ifindex) {
        Applied::Started => count_kstat(Kstat::Handshakes as u32),
        Applied::TableFull => count_kstat(Kstat::HandshakeFull as u32),
        Applied::Refused => count_kstat(Kstat::Refused as u32),
        Applied::Answered { rule, flow } => {
            count_kstat(Kstat::Answered as u32);
            if let Some(n) = PC_RULEWORK.get_ptr_mut(set * MAX_RULES + u32::from(rule)) {
                // SAFETY: per-CPU value, only this CPU writes it while we run.
                unsafe { *n += 1 };
            }
            if let Some(since) = PC_WATCH.get_ptr_mut(flow) {
                // SAFETY: map value; userspace only reads it or deletes the entry.
                unsafe {
                    if *since == 0 {
                        *since = now;
                    }
                }
            }
        }
        Applied::Retried | Applied::Nothing => {}
    }
}
