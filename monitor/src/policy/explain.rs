//! `policy explain PORT[/PROTO]`: which rules allow a port, with which
//! peers, and the document line behind each: the question an operator asks
//! when a flow is reported.

use std::{
    fmt,
    io::{self, Write},
    str::FromStr,
};

use serde_json::{Value, json};

use super::{
    model::{Direction, Proto},
    resolve::{ResolveOptions, Resolved},
    show,
};

/// What to explain: a port (optionally with a protocol), or ICMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub port: Option<u16>,
    pub proto: Option<Proto>,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(Proto::Icmp) = s.parse::<Proto>() {
            return Ok(Target {
                port: None,
                proto: Some(Proto::Icmp),
            });
        }
        let (port, proto) = match s.split_once('/') {
            Some((p, proto)) => (p, Some(proto.parse::<Proto>()?)),
            None => (s, None),
        };
        if proto == Some(Proto::Icmp) {
            return Err("ICMP has no ports: use `icmp` alone".into());
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("{port:?} is not a port (1-65535)")),
        };
        Ok(Target {
            port: Some(port),
            proto,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.proto) {
            (Some(p), Some(proto)) => write!(f, "{p}/{proto}"),
            (Some(p), None) => write!(f, "port {p}"),
            (None, _) => f.write_str("icmp"),
        }
    }
}

impl Target {
    pub fn matches(&self, r: &Resolved) -> bool {
        if self.proto.is_some_and(|p| p != r.rule.proto) {
            return false;
        }
        match self.port {
            Some(port) => r.rule.proto.has_ports() && r.matches_port(port),
            None => r.rule.proto == Proto::Icmp,
        }
    }
}

/// The rules matching `target`, active ones first (then policy order).
pub fn matching<'a, 'p>(resolved: &'a [Resolved<'p>], target: &Target) -> Vec<&'a Resolved<'p>> {
    let mut hits: Vec<&Resolved> = resolved.iter().filter(|r| target.matches(r)).collect();
    hits.sort_by_key(|r| !r.is_active());
    hits
}

fn peer_phrase(r: &Resolved) -> String {
    let peer = r.rule.peer_label();
    match r.rule.direction {
        Direction::Inbound => format!("inbound from {peer}"),
        Direction::Outbound => format!("outbound to {peer}"),
        Direction::Bidirectional => format!("both ways with {peer}"),
    }
}

pub fn text(
    out: &mut dyn Write,
    target: &Target,
    resolved: &[Resolved],
    options: &ResolveOptions,
) -> io::Result<()> {
    let hits = matching(resolved, target);
    let active = hits.iter().filter(|r| r.is_active()).count();
    let required = hits.iter().filter(|r| r.is_required()).count();
    if hits.is_empty() {
        writeln!(out, "no rule allows {target}")?;
        if let (Some(port), Some(_)) = (target.port, target.proto) {
            let other: Vec<String> = resolved
                .iter()
                .filter(|r| r.rule.proto.has_ports() && r.matches_port(port))
                .map(|r| format!("{} ({})", r.rule.id, r.rule.proto))
                .collect();
            if !other.is_empty() {
                writeln!(out, "other protocols on port {port}: {}", other.join(", "))?;
            }
        }
        return Ok(());
    }
    writeln!(
        out,
        "{target}: {} rule{} ({active} active, {required} required)",
        hits.len(),
        if hits.len() == 1 { "" } else { "s" }
    )?;
    for r in hits {
        let rule = r.rule;
        let ports = if rule.proto.has_ports() {
            format!(
                " {}",
                show::ports_text(rule.proto, &r.ports, rule.alternatives)
            )
        } else {
            String::new()
        };
        let required = match &rule.condition {
            Some(c) => format!("required if {c}"),
            None => format!("required: {}", rule.required.name()),
        };
        let marker = if r.is_active() { ' ' } else { '-' };
        writeln!(
            out,
            "{marker} {:<9} {}{ports} {}, local role {}, {required}",
            rule.id,
            rule.proto,
            peer_phrase(r),
            rule.local_role
        )?;
        writeln!(
            out,
            "  {:9} service {:?}, from {}",
            "", rule.service, rule.source
        )?;
        for a in show::annotations(r, options) {
            writeln!(out, "  {:9} └ {a}", "")?;
        }
    }
    Ok(())
}

pub fn json(target: &Target, resolved: &[Resolved]) -> Value {
    json!({
        "query": {
            "port": target.port,
            "proto": target.proto,
        },
        "rules": matching(resolved, target).into_iter().map(show::rule_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            "443/tcp".parse::<Target>(),
            Ok(Target {
                port: Some(443),
                proto: Some(Proto::Tcp)
            })
        );
        assert_eq!(
            "53".parse::<Target>(),
            Ok(Target {
                port: Some(53),
                proto: None
            })
        );
        assert_eq!(
            "ICMP".parse::<Target>(),
            Ok(Target {
                port: None,
                proto: Some(Proto::Icmp)
            })
        );
        assert!("70000".parse::<Target>().is_err());
        assert!("80/sctp".parse::<Target>().is_err());
        assert!("80/icmp".parse::<Target>().is_err());
    }
}
