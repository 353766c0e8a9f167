//! Who lives in the lab: the appliance (playing the host role under test,
//! `nodes` for the seeds) and one peer host per role, with the addresses a ruleset written for the
//! site expects: the inventory's, or documentation addresses without one.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnet::IpNet;

use crate::policy::Inventory;

/// A host of the lab. Index 0 is always the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `appliance`, or the role the peer plays.
    pub label: String,
    pub role: String,
    /// At most a few addresses; the first of each family is the one that
    /// speaks and answers.
    pub addrs: Vec<IpAddr>,
}

impl Member {
    pub fn first(&self, v6: bool) -> Option<IpAddr> {
        self.addrs.iter().copied().find(|a| a.is_ipv6() == v6)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    pub members: Vec<Member>,
    /// What the lab's monitor is told (role -> networks): the inventory's
    /// own networks, or the lab's addresses.
    pub inventory: BTreeMap<String, Vec<IpNet>>,
    /// Roles that get no host, and why.
    pub unplaced: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

pub const APPLIANCE: usize = 0;

/// Documentation addresses used without an inventory.
const DOC_NODES_V4: [u8; 3] = [192, 0, 2];
const DOC_PEERS_V4: [u8; 3] = [198, 51, 100];
const DOC_V6: [u16; 3] = [0x2001, 0x0db8, 0x7ab];

fn doc_v6(subnet: u16, host: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        DOC_V6[0], DOC_V6[1], DOC_V6[2], subnet, 0, 0, 0, host,
    ))
}

fn doc_v4(net: [u8; 3], host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], host))
}

/// The `n`-th usable host of `net` (0 = first): the network address itself
/// for /31, /32, /127 and /128, which have no network/broadcast to skip.
pub fn nth_host(net: &IpNet, n: u32) -> Option<IpAddr> {
    let small = match net {
        IpNet::V4(v4) => v4.prefix_len() >= 31,
        IpNet::V6(v6) => v6.prefix_len() >= 127,
    };
    let offset = u128::from(n) + u128::from(!small);
    let host = match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network());
            let size = 1u64 << (32 - v4.prefix_len());
            // Broadcast is not a host either.
            let last = if small { size } else { size - 1 };
            if offset >= u128::from(last) {
                return None;
            }
            IpAddr::V4(Ipv4Addr::from(base + offset as u32))
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            let bits = 128 - u32::from(v6.prefix_len());
            if bits < 128 && offset >= (1u128 << bits) {
                return None;
            }
            IpAddr::V6(Ipv6Addr::from(base + offset))
        }
    };
    Some(host)
}

impl Hosts {
    /// Without an inventory: the appliance (playing `appliance_role`) is
    /// 192.0.2.1 / 2001:db8:7ab::1, another host of its role 192.0.2.2 /
    /// 2001:db8:7ab::2, the other roles in order 198.51.100.10, .11, ... /
    /// 2001:db8:7ab:1::a, ::b, ...
    pub fn documentation(roles: &[&str], appliance_role: &str) -> Hosts {
        let mut members = vec![Member {
            label: "appliance".into(),
            role: appliance_role.into(),
            addrs: vec![doc_v4(DOC_NODES_V4, 1), doc_v6(0, 1)],
        }];
        let mut unplaced = BTreeMap::new();
        let mut n = 0u8;
        for role in roles {
            let addrs = if *role == appliance_role {
                vec![doc_v4(DOC_NODES_V4, 2), doc_v6(0, 2)]
            } else if let Some(host) = n.checked_add(10).filter(|h| *h < 255) {
                n += 1;
                vec![doc_v4(DOC_PEERS_V4, host), doc_v6(1, u16::from(host))]
            } else {
                unplaced.insert(
                    role.to_string(),
                    "more roles than the lab's documentation range holds".to_string(),
                );
                continue;
            };
            members.push(Member {
                label: role.to_string(),
                role: role.to_string(),
                addrs,
            });
        }
        let mut inventory: BTreeMap<String, Vec<IpNet>> = BTreeMap::new();
        for m in &members {
            inventory
                .entry(m.role.clone())
                .or_default()
                .extend(m.addrs.iter().map(|a| IpNet::from(*a)));
        }
        Hosts {
            members,
            inventory,
            unplaced,
            notes: Vec::new(),
        }
    }

    /// From the inventory: the first host of each of a role's entries; the
    /// appliance takes the first address of each family of its role
    /// (`appliance_role`), and the peer of that role the next ones (the
    /// second host of the same network when the role lists only one). DNS
    /// names are not used: the lab has no DNS.
    pub fn from_inventory(roles: &[&str], inventory: &Inventory, appliance_role: &str) -> Hosts {
        let mut used: BTreeSet<IpAddr> = BTreeSet::new();
        let mut members = Vec::new();
        let mut unplaced = BTreeMap::new();
        let mut notes = Vec::new();
        let mut lab_inventory = BTreeMap::new();
        // Candidate hosts of a role: per entry, the first hosts in order.
        let candidates = |nets: &[IpNet], skip: u32| -> Vec<(usize, IpAddr)> {
            nets.iter()
                .enumerate()
                .filter_map(|(i, n)| nth_host(n, skip).map(|h| (i, h)))
                .collect()
        };
        let nodes = inventory.binding(appliance_role);
        let mut appliance = Vec::new();
        if let Some(b) = nodes {
            for v6 in [false, true] {
                if let Some((_, h)) = candidates(&b.nets, 0)
                    .into_iter()
                    .find(|(_, h)| h.is_ipv6() == v6)
                {
                    appliance.push(h);
                    used.insert(h);
                }
            }
        }
        if appliance.is_empty() {
            notes.push(format!(
                "the inventory binds no address to `{appliance_role}`: the appliance takes 192.0.2.1 and 2001:db8:7ab::1"
            ));
            appliance = vec![doc_v4(DOC_NODES_V4, 1), doc_v6(0, 1)];
            used.extend(appliance.iter().copied());
        }
        members.push(Member {
            label: "appliance".into(),
            role: appliance_role.into(),
            addrs: appliance.clone(),
        });
        for role in roles {
            let Some(binding) = inventory.binding(role) else {
                unplaced.insert(
                    role.to_string(),
                    format!("role `{role}` is not bound in the inventory"),
                );
                continue;
            };
            if !binding.names.is_empty() {
                notes.push(format!(
                    "role `{role}`: DNS names ({}) are not used in the lab, which has no DNS",
                    binding.names.join(", ")
                ));
            }
            lab_inventory.insert(role.to_string(), binding.nets.clone());
            let mut addrs: Vec<IpAddr> = Vec::new();
            for (_, h) in candidates(&binding.nets, 0) {
                if used.insert(h) {
                    addrs.push(h);
                }
            }
            // A family the role has but whose first hosts are taken (the
            // `nodes` peer beside the appliance): the next hosts.
            for v6 in [false, true] {
                if addrs.iter().any(|a| a.is_ipv6() == v6) {
                    continue;
                }
                let next = (1..4)
                    .flat_map(|skip| candidates(&binding.nets, skip))
                    .map(|(_, h)| h)
                    .find(|h| h.is_ipv6() == v6 && !used.contains(h));
                if let Some(h) = next {
                    used.insert(h);
                    addrs.push(h);
                }
            }
            addrs.truncate(8);
            if addrs.is_empty() {
                unplaced.insert(
                    role.to_string(),
                    format!("role `{role}` has no address left for a peer host in the inventory"),
                );
                continue;
            }
            members.push(Member {
                label: role.to_string(),
                role: role.to_string(),
                addrs,
            });
        }
        if !lab_inventory.contains_key(appliance_role) {
            lab_inventory.insert(
                appliance_role.into(),
                appliance.iter().map(|a| IpNet::from(*a)).collect(),
            );
        }
        Hosts {
            members,
            inventory: lab_inventory,
            unplaced,
            notes,
        }
    }

    /// The peer host playing `role`.
    pub fn peer(&self, role: &str) -> Option<usize> {
        self.members
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, m)| m.role == role)
            .map(|(i, _)| i)
    }

    /// The lab inventory as TOML, for the lab's monitor.
    pub fn inventory_toml(&self) -> String {
        let mut out = String::from("# written by portconform validate for its lab\n");
        for (role, nets) in &self.inventory {
            let list: Vec<String> = nets
                .iter()
                .map(|n| format!("{:?}", n.to_string()))
                .collect();
            out.push_str(&format!("{role} = [{}]\n", list.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Inventory;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_of_networks() {
        assert_eq!(
            nth_host(&net("192.0.2.0/24"), 0),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            nth_host(&net("192.0.2.0/24"), 1),
            Some("192.0.2.2".parse().unwrap())
        );
        assert_eq!(
            nth_host(&net("192.0.2.0/24"), 253),
            Some("192.0.2.254".parse().unwrap())
        );
        assert_eq!(nth_host(&net("192.0.2.0/24"), 254), None);
        assert_eq!(
            nth_host(&net("192.0.2.9/32"), 0),
            Some("192.0.2.9".parse().unwrap())
        );
        assert_eq!(nth_host(&net("192.0.2.9/32"), 1), None);
        assert_eq!(
            nth_host(&net("192.0.2.8/31"), 1),
            Some("192.0.2.9".parse().unwrap())
        );
        assert_eq!(
            nth_host(&net("2001:db8::/64"), 0),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            nth_host(&net("2001:db8::5/128"), 0),
            Some("2001:db8::5".parse().unwrap())
        );
    }

    #[test]
    fn inventory_addresses_are_used() {
        let inv = Inventory::parse(
            "nodes = [\"192.0.2.0/24\", \"2001:db8:1::/64\"]\nadmin = [\"198.51.100.7\", \"admin.example.com\"]\n",
            "inv.toml",
        )
        .unwrap();
        let hosts = Hosts::from_inventory(&["nodes", "admin", "smtp-relay"], &inv, "nodes");
        let addrs = |i: usize| {
            hosts.members[i]
                .addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(addrs(0), ["192.0.2.1", "2001:db8:1::1"]);
        assert_eq!(hosts.members[1].role, "nodes");
        assert_eq!(addrs(1), ["192.0.2.2", "2001:db8:1::2"]);
        assert_eq!(addrs(2), ["198.51.100.7"]);
        assert!(hosts.unplaced["smtp-relay"].contains("not bound"));
        assert!(hosts.notes.iter().any(|n| n.contains("admin.example.com")));
        let toml = hosts.inventory_toml();
        assert!(
            toml.contains("nodes = [\"192.0.2.0/24\", \"2001:db8:1::/64\"]"),
            "{toml}"
        );
        assert!(toml.contains("admin = [\"198.51.100.7/32\"]"), "{toml}");
    }

    #[test]
    fn documentation_addresses_without_inventory() {
        let hosts = Hosts::documentation(&["nodes", "admin", "ldap-server"], "nodes");
        assert_eq!(hosts.members.len(), 4);
        assert_eq!(hosts.members[0].addrs[0].to_string(), "192.0.2.1");
        assert_eq!(hosts.members[1].addrs[0].to_string(), "192.0.2.2");
        assert_eq!(hosts.members[2].addrs[0].to_string(), "198.51.100.10");
        assert_eq!(hosts.members[3].addrs[1].to_string(), "2001:db8:7ab:1::b");
        assert_eq!(hosts.peer("admin"), Some(2));
        assert_eq!(hosts.peer("nope"), None);
    }
}
