//! Which rules a host enforces. A product has host roles (the rules' local
//! roles: `nodes` for the seeds; servers and agents, control plane and
//! workers elsewhere), and a host plays one or more of them. It enforces the
//! rules whose local role it plays, as written, and the rules whose *peer*
//! is a role it plays, seen from the other end: traffic between two roles of
//! a product is one fact, so inbound on one role is outbound on the other.

use std::{collections::BTreeSet, fmt, net::IpAddr};

use super::{
    inventory::Inventory,
    model::{Direction, NODES, Policy, Rule},
};

/// The product's host roles: every rule's local role, in name order.
pub fn product_roles(policy: &Policy) -> BTreeSet<&str> {
    policy.rules.iter().map(|r| r.local_role.as_str()).collect()
}

/// Roles of a host, and how they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoles {
    pub roles: Vec<String>,
    pub origin: RolesOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolesOrigin {
    /// `--role`.
    Given,
    /// The host's addresses in the inventory.
    Inventory { addrs: Vec<IpAddr> },
    /// The product has one host role, so every host plays it.
    Only,
}

impl fmt::Display for HostRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles = self.roles.join(", ");
        match &self.origin {
            RolesOrigin::Given => write!(f, "{roles} (--role)"),
            RolesOrigin::Inventory { addrs } => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                let noun = if list.len() == 1 {
                    "address"
                } else {
                    "addresses"
                };
                write!(
                    f,
                    "{roles} (its {noun} {} in the inventory)",
                    list.join(", ")
                )
            }
            RolesOrigin::Only => write!(f, "{roles} (the product's only host role)"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RolesError {
    #[error("--role {given}: the policy has no host role of that name (its roles: {known})")]
    Unknown { given: String, known: String },
    #[error(
        "this host ({addrs}) plays none of the policy's host roles ({known}): list one of its addresses under its role in --inventory, or give --role NAME"
    )]
    NotInInventory { addrs: String, known: String },
    #[error(
        "the policy has several host roles ({known}): say which this host plays with --role NAME, or give --inventory listing its address"
    )]
    Unknowable { known: String },
}

/// The roles the host with `addrs` plays: `given` (`--role`) if any, else
/// the roles whose inventory binding holds one of its addresses, else the
/// product's only role. A host that plays none is an error naming the roles.
pub fn host_roles(
    policy: &Policy,
    given: &[String],
    inventory: Option<&Inventory>,
    addrs: &[IpAddr],
) -> Result<HostRoles, RolesError> {
    let product = product_roles(policy);
    let known = || product.iter().copied().collect::<Vec<_>>().join(", ");
    if !given.is_empty() {
        for role in given {
            if !product.contains(role.as_str()) {
                return Err(RolesError::Unknown {
                    given: role.clone(),
                    known: known(),
                });
            }
        }
        let mut roles = given.to_vec();
        roles.sort();
        roles.dedup();
        return Ok(HostRoles {
            roles,
            origin: RolesOrigin::Given,
        });
    }
    // A product with one host role (the seeds: `nodes`) needs no binding
    // of this host: it plays that role, as it always has.
    if product.len() <= 1 {
        return Ok(HostRoles {
            roles: product.iter().map(|r| r.to_string()).collect(),
            origin: RolesOrigin::Only,
        });
    }
    let Some(inventory) = inventory else {
        return Err(RolesError::Unknowable { known: known() });
    };
    let mut roles = Vec::new();
    let mut matched = Vec::new();
    for role in &product {
        let Some(binding) = inventory.binding(role) else {
            continue;
        };
        let hits: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|a| binding.nets.iter().any(|n| n.contains(a)))
            .collect();
        if !hits.is_empty() {
            roles.push(role.to_string());
            matched.extend(hits);
        }
    }
    if roles.is_empty() {
        let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        return Err(RolesError::NotInInventory {
            addrs: if addrs.is_empty() {
                "no address".into()
            } else {
                addrs.join(", ")
            },
            known: known(),
        });
    }
    matched.sort();
    matched.dedup();
    Ok(HostRoles {
        roles,
        origin: RolesOrigin::Inventory { addrs: matched },
    })
}

/// How a host sees a rule it enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Who opens the connection, from the host's end.
    pub direction: Direction,
    /// The host plays the rule's peer role, not its local role: local and
    /// peer swap.
    pub turned: bool,
}

/// Whether a host playing `roles` enforces `rule`, and from which end: its
/// own rules as written; rules whose peer is a role of the product that it
/// plays, turned round (direction flipped); a rule whose both ends it plays
/// (every seed node, for nodes ↔ nodes) both ways.
pub fn seen_by(rule: &Rule, roles: &[String], product: &BTreeSet<&str>) -> Option<Seen> {
    let plays = |role: &str| roles.iter().any(|r| r == role);
    let local = plays(&rule.local_role);
    let peer = rule
        .peer_role
        .as_deref()
        .is_some_and(|p| product.contains(p) && plays(p));
    let direction = match (local, peer) {
        (true, false) => rule.direction,
        (true, true) => Direction::Bidirectional,
        (false, true) => match rule.direction {
            Direction::Inbound => Direction::Outbound,
            Direction::Outbound => Direction::Inbound,
            Direction::Bidirectional => Direction::Bidirectional,
        },
        (false, false) => return None,
    };
    Some(Seen {
        direction,
        turned: !local,
    })
}

/// The policy as a host playing `roles` enforces it (see [`seen_by`]),
/// for `policy show --role`. Each rule keeps its id and source, so what is
/// shown cites the document line either way.
pub fn view(policy: &Policy, roles: &[String]) -> Policy {
    let product = product_roles(policy);
    let rules = policy
        .rules
        .iter()
        .filter_map(|rule| {
            let seen = seen_by(rule, roles, &product)?;
            let mut r = rule.clone();
            r.direction = seen.direction;
            if seen.turned {
                r.peer_role = Some(std::mem::replace(
                    &mut r.local_role,
                    rule.peer_role.clone().unwrap_or_default(),
                ));
            }
            Some(r)
        })
        .collect();
    Policy {
        rules,
        ..policy.clone()
    }
}

/// Whether the policy names more than the seeds' single `nodes` role.
pub fn has_roles(policy: &Policy) -> bool {
    product_roles(policy).iter().any(|r| *r != NODES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{PortRange, Ports, Proto, Required, Source};

    fn rule(id: &str, local: &str, direction: Direction, peer: &str, port: u16) -> Rule {
        Rule {
            id: id.into(),
            service: "s".into(),
            proto: Proto::Tcp,
            ports: Ports::List(vec![PortRange { lo: port, hi: port }]),
            alternatives: false,
            direction,
            local_role: local.into(),
            peer_role: Some(peer.into()),
            peer: Vec::new(),
            required: Required::Yes,
            condition: None,
            since: None,
            until: None,
            superseded_by: None,
            duplicate_of: None,
            source: Source {
                doc: "d.md".into(),
                line: 1,
            },
            notes: Vec::new(),
            review: Vec::new(),
        }
    }

    fn cluster() -> Policy {
        let mut p = crate::policy::profiles::load("thoughtspot").unwrap();
        p.rules = vec![
            rule("1", "server", Direction::Inbound, "agent", 9440),
            rule("2", "agent", Direction::Outbound, "clients", 443),
            rule("3", "server", Direction::Bidirectional, "server", 7000),
        ];
        p
    }

    #[test]
    fn a_role_sees_its_rules_and_its_peers_rules_turned_round() {
        let p = cluster();
        let agent = view(&p, &["agent".into()]);
        let seen: Vec<(&str, Direction, &str, &str)> = agent
            .rules
            .iter()
            .map(|r| {
                (
                    r.id.as_str(),
                    r.direction,
                    r.local_role.as_str(),
                    r.peer_role.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("1", Direction::Outbound, "agent", "server"),
                ("2", Direction::Outbound, "agent", "clients"),
            ]
        );
        let server = view(&p, &["server".into()]);
        let ids: Vec<&str> = server.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["1", "3"]);
        assert_eq!(server.rules[0].direction, Direction::Inbound);
        // Playing both ends of a rule: one rule, both ways.
        let both = view(&p, &["agent".into(), "server".into()]);
        assert_eq!(both.rules[0].direction, Direction::Bidirectional);
    }

    #[test]
    fn the_seeds_view_is_nodes_both_ways() {
        let p = crate::policy::profiles::load("thoughtspot").unwrap();
        assert!(!has_roles(&p));
        let roles = host_roles(&p, &[], None, &[]).unwrap();
        assert_eq!(roles.roles, ["nodes"]);
        assert_eq!(roles.origin, RolesOrigin::Only);
        let v = view(&p, &roles.roles);
        assert_eq!(v.rules.len(), p.rules.len());
        for (seen, written) in v.rules.iter().zip(&p.rules) {
            assert_eq!(seen.id, written.id);
            if written.peer_role.as_deref() == Some(NODES) {
                assert_eq!(seen.direction, Direction::Bidirectional, "{}", seen.id);
            } else {
                assert_eq!(seen.direction, written.direction, "{}", seen.id);
            }
        }
    }

    #[test]
    fn roles_come_from_role_flags_then_the_inventory() {
        let p = cluster();
        let inv = Inventory::parse(
            "server = [\"192.0.2.1\"]\nagent = [\"192.0.2.0/28\"]\nclients = [\"198.51.100.0/24\"]\n",
            "inv.toml",
        )
        .unwrap();
        let a = |s: &str| -> IpAddr { s.parse().unwrap() };
        let r = host_roles(&p, &[], Some(&inv), &[a("192.0.2.1")]).unwrap();
        assert_eq!(r.roles, ["agent", "server"]);
        let r = host_roles(&p, &[], Some(&inv), &[a("192.0.2.9")]).unwrap();
        assert_eq!(r.roles, ["agent"]);
        assert_eq!(
            r.to_string(),
            "agent (its address 192.0.2.9 in the inventory)"
        );
        let r = host_roles(&p, &["server".into()], Some(&inv), &[a("192.0.2.9")]).unwrap();
        assert_eq!(r.roles, ["server"]);
        let err = host_roles(&p, &[], Some(&inv), &[a("203.0.113.5")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this host (203.0.113.5) plays none of the policy's host roles (agent, server): list one of its addresses under its role in --inventory, or give --role NAME"
        );
        let err = host_roles(&p, &["worker".into()], None, &[]).unwrap_err();
        assert!(
            err.to_string().contains("its roles: agent, server"),
            "{err}"
        );
        assert!(matches!(
            host_roles(&p, &[], None, &[]),
            Err(RolesError::Unknowable { .. })
        ));
    }
}
