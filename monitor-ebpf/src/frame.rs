//! The one bounds-checked view of packet memory. Every header read in the
//! kernel programs goes through `Frame::load`, which is what the verifier needs
//! to see before any dereference.

use monitor_common::{Packet, flow::EVENT_HEADER_BYTES};

use crate::opaque;

/// Bytes of headers the parser may need: Ethernet, two VLAN tags, IPv6 with
/// extension headers, and an L4 header fit in this.
pub const HEADER_WINDOW: usize = 128;

pub struct Frame {
    start: usize,
    end: usize,
}

impl Frame {
    #[inline(always)]
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        // The kernel keeps data_end >= data; a saturating subtraction would
        // only add a branch to every packet.
        self.end.wrapping_sub(self.start)
    }
}

impl Packet for Frame {
    /// The span's address in the packet.
    type Span = usize;

    #[inline(always)]
    fn load<T: Copy>(&self, offset: usize) -> Option<T> {
        if self.start + offset + core::mem::size_of::<T>() > self.end {
            return None;
        }
        // SAFETY: just checked.
        Some(unsafe { read(self.start + offset) })
    }

    /// The address is hidden from LLVM before the check, so the fields are
    /// read at constant offsets from the very register the check proved
    /// (the verifier tracks ranges per pointer). Otherwise LLVM may rebuild
    /// a field's address from another pointer it holds, and the verifier
    /// rejects the read.
    #[inline(always)]
    fn span(&self, offset: usize, len: usize) -> Option<usize> {
        let addr = opaque::hide(self.start + offset);
        if addr + len > self.end {
            return None;
        }
        Some(addr)
    }

    /// No check of its own: the verifier saw the span checked, so a second
    /// comparison would only cost instructions (and the spilled pointers
    /// they keep alive).
    #[inline(always)]
    fn field<T: Copy + Default>(&self, span: usize, k: usize) -> T {
        // SAFETY: the caller keeps `k` inside the span; were it not, the
        // verifier would refuse the program, never read out of bounds.
        unsafe { read(span + k) }
    }
}

/// # Safety
/// `[addr, addr + size_of::<T>())` must be inside the packet, and T plain
/// data of that size.
#[inline(always)]
unsafe fn read<T: Copy>(addr: usize) -> T {
    // SAFETY: per the function's contract; the loads below read exactly
    // `size_of::<T>()` bytes.
    unsafe {
        match core::mem::size_of::<T>() {
            2 => core::mem::transmute_copy(&load16(addr)),
            4 => core::mem::transmute_copy(&load32(addr)),
            8 => core::mem::transmute_copy(&load64(addr)),
            _ => (addr as *const T).read_unaligned(),
        }
    }
}

// One instruction per header field. Packet headers sit at any alignment
// (the IP header at offset 14), so Rust can only express these reads as
// unaligned, which LLVM's BPF backend splits into byte loads and shifts:
// a dozen instructions per field on the hot path. The kernel accepts
// misaligned packet loads on every architecture with efficient unaligned
// access (x86-64, arm64), so the programs say the load directly.

/// # Safety
/// `addr` must point at two readable packet bytes, bounds-checked against
/// `data_end` so the verifier accepts the access.
#[inline(always)]
unsafe fn load16(addr: usize) -> u16 {
    let v: u64;
    // SAFETY: per the function's contract.
    unsafe {
        core::arch::asm!("{0} = *(u16 *)({1} + 0)", out(reg) v, in(reg) addr, options(pure, readonly, nostack))
    };
    v as u16
}

/// # Safety
/// As [`load16`], for four bytes.
#[inline(always)]
unsafe fn load32(addr: usize) -> u32 {
    let v: u64;
    // SAFETY: per the function's contract.
    unsafe {
        core::arch::asm!("{0} = *(u32 *)({1} + 0)", out(reg) v, in(reg) addr, options(pure, readonly, nostack))
    };
    v as u32
}

/// # Safety
/// As [`load16`], for eight bytes.
#[inline(always)]
unsafe fn load64(addr: usize) -> u64 {
    let v: u64;
    // SAFETY: per the function's contract.
    unsafe {
        core::arch::asm!("{0} = *(u64 *)({1} + 0)", out(reg) v, in(reg) addr, options(pure, readonly, nostack))
    };
    v
}

/// How many header bytes to copy out of a `len`-byte packet, in a form the
/// verifier can prove is within [1, EVENT_HEADER_BYTES]; `None` for an
/// empty packet. The volatile read stops LLVM from turning the range check
/// into a packet-pointer comparison the verifier cannot connect to `len`.
#[inline(always)]
pub fn copy_len(len: usize) -> Option<u32> {
    if len == 0 {
        return None;
    }
    let n = core::cmp::min(len, EVENT_HEADER_BYTES) as u32;
    // SAFETY: reading a local.
    let n = unsafe { core::ptr::read_volatile(&n) };
    Some((n.wrapping_sub(1) & (EVENT_HEADER_BYTES as u32 - 1)) + 1)
}

/// Copies the frame's first bytes (up to `dst.len()`) into `dst`: 8-byte
/// words while they fit, then the last bytes one by one. Each load is read
/// from the very span the verifier saw checked against the frame's end (see
/// [`Frame::span`]); the loops have constant bounds, and LLVM unrolls them
/// into constant offsets. Returns how many bytes were copied.
const _: () = assert!(EVENT_HEADER_BYTES.is_multiple_of(8));

#[inline(always)]
pub fn copy_headers(frame: &Frame, dst: &mut [u8; EVENT_HEADER_BYTES]) -> usize {
    let mut n = 0;
    while n < EVENT_HEADER_BYTES {
        let Some(span) = frame.span(n, 8) else {
            break;
        };
        let word: u64 = frame.field(span, 0);
        // SAFETY: n + 8 <= EVENT_HEADER_BYTES (a multiple of 8).
        unsafe { dst.as_mut_ptr().add(n).cast::<u64>().write_unaligned(word) };
        n += 8;
    }
    let words = n;
    while n < EVENT_HEADER_BYTES && n < words + 7 {
        let Some(span) = frame.span(n, 1) else {
            break;
        };
        let byte: u8 = frame.field(span, 0);
        // SAFETY: n < EVENT_HEADER_BYTES.
        unsafe { *dst.as_mut_ptr().add(n) = byte };
        n += 1;
    }
    n
}
