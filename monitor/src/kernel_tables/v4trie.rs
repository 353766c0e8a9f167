//! The IPv4 role trie (see `monitor_common::policy::v4_roles`): every
//! IPv4 prefix and host of the peer table painted into 16-8-8 arrays,
//! shortest prefixes first so that longer ones override them, exactly the
//! longest-prefix match the LPM trie gives.

use std::collections::HashMap;

use monitor_common::policy::{
    KNOWN_PEER, V4_INDEX_MASK, V4_KNOWN_WORDS, V4_L1_ENTRIES, V4_L2_BLOCKS, V4_L3_BLOCKS, V4_MASKS,
    V4_TAG_L2, V4_TAG_L3, V4_TAG_SHIFT, V4Trie,
};

use super::PeerTable;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Table {
    pub l1: Vec<u32>,
    pub l2: Vec<[u32; 256]>,
    pub l3: Vec<[u32; 256]>,
    /// Index 0 is the empty mask.
    pub masks: Vec<u64>,
    /// One bit per /16 (`V4_KNOWN_WORDS` words): set where any address
    /// the trie gives holds [`KNOWN_PEER`].
    pub known: Vec<u64>,
}

impl V4Table {
    /// The trie for `peers`' IPv4 entries; `None` when they need more blocks
    /// or distinct masks than the maps hold (the kernel then keeps using the
    /// host hash and LPM trie).
    pub fn build(peers: &PeerTable) -> Option<Self> {
        let mut entries: Vec<(u32, u32, u64)> = peers
            .nets4()
            .into_iter()
            .map(|(len, net, mask)| (len, u32::from_be_bytes(net), mask))
            .chain(
                peers
                    .hosts4()
                    .into_iter()
                    .map(|(a, mask)| (32, u32::from_be_bytes(a), mask)),
            )
            .collect();
        entries.sort_by_key(|&(len, addr, _)| (len, addr));
        let mut t = V4Table {
            l1: vec![0; V4_L1_ENTRIES as usize],
            l2: Vec::new(),
            l3: Vec::new(),
            masks: vec![0],
            known: Vec::new(),
        };
        let mut interned: HashMap<u64, u32> = HashMap::from([(0, 0)]);
        for (len, addr, mask) in entries {
            let mi = match interned.get(&mask) {
                Some(&i) => i,
                None => {
                    if t.masks.len() >= V4_MASKS as usize {
                        return None;
                    }
                    let i = t.masks.len() as u32;
                    t.masks.push(mask);
                    interned.insert(mask, i);
                    i
                }
            };
            let hi = (addr >> 16) as usize;
            if len <= 16 {
                let n = 1usize << (16 - len);
                t.l1[hi..hi + n].fill(mi);
                continue;
            }
            let b2 = t.l2_block(hi)?;
            let mid = ((addr >> 8) & 0xff) as usize;
            if len <= 24 {
                let n = 1usize << (24 - len);
                t.l2[b2][mid..mid + n].fill(mi);
                continue;
            }
            let b3 = t.l3_block(b2, mid)?;
            let lo = (addr & 0xff) as usize;
            let n = 1usize << (32 - len);
            t.l3[b3][lo..lo + n].fill(mi);
        }
        t.known = t.known_bitmap();
        Some(t)
    }

    /// The known-peer bitmap of the painted trie: a /16's bit is set when
    /// any entry below its first-level entry names a mask with
    /// [`KNOWN_PEER`].
    fn known_bitmap(&self) -> Vec<u64> {
        let known = |e: u32| e >> V4_TAG_SHIFT == 0 && self.masks[e as usize] & KNOWN_PEER != 0;
        let mut words = vec![0u64; V4_KNOWN_WORDS as usize];
        for (hi, &e) in self.l1.iter().enumerate() {
            let any = if e >> V4_TAG_SHIFT == V4_TAG_L2 {
                self.l2[(e & V4_INDEX_MASK) as usize].iter().any(|&e2| {
                    if e2 >> V4_TAG_SHIFT == V4_TAG_L3 {
                        self.l3[(e2 & V4_INDEX_MASK) as usize]
                            .iter()
                            .any(|&e3| known(e3))
                    } else {
                        known(e2)
                    }
                })
            } else {
                known(e)
            };
            if any {
                words[hi / 64] |= 1 << (hi % 64);
            }
        }
        words
    }

    /// The second-level block under /16 `hi`, made from its current value.
    fn l2_block(&mut self, hi: usize) -> Option<usize> {
        let e = self.l1[hi];
        if e >> V4_TAG_SHIFT == V4_TAG_L2 {
            return Some((e & V4_INDEX_MASK) as usize);
        }
        if self.l2.len() >= V4_L2_BLOCKS as usize {
            return None;
        }
        self.l2.push([e; 256]);
        let b = self.l2.len() - 1;
        self.l1[hi] = (V4_TAG_L2 << V4_TAG_SHIFT) | b as u32;
        Some(b)
    }

    fn l3_block(&mut self, b2: usize, mid: usize) -> Option<usize> {
        let e = self.l2[b2][mid];
        if e >> V4_TAG_SHIFT == V4_TAG_L3 {
            return Some((e & V4_INDEX_MASK) as usize);
        }
        if self.l3.len() >= V4_L3_BLOCKS as usize {
            return None;
        }
        self.l3.push([e; 256]);
        let b = self.l3.len() - 1;
        self.l2[b2][mid] = (V4_TAG_L3 << V4_TAG_SHIFT) | b as u32;
        Some(b)
    }
}

impl V4Trie for V4Table {
    fn l1(&self, index: u32) -> u32 {
        self.l1.get(index as usize).copied().unwrap_or(0)
    }

    fn l2(&self, index: u32) -> u32 {
        self.l2
            .get((index / 256) as usize)
            .map_or(0, |b| b[(index % 256) as usize])
    }

    fn l3(&self, index: u32) -> u32 {
        self.l3
            .get((index / 256) as usize)
            .map_or(0, |b| b[(index % 256) as usize])
    }

    fn mask(&self, index: u32) -> u64 {
        self.masks.get(index as usize).copied().unwrap_or(0)
    }

    fn known(&self, word: u32) -> u64 {
        self.known.get(word as usize).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use monitor_common::policy::{v4_known_peer, v4_roles};
    use proptest::prelude::*;

    use super::*;

    fn table(nets: &[(&str, u64)]) -> PeerTable {
        let mut t = PeerTable::default();
        for (n, m) in nets {
            t.add(n.parse().unwrap(), *m);
        }
        t
    }

    /// Every address that could sit on a boundary of the table's prefixes.
    fn probes(peers: &PeerTable) -> Vec<u32> {
        let mut out = vec![0, u32::MAX];
        for (len, net, _) in peers.nets4() {
            let a = u32::from_be_bytes(net);
            let last = a | (u32::MAX >> len);
            out.extend([
                a.wrapping_sub(1),
                a,
                a + 1,
                last - 1,
                last,
                last.wrapping_add(1),
            ]);
        }
        for (a, _) in peers.hosts4() {
            let a = u32::from_be_bytes(a);
            out.extend([a.wrapping_sub(1), a, a.wrapping_add(1)]);
        }
        out
    }

    fn agrees(peers: &PeerTable) {
        let t = V4Table::build(peers).expect("fits");
        for a in probes(peers) {
            let want = peers.roles_of(IpAddr::V4(Ipv4Addr::from(a)));
            assert_eq!(v4_roles(&t, a), want, "{}", Ipv4Addr::from(a));
            let known = want & KNOWN_PEER != 0;
            assert_eq!(v4_known_peer(&t, a), known, "{}", Ipv4Addr::from(a));
        }
    }

    #[test]
    fn longest_prefix_wins_at_every_level() {
        agrees(&table(&[
            ("0.0.0.0/0", 0b1),
            ("10.0.0.0/8", 0b10),
            ("192.0.2.0/24", 0b100),
            ("192.0.2.128/25", 0b1000),
            ("192.0.2.200/32", 0b10000 | KNOWN_PEER),
            ("192.0.0.0/16", 0b100000),
            ("198.51.100.7/32", 0b1000000),
            ("203.0.113.0/30", 0b10000000 | KNOWN_PEER),
            ("172.16.0.0/12", KNOWN_PEER),
        ]));
    }

    #[test]
    fn only_the_16s_around_known_peers_are_marked() {
        let t = V4Table::build(&table(&[
            ("0.0.0.0/0", 0b1),
            ("192.0.2.200/32", 0b10 | KNOWN_PEER),
            ("172.16.0.0/15", KNOWN_PEER),
        ]))
        .unwrap();
        let marked: Vec<u32> = (0..V4_L1_ENTRIES)
            .filter(|&hi| t.known[(hi / 64) as usize] & (1 << (hi % 64)) != 0)
            .collect();
        assert_eq!(marked, vec![0xac10, 0xac11, 0xc000]);
    }

    #[test]
    fn an_empty_table_knows_no_one() {
        let t = V4Table::build(&PeerTable::default()).unwrap();
        assert_eq!(v4_roles(&t, 0xc000_0201), 0);
        assert!(t.l2.is_empty() && t.l3.is_empty());
    }

    #[test]
    fn too_many_hosts_fall_back() {
        let mut p = PeerTable::default();
        // One host in each of V4_L3_BLOCKS + 1 different /24s.
        for i in 0..=V4_L3_BLOCKS {
            let a = Ipv4Addr::from(0x0a00_0001u32 + (i << 8));
            p.add(IpAddr::V4(a).into(), 1);
        }
        assert!(V4Table::build(&p).is_none());
    }

    proptest! {
        #[test]
        fn agrees_with_the_prefix_fold(
            nets in prop::collection::vec(
                (any::<u32>(), 0u8..=32, 1u64..16, any::<bool>()),
                0..40,
            )
        ) {
            let mut p = PeerTable::default();
            for (a, len, m, known) in nets {
                let net = ipnet::Ipv4Net::new(Ipv4Addr::from(a), len).unwrap();
                p.add(ipnet::IpNet::V4(net), if known { m | KNOWN_PEER } else { m });
            }
            agrees(&p);
        }
    }
}
