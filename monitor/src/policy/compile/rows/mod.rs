//! Table rows to rules. A row may yield several rules (one per protocol, per
//! peer, per group of ports); a row that cannot be read yields a skipped
//! entry and a warning, never a silent gap.

use super::{
    Ctx, arrows, cell_items,
    columns::{Column, Layout},
    daemons, footnotes,
    normalize::{
        direction,
        endpoints::{self, EndpointReading},
        mentions, ports,
        sides::{self, Sides},
    },
    roles, topics,
};
use crate::policy::{
    document::{Row, Table},
    model::{Direction, NODES, Ports, Proto, Required, Rule},
};

mod access;
mod cells;
mod component;
mod defaults;
mod expand;
mod groups;
mod portless;
mod requirement;
mod words;

pub use component::roles_of as component_roles;
pub(super) use expand::truncate;
pub use groups::all_texts as group_rows;

use cells::{
    alternative_port, endpoint_qualifiers, loopback_only, row_local, to_itself, without_self,
};
use defaults::{Defaults, table_defaults};
use expand::{expand, first_clause, protocols, service_name};

/// The heading level a group row is read at: below every real heading.
const GROUP_LEVEL: u8 = u8::MAX;

/// Compiles `table` into `ctx`; returns the ids of the rules it yielded.
pub fn compile(ctx: &mut Ctx, table: &Table, headings: &[(u8, String)]) -> Vec<String> {
    let layout = Layout::of(&table.header);
    if !layout.has(Column::Port)
        && let Some(peer) = layout.get(Column::Peer).or(layout.get(Column::Destination))
        && let Some(rewritten) = super::urls::with_ports(table, peer)
    {
        ctx.decide(
            table.line,
            "no Port column, but URLs: each port from its URL (or its scheme: https 443, http \
             80), the host as the peer, outbound (the hosts reach these addresses)"
                .into(),
        );
        return compile(ctx, &rewritten, headings);
    }
    if !layout.has(Column::Port)
        && let Some(rewritten) = super::transport_columns::split(table)
    {
        ctx.decide(
            table.line,
            "the transports are columns (TCP, UDP): a port is over the transport of its column, \
             one row per transport; '--' or an empty cell is none"
                .into(),
        );
        return compile(ctx, &rewritten, headings);
    }
    if !layout.has(Column::Port) {
        ctx.warn(
            table.line,
            format!(
                "table without a Port column (header: {}): not a port table, ignored",
                table.header.join(" | ")
            ),
        );
        return Vec::new();
    }
    if let Some(split) = cell_items::split(table, &layout) {
        ctx.decide(
            table.line,
            "port cells list items, each with its own transport, peer or arrow: one row per \
             item that names a port; items without one are notes"
                .into(),
        );
        return compile(ctx, &split, headings);
    }
    if let Some(split) = arrows::split(table, layout.get(Column::Port)) {
        ctx.decide(
            table.line,
            "cells name both ends with arrows (A → B): read as Source and Destination, one row \
             per line"
                .into(),
        );
        return compile(ctx, &split, headings);
    }
    if table.header_from_first_row {
        ctx.warn(
            table.line,
            "the table has no header cells: its first row is read as the header".into(),
        );
    }
    ctx.decide(
        table.line,
        format!("columns: {}", layout.describe(&table.header)),
    );
    for h in &layout.unknown {
        ctx.warn(table.line, format!("column {h:?} not recognised: ignored"));
    }
    if let Some(h) = &layout.client_port {
        ctx.decide(
            table.line,
            format!(
                "column {h:?} holds the client's ephemeral source ports: not a port to allow; \
                 the server's port column is"
            ),
        );
    }
    for h in &layout.repeated {
        ctx.warn(
            table.line,
            format!("column {h:?} repeats another column's meaning: ignored"),
        );
    }
    let mut ids = Vec::new();
    for segment in groups::segments(table, &layout) {
        let mut headings = headings.to_vec();
        if let Some((line, text)) = &segment.group {
            ctx.decide(
                *line,
                format!("group row {text:?}: read as a heading for the rows under it"),
            );
            headings.push((GROUP_LEVEL, text.clone()));
        }
        let line = segment.group.as_ref().map_or(table.line, |(l, _)| *l);
        ids.extend(compile_segment(
            ctx,
            table,
            &layout,
            &headings,
            &segment.rows,
            line,
        ));
    }
    ids
}

/// The rows of one group (or of the whole table), read under `headings`.
fn compile_segment(
    ctx: &mut Ctx,
    table: &Table,
    layout: &Layout,
    headings: &[(u8, String)],
    rows: &[&Row],
    line: u32,
) -> Vec<String> {
    if rows.is_empty() {
        return Vec::new();
    }
    let loopback = headings
        .last()
        .map(|(_, h)| h.as_str())
        .into_iter()
        .chain(table.caption.as_deref())
        .find(|h| {
            let lower = h.to_ascii_lowercase();
            lower.contains("localhost") || lower.contains("loopback")
        })
        .or(ctx
            .stated_loopback
            .then_some("the paragraph above the table"));
    if let Some(heading) = loopback {
        let reason = format!(
            "the section ({heading:?}) says these ports listen on the loopback interface only: \
             no network rule"
        );
        for row in rows {
            let port = layout.cell(&row.cells, Column::Port).unwrap_or("");
            ctx.skip(
                row.line,
                format!("row for port {:?}", truncate(port, 40)),
                reason.clone(),
            );
        }
        return Vec::new();
    }
    let defaults = table_defaults(ctx, table, layout, headings, line);
    let mut ids = Vec::new();
    let rows = component::fill_merged(layout, rows);
    for row in &rows {
        if row.cells.iter().all(|c| c.trim().is_empty()) {
            ctx.skip(row.line, "empty row".into(), "every cell is empty".into());
            continue;
        }
        if row.written_cells != table.header.len() {
            let effect = if row.written_cells < table.header.len() {
                "missing cells read as empty"
            } else {
                "extra cells ignored"
            };
            ctx.warn(
                row.line,
                format!(
                    "row has {} cells but the header has {}: {effect}",
                    row.written_cells,
                    table.header.len()
                ),
            );
        }
        let known = endpoints::Known {
            roles: &ctx.roles,
            local: defaults.local.as_deref(),
        };
        match compile_row(
            layout,
            &table.header,
            &defaults,
            known,
            &ctx.footnotes,
            &ctx.topics,
            row,
        ) {
            Ok(read) => {
                for w in read.warnings {
                    ctx.warn(row.line, w);
                }
                ids.extend(ctx.add_rules(row.line, read.rules));
            }
            Err(reason) => {
                let port = layout.cell(&row.cells, Column::Port).unwrap_or("");
                ctx.skip(
                    row.line,
                    format!("row for port {:?}", truncate(port, 40)),
                    reason,
                );
            }
        }
    }
    ids
}

/// A ping row has no port: its Port cell is "-", "N/A" or empty, its
/// Protocol cell says ICMP and its words say ping (echo request, the one
/// ICMP type such a row means). Read as ICMP; an ICMP row that names no
/// type stays skipped.
fn portless_icmp(layout: &Layout, cells: &[String]) -> Option<(ports::PortCell, Option<String>)> {
    let port = layout.cell(cells, Column::Port).unwrap_or("").trim();
    let no_port = matches!(
        port.to_ascii_lowercase().as_str(),
        "" | "-" | "–" | "—" | "n/a" | "na" | "none"
    );
    let proto = layout.cell(cells, Column::Protocol)?.trim();
    let icmp = matches!(
        proto.to_ascii_lowercase().as_str(),
        "icmp" | "icmpv6" | "ping"
    );
    let ping = cells.iter().any(|c| {
        let lower = c.to_ascii_lowercase();
        lower.contains("ping") || lower.contains("echo")
    });
    (no_port && icmp && ping)
        .then(|| ports::parse(proto).ok())
        .flatten()
        .map(|cell| (cell, None))
}

struct RowReading {
    rules: Vec<Rule>,
    warnings: Vec<String>,
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

#[allow(clippy::too_many_arguments)]
fn compile_row(
    layout: &Layout,
    header: &[String],
    defaults: &Defaults,
    known: endpoints::Known,
    notes_of: &footnotes::Footnotes,
    said: &[topics::Topic],
    row: &Row,
) -> Result<RowReading, String> {
    // Footnote markers on the service and required cells count like those
    // on the port ("Search head*", "No*").
    let mut markers = Vec::new();
    let cells: Vec<String> = row
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let marked = [
                Column::Service,
                Column::Description,
                Column::Component,
                Column::Required,
                Column::Source,
            ]
            .iter()
            .any(|&col| layout.get(col) == Some(i));
            if !marked {
                return c.clone();
            }
            let (bare, m) = footnotes::split_markers(c);
            markers.extend(m);
            bare
        })
        .collect();
    let cells = &cells;
    if let Some(why) = loopback_only(layout, cells) {
        return Err(format!("{why}: no network rule"));
    }
    let cell = |c: Column| nonempty(layout.cell(cells, c));
    let (mut port_cell, alternative) =
        match ports::parse(layout.cell(cells, Column::Port).unwrap_or("")) {
            Ok(read) => (read, None),
            Err(e) => {
                match alternative_port(layout, cells).or_else(|| portless_icmp(layout, cells)) {
                    Some(found) => found,
                    None => return Err(portless::reason(layout, cells).unwrap_or(e)),
                }
            }
        };
    markers.append(&mut port_cell.markers);
    let effects: Vec<(String, footnotes::Effect)> = markers
        .iter()
        .filter_map(|m| {
            notes_of
                .get(m)
                .map(|t| (t.to_string(), footnotes::effect(t)))
        })
        .collect();
    if let Some((text, _)) = effects.iter().find(|(_, e)| e.local_only) {
        return Err(format!(
            "its footnote says the traffic stays on the host ({}): no rule",
            truncate(text, 60)
        ));
    }
    let mut notes: Vec<String> = port_cell.notes.clone();
    notes.extend(port_cell.guesses.iter().cloned());
    let mut warnings: Vec<String> = port_cell.guesses.clone();

    let protos = protocols(
        &port_cell,
        cell(Column::Protocol),
        cell(Column::Service),
        &mut notes,
        &mut warnings,
    )?;
    let protos = if effects.iter().any(|(_, e)| e.udp) {
        notes.push("a footnote says UDP".into());
        vec![Proto::Udp]
    } else {
        protos
    };
    let direction = match cell(Column::Direction) {
        Some(text) => direction::parse(text)?,
        None if layout.has(Column::Direction) => return Err("no direction given".into()),
        None => defaults
            .direction
            .ok_or_else(|| "no direction given".to_string())?,
    };
    let outbound_note = effects
        .iter()
        .find(|(_, e)| e.outbound)
        .map(|(t, _)| t.clone());
    let mut direction = if outbound_note.is_some() {
        notes.push("its footnote says the host connects out: outbound".into());
        Direction::Outbound
    } else {
        direction
    };
    // "Service | Servers" rows: the daemon is the host's role, more
    // precisely than the heading ("ZooKeeper Ports") says.
    let daemon = daemons::of_row(layout, header, cells);
    let component = if layout.has(Column::Component) {
        cell(Column::Component).and_then(roles::slug)
    } else if daemon.is_some() {
        daemon.clone()
    } else {
        defaults
            .component_is_local
            .then(|| cell(Column::Service).and_then(roles::slug))
            .flatten()
    };
    let known = endpoints::Known {
        roles: known.roles,
        local: known.local.or(component.as_deref()),
    };
    // Guesses the table's defaults made for this row, beside its warnings:
    // together, what a reviewer should check (`Rule::review`).
    let mut guesses: Vec<String> = Vec::new();
    if cell(Column::Direction).is_none() && outbound_note.is_none() && defaults.direction_guessed {
        guesses.push("the document does not say which side connects: both assumed".into());
    }
    let mut remarks: Vec<endpoints::Remark> = Vec::new();
    let mut endpoint_condition: Option<String> = None;
    let mut read = |c: Column| -> Result<Option<Vec<endpoints::Endpoint>>, String> {
        let Some(text) = cell(c) else { return Ok(None) };
        let (text, cond) = endpoint_qualifiers(text);
        if cond.is_some() {
            endpoint_condition = cond;
        }
        let text = text.as_str();
        let EndpointReading {
            endpoints,
            notes: n,
            warnings: w,
        } = endpoints::parse_in(text, known)?;
        remarks.extend(n);
        remarks.extend(w);
        Ok(Some(endpoints))
    };
    let (source, destination, peer) = (
        read(Column::Source)?,
        read(Column::Destination)?,
        read(Column::Peer)?,
    );
    let (mut source, mut destination, mut peer) = (
        without_self(source)?,
        without_self(destination)?,
        without_self(peer)?,
    );
    if let Some(why) = to_itself(source.as_deref(), destination.as_deref(), cells) {
        return Err(why);
    }
    let local = daemon
        .or(defaults.local.clone())
        .or(component.clone())
        .or_else(|| row_local(direction, source.as_deref(), destination.as_deref()))
        .or_else(|| {
            // A document that introduced its hosts: the one the row's words
            // name first ("Ops Manager sends ...", "on the Ops Manager
            // host"), or the first it introduced.
            let first = defaults.first_role.clone()?;
            let text = cells.join(". ");
            Some(roles::mentioned(&text, known.roles).unwrap_or(first))
        });
    let mut software = None;
    // "Only the cluster nodes need it": the words say who may reach the
    // port, more firmly than a "Used by" cell naming the software on it.
    if destination.is_none()
        && let Some(named) = words::restricted(
            layout,
            cells,
            endpoints::Known {
                roles: known.roles,
                local: local.as_deref().or(known.local),
            },
        )
    {
        notes.push(format!(
            "the row's words restrict the port to {}: its peers",
            named
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        source = None;
        peer = Some(named);
        // The "Used by" cell then names the software on the port.
        software = cell(Column::Source);
    }
    // A row that names only the listening host ("Required for: vCenter
    // Server") names its peers in its words, if anywhere.
    let had_destination = destination.is_some();
    let listener_only = source.is_none()
        && peer.is_none()
        && (direction != Direction::Outbound || outbound_note.is_some() || !had_destination)
        && destination.as_ref().is_none_or(|d| {
            d.iter()
                .all(|e| matches!(e, endpoints::Endpoint::Role(r) if Some(r) == local.as_ref()))
        });
    if listener_only && let Some(opener) = &defaults.peer {
        destination = None;
        notes.push(format!(
            "the sentence above the table names the peer: {opener}"
        ));
        peer = Some(vec![endpoints::Endpoint::Role(opener.clone())]);
    } else if listener_only && defaults.peer_is_local {
        peer = Some(vec![endpoints::Endpoint::Role(NODES.into())]);
    } else if listener_only
        && !layout.has(Column::Component)
        && let Some(named) = access::peers(layout, cells)
    {
        // The access column is the document's own word on who reaches
        // the port; the description's words say what the port serves.
        destination = None;
        notes.push(format!(
            "the access column names who connects: {}",
            named
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        peer = Some(named);
        if cell(Column::Direction).is_none() {
            direction = Direction::Inbound;
        }
    } else if listener_only {
        destination = None;
        let known = endpoints::Known {
            roles: known.roles,
            local: local.as_deref().or(known.local),
        };
        // The service and every cell nobody recognised ("Purpose").
        let component = layout
            .has(Column::Component)
            .then_some(())
            .and(component.as_deref());
        let named = words::peers(layout, cells, component, known)?;
        if !named.is_empty() {
            notes.push(format!(
                "peers named in the row's words: {}",
                named
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            peer = Some(named);
        } else if let Some(named) = outbound_note
            .as_deref()
            .map(|t| mentions::peers(t, endpoints::Known::default()))
            .filter(|n| !n.is_empty())
        {
            // "it connects out on this port to your IMAP server, ...".
            notes.push("peers named in the footnote".into());
            peer = Some(named);
        } else if defaults.any_peer || had_destination {
            peer = Some(vec![endpoints::Endpoint::Role(endpoints::ANY.into())]);
            // Only the listener is named and no Direction column says
            // otherwise: whoever it is connects in, not both ways.
            if had_destination
                && direction == Direction::Bidirectional
                && cell(Column::Direction).is_none()
            {
                direction = Direction::Inbound;
            }
            guesses.push("no cell, heading or sentence names who connects: anyone assumed".into());
        }
    }
    if let Some(local) = &local {
        // The sides logic sees the monitored host as `nodes`.
        for list in [&mut source, &mut destination, &mut peer]
            .into_iter()
            .flatten()
        {
            for e in list.iter_mut() {
                if matches!(e, endpoints::Endpoint::Role(r) if r == local) {
                    *e = endpoints::Endpoint::Role(NODES.into());
                }
            }
        }
    }
    let assignments = sides::assign(
        direction,
        &Sides {
            source: source.as_deref(),
            destination: destination.as_deref(),
            peer: peer.as_deref(),
            direction_implied: defaults.direction_implied(),
        },
    );
    // Endpoint warnings are printed once per row; notes go on the rules.
    let endpoint_warnings = remarks.iter().filter(|r| r.warning).map(|r| r.text.clone());
    warnings.extend(endpoint_warnings);

    if layout
        .cell(cells, Column::Required)
        .is_some_and(|c| c.trim().is_empty())
    {
        warnings.push("the Required? cell is empty: read as required".into());
    }
    let requirement = requirement::of(&requirement::Row {
        layout,
        header,
        cells,
        endpoint_condition,
        effects: &effects,
        port_cell: &port_cell,
        said,
        alternative,
    })?;
    notes.extend(requirement.note.clone());
    warnings.extend(requirement.warning.clone());

    let template = Rule {
        id: String::new(),
        service: service_name(
            cell(Column::Service)
                .or(software)
                .or_else(|| cell(Column::Description).map(first_clause)),
            cell(Column::Protocol),
        ),
        proto: Proto::Tcp,
        ports: Ports::List(Vec::new()),
        alternatives: false,
        direction,
        local_role: NODES.into(),
        peer_role: None,
        peer: Vec::new(),
        required: requirement.required,
        condition: requirement.condition,
        notes,
        ..super::read_at(row.line)
    };
    let mut rules = expand(&template, &port_cell, &protos, &assignments, &remarks)?;
    if let Some(local) = &local {
        for rule in &mut rules {
            rule.local_role = local.clone();
            if rule.peer_role.as_deref() == Some(NODES) {
                rule.peer_role = Some(local.clone());
            }
        }
    }
    for a in &assignments {
        warnings.extend(a.warnings.iter().cloned());
    }
    for w in warnings.iter().chain(&guesses) {
        for rule in &mut rules {
            if !rule.review.contains(w) {
                rule.review.push(w.clone());
            }
        }
    }
    debug_assert!(
        rules
            .iter()
            .all(|r| r.required != Required::Conditional || r.condition.is_some())
    );
    Ok(RowReading { rules, warnings })
}
