//! What `probe` may try: the required outbound flows of the policy, to the
//! inventory's own addresses only. Networks are not scanned: a CIDR entry
//! is skipped (with a note) unless a small sample of its first hosts is
//! asked for; DNS names are resolved only when asked.

use std::{collections::BTreeSet, net::IpAddr};

use crate::{
    policy::{Inventory, Resolved, model::Direction, model::Proto},
    reach::L4,
    validate::hosts::nth_host,
};

/// Hosts of one CIDR entry at most, whatever `--cidr-sample` says.
pub const MAX_CIDR_SAMPLE: u32 = 16;

/// One probe: a required rule's port on one inventory address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub rules: Vec<String>,
    pub sources: Vec<String>,
    pub role: String,
    pub l4: L4,
    pub addr: IpAddr,
    pub port: u16,
    /// Another port of the same rule may answer instead.
    pub alternatives: bool,
}

/// Resolves a DNS name to its addresses.
pub type Resolve<'a> = &'a dyn Fn(&str) -> Vec<IpAddr>;

pub struct Options<'a> {
    pub cidr_sample: u32,
    /// Resolves a DNS name of the inventory; `None`: names are skipped.
    pub resolve: Option<Resolve<'a>>,
    /// This host's own addresses: never probed.
    pub local: &'a BTreeSet<IpAddr>,
}

/// The targets, and notes on everything left out.
pub fn targets(
    resolved: &[Resolved],
    inventory: &Inventory,
    opts: &Options,
) -> (Vec<Target>, Vec<String>) {
    let mut out: Vec<Target> = Vec::new();
    let mut notes: BTreeSet<String> = BTreeSet::new();
    for r in resolved.iter().filter(|r| r.is_required()) {
        let rule = r.rule;
        // The rules are the host's view (`policy::roles::view`): every local
        // role is one it plays.
        if rule.direction == Direction::Inbound {
            continue;
        }
        let l4 = match rule.proto {
            Proto::Tcp => L4::Tcp,
            Proto::Udp => L4::Udp,
            other => {
                notes.insert(format!("{}: {} is not probed", rule.id, other.name()));
                continue;
            }
        };
        let Some(role) = &rule.peer_role else {
            notes.insert(format!(
                "{}: its peer ({}) is named by the document, not the inventory: not probed",
                rule.id,
                rule.peer_label()
            ));
            continue;
        };
        let Some(binding) = inventory.binding(role) else {
            notes.insert(format!(
                "{}: role `{role}` is not in the inventory: not probed",
                rule.id
            ));
            continue;
        };
        let mut addrs: Vec<IpAddr> = Vec::new();
        for net in &binding.nets {
            let single = net.prefix_len() == net.max_prefix_len();
            if single {
                addrs.push(net.addr());
                continue;
            }
            let n = opts.cidr_sample.min(MAX_CIDR_SAMPLE);
            if n == 0 {
                notes.insert(format!(
                    "role `{role}`: network {net} is not scanned (give --cidr-sample N to try its first N hosts)"
                ));
                continue;
            }
            let sample: Vec<IpAddr> = (0..n).filter_map(|i| nth_host(net, i)).collect();
            notes.insert(format!(
                "role `{role}`: network {net}: only its first {} hosts are tried",
                sample.len()
            ));
            addrs.extend(sample);
        }
        for name in &binding.names {
            match opts.resolve {
                Some(resolve) => {
                    let found = resolve(name);
                    if found.is_empty() {
                        notes.insert(format!("role `{role}`: {name} did not resolve"));
                    }
                    addrs.extend(found);
                }
                None => {
                    notes.insert(format!(
                        "role `{role}`: {name} is not resolved (give --resolve-names)"
                    ));
                }
            }
        }
        for addr in addrs {
            if opts.local.contains(&addr) {
                continue;
            }
            for range in &r.ports {
                let port = range.lo;
                if range.lo != range.hi {
                    notes.insert(format!("{}: ports {range}: only {port} is tried", rule.id));
                }
                match out
                    .iter_mut()
                    .find(|t| t.l4 == l4 && t.addr == addr && t.port == port)
                {
                    Some(t) => {
                        if !t.rules.contains(&rule.id) {
                            t.rules.push(rule.id.clone());
                            t.sources.push(rule.source.to_string());
                        }
                        t.alternatives &= rule.alternatives;
                    }
                    None => out.push(Target {
                        rules: vec![rule.id.clone()],
                        sources: vec![rule.source.to_string()],
                        role: role.clone(),
                        l4,
                        addr,
                        port,
                        alternatives: rule.alternatives,
                    }),
                }
            }
        }
    }
    (out, notes.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::resolve::resolve;

    #[test]
    fn only_inventory_hosts_are_targets() {
        let policy = crate::policy::profiles::load("thoughtspot").unwrap();
        let options = crate::policy::resolve::test_options();
        let resolved = resolve(&policy, &options).unwrap();
        let inv = Inventory::parse(
            "nodes = [\"192.0.2.1\", \"192.0.2.2\", \"198.51.100.0/24\"]\nsmtp-relay = [\"203.0.113.25\", \"mail.example.com\"]\n",
            "inv.toml",
        )
        .unwrap();
        let local: BTreeSet<IpAddr> = ["192.0.2.1".parse().unwrap()].into();
        let opts = Options {
            cidr_sample: 0,
            resolve: None,
            local: &local,
        };
        let (targets, notes) = targets(&resolved, &inv, &opts);
        let addrs: BTreeSet<String> = targets.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(
            addrs,
            ["192.0.2.2", "203.0.113.25"].map(String::from).into()
        );
        let zk = targets.iter().find(|t| t.port == 2181).unwrap();
        assert_eq!(zk.rules, ["000-14"]);
        let smtp: Vec<u16> = targets
            .iter()
            .filter(|t| t.role == "smtp-relay")
            .map(|t| t.port)
            .collect();
        assert_eq!(smtp, [25, 587]);
        assert!(
            targets
                .iter()
                .filter(|t| t.role == "smtp-relay")
                .all(|t| t.alternatives)
        );
        // Inbound-only rules (80 from nodes) are not probed.
        assert!(!targets.iter().any(|t| t.port == 80));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("198.51.100.0/24 is not scanned")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("mail.example.com is not resolved"))
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("000-83") && n.contains("not the inventory"))
        );

        let opts = Options {
            cidr_sample: 1000,
            resolve: Some(&|_| vec!["203.0.113.26".parse().unwrap()]),
            local: &local,
        };
        let (targets, _) = super::targets(&resolved, &inv, &opts);
        let sampled = targets
            .iter()
            .filter(|t| t.addr.to_string().starts_with("198.51.100."))
            .map(|t| t.addr)
            .collect::<BTreeSet<_>>();
        assert_eq!(sampled.len(), MAX_CIDR_SAMPLE as usize);
        assert!(targets.iter().any(|t| t.addr.to_string() == "203.0.113.26"));
    }
}
