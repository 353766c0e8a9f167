//! From/To matrices: a table whose rows are the hosts that open connections,
//! whose columns are the hosts that receive them, and whose cells list the
//! ports ("22 TCP", "8472 UDP", "443 TCP (3)"). Spanned cells arrive
//! repeated in every row and column they cover (`document::html`); each
//! pair of ends and ports yields its rules once.
//!
//! The hosts named both as a row and as a column are the product's roles. A
//! rule's local role is the receiving end when it is one of them (inbound
//! from the opener), otherwise the opening end (outbound to the receiver).

use std::collections::HashSet;

use super::{
    Ctx, footnotes,
    normalize::{endpoints, ports},
    roles,
};
use crate::policy::{
    document::Table,
    model::{Direction, NODES, Peer, Ports, Proto, Required, Rule},
};

/// Whether `table` is a From/To matrix: its corner cell names both sides
/// ("From / To", "Source \ Destination") and no column holds ports.
pub fn is_matrix(table: &Table) -> bool {
    let Some(corner) = table.header.first() else {
        return false;
    };
    let lower = corner.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let from = words
        .iter()
        .any(|w| matches!(*w, "from" | "source" | "src"));
    let to = words
        .iter()
        .any(|w| matches!(*w, "to" | "destination" | "dest" | "dst"));
    from && to
        && table.header.len() > 2
        && !table.header[1..].iter().any(|h| {
            h.to_lowercase()
                .split_whitespace()
                .any(|w| w == "port" || w == "ports")
        })
}

/// One end of a matrix cell.
struct End {
    /// The name as written, markers removed.
    name: String,
    /// Its role slug when it is one of the product's roles.
    role: Option<String>,
}

pub fn compile(ctx: &mut Ctx, table: &Table) -> Vec<String> {
    let bare = |s: &str| footnotes::split_markers(s).0;
    let columns: Vec<String> = table.header.iter().skip(1).map(|h| bare(h)).collect();
    let rows: Vec<String> = table
        .rows
        .iter()
        .map(|r| r.cells.first().map(|c| bare(c)).unwrap_or_default())
        .collect();
    let column_slugs: HashSet<String> = columns.iter().filter_map(|c| roles::slug(c)).collect();
    let products: HashSet<String> = rows
        .iter()
        .filter_map(|r| roles::slug(r))
        .filter(|s| column_slugs.contains(s))
        .collect();
    ctx.decide(
        table.line,
        format!(
            "a From/To matrix: rows open connections to columns; product roles (named as both): {}",
            {
                let mut p: Vec<&str> = products.iter().map(String::as_str).collect();
                p.sort_unstable();
                p.join(", ")
            }
        ),
    );
    let end = |name: &str| End {
        name: name.to_string(),
        role: roles::slug(name).filter(|s| products.contains(s)),
    };
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut ids = Vec::new();
    for (row, from_name) in table.rows.iter().zip(&rows) {
        let lower = from_name.to_ascii_lowercase();
        if lower.starts_with("notes:") || lower.starts_with("footnotes:") {
            ctx.decide(row.line, "the matrix's notes row: read as footnotes".into());
            continue;
        }
        if from_name.is_empty() {
            continue;
        }
        let from = end(from_name);
        for (j, text) in row.cells.iter().enumerate().skip(1) {
            let Some(to_name) = columns.get(j - 1) else {
                break;
            };
            if text.trim().is_empty()
                || !seen.insert((from_name.clone(), to_name.clone(), text.clone()))
            {
                continue;
            }
            let to = end(to_name);
            let rules = cell_rules(ctx, row.line, &from, &to, text);
            ids.extend(ctx.add_rules(row.line, rules));
        }
    }
    ids
}

/// The rules of one cell; a cell that names no port is skipped.
fn cell_rules(ctx: &mut Ctx, line: u32, from: &End, to: &End, text: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let (bare, mut markers) = footnotes::split_markers(item);
        if bare.starts_with('(') && bare.ends_with(')') {
            // "(nodeport)": a comment on the ports above it.
            continue;
        }
        let cell = match ports::parse(&bare) {
            Ok(cell) => cell,
            Err(reason) => {
                let reason = if endpoints::literal(&bare).is_some() {
                    format!("{bare} is named as a destination without a port")
                } else {
                    reason
                };
                ctx.skip(
                    line,
                    format!("matrix cell {} → {}: {item:?}", from.name, to.name),
                    reason,
                );
                continue;
            }
        };
        markers.extend(cell.markers.iter().cloned());
        let effects: Vec<(String, footnotes::Effect)> = markers
            .iter()
            .filter_map(|m| {
                ctx.footnotes
                    .get(m)
                    .map(|t| (t.to_string(), footnotes::effect(t)))
            })
            .collect();
        if let Some((note, _)) = effects.iter().find(|(_, e)| e.local_only) {
            ctx.skip(
                line,
                format!("matrix cell {} → {}: {item:?}", from.name, to.name),
                format!("its note says the traffic stays on the host: {note}"),
            );
            continue;
        }
        let condition = effects.iter().find_map(|(_, e)| e.condition.clone());
        let mut notes = cell.notes.clone();
        let protos = if cell.icmp {
            vec![Proto::Icmp]
        } else if cell.protos.is_empty() {
            notes.push("no protocol given: TCP assumed".into());
            vec![Proto::Tcp]
        } else {
            cell.protos.clone()
        };
        let (local, direction, peer_name, peer_role) = match (&to.role, &from.role) {
            (Some(local), _) => (local.clone(), Direction::Inbound, &from.name, &from.role),
            (None, Some(local)) => (local.clone(), Direction::Outbound, &to.name, &to.role),
            (None, None) => (
                NODES.to_string(),
                Direction::Inbound,
                &from.name,
                &from.role,
            ),
        };
        let peers: Vec<(Option<String>, Vec<Peer>)> = match peer_role {
            Some(role) => vec![(Some(role.clone()), Vec::new())],
            None => peers_of(peer_name),
        };
        let ranges: Vec<_> = cell.groups.iter().flat_map(|g| g.ranges.clone()).collect();
        for (role, literal) in &peers {
            for &proto in &protos {
                rules.push(Rule {
                    id: String::new(),
                    service: format!("{} → {}", from.name, to.name),
                    proto,
                    ports: Ports::List(if proto.has_ports() {
                        ranges.clone()
                    } else {
                        Vec::new()
                    }),
                    alternatives: false,
                    direction,
                    local_role: local.clone(),
                    peer_role: role.clone(),
                    peer: literal.clone(),
                    required: if condition.is_some() {
                        Required::Conditional
                    } else {
                        Required::Yes
                    },
                    condition: condition.clone(),
                    notes: notes.clone(),
                    ..super::read_at(line)
                });
            }
        }
    }
    rules
}

/// A host the product does not run, read as a role or literal peers.
fn peers_of(name: &str) -> Vec<(Option<String>, Vec<Peer>)> {
    let Ok(read) = endpoints::parse(name) else {
        return vec![(
            Some(roles::slug(name).unwrap_or_else(|| "unnamed-peer".into())),
            Vec::new(),
        )];
    };
    let mut out: Vec<(Option<String>, Vec<Peer>)> = Vec::new();
    let mut literals = Vec::new();
    for e in read.endpoints {
        match e {
            endpoints::Endpoint::Role(r) => out.push((Some(r), Vec::new())),
            endpoints::Endpoint::Literal(p) => literals.push(p),
        }
    }
    if !literals.is_empty() {
        out.push((None, literals));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document::{self, Block};

    const MATRIX: &str = "<table><thead><tr><th>From / To</th><th>etcd nodes</th><th>worker nodes</th><th>Internet</th></tr></thead>\n<tr><td>etcd nodes</td><td colspan=\"2\">8472 UDP</td><td>example.com</td></tr>\n<tr><td>worker nodes</td><td>2379 TCP <sup>(1)</sup></td><td></td><td>443 TCP</td></tr>\n<tr><td colspan=\"4\">Notes:<br/>1. Only if etcd is external.</td></tr>\n</table>";

    #[test]
    fn matrices_read_as_rules_between_roles() {
        let blocks = document::parse(MATRIX);
        let Some(Block::Table(t)) = blocks.iter().find(|b| matches!(b, Block::Table(_))) else {
            panic!("no table");
        };
        assert!(is_matrix(t));
        let mut ctx = Ctx::new("m.html", "m");
        ctx.footnotes = footnotes::Footnotes::of(MATRIX, &blocks);
        compile(&mut ctx, t);
        let got: Vec<String> = ctx
            .rules
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {} {}",
                    r.proto,
                    r.ports,
                    r.direction,
                    r.local_role,
                    r.peer_label(),
                    r.required.name()
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                "udp 8472 inbound etcd etcd yes",
                "udp 8472 inbound worker etcd yes",
                "tcp 2379 inbound etcd worker conditional",
                "tcp 443 outbound worker internet yes",
            ]
        );
        assert_eq!(ctx.skipped.len(), 1, "{:?}", ctx.skipped);
    }
}
