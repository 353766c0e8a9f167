//! Peer address → role mask, as exact hosts and prefixes. Each entry carries
//! the roles of every prefix that encloses it, so the kernel's single lookup
//! (host hash, else longest prefix) yields the whole role set.

use std::collections::BTreeMap;

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

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Networks with their role masks, folded for the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerTable {
    nets: BTreeMap<IpNet, u64>,
}

impl PeerTable {
    pub fn add(&mut self, net: IpNet, mask: u64) {
        *self.nets.entry(net.trunc()).or_default() |= mask;
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

    /// Role mask of one address, computed the way the kernel does.
    pub fn roles_of(&self, addr: std::net::IpAddr) -> u64 {
        self.folded(&IpNet::from(addr))
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
    fn role_bits_are_stable_and_bounded() {
        let mut r = RoleBits::default();
        assert_eq!(r.bit("nodes"), Some(0));
        assert_eq!(r.bit("admin"), Some(1));
        assert_eq!(r.bit("nodes"), Some(0));
        for i in 2..64 {
            assert!(r.bit(&format!("r{i}")).is_some());
        }
        assert_eq!(r.bit("one-too-many"), None);
        assert_eq!(r.names(0b11), vec!["nodes", "admin"]);
    }
}
