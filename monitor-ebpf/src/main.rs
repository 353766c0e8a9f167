//! portconform's kernel programs: XDP on ingress, TC on egress.
//!
//! Both are thin entries around a `try_` function; both fail open (every
//! packet passes, whatever happens here) and count what they could not parse.
#![no_std]
#![no_main]

mod frame;
mod maps;
mod stats;

use aya_ebpf::{
    bindings::{TC_ACT_OK, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use monitor_common::stats::Direction;

use crate::frame::Frame;

#[xdp]
pub fn pc_ingress(ctx: XdpContext) -> u32 {
    let frame = Frame::new(ctx.data(), ctx.data_end());
    stats::count(
        &frame,
        ctx.ingress_ifindex() as u32,
        Direction::Ingress,
        frame.len() as u64,
    );
    xdp_action::XDP_PASS
}

#[classifier]
pub fn pc_egress(ctx: TcContext) -> i32 {
    // Headers of a non-linear skb may sit outside the directly readable part;
    // pull just what the parser can read so it sees them.
    let linear = ctx.data_end().saturating_sub(ctx.data());
    let want = core::cmp::min(ctx.len() as usize, frame::HEADER_WINDOW);
    if linear < want {
        let _ = ctx.pull_data(want as u32);
    }
    let frame = Frame::new(ctx.data(), ctx.data_end());
    stats::count(
        &frame,
        skb_ifindex(&ctx),
        Direction::Egress,
        ctx.len() as u64,
    );
    TC_ACT_OK
}

/// A bare XDP_PASS: the baseline the benchmarks divide by.
#[xdp]
pub fn pc_xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// A bare TC_ACT_OK: the egress baseline.
#[classifier]
pub fn pc_tc_pass(_ctx: TcContext) -> i32 {
    TC_ACT_OK
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// The egress device's index (aya-ebpf has no accessor for it).
#[inline(always)]
fn skb_ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: `skb` is the context pointer the kernel handed this program.
    unsafe { (*ctx.skb.skb).ifindex }
}
