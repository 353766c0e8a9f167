//! List items that state one connection in a fixed shape, as network
//! requirement pages of cloud products write them:
//!
//! - "Client -> Controller port is `:9200`", "Worker → Controller: TCP 9201":
//!   an arrow between the opener and the listener, and the port;
//! - "Outbound connectivity (TCP-9201) to the control plane", "Inbound
//!   connectivity (TCP-9202) from clients": the section's host (the heading
//!   above: "Ingress worker") opens or accepts the connection.
//!
//! The sentence reader finds neither: the first has no verb, the second no
//! subject. Each item becomes one rule on its line, marked for review.

use super::{Ctx, normalize::endpoints, roles, rows::truncate};
use crate::policy::model::{Direction, PortRange, Ports, Proto, Required, Rule};

const ARROWS: &[&str] = &["-->", "->", "→", "⟶"];

/// One connection an item states.
#[derive(Debug, PartialEq, Eq)]
struct Stated {
    opener: String,
    listener: String,
    port: u16,
    proto: Proto,
}

/// Reads `item` (a list item at `line`) under `headings`; returns whether it
/// gave a rule.
pub fn read(ctx: &mut Ctx, item: &str, line: u32, headings: &[(u8, String)]) -> bool {
    let section = headings
        .iter()
        .rev()
        .find_map(|(_, h)| roles::of_heading(h, ctx.title.as_deref()));
    let Some(stated) = arrow(item).or_else(|| connectivity(item, section.as_deref())) else {
        return false;
    };
    let known = endpoints::Known {
        roles: &ctx.roles,
        local: None,
    };
    let role = |name: &str| -> Option<String> {
        endpoints::parse_in(name, known)
            .ok()
            .and_then(|r| r.endpoints.into_iter().next())
            .and_then(|e| match e {
                endpoints::Endpoint::Role(r) => Some(r),
                endpoints::Endpoint::Literal(_) => None,
            })
            .or_else(|| roles::slug(name))
    };
    let (Some(local), Some(peer)) = (role(&stated.listener), role(&stated.opener)) else {
        return false;
    };
    let rule = Rule {
        service: truncate(item.trim(), 60),
        proto: stated.proto,
        ports: Ports::List(vec![PortRange::single(stated.port)]),
        direction: Direction::Inbound,
        local_role: local,
        peer_role: Some(peer),
        required: Required::Yes,
        notes: vec![format!(
            "list item: {} opens the connection to {}",
            stated.opener, stated.listener
        )],
        review: vec!["read from a list item, not a table: check its ends and transport".into()],
        ..super::read_at(line)
    };
    ctx.add_rules(line, vec![rule]);
    true
}

/// "A -> B port is :9200".
fn arrow(item: &str) -> Option<Stated> {
    let (at, token) = ARROWS
        .iter()
        .filter_map(|a| item.find(a).map(|i| (i, *a)))
        .min_by_key(|(i, _)| *i)?;
    let opener = clean(&item[..at]);
    let rest = &item[at + token.len()..];
    let lower = rest.to_ascii_lowercase();
    let end = [" port", " on ", ":", " uses ", " over ", ","]
        .iter()
        .filter_map(|w| lower.find(w))
        .min()?;
    let listener = clean(&rest[..end]);
    let (port, proto) = port_in(&lower[end..])?;
    (!opener.is_empty() && !listener.is_empty()).then_some(Stated {
        opener,
        listener,
        port,
        proto,
    })
}

/// "Outbound connectivity (TCP-9201) to X" / "Inbound connectivity
/// (TCP-9202) from X", under a heading naming the host.
fn connectivity(item: &str, section: Option<&str>) -> Option<Stated> {
    let section = section?;
    let lower = item.to_ascii_lowercase();
    let outbound = lower.starts_with("outbound ");
    if !outbound && !lower.starts_with("inbound ") {
        return None;
    }
    let word = if outbound { " to " } else { " from " };
    let at = lower.find(word)?;
    let (port, proto) = port_in(&lower)?;
    let rest = &item[at + word.len()..];
    let end = rest.find([':', ',', '(', ';']).unwrap_or(rest.len());
    let other = clean(&rest[..end]);
    if other.is_empty() {
        return None;
    }
    let (opener, listener) = if outbound {
        (section.to_string(), other)
    } else {
        (other, section.to_string())
    };
    Some(Stated {
        opener,
        listener,
        port,
        proto,
    })
}

/// The port an item names: `:9200`, `TCP-9201`, `TCP 9202`, `port 8200`,
/// `9460/tcp`; TCP unless it says UDP.
fn port_in(lower: &str) -> Option<(u16, Proto)> {
    let proto = if lower.contains("udp") {
        Proto::Udp
    } else {
        Proto::Tcp
    };
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | '`'))
        .filter(|w| !w.is_empty())
        .collect();
    let number = |s: &str| -> Option<u16> {
        let s = s.trim_end_matches(['.', ';']);
        s.parse::<u16>().ok().filter(|&n| n > 0)
    };
    for (i, w) in words.iter().enumerate() {
        let prev = if i > 0 { words[i - 1] } else { "" };
        let found = if let Some(n) = w.strip_prefix(':') {
            number(n)
        } else if let Some(n) = w.strip_prefix("tcp-").or_else(|| w.strip_prefix("udp-")) {
            number(n)
        } else if let Some((n, p)) = w.split_once('/')
            && (p.starts_with("tcp") || p.starts_with("udp"))
        {
            number(n)
        } else if matches!(prev, "port" | "tcp" | "udp") {
            number(w)
        } else {
            None
        };
        if let Some(n) = found {
            return Some((n, proto));
        }
    }
    None
}

/// A phrase without its leading article, emphasis or trailing punctuation.
fn clean(phrase: &str) -> String {
    let p = phrase.trim().trim_matches(['*', '`', '.', ':']).trim();
    let lower = p.to_ascii_lowercase();
    let p = ["the ", "a ", "an ", "its ", "each ", "every "]
        .iter()
        .find_map(|a| lower.starts_with(a).then(|| &p[a.len()..]))
        .unwrap_or(p);
    p.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stated(opener: &str, listener: &str, port: u16) -> Option<Stated> {
        Some(Stated {
            opener: opener.into(),
            listener: listener.into(),
            port,
            proto: Proto::Tcp,
        })
    }

    #[test]
    fn arrows_name_both_ends() {
        assert_eq!(
            arrow("Client -> Controller port is `:9200`"),
            stated("Client", "Controller", 9200)
        );
        assert_eq!(
            arrow("Worker → Controller: TCP 9201"),
            stated("Worker", "Controller", 9201)
        );
        assert_eq!(arrow("Workers must have a route to the targets"), None);
        assert_eq!(arrow("Client -> Controller"), None);
    }

    #[test]
    fn connectivity_takes_the_section_host() {
        assert_eq!(
            connectivity(
                "Outbound connectivity (TCP-9201) to the control plane (the cluster URL)",
                Some("ingress-worker")
            ),
            stated("ingress-worker", "control plane", 9201)
        );
        assert_eq!(
            connectivity(
                "Inbound connectivity (TCP-9202) from users establishing sessions",
                Some("ingress-worker")
            ),
            stated("users establishing sessions", "ingress-worker", 9202)
        );
        assert_eq!(
            connectivity(
                "Outbound connectivity to the remote service port",
                Some("w")
            ),
            None
        );
        assert_eq!(connectivity("Outbound TCP-9201 to x", None), None);
    }
}
