//! The read-mostly tables (policy, interface slots, switches) as global
//! data: each is a `.bss.*` section, which the loader turns into a
//! one-element array map. A read is then a load at a constant address plus
//! an index, with no lookup call: a map lookup costs a stack round trip for
//! its key and, because LLVM sees a helper call, spills of every value live
//! across it. On the allowed path that was most of the cost.
//!
//! Userspace rewrites a section whole. It changes only the idle policy set
//! and rewrites the live one with the bytes it already holds, so a reader
//! never sees a live entry change (see `monitor::kernel_tables::write`).

use core::cell::UnsafeCell;

use monitor_common::{
    drop::{DROP_REASON_SLOTS, SkbLayout},
    policy::{
        Config, MAX_RULESETS, POLICY_SETS, PORT_TABLE_ENTRIES, RuleSet, V4_KNOWN_WORDS,
        V4_L1_ENTRIES, V4_L2_BLOCKS, V4_L3_BLOCKS, V4_MASKS,
    },
    stats::IFINDEX_LIMIT,
};

use crate::opaque;

/// A global array the programs only read.
#[repr(transparent)]
pub struct Table<T, const N: usize>(UnsafeCell<[T; N]>);

// SAFETY: the programs never write through a Table; userspace writes go
// through the map, outside Rust's model, like any map value.
unsafe impl<T, const N: usize> Sync for Table<T, N> {}

impl<T: Copy, const N: usize> Table<T, N> {
    const fn zeroed(zero: T) -> Self {
        Self(UnsafeCell::new([zero; N]))
    }

    /// Entry `i`. Every index the programs compute is in range (userspace
    /// builds the tables within these sizes); the verifier still needs a
    /// bound, and a mask gives it one without the compare and branch a
    /// check costs at each level of a walk. Hence power-of-two sizes.
    #[inline(always)]
    pub fn get(&self, i: u32) -> &T {
        let i = opaque::index::<N>(i as usize);
        // SAFETY: masked into bounds; the table lives as long as the program.
        // The base is hidden because the tables are zero-initialized and
        // never written by the programs: LLVM would fold every read to zero.
        unsafe { &*opaque::hide_ptr(self.0.get().cast::<T>()).add(i) }
    }

    /// Entry `i` by value.
    #[inline(always)]
    pub fn at(&self, i: u32) -> T {
        *self.get(i)
    }
}

const PORTS: usize = (POLICY_SETS * PORT_TABLE_ENTRIES) as usize;
const RSETS: usize = (POLICY_SETS * MAX_RULESETS) as usize;
const L1: usize = (POLICY_SETS * V4_L1_ENTRIES) as usize;
const L2: usize = (POLICY_SETS * V4_L2_BLOCKS * 256) as usize;
const L3: usize = (POLICY_SETS * V4_L3_BLOCKS * 256) as usize;
const MASKS: usize = (POLICY_SETS * V4_MASKS) as usize;
const KNOWN: usize = (POLICY_SETS * V4_KNOWN_WORDS) as usize;

const EMPTY_RULESET: RuleSet = RuleSet {
    len: 0,
    _pad: 0,
    rules: [monitor_common::policy::RuleRef {
        peer_roles: 0,
        rule: 0,
        flags: 0,
        _pad: 0,
    }; monitor_common::policy::RULESET_WIDTH],
};

// Section names are the map names userspace opens (`monitor_common::maps`).

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_config")]
pub static PC_CONFIG: Table<Config, 1> = Table::zeroed(Config::NONE);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_ifslot")]
pub static PC_IFSLOT: Table<u32, { IFINDEX_LIMIT as usize }> = Table::zeroed(0);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_ports")]
pub static PC_PORTCLASS: Table<u16, PORTS> = Table::zeroed(0);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_rsets")]
pub static PC_RULESETS: Table<RuleSet, RSETS> = Table::zeroed(EMPTY_RULESET);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_v4l1")]
pub static PC_V4L1: Table<u32, L1> = Table::zeroed(0);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_v4l2")]
pub static PC_V4L2: Table<u32, L2> = Table::zeroed(0);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_v4l3")]
pub static PC_V4L3: Table<u32, L3> = Table::zeroed(0);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_masks")]
pub static PC_MASKS: Table<u64, MASKS> = Table::zeroed(0);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_v4known")]
pub static PC_V4KNOWN: Table<u64, KNOWN> = Table::zeroed(0);

/// Kernel drop reason value → `DropCause` (0: not watched), see `drops`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_dropwhy")]
pub static PC_DROPWHY: Table<u8, { DROP_REASON_SLOTS as usize }> = Table::zeroed(0);

/// The kernel struct offsets the drop program reads by, see `drops`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.pc_skblay")]
pub static PC_SKBLAYOUT: Table<SkbLayout, 1> = Table::zeroed(SkbLayout::OFF);
