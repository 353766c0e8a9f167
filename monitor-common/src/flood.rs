//! Floods: new unexpected flows opened by strangers (peers with no role in
//! the inventory) beyond a per-CPU budget. Each new flow costs an LRU
//! insert and a ring-buffer event; under a spoofed flood (every packet a
//! new source) that churn is what ate the host and evicted the one genuine
//! connection that mattered. Past the budget, the kernel keeps no per-flow
//! state: the packets go to one aggregate per (direction, protocol, service
//! port, reason), which userspace reports as a `flood` record.
//!
//! Who never competes for the budget: peers with a role, and connections
//! the host opened itself (a spoofer cannot make the host open one).
//! Strangers' SYNs and the rest of strangers' inbound traffic have a
//! budget each: a SYN flood cannot starve the packets of a connection whose
//! handshake completed, so a genuine stranger's connection made during a
//! SYN flood is still reported, from its first packet after the handshake.
//! The host's own answers to strangers' untracked flows never start one:
//! they are counted with the flood they answer.

/// New flows each CPU admits per second per budget class, once its burst is
/// spent: far below what the ring buffer and the daemon absorb, far above
/// what a host's genuine unexpected traffic opens.
pub const BUDGET_PER_SEC: u64 = 200;
/// New flows a CPU admits at once, after a quiet time.
pub const BUDGET_BURST: u64 = 1000;
/// Nanoseconds per admitted flow at the steady rate.
pub const NS_PER_TOKEN: u64 = 1_000_000_000 / BUDGET_PER_SEC;

/// Budget classes, the indexes of `PC_BUDGET`.
pub const CLASS_SYN: u32 = 0;
pub const CLASS_OTHER: u32 = 1;
pub const BUDGET_CLASSES: u32 = 2;

/// Aggregates `PC_FLOODS` holds; past them, floods on further ports are
/// counted under the catch-all key (service port 0).
pub const MAX_FLOOD_KEYS: u32 = 1024;

/// HyperLogLog registers per aggregate: a distinct-source estimate within
/// about 13% (1.04 / sqrt(64)), in 64 bytes, mergeable across CPUs by
/// taking each register's maximum.
pub const HLL_REGISTERS: usize = 64;

/// A per-CPU token bucket (`PC_BUDGET`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Budget {
    pub tokens: u64,
    /// When the tokens were last topped up (coarse monotonic clock).
    pub refilled_ns: u64,
}

impl Budget {
    /// Takes one token at `now`, topping the bucket up first; false when
    /// none is left (the flow is over budget).
    #[inline(always)]
    pub fn take(&mut self, now: u64) -> bool {
        let earned = now.saturating_sub(self.refilled_ns) / NS_PER_TOKEN;
        if earned != 0 {
            self.tokens = core::cmp::min(BUDGET_BURST, self.tokens.saturating_add(earned));
            self.refilled_ns = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// Whether [`Budget::take`] at `now` would refuse, without taking: a
    /// stranger's SYN is tested before any per-flow lookup, and most SYNs
    /// of a spoofed flood need no more than this answer.
    #[inline(always)]
    pub fn spent(&self, now: u64) -> bool {
        self.tokens == 0 && now.saturating_sub(self.refilled_ns) < NS_PER_TOKEN
    }
}

/// What a flood is aggregated by: the service, not the sources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub struct FloodKey {
    /// A [`crate::policy::ConnDir`] as a word, as in `FlowKey`.
    pub direction: u32,
    pub service_port: u16,
    pub proto: u8,
    /// A [`crate::classify::Reason`] as a byte.
    pub reason: u8,
}

/// One aggregate's counters (per CPU; userspace merges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FloodStats {
    /// Packets over budget (each one a flow the kernel did not track).
    pub packets: u64,
    pub bytes: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// The first and the latest initiator seen: a sample for the record.
    pub first_source: [u8; 16],
    pub last_source: [u8; 16],
    /// Address family of the samples ([`crate::packet::Family`] as a byte).
    pub family: u8,
    pub _pad: [u8; 7],
    pub registers: [u8; HLL_REGISTERS],
}

impl Default for FloodStats {
    fn default() -> Self {
        Self {
            packets: 0,
            bytes: 0,
            first_ns: 0,
            last_ns: 0,
            first_source: [0; 16],
            last_source: [0; 16],
            family: 0,
            _pad: [0; 7],
            registers: [0; HLL_REGISTERS],
        }
    }
}

/// A 64-bit hash of an address, for the distinct-source estimate: the two
/// words mixed by multiplication (the top bits spread every input bit).
#[inline(always)]
pub fn source_hash(addr: &[u8; 16]) -> u64 {
    // SAFETY: same size; every bit pattern is valid.
    let [a, b] = unsafe { core::mem::transmute::<[u8; 16], [u64; 2]>(*addr) };
    let h = (a ^ b.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 31)
}

/// The HyperLogLog register and rank of a hash: the low six bits choose the
/// register, the position of the lowest set bit of the rest is the rank.
/// Found by halving, not `trailing_zeros`: BPF has no such instruction and
/// LLVM would expand it with a table lookup.
#[inline(always)]
pub fn register_of(hash: u64) -> (usize, u8) {
    let index = (hash & (HLL_REGISTERS as u64 - 1)) as usize;
    let mut x = hash >> 6;
    // 58 bits remain; an all-zero rest ranks past them all.
    if x == 0 {
        return (index, 59);
    }
    let mut rank = 1u8;
    if x & 0xFFFF_FFFF == 0 {
        rank += 32;
        x >>= 32;
    }
    if x & 0xFFFF == 0 {
        rank += 16;
        x >>= 16;
    }
    if x & 0xFF == 0 {
        rank += 8;
        x >>= 8;
    }
    if x & 0xF == 0 {
        rank += 4;
        x >>= 4;
    }
    if x & 0x3 == 0 {
        rank += 2;
        x >>= 2;
    }
    if x & 0x1 == 0 {
        rank += 1;
    }
    (index, rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_admits_its_burst_then_its_rate() {
        let mut b = Budget::default();
        let t0 = 5_000_000_000;
        let admitted = (0..5000).filter(|_| b.take(t0)).count() as u64;
        assert_eq!(admitted, BUDGET_BURST);
        // A tenth of a second later: a tenth of a second's worth.
        let t1 = t0 + 100_000_000;
        let admitted = (0..5000).filter(|_| b.take(t1)).count() as u64;
        assert_eq!(admitted, BUDGET_PER_SEC / 10);
        // A long quiet time refills no more than the burst.
        let t2 = t1 + 3600 * 1_000_000_000;
        let admitted = (0..5000).filter(|_| b.take(t2)).count() as u64;
        assert_eq!(admitted, BUDGET_BURST);
    }

    #[test]
    fn a_budget_is_spent_exactly_when_take_would_refuse() {
        let mut b = Budget::default();
        let t0 = 5_000_000_000;
        for step in 0..3 * BUDGET_BURST {
            let now = t0 + step * (NS_PER_TOKEN / 7);
            let spent = b.spent(now);
            assert_eq!(spent, !b.take(now), "step {step}");
        }
    }

    #[test]
    fn the_rank_is_the_lowest_set_bit_above_the_register_bits() {
        for bit in 6..64 {
            let (index, rank) = register_of((1u64 << bit) | 5);
            assert_eq!((index, u32::from(rank)), (5, bit - 5), "bit {bit}");
        }
        assert_eq!(register_of(63), (63, 59));
    }
}

const _: () = assert!(core::mem::size_of::<FloodKey>() == 8);
const _: () = assert!(core::mem::size_of::<FloodStats>() == 72 + HLL_REGISTERS);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), explicit padding, plain integers and byte arrays.
    unsafe impl aya::Pod for super::Budget {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FloodKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FloodStats {}
}
