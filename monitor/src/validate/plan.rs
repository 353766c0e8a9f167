//! What to try in the lab: one connection per required flow (in the
//! direction the rule says, one sampled port per range, each address family
//! the two hosts share) and a bounded sample of inbound ports that no rule
//! allows, led by the ports the ruleset itself mentions.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use crate::{
    events::ConnDir,
    policy::{
        Resolved,
        model::{Direction as RuleDirection, Proto},
        show::ports_text,
    },
    reach::L4,
};

use super::hosts::{APPLIANCE, Hosts};

/// Most attempts on ports no rule allows; each one that the ruleset drops
/// costs a timeout.
pub const MAX_UNEXPECTED: usize = 64;

/// Ports often left open by mistake, tried when no rule allows them.
const COMMON_PORTS: &[u16] = &[
    21, 23, 111, 135, 139, 445, 1433, 1521, 3306, 3389, 5900, 6379, 9090, 27017,
];

/// Why an attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A required rule's flow: it should work.
    Required,
    /// No rule allows it: the ruleset should stop it.
    Unexpected,
}

/// One connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub purpose: Purpose,
    pub l4: L4,
    pub direction: ConnDir,
    /// Member indices (see [`Hosts`]).
    pub client: usize,
    pub server: usize,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub port: u16,
    /// Required rules this attempt stands for.
    pub rules: Vec<String>,
}

impl Attempt {
    /// The role of the host on the other side of the appliance.
    pub fn peer<'h>(&self, hosts: &'h Hosts) -> &'h str {
        let peer = if self.client == APPLIANCE {
            self.server
        } else {
            self.client
        };
        &hosts.members[peer].role
    }
}

/// A required rule and the attempts that stand for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredRule {
    pub id: String,
    pub source: String,
    pub service: String,
    pub proto: String,
    pub ports: String,
    pub direction: String,
    pub peer: String,
    /// The ports are alternatives: one working is enough.
    pub alternatives: bool,
    pub attempts: Vec<usize>,
    /// Why the rule could not be tried in the lab.
    pub untested: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub attempts: Vec<Attempt>,
    pub rules: Vec<RequiredRule>,
    /// Candidate unexpected attempts left out by [`MAX_UNEXPECTED`].
    pub unexpected_left_out: usize,
    /// Source ports of the lab's clients (see [`ephemeral_window`]).
    pub ephemeral: Option<(u16, u16)>,
}

fn l4(proto: Proto) -> Option<L4> {
    match proto {
        Proto::Tcp => Some(L4::Tcp),
        Proto::Udp => Some(L4::Udp),
        _ => None,
    }
}

type Key = (L4, ConnDir, usize, usize, IpAddr, IpAddr, u16);

#[derive(Default)]
struct Builder {
    attempts: Vec<Attempt>,
    index: BTreeMap<Key, usize>,
}

impl Builder {
    fn add(&mut self, a: Attempt) -> usize {
        let key = (a.l4, a.direction, a.client, a.server, a.src, a.dst, a.port);
        if let Some(&i) = self.index.get(&key) {
            for r in a.rules {
                if !self.attempts[i].rules.contains(&r) {
                    self.attempts[i].rules.push(r);
                }
            }
            return i;
        }
        self.attempts.push(a);
        self.index.insert(key, self.attempts.len() - 1);
        self.attempts.len() - 1
    }
}

/// Whether an active rule allows `l4` `port` inbound from `role`.
fn allows_inbound(resolved: &[Resolved], l4_: L4, port: u16, role: Option<&str>) -> bool {
    resolved.iter().any(|r| {
        r.is_active()
            && l4(r.rule.proto) == Some(l4_)
            && r.rule.direction != RuleDirection::Outbound
            && r.matches_port(port)
            && role.is_none_or(|role| r.rule.peer_role.as_deref() == Some(role))
    })
}

/// The plan for `resolved` rules in a lab of `hosts`; `mentioned` are the
/// destination ports the ruleset names.
pub fn plan(resolved: &[Resolved], hosts: &Hosts, mentioned: &BTreeSet<u16>) -> Plan {
    let mut b = Builder::default();
    let mut rules = Vec::new();
    for r in resolved.iter().filter(|r| r.is_required()) {
        let rule = r.rule;
        let mut req = RequiredRule {
            id: rule.id.clone(),
            source: rule.source.to_string(),
            service: rule.service.clone(),
            proto: rule.proto.name().to_string(),
            ports: ports_text(rule.proto, &r.ports, rule.alternatives),
            direction: crate::policy::show::short_direction(rule.direction).to_string(),
            peer: rule.peer_label(),
            alternatives: rule.alternatives,
            attempts: Vec::new(),
            untested: None,
        };
        req.untested = (|| {
            let l4 = l4(rule.proto)
                .ok_or_else(|| format!("{} rules are not exercised", rule.proto.name()))?;
            let Some(role) = &rule.peer_role else {
                return Err(format!(
                    "the peer is named literally ({}); the lab only plays roles, with documentation or inventory addresses",
                    rule.peer_label()
                ));
            };
            let peer = match hosts.peer(role) {
                Some(p) => p,
                None => {
                    return Err(hosts
                        .unplaced
                        .get(role.as_str())
                        .cloned()
                        .unwrap_or_else(|| format!("no lab host plays `{role}`")));
                }
            };
            let directions: &[ConnDir] = match rule.direction {
                RuleDirection::Inbound => &[ConnDir::Inbound],
                RuleDirection::Outbound => &[ConnDir::Outbound],
                RuleDirection::Bidirectional => &[ConnDir::Inbound, ConnDir::Outbound],
            };
            for &direction in directions {
                let (client, server) = match direction {
                    ConnDir::Inbound => (peer, APPLIANCE),
                    ConnDir::Outbound => (APPLIANCE, peer),
                };
                for range in &r.ports {
                    for v6 in [false, true] {
                        let (Some(src), Some(dst)) = (
                            hosts.members[client].first(v6),
                            hosts.members[server].first(v6),
                        ) else {
                            continue;
                        };
                        req.attempts.push(b.add(Attempt {
                            purpose: Purpose::Required,
                            l4,
                            direction,
                            client,
                            server,
                            src,
                            dst,
                            port: range.lo,
                            rules: vec![rule.id.clone()],
                        }));
                    }
                }
            }
            if req.attempts.is_empty() {
                return Err(format!(
                    "the appliance and `{role}` share no address family"
                ));
            }
            Ok(())
        })()
        .err();
        rules.push(req);
    }
    let left_out = unexpected(&mut b, resolved, hosts, mentioned);
    Plan {
        attempts: b.attempts,
        rules,
        unexpected_left_out: left_out,
        ephemeral: ephemeral_window(resolved),
    }
}

/// Adds the unexpected sample, in order of interest: ports the ruleset
/// mentions that no rule allows (from every peer), common ports no rule
/// allows (from one peer), then mentioned ports allowed only to other roles
/// (each from one peer whose role it is not allowed to). Returns how many
/// candidates the cap left out.
fn unexpected(
    b: &mut Builder,
    resolved: &[Resolved],
    hosts: &Hosts,
    mentioned: &BTreeSet<u16>,
) -> usize {
    let peers: Vec<usize> = (1..hosts.members.len()).collect();
    let appliance = &hosts.members[APPLIANCE];
    let mut candidates: Vec<(usize, u16)> = Vec::new();
    for &port in mentioned {
        if !allows_inbound(resolved, L4::Tcp, port, None) {
            candidates.extend(peers.iter().map(|&p| (p, port)));
        }
    }
    // The sample of common ports comes from a host that is not a node.
    if let Some(&from) = peers
        .iter()
        .find(|&&p| hosts.members[p].role != hosts.members[APPLIANCE].role)
        .or(peers.first())
    {
        for &port in COMMON_PORTS {
            if !allows_inbound(resolved, L4::Tcp, port, None) && !mentioned.contains(&port) {
                candidates.push((from, port));
            }
        }
    }
    let mut turn = 0;
    for &port in mentioned {
        if !allows_inbound(resolved, L4::Tcp, port, None) {
            continue;
        }
        let refused: Vec<usize> = peers
            .iter()
            .copied()
            .filter(|&p| !allows_inbound(resolved, L4::Tcp, port, Some(&hosts.members[p].role)))
            .collect();
        if !refused.is_empty() {
            candidates.push((refused[turn % refused.len()], port));
            turn += 1;
        }
    }
    let mut added = 0;
    let mut left_out = 0;
    for (peer, port) in candidates {
        let member = &hosts.members[peer];
        let family = [false, true]
            .into_iter()
            .find(|&v6| member.first(v6).is_some() && appliance.first(v6).is_some());
        let Some(v6) = family else { continue };
        if added >= MAX_UNEXPECTED {
            left_out += 1;
            continue;
        }
        let (Some(src), Some(dst)) = (member.first(v6), appliance.first(v6)) else {
            continue;
        };
        let before = b.attempts.len();
        b.add(Attempt {
            purpose: Purpose::Unexpected,
            l4: L4::Tcp,
            direction: ConnDir::Inbound,
            client: peer,
            server: APPLIANCE,
            src,
            dst,
            port,
            rules: Vec::new(),
        });
        if b.attempts.len() > before {
            added += 1;
        }
    }
    left_out
}

/// The ephemeral ports the lab's clients use: a window of 1000 ports that no
/// rule names (active or not), so that the monitor never mistakes an answer
/// to an attempt for a new flow to a dynamic-range port.
pub fn ephemeral_window(resolved: &[Resolved]) -> Option<(u16, u16)> {
    const STARTS: [u16; 10] = [
        61000, 62000, 63000, 64000, 10000, 11000, 12000, 13000, 14000, 15000,
    ];
    STARTS
        .into_iter()
        .map(|lo| (lo, lo + 999))
        .find(|&(lo, hi)| {
            !resolved
                .iter()
                .flat_map(|r| r.ports.iter())
                .any(|p| p.lo <= hi && lo <= p.hi)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PortRange, ResolveOptions, resolve::resolve};

    fn thoughtspot_plan(mentioned: &[u16]) -> (Plan, Hosts) {
        let policy = crate::policy::profiles::load("thoughtspot").unwrap();
        let options = crate::policy::resolve::test_options();
        let resolved = resolve(&policy, &options).unwrap();
        let hosts = Hosts::documentation(&policy.roles(), crate::policy::model::NODES);
        let mentioned: BTreeSet<u16> = mentioned.iter().copied().collect();
        (plan(&resolved, &hosts, &mentioned), hosts)
    }

    #[test]
    fn required_flows_go_both_ways_in_both_families() {
        let (plan, hosts) = thoughtspot_plan(&[]);
        let zk = plan.rules.iter().find(|r| r.id == "000-14").unwrap();
        assert_eq!(zk.attempts.len(), 4, "in and out, v4 and v6");
        let a = &plan.attempts[zk.attempts[0]];
        assert_eq!(
            (a.direction, a.port, a.l4),
            (ConnDir::Inbound, 2181, L4::Tcp)
        );
        assert_eq!(a.peer(&hosts), "nodes");
        assert_eq!(a.server, APPLIANCE);
        // One sampled port per range: the dynamic range's first port.
        let dynamic = plan.rules.iter().find(|r| r.id == "000-6").unwrap();
        assert!(
            dynamic
                .attempts
                .iter()
                .all(|&i| plan.attempts[i].port == 40000)
        );
        // Literal peers are not impersonated.
        let callhome = plan.rules.iter().find(|r| r.id == "000-83").unwrap();
        assert!(callhome.untested.as_deref().unwrap().contains("literally"));
        // A duplicate rule shares its original's attempts.
        let dup = plan.rules.iter().find(|r| r.id == "000-41a").unwrap();
        let orig = plan.rules.iter().find(|r| r.id == "000-40").unwrap();
        assert_eq!(dup.attempts, orig.attempts);
        assert!(
            plan.attempts[orig.attempts[0]]
                .rules
                .contains(&"000-41a".to_string())
        );
    }

    /// A cluster policy validated for an agent: the servers' inbound agent
    /// channel is the appliance's outbound attempt, and the servers' own
    /// replication is not the appliance's to try.
    #[test]
    fn an_agent_appliance_tries_its_view_of_the_rules() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/roles/cluster.toml"
        ))
        .unwrap();
        let policy = crate::policy::Policy::from_toml(&text, "cluster.toml").unwrap();
        let view = crate::policy::roles::view(&policy, &["agent".into()]);
        let resolved = resolve(&view, &crate::policy::resolve::test_options()).unwrap();
        let hosts = Hosts::documentation(&view.roles(), "agent");
        assert_eq!(hosts.members[APPLIANCE].role, "agent");
        let plan = plan(&resolved, &hosts, &BTreeSet::new());
        let channel = plan.rules.iter().find(|r| r.id == "c-5").unwrap();
        assert_eq!(channel.untested, None);
        let a = &plan.attempts[channel.attempts[0]];
        assert_eq!(
            (a.direction, a.port, a.client, a.peer(&hosts)),
            (ConnDir::Outbound, 9440, APPLIANCE, "server")
        );
        assert!(plan.rules.iter().all(|r| r.id != "c-6"));
    }

    #[test]
    fn unexpected_sample_starts_with_the_rulesets_extra_ports() {
        let (plan, hosts) = thoughtspot_plan(&[6666, 2181, 22]);
        let unexpected: Vec<&Attempt> = plan
            .attempts
            .iter()
            .filter(|a| a.purpose == Purpose::Unexpected)
            .collect();
        // 6666 from every peer host.
        let extra = unexpected.iter().filter(|a| a.port == 6666).count();
        assert_eq!(extra, hosts.members.len() - 1);
        assert_eq!(unexpected[0].port, 6666);
        // 2181 is allowed from nodes only: tried from another role.
        let zk: Vec<_> = unexpected.iter().filter(|a| a.port == 2181).collect();
        assert_eq!(zk.len(), 1);
        assert_ne!(zk[0].peer(&hosts), "nodes");
        // 22 is allowed to vendor-support only.
        assert!(
            unexpected
                .iter()
                .any(|a| a.port == 22 && a.peer(&hosts) != "vendor-support")
        );
        // Common ports no rule allows, and never one that a rule allows.
        assert!(unexpected.iter().any(|a| a.port == 3306));
        assert!(!unexpected.iter().any(|a| a.port == 443 || a.port == 5432));
        assert!(unexpected.len() <= MAX_UNEXPECTED);
    }

    #[test]
    fn ephemeral_ports_avoid_every_rule() {
        let policy = crate::policy::profiles::load("thoughtspot").unwrap();
        let options = ResolveOptions::all_releases(PortRange {
            lo: 32768,
            hi: 61999,
        });
        let resolved = resolve(&policy, &options).unwrap();
        assert_eq!(ephemeral_window(&resolved), Some((62000, 62999)));
    }
}
