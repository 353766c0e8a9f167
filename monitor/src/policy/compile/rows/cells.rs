//! Readings of one row that look across its cells: X marks, placeholder
//! ports with an alternative column, qualifiers in endpoint cells, the
//! host itself as an endpoint, and the local end of a row that names both.

use crate::policy::{
    compile::{
        columns::{Column, Layout},
        normalize::{endpoints, ports},
    },
    model::{Direction, NODES},
};

/// X marks in columns the compiler does not otherwise read ("All" /
/// "Distributed / High availability"): a row marked only under columns
/// other than "All" or "Required" is needed only in those setups.
pub(super) fn marks_condition(
    layout: &Layout,
    header: &[String],
    cells: &[String],
) -> Option<String> {
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
pub(super) fn alternative_port(
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
        let lower = c.trim().to_ascii_lowercase();
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
pub(super) fn endpoint_qualifiers(text: &str) -> (String, Option<String>) {
    let mut condition = None;
    let mut kept = Vec::new();
    for item in text.split(';') {
        let bare = item.trim().trim_matches('*').trim();
        let lower = bare.to_ascii_lowercase();
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
        return match activity_clause(text) {
            Some((host, cond)) => (host, cond),
            None => (text.to_string(), None),
        };
    }
    (kept.join("; "), condition)
}

/// Words for the kind of host an endpoint cell starts with.
const HOST_WORDS: &[&str] = &[
    "agent", "agents", "server", "servers", "console", "consoles", "client", "clients", "node",
    "nodes", "host", "hosts",
];

/// "Windows agent installed using MOMAgent.msi", "UNIX/Linux agent
/// discovery and monitoring of agent", "UNIX/Linux agent for installing,
/// upgrading, and removing agent using SSH": a host, then what it is doing
/// or how it got there. The host is the endpoint; "for <doing>" is also
/// the setup the row is needed for.
fn activity_clause(text: &str) -> Option<(String, Option<String>)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words
        .iter()
        .take(3)
        .position(|w| HOST_WORDS.contains(&w.to_ascii_lowercase().as_str()))?;
    let next = words.get(at + 1)?.to_ascii_lowercase();
    let after = words
        .get(at + 2)
        .map(|w| w.trim_end_matches([',', ';', '.']).to_ascii_lowercase());
    let purpose = next == "for" && after.as_deref().is_some_and(|w| w.ends_with("ing"));
    let how = matches!(
        next.as_str(),
        "installed" | "deployed" | "discovery" | "running"
    );
    if !purpose && !how {
        return None;
    }
    let host = words[..=at].join(" ");
    let cond = purpose.then(|| words[at + 1..].join(" "));
    Some((host, cond))
}

/// Why a row's port is bound to the loopback interface, if it says so: a
/// port cell written `localhost: 19001` or `127.0.0.1:8065`, or a cell that
/// is just "localhost" (an Access column). Such a port never needs a
/// firewall opening, so it is no rule.
pub(super) fn loopback_only(layout: &Layout, cells: &[String]) -> Option<String> {
    const LOOPBACK: &[&str] = &["localhost", "127.0.0.1", "[::1]", "loopback"];
    let port = layout
        .cell(cells, Column::Port)?
        .trim()
        .to_ascii_lowercase();
    if let Some(host) = LOOPBACK.iter().find(|h| port.starts_with(*h)) {
        return Some(format!(
            "the port is written on {host}: bound to the loopback interface"
        ));
    }
    let said = cells
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .find(|c| LOOPBACK.contains(&c.as_str()))?;
    Some(format!(
        "a cell says {said:?}: bound to the loopback interface"
    ))
}

/// Drops the endpoints that are the host itself; a cell naming nothing else
/// means the row's traffic never leaves the host.
pub(super) fn without_self(
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

/// Why a row from a host to a host of the same kind is that host talking
/// to itself: its words place the other end "on the same machine" (a
/// service and its own local database). Such traffic stays on the host;
/// two hosts of one kind talking to each other (cluster peers) say nothing
/// of the sort and stay rules.
pub(super) fn to_itself(
    source: Option<&[endpoints::Endpoint]>,
    destination: Option<&[endpoints::Endpoint]>,
    cells: &[String],
) -> Option<String> {
    const SAME: &[&str] = &[
        "on the same machine",
        "on the same host",
        "on the same server",
        "on the same node",
        "on the local machine",
        "on the local host",
    ];
    let (Some([endpoints::Endpoint::Role(a)]), Some([endpoints::Endpoint::Role(b)])) =
        (source, destination)
    else {
        return None;
    };
    if a != b {
        return None;
    }
    let text = cells.join(" ").to_ascii_lowercase();
    let said = SAME.iter().find(|s| text.contains(*s))?;
    Some(format!(
        "from {a} to {b} {said}: the host's traffic to itself never crosses the network, no rule"
    ))
}

/// A row that names both ends by role and neither as `nodes`: the local
/// end is the Destination of inbound rows, the Source of outbound ones.
pub(super) fn row_local(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_in_endpoint_cells() {
        let (kept, cond) = endpoint_qualifiers("**Linux worker nodes only**; Any network");
        assert_eq!(kept, "Any network");
        assert_eq!(cond.as_deref(), Some("only on Linux worker nodes"));
        let (kept, cond) = endpoint_qualifiers("Windows agent installed using MOMAgent.msi");
        assert_eq!((kept.as_str(), cond), ("Windows agent", None));
        let (kept, cond) = endpoint_qualifiers("UNIX/Linux agent for installing, upgrading");
        assert_eq!(kept, "UNIX/Linux agent");
        assert_eq!(cond.as_deref(), Some("for installing, upgrading"));
        let (_, cond) = endpoint_qualifiers("Unix agent for updating");
        assert_eq!(cond.as_deref(), Some("for updating"));
        let (kept, _) = endpoint_qualifiers("Web console for Application Diagnostics");
        assert_eq!(kept, "Web console for Application Diagnostics");
        let (kept, cond) = endpoint_qualifiers("network devices, if the forwarder collects syslog");
        assert_eq!(kept, "network devices");
        assert_eq!(cond.as_deref(), Some("if the forwarder collects syslog"));
    }

    #[test]
    fn the_local_end_of_a_row() {
        let role = |r: &str| endpoints::Endpoint::Role(r.into());
        let (s, d) = (vec![role("agents")], vec![role("manager")]);
        assert_eq!(
            row_local(Direction::Inbound, Some(&s), Some(&d)).as_deref(),
            Some("manager")
        );
        assert_eq!(
            row_local(Direction::Outbound, Some(&s), Some(&d)).as_deref(),
            Some("agents")
        );
        assert_eq!(
            row_local(Direction::Inbound, None, Some(&d)).as_deref(),
            Some("manager")
        );
        let nodes = vec![role(NODES)];
        assert_eq!(row_local(Direction::Inbound, Some(&s), Some(&nodes)), None);
        assert!(without_self(Some(vec![role(endpoints::SELF)])).is_err());
    }

    #[test]
    fn loopback_rows() {
        let header: Vec<String> = ["Port", "Access"].map(String::from).to_vec();
        let layout = Layout::of(&header);
        let row = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        assert!(loopback_only(&layout, &row("localhost: 19001", "")).is_some());
        assert!(loopback_only(&layout, &row("4867", "localhost")).is_some());
        assert!(loopback_only(&layout, &row("7180", "External")).is_none());
    }

    #[test]
    fn x_marks() {
        let header: Vec<String> = ["Port", "Type All", "Type Distributed"]
            .map(String::from)
            .to_vec();
        let layout = Layout::of(&header);
        let row = |a: &str, b: &str| vec!["80".to_string(), a.into(), b.into()];
        assert_eq!(marks_condition(&layout, &header, &row("X", "")), None);
        assert_eq!(
            marks_condition(&layout, &header, &row("", "X")).as_deref(),
            Some("Type Distributed")
        );
    }
}
