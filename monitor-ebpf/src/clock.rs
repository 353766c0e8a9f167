//! The coarse clock, read once per timer tick on each CPU. The coarse clock
//! only moves on a tick, as jiffies do, so while jiffies stand still the
//! time read at the tick is still what the clock would say. Reading jiffies
//! is one load (the verifier inlines the helper); the clock helper is a
//! call, and on the over-budget path of a spoofed flood, which reads the
//! clock for every packet, it was a tenth of the cost.

use aya_ebpf::helpers::{bpf_ktime_get_coarse_ns, generated::bpf_jiffies64};

use crate::maps::PC_CLOCK;

/// The coarse monotonic clock, in nanoseconds.
#[inline(always)]
pub fn coarse_ns() -> u64 {
    // SAFETY: helper without arguments.
    let jiffies = unsafe { bpf_jiffies64() };
    let Some(tick) = PC_CLOCK.get_ptr_mut(0) else {
        // SAFETY: helper without arguments.
        return unsafe { bpf_ktime_get_coarse_ns() };
    };
    // SAFETY: this CPU's entry: nobody else writes it while we run. A
    // zeroed entry is never current: the clock is never 0 once booted.
    unsafe {
        if (*tick).jiffies != jiffies || (*tick).coarse_ns == 0 {
            (*tick).coarse_ns = bpf_ktime_get_coarse_ns();
            (*tick).jiffies = jiffies;
        }
        (*tick).coarse_ns
    }
}
