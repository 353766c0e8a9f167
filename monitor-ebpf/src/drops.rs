//! Drops by the host's own stack, at the `skb:kfree_skb` raw tracepoint:
//! a packet of a required flow that this host's netfilter ruleset (or its
//! stack: no socket, no route...) dropped makes that flow blocked. Locally
//! made packets dropped on output never reach the TC hook; this is where
//! they are seen.
//!
//! No BTF, no CO-RE: the tracepoint's arguments are positional (skb,
//! location, reason, and on 6.11+ rx_sk after them), and the kernel struct
//! offsets and reason values come from userspace, which read them from the
//! running kernel's BTF (`SkbLayout`, `PC_DROPWHY`). Until it writes them
//! the program returns at its first test.
//!
//! The common case, a drop with a reason nobody watches, costs one compare
//! and one table load. Only then are kernel structs read.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel, generated},
    programs::RawTracePointContext,
};
use monitor_common::{
    Packet,
    classify::{self, Verdict},
    drop::{DROP_REASON_SLOTS, DropCause, LocalDrop, SkbLayout, drop_attempt},
    flow::{FlowKey, Kstat},
    handshake::OUTCOME_PENDING,
    packet::parse_ip,
    policy::Config,
    stats::{IFINDEX_LIMIT, PacketDir},
};

use crate::{
    flows::KernelFlows,
    globals::{PC_CONFIG, PC_DROPWHY, PC_IFSLOT, PC_SKBLAYOUT},
    maps::{PC_DROPBUF, PC_DROPS, PC_HANDSHAKES, PC_WATCH, WINDOW},
    opaque,
    policy::KernelPolicy,
    stats::count_kstat,
};

/// The tracepoint's arguments: `TP_PROTO(struct sk_buff *skb, void
/// *location, enum skb_drop_reason reason, ...)` from 5.17 on. A program
/// that reads `reason` cannot attach to an older kernel's two-argument
/// tracepoint (the kernel checks the context size): userspace then says
/// so and carries on.
const ARG_SKB: usize = 0;
const ARG_REASON: usize = 2;

#[inline(always)]
pub fn observe(ctx: &RawTracePointContext) {
    let _ = try_observe(ctx);
}

/// The reason filter, then three calls (see [`judge`] for why calls):
/// where the packet was and its headers ([`locate`]), what it is
/// ([`judge`]), and its record ([`apply`]).
#[inline(always)]
fn try_observe(ctx: &RawTracePointContext) -> Option<()> {
    let reason: u64 = ctx.arg(ARG_REASON);
    if reason >= u64::from(DROP_REASON_SLOTS) {
        return None;
    }
    let cause = PC_DROPWHY.at(reason as u32);
    if cause == 0 {
        return None;
    }
    let skb: u64 = ctx.arg(ARG_SKB);
    let located = locate(skb);
    if located == 0 {
        return None;
    }
    let ifindex = (located & 0xffff) as u32;
    let ingress = ((located >> 16) & 1) as u32;
    let len = ((located >> 24) & 0xff) as usize;
    let judged = judge(len, ingress, u32::from(cause));
    if judged != 0 {
        apply(judged, ingress, u32::from(cause), reason as u32, ifindex);
    }
    Some(())
}

/// What [`locate`] found, in one register: 0 for not ours, else this bit,
/// the ifindex in bits 0-15 (below `IFINDEX_LIMIT`), 1 << 16 for a
/// received packet, and the header bytes copied in bits 24-31.
const LOCATED: u64 = 1 << 40;

/// Where the dropped skb was (direction, monitored interface of this
/// network namespace) and its headers copied into the scratch value.
#[inline(never)]
fn locate(skb: u64) -> u64 {
    try_locate(skb).unwrap_or(0)
}

#[inline(always)]
fn try_locate(skb: u64) -> Option<u64> {
    let layout = PC_SKBLAYOUT.get(0);
    if layout.enabled == 0 {
        return None;
    }
    // Received packets carry their input device's index; packets this
    // host made have none.
    let iif: u32 = kread(skb + u64::from(layout.skb_iif))?;
    let dir = if iif != 0 {
        PacketDir::Ingress
    } else {
        PacketDir::Egress
    };
    // The device: the skb's, or before the output path sets it (the
    // LOCAL_OUT hook, where an output chain drops) its route's.
    let mut dev: u64 = kread(skb + u64::from(layout.skb_dev))?;
    if dev == 0 {
        let dst: u64 = kread::<u64>(skb + u64::from(layout.skb_refdst))? & !1;
        if dst == 0 {
            return None;
        }
        dev = kread(dst + u64::from(layout.dst_dev))?;
        if dev == 0 {
            return None;
        }
    }
    // The tracepoint fires for every network namespace: only this
    // daemon's, and only its monitored interfaces.
    let net: u64 = kread(dev + u64::from(layout.dev_net))?;
    let inum: u32 = kread(net + u64::from(layout.net_inum))?;
    if inum != layout.netns {
        return None;
    }
    let ifindex: u32 = kread(dev + u64::from(layout.dev_ifindex))?;
    if ifindex >= IFINDEX_LIMIT || PC_IFSLOT.at(ifindex) == 0 {
        return None;
    }
    if !PC_CONFIG.at(0).has(Config::CLASSIFY) {
        return None;
    }
    let Some(len) = Window::read(skb, layout) else {
        count_kstat(Kstat::LocalDropsUnparsed as u32);
        return None;
    };
    let ingress = u64::from(matches!(dir, PacketDir::Ingress));
    Some(LOCATED | (len as u64) << 24 | ingress << 16 | u64::from(ifindex))
}

/// What [`judge`] found, in one register: 0 for nothing to record, else
/// this bit, the rule in the low 16 bits and [`JUDGED_ANSWER`] for the
/// answer of an attempt (SYN-ACK, UDP response).
const JUDGED: u64 = 1 << 32;
const JUDGED_ANSWER: u64 = 1 << 16;

/// The dropped packet's headers (`len` bytes of `PC_DROPBUF`) parsed and
/// classified; for a required flow's opening packet or answer, its attempt
/// key is left in the scratch value for [`apply`].
///
/// `judge` and `apply` are functions of their own (BPF-to-BPF calls, each
/// with its own frame): the verifier allows 512 bytes of stack over a call
/// chain, and the parser's and classifier's frames beside the attempt key,
/// the record and the struct reads' temporaries do not fit one frame
/// (LLVM reuses few stack slots). Called one after the other from the
/// entry, the deepest chain is the entry plus one of them. Scalars only,
/// within the five argument registers.
#[inline(never)]
fn judge(len: usize, ingress: u32, cause: u32) -> u64 {
    let Some(scratch) = PC_DROPBUF.get_ptr_mut(0) else {
        return 0;
    };
    let window = Window {
        // SAFETY: this CPU's scratch value.
        buf: unsafe { (*scratch).window.as_ptr() },
        len: core::cmp::min(len, WINDOW),
    };
    let Ok(parsed) = parse_ip(&window, 0) else {
        count_kstat(Kstat::LocalDropsUnparsed as u32);
        return 0;
    };
    let dir = if ingress != 0 {
        PacketDir::Ingress
    } else {
        PacketDir::Egress
    };
    let policy = KernelPolicy {
        config: PC_CONFIG.at(0),
    };
    // Read as the XDP/TC programs read it: a packet the dynamic range would
    // allow may be an unexpected connection's, never a required flow's.
    let verdict = classify::classify(&policy, &KernelFlows, &parsed, dir);
    let firewall = cause == DropCause::NetfilterDrop as u32;
    let Some((key, rule)) = drop_attempt(&parsed, &verdict, dir, firewall) else {
        count_kstat(Kstat::LocalDropsOther as u32);
        return 0;
    };
    // SAFETY: this CPU's scratch value; nothing else runs on this CPU
    // until the program returns.
    unsafe { (*scratch).key = key };
    let answer = matches!(verdict, Verdict::Allowed { reply: true, .. });
    JUDGED | if answer { JUDGED_ANSWER } else { 0 } | u64::from(rule)
}

/// Records the drop [`judge`] found (its key in the scratch value).
#[inline(never)]
fn apply(judged: u64, ingress: u32, cause: u32, reason: u32, ifindex: u32) {
    let Some(scratch) = PC_DROPBUF.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's scratch value. Map helpers take its fields as
    // keys and values directly (a map value is a valid key pointer), so
    // neither is copied to the stack.
    let (key, d) = unsafe { (&(*scratch).key, &mut (*scratch).drop) };
    // An attempt the monitor's own hooks saw: the drop answers it, so it
    // is reported from here rather than as a timeout. One a reset or ICMP
    // error from this host already refused (a `reject` rule answers, then
    // drops) keeps that refusal as its reason.
    if let Some(h) = PC_HANDSHAKES.get_ptr(key) {
        // SAFETY: a map value, read while this program runs.
        if unsafe { (*h).outcome } != OUTCOME_PENDING {
            count_kstat(Kstat::LocalDropsOther as u32);
            return;
        }
        let _ = PC_HANDSHAKES.remove(key);
    }
    if ingress != 0 && judged & JUDGED_ANSWER != 0 {
        unwatch_answer(&key.flow);
    }
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    *d = LocalDrop {
        first_ns: now,
        last_ns: now,
        drops: 1,
        ifindex,
        initiator_port: key.initiator_port,
        rule: judged as u16,
        set: u8::from(PC_CONFIG.at(0).has(Config::SET_B)),
        cause: cause as u8,
        kernel_reason: reason as u16,
        _pad: 0,
    };
    record(&key.flow, d);
}

/// An answer the XDP hook saw arrive marked its blocked flow as working
/// again (`PC_WATCH`); the input chain then dropped it, so it did not
/// work. Clear the mark (0: still blocked) for userspace not to report a
/// recovery.
#[inline(always)]
fn unwatch_answer(flow: &FlowKey) {
    if let Some(since) = PC_WATCH.get_ptr_mut(flow) {
        // SAFETY: map value; userspace only reads it or deletes the entry.
        unsafe { *since = 0 };
    }
}

/// Adds the drop `d` (a first drop's record) to its flow's record,
/// creating it if needed.
#[inline(always)]
fn record(flow: &FlowKey, d: &LocalDrop) {
    if bump(flow, d) {
        count_kstat(Kstat::LocalDrops as u32);
        return;
    }
    if PC_DROPS.insert(flow, d, u64::from(BPF_NOEXIST)).is_ok()
        // Another CPU inserted it in the meantime.
        || bump(flow, d)
    {
        count_kstat(Kstat::LocalDrops as u32);
    } else {
        count_kstat(Kstat::LocalDropsLost as u32);
    }
}

/// One more drop (`new`'s) on an existing record; false when the flow
/// has none.
#[inline(always)]
fn bump(flow: &FlowKey, new: &LocalDrop) -> bool {
    let Some(d) = PC_DROPS.get_ptr_mut(flow) else {
        return false;
    };
    // SAFETY: map value. Concurrent drops on other CPUs can at worst lose
    // a count (no atomics: this is the rare path, and a count off by one
    // in a flood changes no verdict).
    unsafe {
        (*d).drops += 1;
        (*d).last_ns = new.last_ns;
        (*d).initiator_port = new.initiator_port;
        (*d).cause = new.cause;
        (*d).kernel_reason = new.kernel_reason;
    }
    true
}

/// Reads a `T` from kernel memory.
#[inline(always)]
fn kread<T>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { bpf_probe_read_kernel(addr as *const T) }.ok()
}

/// The first bytes of a dropped packet from its IP header on, copied out of
/// the skb's linear data into a per-CPU buffer. Received and locally made
/// packets have their IP and transport headers there when they reach the
/// netfilter hooks (the stack pulls them before judging them).
struct Window {
    buf: *const u8,
    len: usize,
}

impl Window {
    /// Copies the headers into this CPU's `PC_DROPBUF`; returns how many
    /// bytes it holds.
    #[inline(always)]
    fn read(skb: u64, layout: &SkbLayout) -> Option<usize> {
        let head: u64 = kread(skb + u64::from(layout.skb_head))?;
        let network: u16 = kread(skb + u64::from(layout.skb_network_header))?;
        let tail: u32 = kread(skb + u64::from(layout.skb_tail))?;
        let avail = tail.checked_sub(u32::from(network))?;
        if avail == 0 || head == 0 {
            return None;
        }
        let n = core::cmp::min(avail as usize, WINDOW);
        // The helper's size must be a bounded, non-zero register: masked
        // on a value LLVM cannot see through, or it drops the mask as
        // redundant after the `min` and the verifier sees no bound.
        let size = (opaque::hide(n - 1) & (WINDOW - 1)) + 1;
        let scratch = PC_DROPBUF.get_ptr_mut(0)?;
        // SAFETY: this CPU's scratch value, whose window is DROPBUF_BYTES
        // long, and size <= WINDOW.
        let ret = unsafe {
            generated::bpf_probe_read_kernel(
                (*scratch).window.as_mut_ptr().cast(),
                size as u32,
                (head + u64::from(network)) as *const core::ffi::c_void,
            )
        };
        if ret != 0 {
            return None;
        }
        Some(size)
    }

    /// The byte at `offset`'s address, the offset masked into the window
    /// on the register that forms the address (see `opaque::index`).
    #[inline(always)]
    fn at(&self, offset: usize) -> *const u8 {
        // SAFETY: masked below WINDOW, inside the DROPBUF_BYTES value.
        unsafe { self.buf.add(opaque::index::<WINDOW>(offset)) }
    }
}

impl Packet for Window {
    type Span = usize;

    #[inline(always)]
    fn load<T: Copy>(&self, offset: usize) -> Option<T> {
        if offset + core::mem::size_of::<T>() > self.len {
            return None;
        }
        // SAFETY: in the window; plain data read unaligned.
        Some(unsafe { self.at(offset).cast::<T>().read_unaligned() })
    }

    #[inline(always)]
    fn span(&self, offset: usize, len: usize) -> Option<usize> {
        if offset + len > self.len {
            return None;
        }
        Some(opaque::index::<WINDOW>(offset))
    }

    #[inline(always)]
    fn field<T: Copy + Default>(&self, span: usize, k: usize) -> T {
        // SAFETY: span < WINDOW and k + size_of::<T>() <= 64 for every
        // header field the parser reads, so inside DROPBUF_BYTES.
        unsafe { self.buf.add(span + k).cast::<T>().read_unaligned() }
    }
}
