//! Rules stated as a bullet list of ports, the shape prose pages use
//! instead of a table: "- 4369: epmd, a peer discovery service used by
//! nodes and CLI tools", "- 6000 through 6500: replication between nodes",
//! "- 5672, 5671: AMQP clients, without and with TLS".
//!
//! The item starts with the ports and a colon; what follows names who opens
//! the connection (nodes, "... clients", "... tools") and any condition.
//! The listener is the document's product (`nodes`) unless the item says
//! another party listens ("ports the CLI tools themselves listen on").
//! A plain port and its TLS counterpart ("without and with TLS") are the
//! same service: one rule whose ports are alternatives.

use super::{
    Ctx,
    normalize::{agents::agents_of, ports, required},
};
use crate::policy::model::{Direction, NODES, Peer, PortRange, Ports, Proto, Required, Rule};

/// Compiles one list item; returns whether it was a port item (so that the
/// sentence reader does not read it a second time).
pub fn read(ctx: &mut Ctx, text: &str, line: u32) -> bool {
    let Some((head, desc)) = split_item(text) else {
        return false;
    };
    let Some((ranges, alternatives)) = ports_of(head, desc) else {
        return false;
    };
    let lower = desc.to_ascii_lowercase();
    let mut agents = agents_of(&lower);
    // "ports the CLI tools themselves listen on": that party is the listener.
    let mut local = NODES.to_string();
    if let Some(at) = lower.find(" listen") {
        let before: Vec<&String> = agents
            .iter()
            .filter(|a| a.as_str() != NODES && lower[..at].contains(&a.replace('-', " ")))
            .collect();
        if let Some(listener) = before.first() {
            local = (*listener).clone();
            let listener = local.clone();
            agents.retain(|a| *a != listener);
            if agents.is_empty() {
                agents.push(NODES.to_string());
            }
        }
    }
    let peers: Vec<String> = if agents.is_empty() {
        vec!["any".to_string()]
    } else {
        agents
    };
    let condition = condition_of(desc);
    let service = shorten(desc);
    let rules = peers
        .into_iter()
        .map(|peer| Rule {
            id: String::new(),
            service: service.clone(),
            proto: if lower.contains("udp") && !lower.contains("tcp") {
                Proto::Udp
            } else {
                Proto::Tcp
            },
            ports: Ports::List(ranges.clone()),
            alternatives,
            direction: Direction::Inbound,
            local_role: local.clone(),
            peer_role: Some(peer),
            peer: Vec::<Peer>::new(),
            required: if condition.is_some() {
                Required::Conditional
            } else {
                Required::Yes
            },
            condition: condition.clone(),
            notes: vec!["read from a list item naming ports, not a table".into()],
            ..super::read_at(0)
        })
        .collect();
    ctx.warn(
        line,
        format!("rule read from a port list item: {service:?} (check it against the document)"),
    );
    ctx.add_rules(line, rules);
    true
}

/// "4369: epmd ..." as ("4369", "epmd ..."): the text before the first
/// colon must start with a digit and hold nothing but ports and joiners.
fn split_item(text: &str) -> Option<(&str, &str)> {
    let (head, desc) = text.split_once(':')?;
    let head = head.trim().trim_matches('`').trim_matches('*');
    let ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.len() <= 40
        && head
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .all(|w| {
                w.chars().all(|c| c.is_ascii_digit() || c == '-')
                    || matches!(
                        w.to_ascii_lowercase().as_str(),
                        "through" | "to" | "and" | "or" | "/" | "(inclusive)"
                    )
            });
    ok.then_some((head, desc.trim()))
}

/// The ranges of the item's head; alternatives when the description says
/// the ports are the same service without and with TLS.
fn ports_of(head: &str, desc: &str) -> Option<(Vec<PortRange>, bool)> {
    let cell = head
        .to_ascii_lowercase()
        .replace("(inclusive)", "")
        .replace(" through ", "-")
        .replace(" to ", "-");
    let read = ports::parse(&cell).ok()?;
    let ranges: Vec<PortRange> = read
        .groups
        .iter()
        .flat_map(|g| g.ranges.iter().copied())
        .collect();
    if ranges.is_empty() {
        return None;
    }
    let lower = desc.to_ascii_lowercase();
    let tls_pair = ranges.len() == 2
        && (lower.contains("without and with tls") || lower.contains("with and without tls"));
    let alternatives = tls_pair || read.groups.iter().any(|g| g.alternatives);
    Some((ranges, alternatives))
}

/// "only if the management plugin is enabled", "if the MQTT plugin is
/// enabled", "only with the Web STOMP plugin".
fn condition_of(desc: &str) -> Option<String> {
    if let Some(c) = required::condition_of(desc) {
        return Some(c);
    }
    let lower = desc.to_ascii_lowercase();
    let at = ["only if ", "only with ", "only when ", " if ", " when "]
        .iter()
        .filter_map(|k| lower.find(k))
        .min()?;
    let rest = &desc[at..];
    let end = rest.find([')', ';', '.']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string()).filter(|c| !c.is_empty())
}

fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let cut: String = s.chars().take(MAX).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_ports() {
        assert_eq!(split_item("8080: web").map(|p| p.0), Some("8080"));
        assert_eq!(
            split_item("100 through 200: x").map(|p| p.0),
            Some("100 through 200")
        );
        assert!(split_item("Note: 8080 is used").is_none());
        assert!(split_item("2 nodes: at least").is_none());
    }

    #[test]
    fn tls_pairs_are_alternatives() {
        let (r, alt) = ports_of("100, 101", "web clients, without and with TLS").unwrap();
        assert_eq!(r.len(), 2);
        assert!(alt);
        let (r, _) = ports_of("100 to 199 (inclusive)", "x").unwrap();
        assert_eq!(r, vec![PortRange { lo: 100, hi: 199 }]);
    }
}
