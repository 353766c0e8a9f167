//! Policy entries + inventory → the kernel's tables.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use ipnet::IpNet;
use monitor_common::policy::{
    ConnDir, KNOWN_PEER, L4, MAX_RULES, MAX_RULESETS, RULE_DYNAMIC, RULE_REQUIRED, RULESET_WIDTH,
    RuleRef, RuleSet, port_index,
};

use super::{
    V4Table,
    peers::{PeerTable, RoleBits},
};
use crate::policy::{Direction, Entry, Inventory, Peer, PeerRef, Ports, Proto};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("the policy uses more than {max} peer roles (role {0:?} is one too many)", max = monitor_common::policy::MAX_ROLES)]
    TooManyRoles(String),
    #[error("the policy has more than {MAX_RULES} active rules")]
    TooManyRules,
    #[error("the policy needs more than {MAX_RULESETS} distinct rule combinations per port")]
    TooManyRuleSets,
}

/// What events and metrics say about a kernel rule index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: String,
    pub service: String,
    /// `doc:line`
    pub source: String,
    pub proto: Proto,
    pub direction: Direction,
    /// Ports as the policy writes them ("2181", "9300-9400", "icmp").
    pub ports: String,
    pub peer_label: String,
    pub required: bool,
}

/// Everything the loader writes into the maps, plus the names userspace
/// needs to explain what the kernel reports.
#[derive(Debug, Clone, Default)]
pub struct KernelTables {
    /// `PC_PORTCLASS` entries that are not 0, by index.
    pub port_classes: BTreeMap<u32, u16>,
    /// `PC_RULESETS`, by id; id 0 is the empty set.
    pub rule_sets: Vec<RuleSet>,
    pub peers: PeerTable,
    pub roles: RoleBits,
    /// Kernel rule index → rule.
    pub rules: Vec<RuleInfo>,
    /// IPv4 peers as an array trie, when they fit (see [`V4Table`]).
    pub v4: Option<V4Table>,
    /// Roles with no address at all: their rules can never match.
    pub unbound_roles: Vec<String>,
    /// DNS names that gave no address, once each: traffic with them will be
    /// reported as unexpected. Kept apart from `warnings` so a caller that
    /// chose not to resolve (`--no-resolve`) need not warn about each.
    pub unresolved: Vec<String>,
    pub warnings: Vec<String>,
}

impl KernelTables {
    pub fn rule(&self, index: u16) -> Option<&RuleInfo> {
        self.rules.get(usize::from(index))
    }
}

/// Where peers' addresses come from.
pub struct Peers<'a> {
    pub inventory: Option<&'a Inventory>,
    /// `nodes` when there is no inventory: the monitored interfaces' subnets.
    pub default_nodes: &'a [IpNet],
    /// Addresses of a DNS name (the daemon resolves with a deadline).
    pub resolve: &'a dyn Fn(&str) -> Vec<IpAddr>,
}

/// Builds the tables for `entries` (the rules in force on this host,
/// flattened): rules, peer roles and the ports' rule sets.
pub fn build(entries: &[Entry], peers: &Peers) -> Result<KernelTables, BuildError> {
    let mut b = Builder {
        t: KernelTables {
            rule_sets: vec![RuleSet::default()],
            ..Default::default()
        },
        rule_index: HashMap::new(),
        adds: Vec::new(),
        bound_roles: BTreeSet::new(),
        seen_roles: BTreeSet::new(),
    };
    for entry in entries {
        b.add(entry, peers)?;
    }
    // Roles no rule in force names are still the operator's known peers.
    if let Some(inventory) = peers.inventory {
        for (_, binding) in inventory.iter() {
            for net in &binding.nets {
                b.t.peers.add(*net, KNOWN_PEER);
            }
        }
    }
    b.finish()
}

/// What one entry adds to the ports of a class (direction and protocol, as
/// `port_index` lays them out), from `lo` to `hi`.
struct Add {
    class: u32,
    lo: u16,
    hi: u16,
    rule: RuleRef,
}

/// The tables as entries are added, in entry order.
struct Builder<'e> {
    t: KernelTables,
    rule_index: HashMap<&'e str, u16>,
    adds: Vec<Add>,
    bound_roles: BTreeSet<String>,
    seen_roles: BTreeSet<String>,
}

impl<'e> Builder<'e> {
    fn add(&mut self, entry: &Entry<'e>, peers: &Peers) -> Result<(), BuildError> {
        let index = self.rule(entry)?;
        let mask = self.peer_mask(entry, peers)?;
        let conn_dir = match entry.direction {
            Direction::Outbound => ConnDir::Outbound,
            _ => ConnDir::Inbound,
        };
        let flags = rule_flags(entry);
        let mut add = |l4: L4, lo: u16, hi: u16| {
            self.adds.push(Add {
                class: port_index(conn_dir as u32, l4, 0),
                lo,
                hi,
                rule: RuleRef {
                    peer_roles: mask,
                    rule: index,
                    flags,
                    _pad: 0,
                },
            })
        };
        match (entry.proto, entry.ports) {
            (Proto::Tcp, Some(range)) | (Proto::Udp, Some(range)) => {
                let l4 = if entry.proto == Proto::Tcp {
                    L4::Tcp
                } else {
                    L4::Udp
                };
                if range.lo <= range.hi {
                    add(l4, range.lo, range.hi);
                }
            }
            // ICMP rules allow the request/reply exchanges (echo, timestamp);
            // errors and neighbour discovery are never judged.
            (Proto::Icmp, _) => {
                add(L4::Icmp, 8, 8);
                add(L4::Icmp, 13, 13);
                add(L4::Icmpv6, 128, 128);
            }
            (_, None) => {}
        }
        Ok(())
    }

    /// The kernel index of the entry's rule, described the first time as
    /// this host sees it: its direction is that of all its entries, its
    /// peer the entry's (a rule turned round names its local role).
    fn rule(&mut self, entry: &Entry<'e>) -> Result<u16, BuildError> {
        let rule = entry.rule;
        if let Some(&i) = self.rule_index.get(rule.id.as_str()) {
            let info = &mut self.t.rules[usize::from(i)];
            if info.direction != entry.direction {
                info.direction = Direction::Bidirectional;
            }
            return Ok(i);
        }
        if self.t.rules.len() >= MAX_RULES as usize {
            return Err(BuildError::TooManyRules);
        }
        let i = self.t.rules.len() as u16;
        self.t.rules.push(RuleInfo {
            id: rule.id.clone(),
            service: rule.service.clone(),
            source: rule.source.to_string(),
            proto: rule.proto,
            direction: entry.direction,
            ports: rule.ports.to_string(),
            peer_label: match entry.peer {
                PeerRef::Role(role) => role.to_string(),
                PeerRef::Literals(_) => rule.peer_label(),
            },
            required: entry.required,
        });
        self.rule_index.insert(&rule.id, i);
        Ok(i)
    }

    /// The role bit of the entry's peer, its networks added to the peer
    /// tables.
    fn peer_mask(&mut self, entry: &Entry, peers: &Peers) -> Result<u64, BuildError> {
        let t = &mut self.t;
        let (role, nets) = match entry.peer {
            PeerRef::Role(name) => (name.to_string(), role_nets(name, peers, &mut t.unresolved)),
            PeerRef::Literals(list) => (
                format!("peers of {}", entry.rule.id),
                literal_nets(list, peers, &mut t.unresolved),
            ),
        };
        let bit = t
            .roles
            .bit(&role)
            .ok_or_else(|| BuildError::TooManyRoles(role.clone()))?;
        self.seen_roles.insert(role.clone());
        if !nets.is_empty() {
            self.bound_roles.insert(role);
        }
        let mask = 1u64 << bit;
        // Inventory addresses are known peers; a rule's own literals
        // ("any" among them) are not.
        let known = if matches!(entry.peer, PeerRef::Role(_)) {
            KNOWN_PEER
        } else {
            0
        };
        for net in nets {
            t.peers.add(net, mask | known);
        }
        Ok(mask)
    }

    fn finish(mut self) -> Result<KernelTables, BuildError> {
        self.port_sets()?;
        let t = &mut self.t;
        t.unbound_roles = self
            .seen_roles
            .difference(&self.bound_roles)
            .cloned()
            .collect();
        t.v4 = V4Table::build(&t.peers);
        if t.v4.is_none() {
            t.warnings.push(
                "IPv4 peers need more than the array trie holds: IPv4 role lookups use the host hash and LPM trie (slower)".into(),
            );
        }
        Ok(self.t)
    }

    /// Each port's rule list is what the entries covering it add, in entry
    /// order, one element per rule. Ports between the same range ends get
    /// the same list, so lists are made per such segment rather than per
    /// port (a dynamic range is tens of thousands of ports), walking the
    /// ports in ascending index order as the kernel's array lays them out.
    fn port_sets(&mut self) -> Result<(), BuildError> {
        let mut ids: HashMap<Vec<RuleRef>, u16> = HashMap::new();
        let mut truncated_ports = 0usize;
        let mut classes: Vec<u32> = self.adds.iter().map(|a| a.class).collect();
        classes.sort_unstable();
        classes.dedup();
        let mut port_classes: Vec<(u32, u16)> = Vec::new();
        for class in classes {
            let here: Vec<&Add> = self.adds.iter().filter(|a| a.class == class).collect();
            // Segment starts: every range's first port and the port after its last.
            let mut cuts: Vec<u32> = here
                .iter()
                .flat_map(|a| [u32::from(a.lo), u32::from(a.hi) + 1])
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            for w in cuts.windows(2) {
                let (lo, hi) = (w[0], w[1] - 1);
                let mut list = segment_rules(&here, lo, hi);
                if list.is_empty() {
                    continue;
                }
                if list.len() > RULESET_WIDTH {
                    truncated_ports += (hi - lo + 1) as usize;
                    list.truncate(RULESET_WIDTH);
                }
                let id = match ids.get(&list) {
                    Some(id) => *id,
                    None => {
                        let id = new_rule_set(&mut self.t.rule_sets, &list)?;
                        ids.insert(list, id);
                        id
                    }
                };
                port_classes.extend((lo..=hi).map(|port| (class | port, id)));
            }
        }
        // Ascending already: the map is built in bulk.
        self.t.port_classes = port_classes.into_iter().collect();
        if truncated_ports > 0 {
            self.t.warnings.push(format!(
                "{truncated_ports} ports are named by more than {RULESET_WIDTH} rules; the kernel checks the first {RULESET_WIDTH} of each"
            ));
        }
        Ok(())
    }
}

/// The kernel's flags for an entry's rule.
fn rule_flags(entry: &Entry) -> u16 {
    let mut flags = 0;
    if entry.required {
        flags |= RULE_REQUIRED;
    }
    if entry.rule.ports == Ports::Dynamic {
        flags |= RULE_DYNAMIC;
    }
    flags
}

/// A new rule set holding `list`, its id.
fn new_rule_set(sets: &mut Vec<RuleSet>, list: &[RuleRef]) -> Result<u16, BuildError> {
    if sets.len() >= MAX_RULESETS as usize {
        return Err(BuildError::TooManyRuleSets);
    }
    let mut set = RuleSet {
        len: list.len() as u32,
        ..Default::default()
    };
    set.rules[..list.len()].copy_from_slice(list);
    sets.push(set);
    Ok((sets.len() - 1) as u16)
}

/// The rules of the adds covering ports `lo..=hi`, one element per rule
/// (peer roles and flags merged), in entry order, dynamic-range rules last:
/// the kernel takes the first rule admitting the peer, and a service's own
/// rule says more about a connection than the range its port falls in.
fn segment_rules(adds: &[&Add], lo: u32, hi: u32) -> Vec<RuleRef> {
    let mut list: Vec<RuleRef> = Vec::new();
    for a in adds
        .iter()
        .filter(|a| u32::from(a.lo) <= lo && hi <= u32::from(a.hi))
    {
        match list.iter_mut().find(|r| r.rule == a.rule.rule) {
            Some(r) => {
                r.peer_roles |= a.rule.peer_roles;
                r.flags |= a.rule.flags;
            }
            None => list.push(a.rule),
        }
    }
    list.sort_by_key(|r| r.flags & RULE_DYNAMIC != 0);
    list
}

/// The DNS names [`build`] resolves for `entries`, in the order it asks
/// for them (repeats left out), so a resolver can look them up together
/// beforehand.
pub fn dns_names<'a>(entries: &'a [Entry], inventory: Option<&'a Inventory>) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for entry in entries {
        let listed: Box<dyn Iterator<Item = &str>> = match entry.peer {
            PeerRef::Role(role) => match inventory.and_then(|inv| inv.binding(role)) {
                Some(binding) => Box::new(binding.names.iter().map(String::as_str)),
                None => Box::new(std::iter::empty()),
            },
            PeerRef::Literals(list) => Box::new(list.iter().filter_map(|p| match p {
                Peer::Name(name) => Some(name.as_str()),
                Peer::Net(_) => None,
            })),
        };
        for name in listed {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn role_nets(role: &str, peers: &Peers, unresolved: &mut Vec<String>) -> Vec<IpNet> {
    match peers.inventory.and_then(|inv| inv.binding(role)) {
        Some(binding) => {
            let mut nets = binding.nets.clone();
            nets.extend(resolve_all(&binding.names, peers, unresolved));
            nets
        }
        None if role == "nodes" && peers.inventory.is_none() => peers.default_nodes.to_vec(),
        None => Vec::new(),
    }
}

fn literal_nets(list: &[Peer], peers: &Peers, unresolved: &mut Vec<String>) -> Vec<IpNet> {
    let mut nets = Vec::new();
    let mut names = Vec::new();
    for peer in list {
        match peer {
            Peer::Net(net) => nets.push(*net),
            Peer::Name(name) => names.push(name.clone()),
        }
    }
    nets.extend(resolve_all(&names, peers, unresolved));
    nets
}

fn resolve_all(names: &[String], peers: &Peers, unresolved: &mut Vec<String>) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for name in names {
        let addrs = (peers.resolve)(name);
        if addrs.is_empty() && !unresolved.contains(name) {
            unresolved.push(name.clone());
        }
        nets.extend(addrs.into_iter().map(IpNet::from));
    }
    nets
}

/// The same lookups the kernel does, over the built tables: lets userspace
/// (tests, replay) run the shared classifier without a kernel.
impl monitor_common::classify::PolicyLookup for KernelTables {
    fn port_class(&self, index: u32) -> u16 {
        self.port_classes.get(&index).copied().unwrap_or(0)
    }

    fn rule_set(&self, id: u16) -> Option<&RuleSet> {
        self.rule_sets.get(usize::from(id))
    }

    #[inline]
    fn peer_roles_v4(&self, addr: u32) -> u64 {
        match &self.v4 {
            Some(trie) => monitor_common::policy::v4_roles(trie, addr),
            None => self.peers.roles_of(std::net::Ipv4Addr::from(addr).into()),
        }
    }

    #[inline]
    fn peer_roles_v6(&self, addr: &[u8; 16]) -> u64 {
        self.peers.roles_of(std::net::Ipv6Addr::from(*addr).into())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use monitor_common::{
        classify::{Conn, FlowLookup, Reason, Untracked, Verdict, classify},
        packet::{Family, Fragment, IPPROTO_TCP, IPPROTO_UDP, Parsed, TCP_ACK, TCP_RST, TCP_SYN},
        stats::PacketDir,
    };

    use monitor_common::flow::FlowKey;

    use super::*;
    use crate::policy::{
        DynamicPorts, PortRange, ResolveOptions, entries, model::NODES, profiles, resolve,
        resolve::Conditions,
    };

    pub(in crate::kernel_tables) fn thoughtspot(inventory: &str) -> KernelTables {
        let policy = profiles::load("thoughtspot").unwrap();
        let options = ResolveOptions::all_releases(PortRange {
            lo: 32768,
            hi: 60999,
        });
        let resolved = resolve(&policy, &options).unwrap();
        let inv = Inventory::parse(inventory, "inventory.toml").unwrap();
        let no_dns = |_: &str| Vec::new();
        build(
            &entries(&resolved, &[NODES.into()]),
            &Peers {
                inventory: Some(&inv),
                default_nodes: &[],
                resolve: &no_dns,
            },
        )
        .unwrap()
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut x = [0; 16];
        x[..4].copy_from_slice(&a);
        x
    }

    fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8) -> Parsed {
        Parsed {
            family: Family::V4,
            proto: IPPROTO_TCP,
            src: v4(src),
            dst: v4(dst),
            sport,
            dport,
            tcp_flags: flags,
            fragment: Fragment::None,
            vlan_tags: 0,
            l4_offset: 34,
        }
    }

    /// The port lists as the tables were first built: one list per port,
    /// in entry order, ids handed out in ascending port-index order.
    fn per_port_reference(entries: &[Entry]) -> (BTreeMap<u32, u16>, Vec<RuleSet>, usize) {
        let mut rule_ids: Vec<&str> = Vec::new();
        let mut roles: Vec<String> = Vec::new();
        let mut lists: BTreeMap<u32, Vec<RuleRef>> = BTreeMap::new();
        for entry in entries {
            let index = match rule_ids.iter().position(|id| *id == entry.rule.id) {
                Some(i) => i as u16,
                None => {
                    rule_ids.push(&entry.rule.id);
                    rule_ids.len() as u16 - 1
                }
            };
            let role = match entry.peer {
                PeerRef::Role(name) => name.to_string(),
                PeerRef::Literals(_) => format!("peers of {}", entry.rule.id),
            };
            let bit = match roles.iter().position(|r| *r == role) {
                Some(b) => b,
                None => {
                    roles.push(role);
                    roles.len() - 1
                }
            };
            let mask = 1u64 << bit;
            let conn_dir = match entry.direction {
                Direction::Outbound => ConnDir::Outbound,
                _ => ConnDir::Inbound,
            };
            let flags = rule_flags(entry);
            let mut add = |l4: L4, port: u16| {
                let list = lists
                    .entry(port_index(conn_dir as u32, l4, port))
                    .or_default();
                match list.iter_mut().find(|r| r.rule == index) {
                    Some(r) => {
                        r.peer_roles |= mask;
                        r.flags |= flags;
                    }
                    None => list.push(RuleRef {
                        peer_roles: mask,
                        rule: index,
                        flags,
                        _pad: 0,
                    }),
                }
            };
            match (entry.proto, entry.ports) {
                (Proto::Tcp, Some(range)) | (Proto::Udp, Some(range)) => {
                    let l4 = if entry.proto == Proto::Tcp {
                        L4::Tcp
                    } else {
                        L4::Udp
                    };
                    for port in range.lo..=range.hi {
                        add(l4, port);
                    }
                }
                (Proto::Icmp, _) => {
                    add(L4::Icmp, 8);
                    add(L4::Icmp, 13);
                    add(L4::Icmpv6, 128);
                }
                (_, None) => {}
            }
        }
        let mut sets = vec![RuleSet::default()];
        let mut ids: HashMap<Vec<RuleRef>, u16> = HashMap::new();
        let mut classes = BTreeMap::new();
        let mut truncated = 0;
        for (index, mut list) in lists {
            list.sort_by_key(|r| r.flags & RULE_DYNAMIC != 0);
            if list.len() > RULESET_WIDTH {
                truncated += 1;
                list.truncate(RULESET_WIDTH);
            }
            let id = *ids.entry(list.clone()).or_insert_with(|| {
                let mut set = RuleSet {
                    len: list.len() as u32,
                    ..Default::default()
                };
                set.rules[..list.len()].copy_from_slice(&list);
                sets.push(set);
                sets.len() as u16 - 1
            });
            classes.insert(index, id);
        }
        (classes, sets, truncated)
    }

    fn check_against_reference(entries: &[Entry], t: &KernelTables) {
        let (classes, sets, truncated) = per_port_reference(entries);
        assert_eq!(t.port_classes, classes);
        assert_eq!(t.rule_sets, sets);
        let warned = t
            .warnings
            .iter()
            .find(|w| w.contains("ports are named by more than"));
        match warned {
            Some(w) => assert!(w.starts_with(&format!("{truncated} ports ")), "{w}"),
            None => assert_eq!(truncated, 0),
        }
    }

    #[test]
    fn port_lists_by_segment_match_the_per_port_construction() {
        let no_dns = |_: &str| Vec::new();
        for profile in ["thoughtspot", "auth0-psaas"] {
            for all in [false, true] {
                let policy = profiles::load(profile).unwrap();
                let options = ResolveOptions {
                    release: None,
                    conditions: Conditions {
                        all,
                        enabled: Vec::new(),
                    },
                    dynamic_ports: DynamicPorts::configured(PortRange {
                        lo: 32768,
                        hi: 60999,
                    }),
                };
                let resolved = resolve(&policy, &options).unwrap();
                let entries = entries(&resolved, &[NODES.into()]);
                let inv = Inventory::parse(INV, "inventory.toml").unwrap();
                let t = build(
                    &entries,
                    &Peers {
                        inventory: Some(&inv),
                        default_nodes: &[],
                        resolve: &no_dns,
                    },
                )
                .unwrap();
                assert!(!t.port_classes.is_empty(), "{profile}");
                check_against_reference(&entries, &t);
            }
        }
    }

    proptest::proptest! {
        /// Overlapping ranges, one rule named on several ranges, more rules
        /// on a port than a rule set holds: the segments give each port the
        /// list the per-port construction gives it.
        #[test]
        fn overlapping_ranges_match_the_per_port_construction(
            specs in proptest::collection::vec(
                (0usize..12, 0u8..3, 0u16..300, 0u16..80, proptest::prelude::any::<bool>(), 0usize..3, 0u8..3),
                1..40,
            )
        ) {
            let base = profiles::load("thoughtspot").unwrap().rules[0].clone();
            let rules: Vec<crate::policy::Rule> = (0..12)
                .map(|i| crate::policy::Rule { id: format!("r{i}"), ..base.clone() })
                .collect();
            let roles = ["nodes", "admin", "other"];
            let entries: Vec<Entry> = specs
                .iter()
                .map(|&(rule, proto, lo, len, outbound, role, special)| Entry {
                    rule: &rules[rule],
                    proto: match proto {
                        0 => Proto::Tcp,
                        1 => Proto::Udp,
                        _ => Proto::Icmp,
                    },
                    ports: Some(PortRange {
                        lo: if special == 0 { 65535 - lo.min(10) } else { lo },
                        hi: if special == 0 { 65535 } else { lo.saturating_add(len) },
                    }),
                    direction: if outbound { Direction::Outbound } else { Direction::Inbound },
                    local_role: "nodes",
                    peer: PeerRef::Role(roles[role]),
                    required: special == 1,
                })
                .collect();
            let no_dns = |_: &str| Vec::new();
            let inv = Inventory::parse(INV, "inventory.toml").unwrap();
            let t = build(
                &entries,
                &Peers {
                    inventory: Some(&inv),
                    default_nodes: &[],
                    resolve: &no_dns,
                },
            )
            .unwrap();
            check_against_reference(&entries, &t);
        }
    }

    const INV: &str = "nodes = [\"192.0.2.0/24\"]\nadmin = [\"198.51.100.7\"]\n";
    const NODE1: [u8; 4] = [192, 0, 2, 1];
    const NODE2: [u8; 4] = [192, 0, 2, 2];
    const ADMIN: [u8; 4] = [198, 51, 100, 7];
    const STRANGER: [u8; 4] = [203, 0, 113, 9];

    #[test]
    fn names_that_do_not_resolve_are_listed_once_each_apart_from_warnings() {
        let t = thoughtspot(INV);
        let mut names = t.unresolved.clone();
        assert!(names.iter().any(|n| n == "api.mixpanel.com"), "{names:?}");
        let listed = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), listed, "{:?}", t.unresolved);
        assert!(
            t.warnings.iter().all(|w| !w.contains("api.mixpanel.com")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn zookeeper_between_nodes_is_allowed_both_ways() {
        let t = thoughtspot(INV);
        let syn = tcp(NODE2, NODE1, 40000, 2181, TCP_SYN);
        let v = classify(&t, &Untracked, &syn, PacketDir::Ingress);
        let Verdict::Allowed {
            rule, reply: false, ..
        } = v
        else {
            panic!("{v:?}")
        };
        assert_eq!(t.rule(rule).unwrap().ports, "2181");
        let synack = tcp(NODE1, NODE2, 2181, 40000, TCP_SYN | TCP_ACK);
        assert!(matches!(
            classify(&t, &Untracked, &synack, PacketDir::Egress),
            Verdict::Allowed { reply: true, .. }
        ));
        // bidirectional: node1 may open 2181 on node2 too.
        let out = tcp(NODE1, NODE2, 40001, 2181, TCP_SYN);
        assert!(matches!(
            classify(&t, &Untracked, &out, PacketDir::Egress),
            Verdict::Allowed { reply: false, .. }
        ));
    }

    #[test]
    fn a_stranger_on_an_allowed_port_names_the_nearest_rule() {
        let t = thoughtspot(INV);
        let syn = tcp(STRANGER, NODE1, 40000, 2181, TCP_SYN);
        match classify(&t, &Untracked, &syn, PacketDir::Ingress) {
            Verdict::Unexpected {
                reason: Reason::PeerNotAllowed,
                nearest_rule,
                conn,
            } => {
                assert_eq!(t.rule(nearest_rule).unwrap().ports, "2181");
                assert_eq!((conn.service_port, conn.forward), (2181, true));
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_port_no_document_names_is_unexpected_and_its_reset_is_the_same_flow() {
        let t = thoughtspot(INV);
        // (From the admin host: between nodes, the reset's destination port
        // would fall in the allowed dynamic range.)
        let syn = tcp(ADMIN, NODE1, 40000, 6666, TCP_SYN);
        let Verdict::Unexpected {
            reason: Reason::NoRule,
            conn,
            ..
        } = classify(&t, &Untracked, &syn, PacketDir::Ingress)
        else {
            panic!()
        };
        assert!(conn.forward);
        // The reset alone looks like node1 opening the admin's 40000 (an
        // outbound range rule names it); read the other way it is the SYN's
        // flow, which the kernel finds in its flow table.
        let rst = tcp(NODE1, ADMIN, 6666, 40000, 0x14);
        let Verdict::Unexpected { conn: back, .. } =
            classify(&t, &Untracked, &rst, PacketDir::Egress)
        else {
            panic!()
        };
        let first = FlowKey::new(&syn, &conn);
        assert!(FlowKey::new(&rst, &back) == first || FlowKey::flipped(&rst, &back) == first);
    }

    fn allowed_by(v: Verdict) -> Option<u16> {
        match v {
            Verdict::Allowed { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// The flows a test says are being counted as unexpected.
    struct Counted(Vec<FlowKey>);

    impl FlowLookup for Counted {
        fn tracks(&self, parsed: &Parsed, conn: &Conn) -> bool {
            self.0.contains(&FlowKey::new(parsed, conn))
        }
    }

    #[test]
    fn a_reset_to_a_client_port_in_the_dynamic_range_answers_the_attempt() {
        let t = thoughtspot(INV);
        // node2 opens ZooKeeper on node1 from a port in the dynamic range.
        let syn = tcp(NODE2, NODE1, 40000, 2181, TCP_SYN);
        let Verdict::Allowed { rule, .. } = classify(&t, &Untracked, &syn, PacketDir::Ingress)
        else {
            panic!()
        };
        // node1 refuses it. Read as node1 opening node2's 40000, the
        // dynamic-range rule would allow it; it is the attempt's answer.
        let rst = tcp(NODE1, NODE2, 2181, 40000, TCP_RST | TCP_ACK);
        let v = classify(&t, &Untracked, &rst, PacketDir::Egress);
        assert_eq!(
            v,
            Verdict::Allowed {
                rule,
                required: true,
                reply: true
            }
        );
        // The same from the client's side: the reset arrives.
        let v = classify(&t, &Untracked, &rst, PacketDir::Ingress);
        assert!(matches!(v, Verdict::Allowed { reply: true, .. }), "{v:?}");
        assert_eq!(t.rule(allowed_by(v).unwrap()).unwrap().ports, "2181");
    }

    #[test]
    fn packets_of_an_unexpected_connection_between_nodes_are_its_own() {
        let t = thoughtspot(INV);
        let syn = tcp(NODE2, NODE1, 40000, 6666, TCP_SYN);
        let Verdict::Unexpected { conn, .. } = classify(&t, &Untracked, &syn, PacketDir::Ingress)
        else {
            panic!()
        };
        let counted = Counted(vec![FlowKey::new(&syn, &conn)]);
        let data = tcp(NODE2, NODE1, 40000, 6666, TCP_ACK);
        let answer = tcp(NODE1, NODE2, 6666, 40000, TCP_ACK);
        // Alone, each reads as dynamic-range traffic between nodes...
        for (p, dir) in [(&data, PacketDir::Ingress), (&answer, PacketDir::Egress)] {
            let v = classify(&t, &Untracked, p, dir);
            let rule = t.rule(allowed_by(v).expect("allowed")).unwrap();
            assert_eq!(rule.ports, Ports::DYNAMIC, "{v:?}");
        }
        // ...but they belong to the connection being counted.
        for (p, dir, forward) in [
            (&data, PacketDir::Ingress, true),
            (&answer, PacketDir::Egress, false),
        ] {
            let Verdict::Unexpected { conn: c, .. } = classify(&t, &counted, p, dir) else {
                panic!()
            };
            assert_eq!(c.forward, forward);
            assert_eq!(FlowKey::new(p, &c), counted.0[0]);
        }
        // A connection between nodes on a dynamic port stays allowed.
        let other = tcp(NODE2, NODE1, 40001, 45000, TCP_ACK);
        assert!(matches!(
            classify(&t, &counted, &other, PacketDir::Ingress),
            Verdict::Allowed { .. }
        ));
    }

    #[test]
    fn a_client_port_in_the_dynamic_range_does_not_make_it_the_service() {
        let t = thoughtspot(INV);
        // node1 talks to the admin's 7070 from its ephemeral 45808, a
        // connection already open (no SYN). The dynamic range is allowed
        // between nodes only, but that does not make 45808 the service.
        let out = tcp(NODE1, ADMIN, 45808, 7070, TCP_ACK);
        let back = tcp(ADMIN, NODE1, 7070, 45808, TCP_ACK);
        for (p, dir) in [(&out, PacketDir::Egress), (&back, PacketDir::Ingress)] {
            let Verdict::Unexpected { reason, conn, .. } = classify(&t, &Untracked, p, dir) else {
                panic!()
            };
            assert_eq!(reason, Reason::NoRule);
            assert_eq!(conn.service_port, 7070);
            assert_eq!(conn.direction, ConnDir::Outbound as u32);
        }
        // A stranger's SYN to a node's dynamic port still names that rule.
        let syn = tcp(STRANGER, NODE1, 50000, 45000, TCP_SYN);
        let Verdict::Unexpected {
            reason: Reason::PeerNotAllowed,
            nearest_rule,
            ..
        } = classify(&t, &Untracked, &syn, PacketDir::Ingress)
        else {
            panic!()
        };
        assert_eq!(t.rule(nearest_rule).unwrap().ports, Ports::DYNAMIC);
    }

    #[test]
    fn admin_reaches_http_debug_ports_but_not_rpc_ports() {
        let t = thoughtspot(INV);
        assert!(matches!(
            classify(
                &t,
                &Untracked,
                &tcp(ADMIN, NODE1, 50000, 2101, TCP_SYN),
                PacketDir::Ingress
            ),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            classify(
                &t,
                &Untracked,
                &tcp(ADMIN, NODE1, 50000, 2100, TCP_SYN),
                PacketDir::Ingress
            ),
            Verdict::Unexpected {
                reason: Reason::PeerNotAllowed,
                ..
            }
        ));
    }

    #[test]
    fn unbound_roles_are_listed() {
        let t = thoughtspot(INV);
        assert!(
            t.unbound_roles.iter().any(|r| r == "smtp-relay"),
            "{:?}",
            t.unbound_roles
        );
        assert!(!t.unbound_roles.iter().any(|r| r == "nodes"));
        let _ = IPPROTO_UDP;
    }
}
