//! The array tables as the kernel's global-data sections hold them: both
//! policy sets, one after the other. A section is written whole, so its
//! content is rendered from the tables of both sets; rendering the live set
//! again gives the bytes it already holds, which is what lets a reload write
//! the idle half while packets read the live one.

use monitor_common::policy::{
    MAX_RULESETS, POLICY_SETS, PORT_TABLE_ENTRIES, RuleSet, V4_KNOWN_WORDS, V4_L1_ENTRIES,
    V4_L2_BLOCKS, V4_L3_BLOCKS, V4_MASKS,
};

use super::KernelTables;

/// Entries of each section (both sets), as the kernel declares them.
pub const PORTS_LEN: usize = (POLICY_SETS * PORT_TABLE_ENTRIES) as usize;
pub const RULESETS_LEN: usize = (POLICY_SETS * MAX_RULESETS) as usize;
pub const V4L1_LEN: usize = (POLICY_SETS * V4_L1_ENTRIES) as usize;
pub const V4L2_LEN: usize = (POLICY_SETS * V4_L2_BLOCKS * 256) as usize;
pub const V4L3_LEN: usize = (POLICY_SETS * V4_L3_BLOCKS * 256) as usize;
pub const MASKS_LEN: usize = (POLICY_SETS * V4_MASKS) as usize;
pub const V4KNOWN_LEN: usize = (POLICY_SETS * V4_KNOWN_WORDS) as usize;

/// The content of every policy section.
pub struct Sections {
    pub ports: Vec<u16>,
    pub rule_sets: Vec<RuleSet>,
    pub v4l1: Vec<u32>,
    pub v4l2: Vec<u32>,
    pub v4l3: Vec<u32>,
    pub masks: Vec<u64>,
    pub v4known: Vec<u64>,
}

impl Sections {
    /// Set A's tables first, then set B's; an empty set is all zeros, which
    /// the kernel reads as "no rule" and "no role".
    pub fn render(sets: [Option<&KernelTables>; 2]) -> Self {
        let mut s = Sections {
            ports: vec![0; PORTS_LEN],
            rule_sets: vec![RuleSet::default(); RULESETS_LEN],
            v4l1: vec![0; V4L1_LEN],
            v4l2: vec![0; V4L2_LEN],
            v4l3: vec![0; V4L3_LEN],
            masks: vec![0; MASKS_LEN],
            v4known: vec![0; V4KNOWN_LEN],
        };
        for (set, tables) in sets.into_iter().enumerate() {
            if let Some(t) = tables {
                s.fill(set, t);
            }
        }
        s
    }

    /// The builder keeps every table within these bounds (it falls back to
    /// the hash and LPM maps when the trie would not fit), so the slices
    /// below are in range.
    fn fill(&mut self, set: usize, t: &KernelTables) {
        let ports =
            &mut self.ports[set * PORT_TABLE_ENTRIES as usize..][..PORT_TABLE_ENTRIES as usize];
        for (&index, &id) in &t.port_classes {
            ports[index as usize] = id;
        }
        self.rule_sets[set * MAX_RULESETS as usize..][..t.rule_sets.len()]
            .copy_from_slice(&t.rule_sets);
        let Some(trie) = &t.v4 else { return };
        self.v4l1[set * V4_L1_ENTRIES as usize..][..trie.l1.len()].copy_from_slice(&trie.l1);
        for (level, blocks, per_set) in [
            (&mut self.v4l2, &trie.l2, V4_L2_BLOCKS as usize),
            (&mut self.v4l3, &trie.l3, V4_L3_BLOCKS as usize),
        ] {
            for (b, block) in blocks.iter().enumerate() {
                level[(set * per_set + b) * 256..][..256].copy_from_slice(block);
            }
        }
        self.masks[set * V4_MASKS as usize..][..trie.masks.len()].copy_from_slice(&trie.masks);
        self.v4known[set * V4_KNOWN_WORDS as usize..][..trie.known.len()]
            .copy_from_slice(&trie.known);
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::policy::{PORT_TABLE_ENTRIES, V4Trie, v4_known_peer, v4_roles};

    use super::*;
    use crate::kernel_tables::build::tests::thoughtspot;

    /// One set of the rendered sections, read the way the kernel reads them.
    struct SetView<'a>(&'a Sections, usize);

    impl V4Trie for SetView<'_> {
        fn l1(&self, i: u32) -> u32 {
            self.0.v4l1[self.1 * V4_L1_ENTRIES as usize + i as usize]
        }
        fn l2(&self, i: u32) -> u32 {
            self.0.v4l2[self.1 * (V4_L2_BLOCKS * 256) as usize + i as usize]
        }
        fn l3(&self, i: u32) -> u32 {
            self.0.v4l3[self.1 * (V4_L3_BLOCKS * 256) as usize + i as usize]
        }
        fn mask(&self, i: u32) -> u64 {
            self.0.masks[self.1 * V4_MASKS as usize + i as usize]
        }
        fn known(&self, i: u32) -> u64 {
            self.0.v4known[self.1 * V4_KNOWN_WORDS as usize + i as usize]
        }
    }

    fn assert_set_holds(s: &Sections, set: usize, t: &KernelTables) {
        let view = SetView(s, set);
        for index in 0..PORT_TABLE_ENTRIES {
            let id = s.ports[set * PORT_TABLE_ENTRIES as usize + index as usize];
            assert_eq!(id, t.port_classes.get(&index).copied().unwrap_or(0));
            if id != 0 {
                let rs = &s.rule_sets[set * MAX_RULESETS as usize + usize::from(id)];
                assert_eq!(rs, &t.rule_sets[usize::from(id)]);
            }
        }
        let trie = t.v4.as_ref().expect("these inventories fit the trie");
        for addr in [0xc000_0201u32, 0xc000_02ff, 0xc633_6407, 0xcb00_7109, 0] {
            assert_eq!(v4_roles(&view, addr), v4_roles(trie, addr), "{addr:#x}");
            let known = v4_known_peer(trie, addr);
            assert_eq!(v4_known_peer(&view, addr), known, "{addr:#x}");
        }
    }

    /// A reload renders the live set again next to the new one: its half of
    /// every section must come out byte for byte as it was, or packets
    /// classified during the write would see a changing policy.
    #[test]
    fn each_set_lands_in_its_half_and_the_other_half_is_untouched() {
        let a = thoughtspot("nodes = [\"192.0.2.0/24\"]\nadmin = [\"198.51.100.7\"]\n");
        let b = thoughtspot("nodes = [\"192.0.2.1\", \"203.0.113.9\"]\n");
        let first = Sections::render([Some(&a), None]);
        let both = Sections::render([Some(&a), Some(&b)]);
        assert_set_holds(&both, 0, &a);
        assert_set_holds(&both, 1, &b);
        let half = |v: &[u32], n: usize| v[..n / 2].to_vec();
        assert_eq!(first.ports[..PORTS_LEN / 2], both.ports[..PORTS_LEN / 2]);
        assert_eq!(
            first.rule_sets[..RULESETS_LEN / 2],
            both.rule_sets[..RULESETS_LEN / 2]
        );
        assert_eq!(half(&first.v4l1, V4L1_LEN), half(&both.v4l1, V4L1_LEN));
        assert_eq!(half(&first.v4l2, V4L2_LEN), half(&both.v4l2, V4L2_LEN));
        assert_eq!(half(&first.v4l3, V4L3_LEN), half(&both.v4l3, V4L3_LEN));
        assert_eq!(first.masks[..MASKS_LEN / 2], both.masks[..MASKS_LEN / 2]);
        // And an empty set reads as no rule and no role.
        assert!(first.ports[PORTS_LEN / 2..].iter().all(|&p| p == 0));
    }
}
