//! Values LLVM cannot see through, and indexes every verifier can bound.
//!
//! The verifier tracks bounds per register; LLVM reasons about values. The
//! two disagree in two ways this module settles: LLVM may fold a read of
//! zero-initialized global data to zero (userspace fills it), and it drops a
//! mask or check it can prove redundant, leaving the verifier to carry the
//! bound from an earlier compare. Kernels before 6.8 do not carry that bound
//! to a copy of the value spilled to the stack before the compare (6.8
//! assigns ids to spilled scalars), so a reload from there is unbounded and
//! 6.1 refuses the access.

/// The same value, with its origin hidden from LLVM.
#[inline(always)]
pub fn hide(mut v: usize) -> usize {
    // SAFETY: a register move to itself. It must be a real instruction: an
    // empty block can leave two line-info records on one instruction, which
    // the kernel refuses.
    unsafe {
        core::arch::asm!("{0} = {0}", inout(reg) v, options(pure, nomem, nostack, preserves_flags))
    };
    v
}

/// The same pointer, with its origin hidden from LLVM.
#[inline(always)]
pub fn hide_ptr<T>(p: *const T) -> *const T {
    core::ptr::with_exposed_provenance(hide(p.expose_provenance()))
}

/// `i` masked into `0..N` on the register that forms the address, so every
/// verifier sees the bound whatever LLVM knows or spilled. Callers pass
/// indexes already in range (userspace builds the tables within their
/// sizes); the mask only proves it, without a compare and branch.
#[inline(always)]
pub fn index<const N: usize>(i: usize) -> usize {
    const { assert!(N.is_power_of_two()) };
    hide(i) & (N - 1)
}
