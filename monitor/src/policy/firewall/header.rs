//! The header every exported ruleset starts with, in comments: what policy
//! and which host it is for, what it allows, every rule of the host's share
//! left out and why, and what the reviewer must complete (unbound roles,
//! DNS names). A firewall file is read by people who never saw the policy:
//! it has to say what it is.

use std::collections::BTreeSet;

use super::{Allow, ExportOptions, PeerSet};
use crate::policy::{model::Policy, resolve::ResolveOptions};

/// The header of the ruleset, one line each.
pub fn lines(
    policy: &Policy,
    options: &ResolveOptions,
    export: &ExportOptions,
    sets: &[PeerSet],
    allows: &[Allow],
    omitted: &[String],
) -> Vec<String> {
    let mut h = vec![
        format!(
            "portconform policy export of {} ({} rules), for a host playing {}",
            export.origin,
            policy.rules.len(),
            export.host
        ),
        match &options.release {
            Some(r) => format!("release {r}"),
            None => "rules of every release (no --release)".into(),
        },
        format!(
            "dynamic ports {} ({})",
            options.dynamic_ports.range, options.dynamic_ports.origin
        ),
        String::new(),
        format!(
            "Allowed: the {} rules in force on this host (its own, and its peers' turned round): \
             required rules, conditional rules whose condition is enabled{}.",
            allows
                .iter()
                .map(|a| a.id.as_str())
                .collect::<BTreeSet<_>>()
                .len(),
            if export.include_optional {
                ", and optional rules (--include-optional)"
            } else {
                ""
            }
        ),
        "Always allowed: loopback, established and related traffic, ICMP errors, ICMPv6 \
         packet-too-big and neighbour discovery (hop limit 255)."
            .into(),
        "Everything else is dropped, inbound and outbound. No forward chain: this is the \
         host's own traffic."
            .into(),
    ];
    if !omitted.is_empty() {
        h.push(String::new());
        h.push(format!("Left out ({}):", omitted.len()));
        h.extend(omitted.iter().cloned());
    }
    let notes = set_notes(sets, allows);
    if !notes.is_empty() {
        h.push(String::new());
        h.extend(notes);
    }
    h
}

/// What the reviewer must know about the peers: unbound roles, and DNS
/// names the ruleset cannot hold.
pub fn set_notes(sets: &[PeerSet], allows: &[Allow]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in sets.iter().enumerate() {
        let mut ids: Vec<&str> = allows
            .iter()
            .filter(|a| a.peer == i)
            .map(|a| a.id.as_str())
            .collect();
        ids.dedup();
        let what = match &s.role {
            Some(role) => format!("role {role}"),
            None => format!("the peers of {}", s.name),
        };
        if s.nets.is_empty() && s.names.is_empty() {
            out.push(format!(
                "{what} is not bound in the inventory: {} allow nothing until it is",
                ids.join(", ")
            ));
        } else if !s.names.is_empty() {
            out.push(format!(
                "{what}: DNS names {} are not resolved (the export does not depend on DNS): \
                 add their addresses for {}",
                s.names.join(", "),
                ids.join(", ")
            ));
        }
    }
    out
}
