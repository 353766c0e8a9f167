//! Table rows to rules. A row may yield several rules (one per protocol, per
//! peer, per group of ports); a row that cannot be read yields a skipped
//! entry and a warning, never a silent gap.

use super::{
    Ctx, arrows,
    columns::{Column, Layout},
    footnotes,
    normalize::{
        direction,
        endpoints::{self, EndpointReading},
        mentions, ports, protocol, required,
        sides::{self, PeerSpec, Sides},
    },
    roles, topics,
};
use crate::policy::{
    document::{Row, Table},
    model::{Direction, NODES, PortRange, Ports, Proto, Required, Rule, Source},
};

/// Service names longer than this are sentences; they are cut at a word.
const MAX_SERVICE: usize = 48;

/// What the table's section and missing columns imply for every row.
struct Defaults {
    direction: Option<Direction>,
    /// The hosts the table is about, from its caption or heading; `None`:
    /// the rows say (Destination of inbound rows), or `nodes`.
    local: Option<String>,
    /// The Service column is "Component": each row names its own hosts.
    component_is_local: bool,
    /// No endpoint column and no section about nodes: a row whose words name
    /// no peer is open to anyone.
    any_peer: bool,
    /// The section is about traffic among the table's hosts.
    peer_is_local: bool,
    /// The first host the document introduces: the one its unlabelled
    /// tables are about, when a row names none.
    first_role: Option<String>,
}

impl Defaults {
    /// Without a Direction column, Source and Destination alone say which
    /// way connections go; reading them so is not a guess to warn about.
    fn direction_implied(&self) -> bool {
        self.direction.is_some()
    }
}

/// Compiles `table` into `ctx`; returns the ids of the rules it yielded.
pub fn compile(ctx: &mut Ctx, table: &Table, headings: &[(u8, String)]) -> Vec<String> {
    let layout = Layout::of(&table.header);
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
    for h in &layout.repeated {
        ctx.warn(
            table.line,
            format!("column {h:?} repeats another column's meaning: ignored"),
        );
    }
    let loopback = headings
        .last()
        .map(|(_, h)| h.as_str())
        .into_iter()
        .chain(table.caption.as_deref())
        .find(|h| {
            let lower = h.to_lowercase();
            lower.contains("localhost") || lower.contains("loopback")
        });
    if let Some(heading) = loopback {
        let reason = format!(
            "the section ({heading:?}) says these ports listen on the loopback interface only: \
             no network rule"
        );
        for row in &table.rows {
            let port = layout.cell(&row.cells, Column::Port).unwrap_or("");
            ctx.skip(
                row.line,
                format!("row for port {:?}", truncate(port, 40)),
                reason.clone(),
            );
        }
        return Vec::new();
    }
    let defaults = table_defaults(ctx, table, &layout, headings);
    let mut ids = Vec::new();
    for row in &table.rows {
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
            &layout,
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

fn table_defaults(
    ctx: &mut Ctx,
    table: &Table,
    layout: &Layout,
    headings: &[(u8, String)],
) -> Defaults {
    let section = headings
        .iter()
        .map(|(_, h)| h.to_lowercase())
        .collect::<Vec<_>>()
        .join(" / ");
    let between_nodes = [
        "between cluster nodes",
        "between nodes",
        "between the nodes",
        "intracluster",
        "intra-cluster",
        "within the cluster",
        "cluster nodes",
    ]
    .iter()
    .any(|k| section.contains(k));
    let has_endpoints =
        layout.has(Column::Source) || layout.has(Column::Destination) || layout.has(Column::Peer);
    let has_sides = layout.has(Column::Source) || layout.has(Column::Destination);
    let title = ctx.title.clone();
    let local = table
        .caption
        .as_deref()
        .and_then(|c| roles::of_heading(c, title.as_deref()))
        .or_else(|| {
            headings
                .iter()
                .rev()
                .find_map(|(_, h)| roles::of_heading(h, title.as_deref()))
        })
        .or_else(|| {
            // "Open ports to reach Ops Manager": a heading that names one of
            // the hosts the document introduced.
            headings
                .last()
                .and_then(|(_, h)| roles::mentioned(h, &ctx.roles))
        });
    // "Open ports between the MongoDB hosts": traffic among them.
    let peer_is_local = local.is_some()
        && headings
            .last()
            .is_some_and(|(_, h)| h.to_lowercase().contains(" between "));
    if let Some(role) = &local {
        ctx.decide(
            table.line,
            format!("the table's caption or heading names its hosts: local role {role}"),
        );
    }
    // Components are the hosts only when the table says who reaches them
    // (Splunk's "Accessed by"); otherwise they are processes of one host.
    let component_is_local = local.is_none()
        && has_endpoints
        && layout
            .get(Column::Service)
            .and_then(|i| table.header.get(i))
            .is_some_and(|h| h.to_lowercase().contains("component"));
    let heading_direction = headings
        .iter()
        .rev()
        .find_map(|(_, h)| roles::heading_direction(h));
    let mut direction = None;
    if !layout.has(Column::Direction) {
        direction = Some(Direction::Bidirectional);
        if let Some(d) = heading_direction {
            direction = Some(d);
            ctx.decide(
                table.line,
                format!("no Direction column; the heading says {d}: rows are {d}"),
            );
        } else if has_sides {
            ctx.decide(
                table.line,
                "no Direction column: the side that opens the connection is the Source".into(),
            );
        } else if between_nodes {
            ctx.decide(
                table.line,
                "no Direction column; the section is about traffic between nodes: bidirectional"
                    .into(),
            );
        } else {
            ctx.warn(
                table.line,
                "no Direction column and the section does not say: rows are read as \
                 bidirectional"
                    .into(),
            );
        }
    }
    let mut any_peer = false;
    if !has_endpoints {
        if between_nodes {
            ctx.decide(
                table.line,
                "no Source/Destination column; the section is about traffic between nodes: peer \
                 is nodes"
                    .into(),
            );
        } else {
            any_peer = true;
            ctx.warn(
                table.line,
                "no Source/Destination/IP column and the section names no peers: peers are named \
                 in the row's words, or anyone (role any)"
                    .into(),
            );
        }
    }
    if !layout.has(Column::Protocol) {
        ctx.decide(
            table.line,
            "no Protocol column: protocol from the port cell or a service name that settles it \
             (DNS: UDP and TCP), otherwise TCP (warned per row)"
                .into(),
        );
    }
    if !layout.has(Column::Required) {
        ctx.decide(table.line, "no Required? column: rows are required".into());
    }
    Defaults {
        direction,
        local,
        component_is_local,
        any_peer,
        peer_is_local,
        first_role: ctx.roles.first().cloned(),
    }
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
            let marked = [Column::Service, Column::Required, Column::Source]
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
    let cell = |c: Column| nonempty(layout.cell(cells, c));
    let (mut port_cell, alternative) =
        match ports::parse(layout.cell(cells, Column::Port).unwrap_or("")) {
            Ok(read) => (read, None),
            Err(e) => match alternative_port(layout, cells) {
                Some(found) => found,
                None => return Err(e),
            },
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
    let direction = if outbound_note.is_some() {
        notes.push("its footnote says the host connects out: outbound".into());
        Direction::Outbound
    } else {
        direction
    };
    let component = defaults
        .component_is_local
        .then(|| cell(Column::Service).and_then(roles::slug))
        .flatten();
    let known = endpoints::Known {
        roles: known.roles,
        local: known.local.or(component.as_deref()),
    };
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
    let local = defaults
        .local
        .clone()
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
    if listener_only && defaults.peer_is_local {
        peer = Some(vec![endpoints::Endpoint::Role(NODES.into())]);
    } else if listener_only {
        destination = None;
        let known = endpoints::Known {
            roles: known.roles,
            local: local.as_deref().or(known.local),
        };
        // The service and every cell nobody recognised ("Purpose").
        let words = cells
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                layout.get(Column::Service) == Some(*i)
                    || layout.get(Column::Description) == Some(*i)
                    || !layout.is_recognised(*i)
            })
            .map(|(_, c)| c.as_str())
            .collect::<Vec<_>>()
            .join(". ");
        let named = if known.roles.is_empty() && known.local.is_none() {
            Vec::new()
        } else {
            mentions::peers(&words, known)
        };
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
    // Without a Notes column, the description or the service's own words
    // carry the condition ("Required only for RBAC", "only if you enable it").
    // Every cell that is not a port, a protocol, an end or a direction: the
    // description, the service and the columns nobody recognised (Splunk's
    // second service column, "Purpose").
    let structural = [
        Column::Port,
        Column::Protocol,
        Column::Direction,
        Column::Source,
        Column::Destination,
        Column::Peer,
        Column::Required,
        Column::Notes,
    ];
    let described_cells: Vec<&str> = cells
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !c.trim().is_empty() && !structural.iter().any(|&col| layout.get(col) == Some(*i))
        })
        .map(|(_, c)| c.as_str())
        .collect();
    let described = described_cells.join(". ");
    let notes_text = cell(Column::Notes).or((!described.is_empty()).then_some(described.as_str()));
    let mut requirement = required::parse(cell(Column::Required), notes_text)?;
    if requirement.condition.is_none() && described.to_lowercase().contains("(enterprise)") {
        // A feature of a paid edition is not in every deployment.
        requirement.required = Required::Conditional;
        requirement.condition = Some("the Enterprise edition is used".into());
        requirement.note = Some("an Enterprise feature: conditional".into());
    }
    if requirement.condition.is_none()
        && let Some(cond) = endpoint_condition.clone()
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!("an endpoint cell makes it conditional: {cond}"));
        requirement.condition = Some(cond);
    }
    let optional_text = [
        Column::Port,
        Column::Description,
        Column::Service,
        Column::Notes,
    ]
    .iter()
    .filter_map(|&c| cell(c))
    .chain(described_cells.iter().copied())
    .any(required::says_optional);
    if optional_text && requirement.required == Required::Yes && cell(Column::Required).is_none() {
        requirement.required = Required::No;
        requirement.note =
            Some("the row says it is optional or off by default: not required".into());
    }
    if let Some((text, e)) = effects.iter().find(|(_, e)| e.condition.is_some())
        && requirement.required != Required::Conditional
    {
        requirement.required = Required::Conditional;
        requirement.condition = e.condition.clone();
        requirement.note = Some(format!("its footnote makes it conditional: {text}"));
    }
    let row_ports: Vec<u16> = port_cell
        .groups
        .iter()
        .flat_map(|g| g.ranges.iter().filter(|r| r.lo == r.hi).map(|r| r.lo))
        .collect();
    if requirement.required == Required::Yes
        && cell(Column::Required).is_none()
        && let Some(topic) =
            topics::about_ports(said, &row_ports).or_else(|| topics::about(said, &described))
    {
        match &topic.effect {
            topics::Effect::Optional => requirement.required = Required::No,
            topics::Effect::Condition(c) => {
                requirement.required = Required::Conditional;
                requirement.condition = Some(c.clone());
            }
        }
        requirement.note = Some(format!("the document says: {}", topic.said));
    }
    // A sentence in the who-uses-it cell ("SSL. Once Tableau Server is
    // configured for SSL, the gateway redirects clients to this port").
    if requirement.required == Required::Yes
        && cell(Column::Required).is_none()
        && let Some(cond) = cell(Column::Source).and_then(required::condition_of)
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!("the Source cell makes it conditional: {cond}"));
        requirement.condition = Some(cond);
    }
    if requirement.required == Required::Yes
        && cell(Column::Required).is_none()
        && let Some(cond) = marks_condition(layout, header, cells)
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!("marked only under {cond}: conditional"));
        requirement.condition = Some(cond);
    }
    if let Some(cond) = alternative
        && requirement.required == Required::Yes
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!("the port of another column, used only {cond}"));
        requirement.condition = Some(cond);
    }
    notes.extend(requirement.note.clone());
    warnings.extend(requirement.warning.clone());

    let template = Rule {
        id: String::new(),
        service: service_name(cell(Column::Service), cell(Column::Protocol)),
        proto: Proto::Tcp,
        ports: Ports::List(Vec::new()),
        alternatives: false,
        direction,
        local_role: NODES.into(),
        peer_role: None,
        peer: Vec::new(),
        required: requirement.required,
        condition: requirement.condition,
        since: None,
        until: None,
        superseded_by: None,
        duplicate_of: None,
        source: Source {
            doc: String::new(),
            line: row.line,
        },
        notes,
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
    debug_assert!(
        rules
            .iter()
            .all(|r| r.required != Required::Conditional || r.condition.is_some())
    );
    Ok(RowReading { rules, warnings })
}

/// X marks in columns the compiler does not otherwise read ("All" /
/// "Distributed / High availability"): a row marked only under columns
/// other than "All" or "Required" is needed only in those setups.
fn marks_condition(layout: &Layout, header: &[String], cells: &[String]) -> Option<String> {
    let marked: Vec<&str> = cells
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !layout.is_recognised(*i)
                && matches!(c.trim().to_lowercase().as_str(), "x" | "✓" | "✔" | "•")
        })
        .filter_map(|(i, _)| header.get(i).map(String::as_str))
        .collect();
    if marked.is_empty() {
        return None;
    }
    let always = marked.iter().any(|h| {
        let last = h.to_lowercase();
        let last = last.split_whitespace().last().unwrap_or("").to_string();
        matches!(last.as_str(), "all" | "required" | "always" | "yes")
    });
    (!always).then(|| marked.join(", "))
}

/// A row whose port cell is a placeholder ("X") and whose other cell gives
/// a port for another setup ("Socket" / "Port (5432)"): that port, needed
/// only when the component is switched to it.
fn alternative_port(
    layout: &Layout,
    cells: &[String],
) -> Option<(ports::PortCell, Option<String>)> {
    let port = layout.cell(cells, Column::Port)?.trim();
    if !matches!(
        port.to_lowercase().as_str(),
        "x" | "-" | "—" | "n/a" | "none"
    ) {
        return None;
    }
    cells.iter().find_map(|c| {
        let lower = c.trim().to_lowercase();
        if !lower.starts_with("port") || c.trim() == port {
            return None;
        }
        let read = ports::parse(c).ok()?;
        Some((
            read,
            Some(format!("when switched to a network port ({})", c.trim())),
        ))
    })
}

/// Takes the qualifiers out of an endpoint cell: an item "Linux worker
/// nodes only" and a clause ", if the forwarder collects syslog" are
/// conditions on the row, not peers.
fn endpoint_qualifiers(text: &str) -> (String, Option<String>) {
    let mut condition = None;
    let mut kept = Vec::new();
    for item in text.split(';') {
        let bare = item.trim().trim_matches('*').trim();
        let lower = bare.to_lowercase();
        if let Some(what) = lower.strip_suffix(" only") {
            condition = Some(format!("only on {}", &bare[..what.len()]));
            continue;
        }
        match lower.find(", if ").or_else(|| lower.find(" if ")) {
            Some(i) => {
                condition = Some(bare[i..].trim_start_matches(',').trim().to_string());
                kept.push(bare[..i].to_string());
            }
            None => kept.push(item.trim().to_string()),
        }
    }
    if condition.is_none() {
        return (text.to_string(), None);
    }
    (kept.join("; "), condition)
}

/// Drops the endpoints that are the host itself; a cell naming nothing else
/// means the row's traffic never leaves the host.
fn without_self(
    list: Option<Vec<endpoints::Endpoint>>,
) -> Result<Option<Vec<endpoints::Endpoint>>, String> {
    let Some(list) = list else { return Ok(None) };
    let kept: Vec<_> = list
        .into_iter()
        .filter(|e| !matches!(e, endpoints::Endpoint::Role(r) if r == endpoints::SELF))
        .collect();
    if kept.is_empty() {
        return Err(
            "used only by the host itself: the traffic never crosses the network, no rule".into(),
        );
    }
    Ok(Some(kept))
}

/// A row that names both ends by role and neither as `nodes`: the local
/// end is the Destination of inbound rows, the Source of outbound ones.
fn row_local(
    direction: Direction,
    source: Option<&[endpoints::Endpoint]>,
    destination: Option<&[endpoints::Endpoint]>,
) -> Option<String> {
    let d = destination?;
    let Some(s) = source else {
        // Only the listening side is named.
        return match direction {
            Direction::Outbound => None,
            _ => d.iter().find_map(|e| match e {
                endpoints::Endpoint::Role(r) if r != NODES => Some(r.clone()),
                _ => None,
            }),
        };
    };
    if s.iter().chain(d).any(endpoints::Endpoint::is_nodes) {
        return None;
    }
    let side = match direction {
        Direction::Outbound => s,
        Direction::Inbound | Direction::Bidirectional => d,
    };
    side.iter().find_map(|e| match e {
        endpoints::Endpoint::Role(r) => Some(r.clone()),
        endpoints::Endpoint::Literal(_) => None,
    })
}

/// Without a service column, an application protocol (HTTPS, SSH) names the
/// service well enough; a bare transport does not.
fn service_name(service: Option<&str>, protocol_cell: Option<&str>) -> String {
    let app_protocol = protocol_cell.filter(|p| protocol::parse(p).is_ok_and(|r| r.note.is_some()));
    shorten(service.or(app_protocol).unwrap_or("unnamed service"))
}

/// One rule per peer, per group of ports, per protocol, each with the notes
/// that concern it.
fn expand(
    template: &Rule,
    port_cell: &ports::PortCell,
    protos: &[Proto],
    assignments: &[sides::Assignment],
    remarks: &[endpoints::Remark],
) -> Result<Vec<Rule>, String> {
    let groups: Vec<(Vec<PortRange>, bool)> = if port_cell.groups.is_empty() {
        vec![(Vec::new(), false)]
    } else {
        port_cell
            .groups
            .iter()
            .map(|g| (g.ranges.clone(), g.alternatives && g.ranges.len() > 1))
            .collect()
    };
    let mut rules = Vec::new();
    for a in assignments {
        let (peer_role, peer) = match &a.peer {
            PeerSpec::Role(r) => (Some(r.clone()), Vec::new()),
            PeerSpec::Literals(l) => (None, l.clone()),
        };
        let mut notes = template.notes.clone();
        notes.extend(
            remarks
                .iter()
                .filter(|r| r.concerns(peer_role.as_deref(), &peer))
                .map(|r| r.text.clone()),
        );
        notes.extend(a.notes.iter().cloned());
        notes.extend(a.warnings.iter().cloned());
        for (ranges, alternatives) in &groups {
            for &proto in protos {
                if proto.has_ports() && ranges.is_empty() {
                    return Err(format!("{proto} needs ports and the row gives none"));
                }
                let ports = if proto.has_ports() {
                    ranges.clone()
                } else {
                    Vec::new()
                };
                rules.push(Rule {
                    proto,
                    ports: Ports::List(ports),
                    alternatives: *alternatives && proto.has_ports(),
                    direction: a.direction,
                    peer_role: peer_role.clone(),
                    peer: peer.clone(),
                    notes: notes.clone(),
                    ..template.clone()
                });
            }
        }
    }
    Ok(rules)
}

/// The row's L4 protocols, from (in order of trust) an ICMP port cell, the
/// Protocol cell, a protocol written in the port cell, a service name that
/// settles it, and finally TCP, warned as a guess.
fn protocols(
    port_cell: &ports::PortCell,
    protocol_cell: Option<&str>,
    service: Option<&str>,
    notes: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Proto>, String> {
    if port_cell.icmp {
        return Ok(vec![Proto::Icmp]);
    }
    if let Some(text) = protocol_cell {
        let reading = protocol::parse(text)?;
        if let Some(n) = reading.note {
            notes.push(n);
        }
        if !port_cell.protos.is_empty() && port_cell.protos != reading.protos {
            warnings.push(format!(
                "the port cell names {} but the Protocol column says {text:?}: the Protocol column wins",
                port_cell.protos.iter().map(|p| p.name()).collect::<Vec<_>>().join("/")
            ));
        }
        return Ok(reading.protos);
    }
    if !port_cell.protos.is_empty() {
        return Ok(port_cell.protos.clone());
    }
    if let Some(reading) = service.and_then(protocol::from_service) {
        if let Some(n) = reading.note {
            notes.push(n);
        }
        return Ok(reading.protos);
    }
    let guess = "no protocol given: TCP assumed".to_string();
    warnings.push(guess.clone());
    notes.push(guess);
    Ok(vec![Proto::Tcp])
}

/// Cuts a long service cell at a word boundary: the cell names the service,
/// the rest is prose that belongs in the document, not the policy.
fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_SERVICE {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.chars().count() + word.chars().count() + 1 > MAX_SERVICE - 1 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = text.chars().take(MAX_SERVICE - 1).collect();
    }
    out.push('…');
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_sentences_at_a_word() {
        assert_eq!(shorten("nginx"), "nginx");
        let s = shorten("Zookeeper servers listen on this RPC port for client connections");
        assert!(s.ends_with('…') && s.chars().count() <= MAX_SERVICE, "{s}");
        assert_eq!(s, "Zookeeper servers listen on this RPC port for…");
    }
}
