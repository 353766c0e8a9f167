//! What an exported ruleset allows, whatever its syntax: the rules in force
//! on a host playing the given roles (its own, and its peers' turned round,
//! as the kernel maps see them), their peers bound to addresses by the
//! inventory, and a header saying what was left out and why. Both writers
//! work from this one decision, so an nft and an iptables export of the
//! same policy allow the same traffic.
//!
//! Which rules go in: required rules, and conditional rules whose condition
//! is enabled (`--enable-condition`). Optional rules (`required = "no"`)
//! only with `--include-optional`; a firewall opens what the site needs,
//! where the monitor merely tolerates what the vendor lists. Rules of
//! another release (`--release`) never.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::{Allow, ExportOptions, Firewall, PeerSet, Way};
use crate::policy::{
    error::PolicyError,
    inventory::Inventory,
    model::{Direction, Peer, Policy, PortRange, Required},
    resolve::{self, Entry, PeerRef, ResolveOptions, Resolved, State},
    roles,
};

/// Why a rule the host would enforce is not in the ruleset, or `None` if
/// it is.
fn left_out(r: &Resolved, include_optional: bool) -> Option<String> {
    if !r.is_active() {
        return Some(r.state.to_string());
    }
    if r.is_required() {
        return None;
    }
    match (r.rule.required, &r.state) {
        (Required::No, _) if include_optional => None,
        (Required::No, _) => Some("optional (required = no): --include-optional allows it".into()),
        (_, State::ConditionOff) => Some(format!(
            "condition {:?} not enabled: --enable-condition allows it",
            r.rule.condition.as_deref().unwrap_or("")
        )),
        // is_active and not required leaves the two cases above.
        _ => Some(r.state.to_string()),
    }
}

/// The ruleset of `policy` for the host of `export`.
pub fn build(
    policy: &Policy,
    options: &ResolveOptions,
    export: &ExportOptions,
) -> Result<Firewall, PolicyError> {
    let resolved = resolve::resolve(policy, options)?;
    let product = roles::product_roles(policy);
    let host_roles = &export.host.roles;
    let mut omitted: Vec<String> = Vec::new();
    let mut out_ids: BTreeSet<&str> = BTreeSet::new();
    for r in &resolved {
        if roles::seen_by(r.rule, host_roles, &product).is_none() {
            continue;
        }
        if let Some(why) = left_out(r, export.include_optional) {
            omitted.push(format!("  {} ({}): {why}", r.rule.id, r.rule.source));
            out_ids.insert(&r.rule.id);
        }
    }
    // Flattened from every rule, then filtered: `entries` learns the
    // product's roles from the rules it is given, and a role whose own
    // rules are all left out still enforces its peers' rules turned round.
    let mut entries = resolve::entries(&resolved, host_roles);
    entries.retain(|e| !out_ids.contains(e.rule.id.as_str()));
    let mut sets = Sets::new(export.inventory);
    let mut allows: Vec<Allow> = Vec::new();
    for e in &entries {
        let way = match e.direction {
            Direction::Outbound => Way::Out,
            _ => Way::In,
        };
        let peer = sets.index(e);
        let ports: Vec<PortRange> = e.ports.into_iter().collect();
        match allows.last_mut() {
            Some(last) if last.id == e.rule.id && last.way == way && last.peer == peer => {
                last.ports.extend(ports);
            }
            _ => allows.push(Allow {
                id: e.rule.id.clone(),
                source: e.rule.source.to_string(),
                service: e.rule.service.clone(),
                way,
                proto: e.proto,
                ports,
                peer,
            }),
        }
    }
    for a in &mut allows {
        a.ports = merge(std::mem::take(&mut a.ports));
    }
    let (sets, allows) = sets.finish(allows);
    let header = super::header::lines(policy, options, export, &sets, &allows, &omitted);
    Ok(Firewall {
        header,
        sets,
        allows,
    })
}

/// Port ranges sorted, overlapping and adjacent ones merged (nft refuses
/// overlapping elements in a set).
pub fn merge(mut ranges: Vec<PortRange>) -> Vec<PortRange> {
    ranges.sort();
    let mut out: Vec<PortRange> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if u32::from(r.lo) <= u32::from(last.hi) + 1 => last.hi = last.hi.max(r.hi),
            _ => out.push(r),
        }
    }
    out
}

/// The peer sets, made as entries name them.
struct Sets<'a> {
    inventory: Option<&'a Inventory>,
    sets: Vec<PeerSet>,
    by_key: BTreeMap<(bool, String), usize>,
}

impl<'a> Sets<'a> {
    fn new(inventory: Option<&'a Inventory>) -> Self {
        Sets {
            inventory,
            sets: Vec::new(),
            by_key: BTreeMap::new(),
        }
    }

    fn index(&mut self, e: &Entry) -> usize {
        let key = match e.peer {
            PeerRef::Role(role) => (false, role.to_string()),
            PeerRef::Literals(_) => (true, e.rule.id.clone()),
        };
        if let Some(&i) = self.by_key.get(&key) {
            return i;
        }
        let set = match e.peer {
            PeerRef::Role(role) => {
                let binding = self.inventory.and_then(|inv| inv.binding(role));
                PeerSet {
                    name: role.to_string(),
                    role: Some(role.to_string()),
                    nets: binding
                        .map(|b| IpNet::aggregate(&b.nets))
                        .unwrap_or_default(),
                    names: binding.map(|b| b.names.clone()).unwrap_or_default(),
                }
            }
            PeerRef::Literals(peers) => {
                let nets: Vec<IpNet> = peers
                    .iter()
                    .filter_map(|p| match p {
                        Peer::Net(n) => Some(*n),
                        Peer::Name(_) => None,
                    })
                    .collect();
                PeerSet {
                    name: e.rule.id.clone(),
                    role: None,
                    nets: IpNet::aggregate(&nets),
                    names: peers
                        .iter()
                        .filter_map(|p| match p {
                            Peer::Name(n) => Some(n.clone()),
                            Peer::Net(_) => None,
                        })
                        .collect(),
                }
            }
        };
        self.sets.push(set);
        self.by_key.insert(key, self.sets.len() - 1);
        self.sets.len() - 1
    }

    /// The sets in name order (roles first), the allows pointing at them.
    fn finish(self, mut allows: Vec<Allow>) -> (Vec<PeerSet>, Vec<Allow>) {
        let order: Vec<usize> = self.by_key.values().copied().collect();
        let mut new_index = vec![0; self.sets.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        for a in &mut allows {
            a.peer = new_index[a.peer];
        }
        let sets = order.iter().map(|&i| self.sets[i].clone()).collect();
        (sets, allows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{
        model::NODES,
        profiles,
        resolve::test_options,
        roles::{HostRoles, RolesOrigin},
    };

    fn export(inv: Option<&Inventory>) -> ExportOptions<'_> {
        ExportOptions {
            origin: "profile test".into(),
            host: HostRoles {
                roles: vec![NODES.into()],
                origin: RolesOrigin::Only,
            },
            inventory: inv,
            include_optional: false,
        }
    }

    #[test]
    fn merges_ranges() {
        let r = |lo, hi| PortRange { lo, hi };
        assert_eq!(
            merge(vec![
                r(9300, 9400),
                r(80, 80),
                r(9200, 9200),
                r(81, 90),
                r(9350, 9500)
            ]),
            [r(80, 90), r(9200, 9200), r(9300, 9500)]
        );
    }

    #[test]
    fn thoughtspot_share_with_roles_and_literals() {
        let policy = profiles::load("thoughtspot").unwrap();
        let inv = Inventory::parse(
            "nodes = [\"192.0.2.0/24\", \"192.0.2.7\", \"2001:db8:1::/64\"]\n\
             admin = [\"198.51.100.10\"]\nsmtp-relay = [\"mail.example.com\"]\n",
            "inv.toml",
        )
        .unwrap();
        let fw = build(&policy, &test_options(), &export(Some(&inv))).unwrap();
        let nodes = fw.sets.iter().find(|s| s.name == NODES).unwrap();
        // 192.0.2.7 is inside 192.0.2.0/24: merged away.
        let nets: Vec<String> = nodes.nets.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["192.0.2.0/24", "2001:db8:1::/64"]);
        // Both ways between nodes, the dynamic range resolved.
        let dynamic: Vec<&Allow> = fw.allows.iter().filter(|a| a.id == "000-6").collect();
        assert_eq!(dynamic.len(), 2);
        assert_eq!(dynamic[0].way, Way::In);
        assert_eq!(dynamic[1].way, Way::Out);
        assert_eq!(
            dynamic[0].ports,
            [PortRange {
                lo: 40000,
                hi: 40100
            }]
        );
        // Alternatives: both ports in one allow.
        let smtp = fw.allows.iter().find(|a| a.id == "000-67").unwrap();
        assert_eq!(smtp.ports.len(), 2);
        assert_eq!(fw.sets[smtp.peer].names, ["mail.example.com"]);
        // Literal peers make a set named after their rule.
        let callhome = fw.allows.iter().find(|a| a.id == "000-65").unwrap();
        assert_eq!(fw.sets[callhome.peer].name, "000-65");
        assert_eq!(fw.sets[callhome.peer].role, None);
        // Superseded at 4.6: left out, and said so.
        assert!(fw.allows.iter().all(|a| a.id != "000-69"));
        let header = fw.header.join("\n");
        assert!(
            header.contains("000-69 (000_2809db0a7820664a.txt:69): superseded"),
            "{header}"
        );
        assert!(
            header.contains("role vendor-support is not bound"),
            "{header}"
        );
        assert!(header.contains("DNS names mail.example.com"), "{header}");
    }

    #[test]
    fn optional_and_conditional_rules_are_a_choice() {
        let policy = profiles::load("auth0-psaas").unwrap();
        let mut options = test_options();
        let inv = Inventory::parse("nodes = [\"192.0.2.0/24\"]\n", "inv.toml").unwrap();
        let ids = |options: &ResolveOptions, optional: bool| {
            let mut e = export(Some(&inv));
            e.include_optional = optional;
            let fw = build(&policy, options, &e).unwrap();
            let mut ids: Vec<String> = fw.allows.iter().map(|a| a.id.clone()).collect();
            ids.dedup();
            (ids, fw.header.join("\n"))
        };
        let (plain, header) = ids(&options, false);
        assert!(!plain.contains(&"004-47".to_string()));
        assert!(!plain.contains(&"004-83".to_string()));
        assert!(plain.contains(&"004-35".to_string()));
        assert!(
            header.contains("004-47 (004_f8af2c70398e4594.txt:47): condition"),
            "{header}"
        );
        assert!(
            header.contains("004-83 (004_f8af2c70398e4594.txt:83): optional"),
            "{header}"
        );
        let (with_optional, _) = ids(&options, true);
        assert!(with_optional.contains(&"004-83".to_string()));
        assert!(!with_optional.contains(&"004-47".to_string()));
        options.conditions.enabled.push("rate limiting".into());
        let (enabled, _) = ids(&options, false);
        assert!(enabled.contains(&"004-47".to_string()));
    }
}
