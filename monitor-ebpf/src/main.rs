//! portconform's kernel programs: XDP on ingress, TC on egress.
//!
//! Both are thin entries around one `observe` function; both fail open (every
//! packet passes, whatever happens here) and count what they could not parse.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

mod clock;
mod drops;
mod flood;
mod flows;
mod frame;
mod globals;
mod maps;
mod opaque;
mod policy;
mod required;
mod stats;

use aya_ebpf::{
    bindings::{TC_ACT_UNSPEC, xdp_action},
    helpers::generated::bpf_skb_load_bytes,
    macros::{classifier, raw_tracepoint, xdp},
    programs::{RawTracePointContext, TcContext, XdpContext},
};
use monitor_common::{
    Packet,
    classify::{self, Verdict},
    flow::{EVENT_HEADER_BYTES, Kstat},
    packet::{self, ParseError, Parsed},
    policy::Config,
    stats::{PacketDir, slot_of, slot_of_error},
};

use crate::{
    flows::{CopyHeaders, KernelFlows, Sighting},
    frame::Frame,
    globals::PC_CONFIG,
    policy::KernelPolicy,
};

#[xdp]
pub fn pc_ingress(ctx: XdpContext) -> u32 {
    let frame = Frame::new(ctx.data(), ctx.data_end());
    let len = frame.len() as u64;
    observe(
        &XdpHeaders(&ctx),
        &frame,
        || packet::parse_ethernet(&frame),
        ctx.ingress_ifindex() as u32,
        PacketDir::Ingress,
        len,
    );
    xdp_action::XDP_PASS
}

#[classifier]
pub fn pc_egress(ctx: TcContext) -> i32 {
    let mut frame = Frame::new(ctx.data(), ctx.data_end());
    let mut parsed = packet::parse_ethernet(&frame);
    // Headers of a non-linear skb may sit outside the directly readable
    // part: then, and only then, pull what the parser reads and parse
    // again. Pulling every packet whose linear part is shorter than the
    // window would reach every TCP segment the host sends (headers linear,
    // payload in pages), and on a clone TCP keeps for retransmission the
    // kernel copies the head to make it writable: hundreds of ns a packet.
    let len = ctx.len() as usize;
    if matches!(parsed, Err(ParseError::Truncated)) && frame.len() < len {
        let _ = ctx.pull_data(core::cmp::min(len, frame::HEADER_WINDOW) as u32);
        frame = Frame::new(ctx.data(), ctx.data_end());
        parsed = packet::parse_ethernet(&frame);
    }
    observe(
        &TcHeaders(&ctx),
        &frame,
        move || parsed,
        skb_ifindex(&ctx),
        PacketDir::Egress,
        len as u64,
    );
    // Not TC_ACT_OK: in a tcx chain that ends it, and in a clsact filter
    // list it skips the filters after ours. A monitor passes the packet on
    // to whatever else the host attached.
    TC_ACT_UNSPEC
}

/// Counts the packet, and when a policy is loaded classifies it: allowed
/// traffic only bumps its rule's counter; unexpected traffic takes the
/// flow-dedup path. `parse` gives the frame's headers: XDP parses here,
/// after the loads above (the order the verifier was shown to accept),
/// while egress parsed already, having perhaps had to pull its headers.
#[inline(always)]
fn observe<H: CopyHeaders, P: Packet>(
    ctx: &H,
    frame: &P,
    parse: impl FnOnce() -> Result<Parsed, ParseError>,
    ifindex: u32,
    dir: PacketDir,
    bytes: u64,
) {
    let config = PC_CONFIG.at(0);
    let policy = KernelPolicy { config };
    let counters = stats::counters(policy.set());
    let parsed = match parse() {
        Ok(parsed) => parsed,
        Err(err) => {
            stats::count_traffic(counters, ifindex, dir, slot_of_error(err), bytes);
            return;
        }
    };
    let parsed = &parsed;
    stats::count_traffic(counters, ifindex, dir, slot_of(parsed), bytes);
    if !config.has(Config::CLASSIFY) {
        return;
    }
    let verdict = classify::classify(&policy, &KernelFlows, parsed, dir);
    match verdict {
        // The allowed total is the sum of the rule counters: one bump, not two.
        Verdict::Allowed { rule, .. } => stats::count_rule(counters, rule, bytes),
        Verdict::Infrastructure => stats::count_kstat(Kstat::Infrastructure as u32),
        Verdict::Fragment => stats::count_kstat(Kstat::Fragments as u32),
        Verdict::Unexpected {
            reason,
            nearest_rule,
            conn,
        } => {
            stats::count_kstat(Kstat::Unexpected as u32);
            let sighting = Sighting {
                policy: &policy,
                parsed,
                conn,
                reason,
                nearest_rule,
                ifindex,
                dir,
                bytes,
            };
            flows::unexpected(ctx, &sighting);
        }
    }
    if matches!(
        verdict,
        Verdict::Allowed { required: true, .. } | Verdict::Infrastructure
    ) {
        required::observe(frame, parsed, &verdict, dir, policy.set(), ifindex);
    }
}

struct XdpHeaders<'a>(&'a XdpContext);

impl CopyHeaders for XdpHeaders<'_> {
    /// By direct packet access: `bpf_xdp_load_bytes` only exists from 5.18.
    /// An XDP program without frags sees the whole frame in its linear
    /// part, so nothing is lost.
    #[inline(always)]
    fn copy_headers(&self, dst: &mut [u8; EVENT_HEADER_BYTES]) -> usize {
        frame::copy_headers(&Frame::new(self.0.data(), self.0.data_end()), dst)
    }
}

struct TcHeaders<'a>(&'a TcContext);

impl CopyHeaders for TcHeaders<'_> {
    #[inline(always)]
    fn copy_headers(&self, dst: &mut [u8; EVENT_HEADER_BYTES]) -> usize {
        let Some(len) = frame::copy_len(self.0.len() as usize) else {
            return 0;
        };
        // SAFETY: as above, with the skb helper.
        let ret =
            unsafe { bpf_skb_load_bytes(self.0.skb.skb.cast(), 0, dst.as_mut_ptr().cast(), len) };
        if ret == 0 { len as usize } else { 0 }
    }
}

/// Drops by the host's own stack (see `drops`). Userspace attaches it to
/// `kfree_skb` where the kernel has drop reasons and BTF.
#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn pc_drops(ctx: RawTracePointContext) -> i32 {
    drops::observe(&ctx);
    0
}

/// A bare raw tracepoint program: the drop hook's baseline. It reads the
/// reason argument as the drop hook does, so it attaches where that does.
#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn pc_rawtp_pass(ctx: RawTracePointContext) -> i32 {
    let _reason: u64 = ctx.arg(2);
    0
}

/// A bare XDP_PASS: the baseline the benchmarks divide by.
#[xdp]
pub fn pc_xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// A bare pass: the egress baseline, returning what `pc_egress` returns.
#[classifier]
pub fn pc_tc_pass(_ctx: TcContext) -> i32 {
    TC_ACT_UNSPEC
}

/// The egress device's index (aya-ebpf has no accessor for it).
#[inline(always)]
fn skb_ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: `skb` is the context pointer the kernel handed this program.
    unsafe { (*ctx.skb.skb).ifindex }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
