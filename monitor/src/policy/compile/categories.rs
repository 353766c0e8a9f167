//! Tables whose peers are categories of traffic the document defines above
//! them: a column of category names ("Internal, External") or Yes/No
//! columns named after kinds of traffic ("Node-to-node", "Client-to-node",
//! "XDCR v1"). Each category a row names, or each column that says Yes,
//! gives one rule between the ends its definition names; a row with no Yes
//! is node-local and gives none. A column without a definition is read
//! from its name ("Client-to-node": clients open, nodes listen).
//!
//! Tables that name no defined category are left to `rows`.

use super::{
    Ctx, footnotes,
    normalize::{
        definitions::{self, Ends},
        ports,
    },
    roles,
};
use crate::policy::{
    document::{Row, Table},
    model::{Direction, NODES, PortRange, Ports, Proto, Required, Rule},
};

/// How a table names the ends of its rows.
enum Peers {
    /// Yes/No columns, each with the ends it stands for.
    YesNo(Vec<(usize, Ends)>),
    /// One column whose cells list defined categories.
    Categories(usize),
}

/// Compiles `table` if its peers are categories; `None` leaves it to the
/// row reader.
pub fn compile(ctx: &mut Ctx, table: &Table) -> Option<Vec<String>> {
    let port_col = port_column(table)?;
    let peers = peers(ctx, table, port_col)?;
    let proto_col = table.header.iter().position(|h| {
        let h = h.to_lowercase();
        h.contains("protocol") || h == "proto" || h.contains("transport")
    });
    let service_col = table.header.iter().position(|h| {
        let h = h.to_lowercase();
        h.contains("description") || h.contains("service") || h.contains("purpose")
    });
    let tls_pairs = table.header[port_col].to_lowercase().contains("tls");
    ctx.decide(
        table.line,
        match &peers {
            Peers::YesNo(cols) => format!(
                "Yes/No columns are kinds of traffic: {}",
                cols.iter()
                    .map(|(c, e)| format!("{} = {} -> {}", table.header[*c], e.peer, local(e)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Peers::Categories(c) => format!(
                "column {:?} lists categories of traffic the document defines above the table",
                table.header[*c]
            ),
        },
    );
    let mut ids = Vec::new();
    for row in &table.rows {
        let ends = row_ends(ctx, row, &peers);
        if ends.is_empty() {
            ctx.skip(
                row.line,
                row.cells.join(" | "),
                "no category of traffic applies (all No, or local only): node-local, no rule"
                    .into(),
            );
            continue;
        }
        let cell = |c: Option<usize>| c.and_then(|c| row.cells.get(c)).map(String::as_str);
        let proto_cell = cell(proto_col).unwrap_or("").to_lowercase();
        if proto_cell.contains("icmp") {
            ctx.skip(
                row.line,
                row.cells.join(" | "),
                "ICMP without a type: nothing to express as ports".into(),
            );
            continue;
        }
        let proto = if proto_cell.contains("udp") {
            Proto::Udp
        } else {
            Proto::Tcp
        };
        let service = footnotes::split_markers(cell(service_col).unwrap_or("")).0;
        let row_condition = row_condition(ctx, row, port_col);
        let groups = port_groups(ctx, cell(Some(port_col)).unwrap_or(""), tls_pairs);
        if groups.is_empty() {
            ctx.skip(
                row.line,
                row.cells.join(" | "),
                "the port cell holds no port".into(),
            );
            continue;
        }
        let mut rules = Vec::new();
        for (ranges, alternatives, port_condition) in &groups {
            for e in &ends {
                let condition = port_condition
                    .clone()
                    .or_else(|| row_condition.clone())
                    .or_else(|| e.condition.clone());
                rules.push(Rule {
                    id: String::new(),
                    service: service.clone(),
                    proto,
                    ports: Ports::List(ranges.clone()),
                    alternatives: *alternatives,
                    direction: Direction::Inbound,
                    local_role: local(e),
                    peer_role: Some(e.peer.clone()),
                    peer: Vec::new(),
                    required: if condition.is_some() {
                        Required::Conditional
                    } else {
                        Required::Yes
                    },
                    condition,
                    notes: vec!["ends from the definition of the row's traffic category".into()],
                    ..super::read_at(0)
                });
            }
        }
        ids.extend(ctx.add_rules(row.line, rules));
    }
    Some(ids)
}

fn local(e: &Ends) -> String {
    e.local.clone().unwrap_or_else(|| NODES.to_string())
}

/// The first column named for ports whose cells mostly hold ports.
fn port_column(table: &Table) -> Option<usize> {
    table.header.iter().enumerate().find_map(|(i, h)| {
        let h = h.to_lowercase();
        if !h.contains("port") || h.contains("name") {
            return None;
        }
        let read = table
            .rows
            .iter()
            .filter(|r| r.cells.get(i).is_some_and(|c| !parts(c).is_empty()))
            .count();
        (read * 2 >= table.rows.len()).then_some(i)
    })
}

fn is_yes(cell: &str) -> Option<bool> {
    match footnotes::split_markers(cell)
        .0
        .trim()
        .to_lowercase()
        .as_str()
    {
        "yes" | "y" | "✓" | "✔" | "x" | "✅" => Some(true),
        "no" | "n" | "" | "-" | "–" | "—" | "✗" | "✘" => Some(false),
        _ => None,
    }
}

fn peers(ctx: &Ctx, table: &Table, port_col: usize) -> Option<Peers> {
    let yes_no: Vec<usize> = (0..table.header.len())
        .filter(|&c| c != port_col)
        .filter(|&c| {
            table
                .rows
                .iter()
                .all(|r| is_yes(r.cells.get(c).map_or("", String::as_str)).is_some())
                && table
                    .rows
                    .iter()
                    .any(|r| is_yes(r.cells.get(c).map_or("", String::as_str)) == Some(true))
        })
        .collect();
    if yes_no.len() >= 2 {
        let cols: Vec<(usize, Ends)> = yes_no
            .into_iter()
            .filter_map(|c| column_ends(ctx, &table.header[c]).map(|e| (c, e)))
            .collect();
        return (!cols.is_empty()).then_some(Peers::YesNo(cols));
    }
    // A column whose every cell lists defined terms.
    (0..table.header.len())
        .filter(|&c| c != port_col)
        .find(|&c| {
            table.rows.iter().all(|r| {
                let t = terms(r.cells.get(c).map_or("", String::as_str));
                !t.is_empty() && t.iter().all(|t| defined(ctx, t).is_some())
            })
        })
        .map(Peers::Categories)
}

fn terms(cell: &str) -> Vec<String> {
    footnotes::split_markers(cell)
        .0
        .split([',', ';'])
        .flat_map(|p| p.split(" and "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The definition of `term`: the same words, or a defined term that begins
/// the column name ("XDCR" for "XDCR v1 (CAPI)").
fn defined<'a>(ctx: &'a Ctx, term: &str) -> Option<&'a str> {
    let t = term.trim().to_lowercase();
    ctx.definitions
        .iter()
        .rev()
        .find(|(k, _)| {
            let k = k.to_lowercase();
            k == t || t.starts_with(&format!("{k} "))
        })
        .map(|(_, d)| d.as_str())
}

/// The ends a Yes/No column stands for: its definition, or its name
/// ("Client-to-node", "Node to node").
fn column_ends(ctx: &Ctx, header: &str) -> Option<Ends> {
    let header = footnotes::split_markers(header).0;
    if let Some(def) = defined(ctx, &header)
        && let Some(e) = definitions::ends(def)
    {
        return Some(e);
    }
    let lower = header.to_lowercase().replace('-', " ");
    let (from, to) = lower.split_once(" to ")?;
    let end = |p: &str| -> Option<String> {
        let s = roles::slug(p)?;
        Some(if s == "node" { NODES.to_string() } else { s })
    };
    let (from, to) = (end(from)?, end(to)?);
    Some(Ends {
        peer: from,
        local: (to != NODES).then_some(to),
        condition: None,
        local_only: false,
    })
}

fn row_ends(ctx: &Ctx, row: &Row, peers: &Peers) -> Vec<Ends> {
    let mut out: Vec<Ends> = Vec::new();
    let mut push = |e: Ends| {
        if !e.local_only && !out.iter().any(|o| o.peer == e.peer && o.local == e.local) {
            out.push(e);
        }
    };
    match peers {
        Peers::YesNo(cols) => {
            for (c, e) in cols {
                if is_yes(row.cells.get(*c).map_or("", String::as_str)) == Some(true) {
                    push(e.clone());
                }
            }
        }
        Peers::Categories(c) => {
            for t in terms(row.cells.get(*c).map_or("", String::as_str)) {
                if let Some(e) = defined(ctx, &t).and_then(definitions::ends) {
                    push(e);
                }
            }
        }
    }
    out
}

/// A condition from a footnote marked on the row's other cells
/// ("moxi_port††": only clients that still use it).
fn row_condition(ctx: &Ctx, row: &Row, port_col: usize) -> Option<String> {
    row.cells
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != port_col)
        .flat_map(|(_, c)| footnotes::split_markers(c).1)
        .filter_map(|m| ctx.footnotes.get(&m).map(footnotes::effect))
        .find_map(|e| e.condition)
}

/// The cell's comma-separated parts: ranges spelled "A to B (inclusive)"
/// read as `A-B`, each part with the condition of its own footnote.
fn parts(cell: &str) -> Vec<(Vec<PortRange>, bool, Vec<String>)> {
    cell.split(',')
        .filter_map(|part| {
            let (bare, markers) = footnotes::split_markers(part);
            let spelled = bare
                .to_lowercase()
                .replace("(inclusive)", "")
                .replace(" through ", "-")
                .replace(" to ", "-");
            let read = ports::parse(spelled.trim()).ok()?;
            let ranges: Vec<PortRange> = read
                .groups
                .iter()
                .flat_map(|g| g.ranges.iter().copied())
                .collect();
            let alt = read.groups.iter().any(|g| g.alternatives);
            (!ranges.is_empty()).then_some((ranges, alt, markers))
        })
        .collect()
}

type Group = (Vec<PortRange>, bool, Option<String>);

/// Groups of ports with their alternatives flag and footnote condition.
/// Under a "plain / TLS" header, "8091 / 18091" is one service: the ports
/// are alternatives.
fn port_groups(ctx: &Ctx, cell: &str, tls_pairs: bool) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for (ranges, alt, markers) in parts(cell) {
        let condition = markers
            .iter()
            .filter_map(|m| ctx.footnotes.get(m).map(footnotes::effect))
            .find_map(|e| e.condition);
        let alternatives = alt || (tls_pairs && ranges.len() == 2);
        match out
            .iter_mut()
            .find(|g| g.2 == condition && !g.1 && !alternatives)
        {
            Some(g) => g.0.extend(ranges),
            None => out.push((ranges, alternatives, condition)),
        }
    }
    out
}
