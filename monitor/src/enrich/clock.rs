//! Kernel timestamps (CLOCK_MONOTONIC, bpf_ktime_get_ns) to wall-clock time.

use std::time::{Duration, SystemTime};

/// The wall-clock time of monotonic zero, measured once at start. Good to
/// the microsecond, and immune to a wall-clock step during the run skewing
/// ordering between events.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    boot: SystemTime,
}

impl Clock {
    pub fn new() -> Self {
        let mono = monotonic_ns();
        Self {
            boot: SystemTime::now() - Duration::from_nanos(mono),
        }
    }

    /// A clock whose zero is the Unix epoch: replay stamps flows with
    /// capture times (nanoseconds since the epoch), which this maps to
    /// themselves.
    pub fn epoch() -> Self {
        Self {
            boot: std::time::UNIX_EPOCH,
        }
    }

    pub fn wall(&self, monotonic_ns: u64) -> SystemTime {
        self.boot + Duration::from_nanos(monotonic_ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
