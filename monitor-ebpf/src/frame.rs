//! The one bounds-checked view of packet memory. Every header read in the
//! kernel programs goes through `Frame::load`, which is what the verifier needs
//! to see before any dereference.

use monitor_common::{Packet, flow::EVENT_HEADER_BYTES};

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
        self.end.saturating_sub(self.start)
    }
}

impl Packet for Frame {
    #[inline(always)]
    fn load<T: Copy>(&self, offset: usize) -> Option<T> {
        let size = core::mem::size_of::<T>();
        if self.start + offset + size > self.end {
            return None;
        }
        let ptr = (self.start + offset) as *const T;
        // SAFETY: the check above keeps [ptr, ptr + size) inside the packet.
        Some(unsafe { ptr.read_unaligned() })
    }
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
