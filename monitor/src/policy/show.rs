//! `policy show`: every rule, role and skipped row, as a table that fits a
//! 100-column terminal or as JSON (the DESIGN.md contract).

use std::io::{self, Write};

use serde_json::{Value, json};

use super::{
    model::{Direction, NODES, Policy, PortRange, Ports, Proto, Required},
    resolve::{ResolveOptions, Resolved, State},
};

/// The JSON object of one rule: the contract fields (`id`, `proto`, `ports`,
/// `direction`, `local_role`, `peer_role`/`peer`, `required`, `condition`,
/// `service`, `source`, `superseded_by`) plus the state under the options.
pub fn rule_json(r: &Resolved) -> Value {
    let rule = r.rule;
    json!({
        "id": rule.id,
        "proto": rule.proto,
        "ports": r.ports.iter().map(|p| [p.lo, p.hi]).collect::<Vec<_>>(),
        "dynamic_ports": rule.ports == Ports::Dynamic,
        "alternatives": rule.alternatives,
        "direction": rule.direction,
        "local_role": rule.local_role,
        "peer_role": rule.peer_role,
        "peer": rule.peer,
        "required": rule.required,
        "condition": rule.condition,
        "service": rule.service,
        "source": rule.source,
        "since": rule.since,
        "until": rule.until,
        "superseded_by": rule.superseded_by,
        "duplicate_of": rule.duplicate_of,
        "active": r.is_active(),
        "state": r.state.to_string(),
        "notes": rule.notes,
        "review": rule.review,
    })
}

pub fn json(policy: &Policy, resolved: &[Resolved], options: &ResolveOptions) -> Value {
    json!({
        "documents": policy.documents,
        "resolution": {
            "release": options.release,
            "enabled_conditions": if options.conditions.all {
                vec!["all".to_string()]
            } else {
                options.conditions.enabled.clone()
            },
            "dynamic_ports": [options.dynamic_ports.range.lo, options.dynamic_ports.range.hi],
            "dynamic_ports_from": options.dynamic_ports.origin.to_string(),
        },
        "rules": resolved.iter().map(rule_json).collect::<Vec<_>>(),
        "roles": policy.roles(),
        "skipped": policy.skipped,
        "decisions": policy.decisions,
        "warnings": policy.warnings,
    })
}

pub fn short_direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "in",
        Direction::Outbound => "out",
        Direction::Bidirectional => "both",
    }
}

/// Ports as shown to people: `25|587` for alternatives, `9200,9300-9400`
/// for a list, `-` for ICMP.
pub fn ports_text(proto: Proto, ports: &[PortRange], alternatives: bool) -> String {
    if !proto.has_ports() {
        return "-".into();
    }
    let sep = if alternatives { "|" } else { "," };
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        format!("{text:width$}")
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn required_text(r: Required) -> &'static str {
    match r {
        Required::Yes => "yes",
        Required::No => "no",
        Required::Conditional => "cond",
    }
}

/// Lines under a rule that say why it is special: condition, release,
/// duplicate, dynamic range, inactive state.
pub fn annotations(r: &Resolved, options: &ResolveOptions) -> Vec<String> {
    let rule = r.rule;
    let mut out = Vec::new();
    if let Some(c) = &rule.condition {
        let on = if r.state == State::ConditionOff {
            "off"
        } else {
            "on"
        };
        out.push(format!("if {c} [{on}]"));
    }
    let release_state = matches!(r.state, State::Superseded { .. } | State::NotYet { .. });
    if release_state {
        out.push(format!("inactive: {}", r.state));
    } else {
        match (&rule.until, &rule.superseded_by) {
            (Some(until), Some(by)) => {
                out.push(format!("before release {until}; superseded by {by}"))
            }
            (Some(until), None) => out.push(format!("before release {until}")),
            _ => {}
        }
        if let Some(since) = &rule.since {
            out.push(format!("from release {since}"));
        }
    }
    if rule.ports == Ports::Dynamic {
        out.push(format!(
            "dynamic ports {} from {}",
            options.dynamic_ports.range, options.dynamic_ports.origin
        ));
    }
    if let Some(d) = &rule.duplicate_of {
        out.push(format!("duplicate of {d}"));
    }
    out.extend(rule.review.iter().map(|why| format!("review: {why}")));
    out
}

/// Terminal width the table is laid out for.
const WIDTH: usize = 100;

/// Word-wraps `text` to [`WIDTH`]: the first line starts with `first`, the
/// others with `indent`.
fn wrap(first: &str, text: &str, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = first.to_string();
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let extra = usize::from(!empty) + word.chars().count();
        if !empty && current.chars().count() + extra > WIDTH {
            lines.push(std::mem::replace(&mut current, indent.to_string()));
        } else if !empty {
            current.push(' ');
        }
        current.push_str(word);
        empty = false;
    }
    lines.push(current);
    lines
}

pub fn table(
    out: &mut dyn Write,
    policy: &Policy,
    resolved: &[Resolved],
    options: &ResolveOptions,
) -> io::Result<()> {
    let uniform_local = resolved.iter().all(|r| r.rule.local_role == NODES);
    if let Some(release) = &options.release {
        writeln!(out, "release {release}")?;
    }
    for doc in &policy.documents {
        let rules: Vec<&Resolved> = resolved
            .iter()
            .filter(|r| r.rule.source.doc == doc.name)
            .collect();
        let active = rules.iter().filter(|r| r.is_active()).count();
        let review = rules.iter().filter(|r| !r.rule.review.is_empty()).count();
        writeln!(
            out,
            "{} ({} rules, {} active, {} to review{})",
            doc.name,
            rules.len(),
            active,
            review,
            if uniform_local {
                "; local role: nodes"
            } else {
                ""
            }
        )?;
        let local_header = if uniform_local { "" } else { "LOCAL    " };
        writeln!(
            out,
            "  {:<9} {:<5} {:<13} {:<4} {local_header}{:<22} {:<4} {:>4}  SERVICE",
            "ID", "PROTO", "PORTS", "DIR", "PEER", "REQ", "LINE"
        )?;
        for r in rules {
            let rule = r.rule;
            let marker = match (r.is_active(), rule.review.is_empty()) {
                (false, _) => '-',
                (true, false) => '?',
                (true, true) => ' ',
            };
            let local = if uniform_local {
                String::new()
            } else {
                format!("{} ", fit(&rule.local_role, 8))
            };
            let ports = ports_text(rule.proto, &r.ports, rule.alternatives);
            writeln!(
                out,
                "{marker} {} {:<5} {} {:<4} {local}{} {:<4} {:>4}  {}",
                fit(&rule.id, 9),
                rule.proto.name(),
                fit(&ports, 13),
                short_direction(rule.direction),
                fit(&rule.peer_label(), 22),
                required_text(rule.required),
                rule.source.line,
                fit(&rule.service, 27).trim_end(),
            )?;
            for a in annotations(r, options) {
                for line in wrap(&format!("  {:9} └ ", ""), &a, &format!("  {:9}   ", "")) {
                    writeln!(out, "{line}")?;
                }
            }
        }
        writeln!(out)?;
    }
    let roles = format!(
        "roles (bind them in the inventory): {}",
        policy.roles().join(", ")
    );
    for line in wrap("", &roles, "    ") {
        writeln!(out, "{line}")?;
    }
    if !policy.skipped.is_empty() {
        writeln!(out, "skipped ({}):", policy.skipped.len())?;
        for s in &policy.skipped {
            let text = format!("{}: {}: {}", s.source, s.what, s.reason);
            for line in wrap("  ", &text, "      ") {
                writeln!(out, "{line}")?;
            }
        }
    }
    writeln!(
        out,
        "{} warnings, {} decisions recorded (--notes lists them)",
        policy.warnings.len(),
        policy.decisions.len()
    )?;
    writeln!(
        out,
        "- marks a rule that does not apply under the given release/conditions"
    )?;
    writeln!(
        out,
        "? marks a rule the compiler had to guess at: its review lines say what to check"
    )?;
    Ok(())
}

/// The compiler's warnings and table-level decisions, for reviewing an
/// embedded profile or a policy compiled elsewhere.
pub fn notes(out: &mut dyn Write, policy: &Policy) -> io::Result<()> {
    for (title, notes) in [
        ("warnings", &policy.warnings),
        ("decisions", &policy.decisions),
    ] {
        writeln!(out, "{title} ({}):", notes.len())?;
        for n in notes {
            for line in wrap("  ", &n.to_string(), "      ") {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}
