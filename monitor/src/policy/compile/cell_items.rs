//! Port cells that are lists (`<li>` items, lines split by `<br>`, both read
//! as `; `), where each item carries its own transport, peer or direction:
//!
//! - "TCP: 22 (SSH server)", "NetFlow: UDP 9996, from NetFlow exporters",
//!   "Kerberos: TCP/UDP 88, to Active Directory", "UDP: 1700 (CoA Send) (outbound)";
//! - "1433/TCP --->", "161,162 <--->", "TCP 1270 <---": an arrow glued to the
//!   port says which of the columns beside it ("Feature A | Port and
//!   Direction | Feature B") opens the connection.
//!
//! Read whole, such a cell is no port list, and the row would be skipped.
//! The table is rewritten with one row per item that names a port and
//! explicit Protocol, Source and Destination columns, so that the row
//! reader sees the shape it knows; every derived row keeps its line. Items
//! that name no port ("Note Port 80 is redirected ...") are notes of the
//! row, not rules. Rows whose cell reads whole are left as they are: a
//! cell the port grammar already reads keeps its reading.

use super::{
    columns::{self, Column, Layout},
    daemons,
    normalize::{ports, protocol},
};
use crate::policy::document::{Row, Table};

/// Which way an arrow beside a port points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrow {
    /// `--->`: the left column opens the connection to the right one.
    Right,
    /// `<---`: the right column opens it.
    Left,
    /// `<--->`: either side opens it.
    Both,
}

/// Longest first, so that `<--->` is not read as `<--` and `->`.
const ARROWS: &[(&str, Arrow)] = &[
    ("<--->", Arrow::Both),
    ("<-->", Arrow::Both),
    ("<->", Arrow::Both),
    ("↔", Arrow::Both),
    ("--->", Arrow::Right),
    ("<---", Arrow::Left),
    ("-->", Arrow::Right),
    ("<--", Arrow::Left),
    ("->", Arrow::Right),
    ("<-", Arrow::Left),
    ("→", Arrow::Right),
    ("←", Arrow::Left),
];

/// One list item that names a port.
#[derive(Debug, Default, PartialEq, Eq)]
struct Item {
    /// What the port grammar reads ("22", "1645, 1812", "49152-65535").
    ports: String,
    /// "TCP", "UDP", "TCP/UDP", when the item says.
    proto: Option<String>,
    arrow: Option<Arrow>,
    /// "from network access devices": who connects.
    from: Option<String>,
    /// "to the DNS server": where the host connects to.
    to: Option<String>,
    /// "(outbound)": the host connects out.
    outbound: bool,
    /// What the item says of the port besides ("disabled by default"):
    /// the row's notes, where conditions are read.
    remarks: String,
}

/// The table with its listed port cells split into one row per item, or
/// `None` when no port cell is such a list.
pub fn split(table: &Table, layout: &Layout) -> Option<Table> {
    let port = layout.get(Column::Port)?;
    let listed = |row: &Row| -> Option<Vec<Item>> {
        let cell = row.cells.get(port)?;
        if ports::parse(cell).is_ok() {
            return None;
        }
        let items: Vec<Item> = cell.split(';').filter_map(read_item).collect();
        (!items.is_empty()).then_some(items)
    };
    if !table.rows.iter().any(|r| listed(r).is_some()) {
        return None;
    }
    // The columns the arrows point at: the ones right beside the port,
    // when nothing else claims them.
    let free = |i: usize| {
        table
            .header
            .get(i)
            .is_some_and(|h| columns_free(h) && layout.get(Column::Port) != Some(i))
    };
    let beside = (port > 0 && free(port - 1) && free(port + 1)).then(|| (port - 1, port + 1));
    // The host whose ports the table lists: a column named for a kind of
    // host ("Cisco ISE Node"), or the Component column.
    let host = layout
        .get(Column::Component)
        .or_else(|| columns::host_column(&table.header));
    let proto_at = layout.get(Column::Protocol);
    let mut header = table.header.clone();
    if let Some((a, b)) = beside {
        header[a] = format!("Source ({})", header[a]);
        header[b] = format!("Destination ({})", header[b]);
    }
    let extra_proto = proto_at.is_none();
    if extra_proto {
        header.push("Protocol".into());
    }
    let notes_at = layout.get(Column::Notes);
    if notes_at.is_none() {
        header.push("Remarks".into());
    }
    let extra_ends = beside.is_none() && layout.get(Column::Source).is_none();
    if extra_ends {
        header.push("Source".into());
        header.push("Destination".into());
    }
    // When every row is such a list and nothing else says which way
    // connections go, each item says: "to X" and "(outbound)" out, the rest
    // in (the table lists the ports its hosts listen on).
    let extra_direction = beside.is_none()
        && !layout.has(Column::Direction)
        && table
            .rows
            .iter()
            .all(|r| listed(r).is_some() || r.cells.get(port).is_none_or(|c| c.trim().is_empty()));
    if extra_direction {
        header.push("Direction".into());
    }
    let mut rows = Vec::new();
    for row in &table.rows {
        // A row whose cell reads whole is one item with nothing of its
        // own, so that its synthetic cells say what the others' say.
        let items = listed(row).unwrap_or_else(|| {
            vec![Item {
                ports: row.cells.get(port).cloned().unwrap_or_default(),
                ..Item::default()
            }]
        });
        let outbound_row = row
            .cells
            .iter()
            .enumerate()
            .any(|(i, c)| i != port && c.to_ascii_lowercase().contains("(outbound)"));
        for item in items {
            let mut cells = row.cells.clone();
            cells.resize(table.header.len(), String::new());
            cells[port] = item.ports.clone();
            if let Some(at) = proto_at
                && let Some(p) = &item.proto
            {
                cells[at] = p.clone();
            }
            if extra_proto {
                cells.push(item.proto.clone().unwrap_or_default());
            }
            match notes_at {
                Some(at) if !item.remarks.is_empty() => {
                    let mut text = cells[at].trim().trim_end_matches('.').to_string();
                    if !text.is_empty() {
                        text.push_str(". ");
                    }
                    text.push_str(&item.remarks);
                    cells[at] = text;
                }
                Some(_) => {}
                None => cells.push(item.remarks.clone()),
            }
            let ends: Vec<(String, String)> = match beside {
                Some((a, b)) => {
                    let (left, right) = (cells[a].clone(), cells[b].clone());
                    match item.arrow {
                        Some(Arrow::Left) => vec![(right, left)],
                        Some(Arrow::Both) => vec![(left.clone(), right.clone()), (right, left)],
                        Some(Arrow::Right) | None => vec![(left, right)],
                    }
                }
                None => {
                    // A "Service | Servers" row listens on its daemon.
                    let here = daemons::of_row(layout, &table.header, &row.cells)
                        .or_else(|| host.and_then(|h| row.cells.get(h)).cloned());
                    let here = here.unwrap_or_default();
                    let out = item.outbound || outbound_row || item.to.is_some();
                    match (&item.from, &item.to) {
                        (Some(from), _) => vec![(from.clone(), here)],
                        (None, Some(to)) => vec![(here, to.clone())],
                        (None, None) if out => vec![(here, String::new())],
                        (None, None) => vec![(String::new(), here)],
                    }
                }
            };
            let outward = item.outbound || outbound_row || item.to.is_some() && item.from.is_none();
            for (from, to) in ends {
                let mut cells = cells.clone();
                match beside {
                    Some((a, b)) => {
                        cells[a] = from;
                        cells[b] = to;
                    }
                    None if extra_ends => cells.extend([from, to]),
                    None => {}
                }
                if extra_direction {
                    cells.push(if outward { "Outbound" } else { "Inbound" }.into());
                }
                rows.push(Row {
                    line: row.line,
                    written_cells: cells.len(),
                    cells,
                });
            }
        }
    }
    Some(Table {
        header,
        rows,
        ..table.clone()
    })
}

/// A column an arrow may point at: unclaimed, or one naming a peer.
fn columns_free(header: &str) -> bool {
    matches!(
        columns::recognise(header),
        None | Some(Column::Peer | Column::Component)
    )
}

/// Reads one list item; `None` when it names no port.
fn read_item(text: &str) -> Option<Item> {
    let mut item = Item::default();
    let mut rest = text.trim().to_string();
    for (token, arrow) in ARROWS {
        if let Some(i) = rest.find(token) {
            item.arrow = Some(*arrow);
            rest.replace_range(i..i + token.len(), " ");
            break;
        }
    }
    let lower = rest.to_ascii_lowercase();
    if let Some(i) = lower.find("(outbound)") {
        item.outbound = true;
        rest.replace_range(i..i + "(outbound)".len(), " ");
    }
    // Parenthesised remarks may name the peer: "(Syslog, from the other nodes)".
    let mut remarks = Vec::new();
    while let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) {
        if close < open {
            break;
        }
        remarks.push(rest[open + 1..close].to_string());
        rest.replace_range(open..=close, " ");
    }
    // "LABEL: rest": a transport, or the service's name.
    if let Some(colon) = rest.find(':') {
        let label = rest[..colon].trim().to_string();
        if !label.is_empty() && !label.chars().any(|c| c.is_ascii_digit()) {
            if transport(&label).is_some() {
                item.proto = Some(label);
            }
            rest = rest[colon + 1..].to_string();
        }
    }
    item.remarks = remarks.join("; ");
    let remarks_proto = remarks
        .iter()
        .find_map(|r| protocol::from_service(r))
        .map(|p| {
            p.protos
                .iter()
                .map(|p| p.name().to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join("/")
        });
    // ", from X" / ", to X" after the port.
    for clause in std::iter::once(rest.clone()).chain(remarks) {
        for part in clause.split(',') {
            let p = part.trim();
            let lower = p.to_ascii_lowercase();
            if let Some(who) = lower.strip_prefix("from ") {
                item.from = Some(p[p.len() - who.len()..].trim().to_string());
            } else if let Some(who) = lower.strip_prefix("to ") {
                item.to = Some(p[p.len() - who.len()..].trim().to_string());
            }
        }
    }
    let head = rest
        .split(',')
        .take_while(|p| {
            let l = p.trim().to_ascii_lowercase();
            !l.starts_with("from ") && !l.starts_with("to ")
        })
        .collect::<Vec<_>>()
        .join(",");
    // Leading transport words ("TCP/UDP 88", "UDP 9996").
    let mut words = head.split_whitespace().peekable();
    let mut proto = None;
    while let Some(w) = words.peek() {
        if transport(w).is_some() {
            proto = Some(proto.map_or(w.to_string(), |p: String| format!("{p}/{w}")));
            words.next();
        } else {
            break;
        }
    }
    // The numbers that follow: "12001 Global" is 12001.
    let mut numbers = Vec::new();
    for w in words {
        let bare = w.trim_end_matches(',');
        // "1433/TCP" reads whole; "80[^1]" and "1645," are numbers.
        let numeric = bare
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ',' | '/' | ':' | '[' | ']' | '^'))
            || bare.starts_with(|c: char| c.is_ascii_digit()) && ports::parse(bare).is_ok();
        let joiner = matches!(bare.to_ascii_lowercase().as_str(), "and" | "or");
        if numeric && bare.chars().any(|c| c.is_ascii_digit()) || joiner && !numbers.is_empty() {
            numbers.push(w.to_string());
        } else if transport(bare).is_some() && !numbers.is_empty() {
            proto = Some(bare.to_string());
        } else {
            break;
        }
    }
    let ports_text = numbers.join(" ").trim_end_matches(',').to_string();
    if ports_text.is_empty() || ports::parse(&ports_text).is_err() {
        return None;
    }
    item.ports = ports_text;
    if item.proto.is_none() {
        item.proto = proto;
    }
    // "53 (DNS)": a service whose name settles the transport.
    if item.proto.is_none() {
        item.proto = remarks_proto;
    }
    Some(item)
}

/// "TCP", "UDP", "TCP/UDP": a transport name alone.
fn transport(word: &str) -> Option<()> {
    let lower = word.trim().to_ascii_lowercase();
    lower
        .split('/')
        .all(|w| matches!(w.trim(), "tcp" | "udp" | "sctp"))
        .then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ports: &str, proto: Option<&str>, remarks: &str) -> Item {
        Item {
            ports: ports.into(),
            proto: proto.map(String::from),
            remarks: remarks.into(),
            ..Item::default()
        }
    }

    #[test]
    fn items_give_their_ports_transports_and_peers() {
        assert_eq!(
            read_item("TCP: 22 (Secure Shell [SSH] server)"),
            Some(item("22", Some("TCP"), "Secure Shell [SSH] server"))
        );
        assert_eq!(
            read_item("TCP: 12001 Global (JGroups)"),
            Some(item("12001", Some("TCP"), "JGroups"))
        );
        let netflow = read_item("NetFlow: UDP 9996, from NetFlow exporters").unwrap();
        assert_eq!(netflow.ports, "9996");
        assert_eq!(netflow.proto.as_deref(), Some("UDP"));
        assert_eq!(netflow.from.as_deref(), Some("NetFlow exporters"));
        let radius =
            read_item("UDP: 1645, 1812 (RADIUS Authentication, from network access devices)")
                .unwrap();
        assert_eq!(radius.ports, "1645, 1812");
        assert_eq!(radius.from.as_deref(), Some("network access devices"));
        let kerberos = read_item("Kerberos: TCP/UDP 88, to Active Directory").unwrap();
        assert_eq!(kerberos.proto.as_deref(), Some("TCP/UDP"));
        assert_eq!(kerberos.to.as_deref(), Some("Active Directory"));
        let coa = read_item("UDP: 1700 (CoA Send, to network access devices) (outbound)").unwrap();
        assert!(coa.outbound);
        let ers = read_item("TCP: 9060 (ERS REST API, disabled by default)").unwrap();
        assert_eq!(ers.remarks, "ERS REST API, disabled by default");
        assert_eq!(read_item("Note Port 80 is redirected to port 443."), None);
        assert_eq!(read_item("ICMP (Heartbeat)"), None);
    }

    #[test]
    fn arrows_glued_to_ports() {
        let right = read_item("1433/TCP --->").unwrap();
        assert_eq!(
            (right.ports.as_str(), right.arrow),
            ("1433/TCP", Some(Arrow::Right))
        );
        let both = read_item("161,162 <--->").unwrap();
        assert_eq!(
            (both.ports.as_str(), both.arrow),
            ("161,162", Some(Arrow::Both))
        );
        let left = read_item("TCP 1270 <---").unwrap();
        assert_eq!(left.arrow, Some(Arrow::Left));
        assert_eq!(left.proto.as_deref(), Some("TCP"));
        let dns = read_item("53 (DNS) --->").unwrap();
        assert_eq!(dns.ports, "53");
        assert_eq!(dns.proto.as_deref(), Some("UDP/TCP"));
    }

    #[test]
    fn a_listed_cell_becomes_one_row_per_item() {
        let table = Table {
            line: 1,
            header: ["Feature A", "Port and Direction", "Feature B"]
                .map(String::from)
                .to_vec(),
            rows: vec![Row {
                line: 3,
                cells: ["Console", "80, 443 --->; 49152-65535 TCP <--->", "Catalog"]
                    .map(String::from)
                    .to_vec(),
                written_cells: 3,
            }],
            header_from_first_row: false,
            caption: None,
        };
        let layout = Layout::of(&table.header);
        let t = split(&table, &layout).unwrap();
        let ends: Vec<(&str, &str, &str)> = t
            .rows
            .iter()
            .map(|r| {
                (
                    r.cells[0].as_str(),
                    r.cells[1].as_str(),
                    r.cells[2].as_str(),
                )
            })
            .collect();
        assert_eq!(
            ends,
            vec![
                ("Console", "80, 443", "Catalog"),
                ("Console", "49152-65535", "Catalog"),
                ("Catalog", "49152-65535", "Console"),
            ]
        );
        assert!(t.rows.iter().all(|r| r.line == 3));
        assert!(t.header[0].starts_with("Source"));
        assert_eq!(t.rows[1].cells[3], "TCP");
    }
}
