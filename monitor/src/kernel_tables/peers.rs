//! Peer address → role mask, as exact hosts and prefixes. Each entry carries
//! the roles of every prefix that encloses it, so the kernel's single lookup
//! (host hash, else longest prefix) yields the whole role set.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::OnceLock,
};

use ipnet::IpNet;

/// Role names by bit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleBits {
    names: Vec<String>,
}

impl RoleBits {
    /// Bit of `name`, allocating one; `None` when all 64 are taken.
    pub fn bit(&mut self, name: &str) -> Option<u32> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Some(i as u32);
        }
        if self.names.len() >= monitor_common::policy::MAX_ROLES {
            return None;
        }
        self.names.push(name.to_string());
        Some(self.names.len() as u32 - 1)
    }

    /// Names of the roles in `mask`.
    pub fn names(&self, mask: u64) -> Vec<&str> {
        self.names
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1u64 << i) != 0)
            .map(|(_, n)| n.as_str())
            .collect()
    }

    /// [`names`](Self::names) as owned strings, for event records; without
    /// the intermediate list, and without allocating when no role matches.
    pub fn owned_names(&self, mask: u64) -> Vec<String> {
        if mask == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(mask.count_ones() as usize);
        for (i, n) in self.names.iter().enumerate() {
            if mask & (1u64 << i) != 0 {
                out.push(n.clone());
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Networks with their role masks, folded for the kernel.
#[derive(Debug, Clone, Default)]
pub struct PeerTable {
    nets: BTreeMap<IpNet, u64>,
    /// For [`roles_of`](Self::roles_of), built on first use.
    index: OnceLock<Index>,
}

impl PartialEq for PeerTable {
    fn eq(&self, other: &Self) -> bool {
        self.nets == other.nets
    }
}

impl Eq for PeerTable {}

type Hasher = foldhash::fast::RandomState;

/// Longest-prefix lookup over the table, as the kernel's host hash and LPM
/// trie answer it. Replay asks once per packet that reaches a rule.
#[derive(Debug, Clone, Default)]
struct Index {
    v4: Family<u32>,
    v6: Family<u128>,
}

/// One family's networks with their folded masks.
#[derive(Debug, Clone)]
enum Family<K> {
    /// Few networks (an inventory's usual handful): (network, netmask,
    /// roles), longest prefix first, compared in turn.
    Few(Vec<(K, K, u64)>),
    /// Many: per prefix length present, longest first, the networks of
    /// that length; a handful of hash probes instead of a scan.
    Many(Vec<(K, HashMap<K, u64, Hasher>)>),
}

impl<K> Default for Family<K> {
    fn default() -> Self {
        Family::Few(Vec::new())
    }
}

/// Networks a family may have and still be scanned.
const FEW: usize = 16;

trait Key: Copy + Eq + std::hash::Hash + std::ops::BitAnd<Output = Self> {}
impl Key for u32 {}
impl Key for u128 {}

impl<K: Key> Family<K> {
    #[inline]
    fn lookup(&self, addr: K) -> u64 {
        match self {
            Family::Few(nets) => nets
                .iter()
                .find(|(net, mask, _)| addr & *mask == *net)
                .map_or(0, |n| n.2),
            Family::Many(levels) => levels
                .iter()
                .find_map(|(mask, map)| map.get(&(addr & *mask)).copied())
                .unwrap_or(0),
        }
    }

    /// Adds a network whose prefix is no shorter than any added before
    /// (its netmask no smaller).
    fn add(&mut self, net: K, mask: K, roles: u64) {
        if let Family::Few(nets) = self {
            if nets.len() < FEW {
                // Longest first: this one is the longest so far.
                nets.insert(0, (net, mask, roles));
                return;
            }
            let mut levels: Vec<(K, HashMap<K, u64, Hasher>)> = Vec::new();
            for &(n, m, r) in nets.iter() {
                match levels.last_mut() {
                    Some((lm, map)) if *lm == m => {
                        map.insert(n, r);
                    }
                    _ => levels.push((m, HashMap::from_iter([(n, r)]))),
                }
            }
            *self = Family::Many(levels);
        }
        let Family::Many(levels) = self else {
            unreachable!("converted above")
        };
        match levels.first_mut() {
            Some((m, map)) if *m == mask => {
                map.insert(net, roles);
            }
            _ => levels.insert(0, (mask, HashMap::from_iter([(net, roles)]))),
        }
    }
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl Index {
    /// Folds each network with every shorter one enclosing it: networks
    /// are taken shortest first, so the longest match among those already
    /// indexed is the fold of all of them.
    fn build(nets: &BTreeMap<IpNet, u64>) -> Self {
        let mut sorted: Vec<(&IpNet, u64)> = nets.iter().map(|(n, m)| (n, *m)).collect();
        sorted.sort_by_key(|(n, _)| n.prefix_len());
        let mut index = Index::default();
        for (net, roles) in sorted {
            let len = net.prefix_len();
            match net {
                IpNet::V4(v4) => {
                    let (addr, mask) = (u32::from(v4.network()), mask4(len));
                    let folded = roles | index.v4.lookup(addr);
                    index.v4.add(addr & mask, mask, folded);
                }
                IpNet::V6(v6) => {
                    let (addr, mask) = (u128::from(v6.network()), mask6(len));
                    let folded = roles | index.v6.lookup(addr);
                    index.v6.add(addr & mask, mask, folded);
                }
            }
        }
        index
    }
}

impl PeerTable {
    pub fn add(&mut self, net: IpNet, mask: u64) {
        *self.nets.entry(net.trunc()).or_default() |= mask;
        self.index = OnceLock::new();
    }

    /// Roles of `net` plus those of every prefix enclosing it.
    fn folded(&self, net: &IpNet) -> u64 {
        self.nets
            .iter()
            .filter(|(n, _)| n.contains(net))
            .fold(0, |acc, (_, m)| acc | m)
    }

    /// Exact IPv4 hosts (/32) → roles.
    pub fn hosts4(&self) -> Vec<([u8; 4], u64)> {
        self.nets
            .keys()
            .filter_map(|n| match n {
                IpNet::V4(v4) if v4.prefix_len() == 32 => {
                    Some((v4.addr().octets(), self.folded(n)))
                }
                _ => None,
            })
            .collect()
    }

    pub fn hosts6(&self) -> Vec<([u8; 16], u64)> {
        self.nets
            .keys()
            .filter_map(|n| match n {
                IpNet::V6(v6) if v6.prefix_len() == 128 => {
                    Some((v6.addr().octets(), self.folded(n)))
                }
                _ => None,
            })
            .collect()
    }

    /// IPv4 prefixes shorter than /32 → (prefix length, network, roles).
    pub fn nets4(&self) -> Vec<(u32, [u8; 4], u64)> {
        self.nets
            .keys()
            .filter_map(|n| match n {
                IpNet::V4(v4) if v4.prefix_len() < 32 => Some((
                    u32::from(v4.prefix_len()),
                    v4.network().octets(),
                    self.folded(n),
                )),
                _ => None,
            })
            .collect()
    }

    pub fn nets6(&self) -> Vec<(u32, [u8; 16], u64)> {
        self.nets
            .keys()
            .filter_map(|n| match n {
                IpNet::V6(v6) if v6.prefix_len() < 128 => Some((
                    u32::from(v6.prefix_len()),
                    v6.network().octets(),
                    self.folded(n),
                )),
                _ => None,
            })
            .collect()
    }

    /// Role mask of one address, computed the way the kernel does: the
    /// roles of every network that holds it.
    pub fn roles_of(&self, addr: IpAddr) -> u64 {
        let index = self.index();
        match addr {
            IpAddr::V4(a) => index.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => index.v6.lookup(u128::from(a)),
        }
    }

    #[inline]
    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(&self.nets))
    }

    pub fn len(&self) -> usize {
        self.nets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosing_prefixes_fold_into_hosts_and_longer_prefixes() {
        let mut t = PeerTable::default();
        t.add("192.0.2.0/24".parse().unwrap(), 0b001);
        t.add("192.0.2.128/25".parse().unwrap(), 0b010);
        t.add("192.0.2.200/32".parse().unwrap(), 0b100);
        t.add("2001:db8::/32".parse().unwrap(), 0b1000);
        assert_eq!(t.hosts4(), vec![([192, 0, 2, 200], 0b111)]);
        assert_eq!(
            t.nets4(),
            vec![(24, [192, 0, 2, 0], 0b001), (25, [192, 0, 2, 128], 0b011)]
        );
        assert_eq!(t.roles_of("192.0.2.5".parse().unwrap()), 0b001);
        assert_eq!(t.roles_of("198.51.100.1".parse().unwrap()), 0);
        assert_eq!(t.nets6().len(), 1);
        assert_eq!(t.roles_of("2001:db8::1".parse().unwrap()), 0b1000);
    }

    #[test]
    fn owned_names_are_the_names() {
        let mut r = RoleBits::default();
        for n in ["nodes", "admin", "ldap"] {
            r.bit(n);
        }
        for mask in [0, 0b1, 0b101, 0b111, u64::MAX] {
            assert_eq!(r.owned_names(mask), r.names(mask), "{mask:b}");
        }
    }

    #[test]
    fn role_bits_are_stable_and_bounded() {
        let mut r = RoleBits::default();
        assert_eq!(r.bit("nodes"), Some(0));
        assert_eq!(r.bit("admin"), Some(1));
        assert_eq!(r.bit("nodes"), Some(0));
        // 63 roles: the top bit is KNOWN_PEER's.
        for i in 2..63 {
            assert!(r.bit(&format!("r{i}")).is_some());
        }
        assert_eq!(r.bit("one-too-many"), None);
        assert_eq!(r.names(0b11), vec!["nodes", "admin"]);
    }

    proptest::proptest! {
        /// The prefix index answers what folding every enclosing network
        /// does, whatever the networks and their overlaps.
        #[test]
        fn index_lookup_is_the_fold_of_enclosing_networks(
            nets in proptest::collection::vec((proptest::prelude::any::<u32>(), 0u8..=32, 0u64..16), 0..40),
            nets6 in proptest::collection::vec((proptest::prelude::any::<u128>(), 0u8..=128, 0u64..16), 0..40),
            probes in proptest::collection::vec(proptest::prelude::any::<u32>(), 1..24),
        ) {
            let mut t = PeerTable::default();
            // Addresses drawn near each other, so networks nest.
            let near = |a: u32| (a & 0xff00_00ff) | 0x00c0_0000;
            for (a, len, mask) in &nets {
                let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(near(*a)), *len).unwrap();
                t.add(IpNet::V4(net), 1 << mask);
            }
            for (a, len, mask) in &nets6 {
                let net = ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(*a), *len).unwrap();
                t.add(IpNet::V6(net), 1 << mask);
            }
            let mut addrs: Vec<IpAddr> = probes.iter().map(|p| IpAddr::from(std::net::Ipv4Addr::from(near(*p)))).collect();
            addrs.extend(nets.iter().map(|(a, _, _)| IpAddr::from(std::net::Ipv4Addr::from(near(*a)))));
            addrs.extend(nets6.iter().map(|(a, _, _)| IpAddr::from(std::net::Ipv6Addr::from(*a))));
            addrs.extend(nets6.iter().map(|(a, _, _)| IpAddr::from(std::net::Ipv6Addr::from(!*a))));
            for addr in addrs {
                let folded = t.folded(&IpNet::from(addr));
                proptest::prop_assert_eq!(t.roles_of(addr), folded, "{}", addr);
            }
        }
    }

    #[test]
    fn adding_a_network_after_a_lookup_is_seen() {
        let mut t = PeerTable::default();
        t.add("192.0.2.0/24".parse().unwrap(), 0b01);
        assert_eq!(t.roles_of("192.0.2.9".parse().unwrap()), 0b01);
        t.add("192.0.2.9/32".parse().unwrap(), 0b10);
        assert_eq!(t.roles_of("192.0.2.9".parse().unwrap()), 0b11);
        t.add("0.0.0.0/0".parse().unwrap(), 0b100);
        assert_eq!(t.roles_of("198.51.100.1".parse().unwrap()), 0b100);
        assert_eq!(t.roles_of("2001:db8::1".parse().unwrap()), 0);
    }
}
