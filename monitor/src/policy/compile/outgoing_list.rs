//! A bullet list of the connections a host opens, under a paragraph that
//! introduces them as its outgoing connections, the way appliance and
//! server manuals close their port pages:
//!
//! > Depending on the features you use, the server may also need these
//! > outgoing connections:
//! > - SMTP, to send notifications by email (port 25, 465 or 587 TCP)
//! > - DNS (port 53 UDP)
//!
//! Each item names a service and its port; the host the paragraph names
//! opens the connection, to the server of that service ("your mail
//! server" when the item says so, else the DNS server). "Depending on",
//! "may" and "if you use" make every item needed only for its feature.

use super::{Ctx, normalize::protocol, roles};
use crate::policy::model::{Direction, NODES, PortRange, Ports, Proto, Required, Rule};

/// What the paragraph above the list says of its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intro {
    line: u32,
    /// The host that opens the connections.
    opener: String,
    /// Each item is needed only when its feature is used.
    conditional: bool,
}

/// The intro a paragraph at `line` makes, if it announces outgoing
/// connections and names no port itself.
pub fn intro(ctx: &Ctx, text: &str, line: u32, headings: &[(u8, String)]) -> Option<Intro> {
    let lower = text.to_ascii_lowercase();
    let outgoing = ["outgoing connection", "outbound connection"]
        .iter()
        .any(|w| lower.contains(w));
    if !outgoing || lower.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let opener = roles::mentioned(text, &ctx.roles)
        .or_else(|| {
            headings
                .iter()
                .rev()
                .find_map(|(_, h)| roles::of_heading(h, ctx.title.as_deref()))
        })
        .unwrap_or_else(|| NODES.to_string());
    let conditional = ["depending on", " may ", "if you use", "optional"]
        .iter()
        .any(|w| lower.contains(w));
    Some(Intro {
        line,
        opener,
        conditional,
    })
}

/// One item of the list.
#[derive(Debug, PartialEq, Eq)]
struct Item {
    service: String,
    ports: Vec<u16>,
    protos: Vec<Proto>,
    /// "your mail server", else the service's server.
    peer: String,
}

/// Compiles `text`, an item at `line` of the list `intro` introduces;
/// returns whether it gave rules.
pub fn read(ctx: &mut Ctx, intro: &Intro, text: &str, line: u32) -> bool {
    let Some(item) = parse(text) else {
        return false;
    };
    let (required, condition) = if intro.conditional {
        (
            Required::Conditional,
            Some(format!("only when it is used: {}", item.service)),
        )
    } else {
        (Required::Yes, None)
    };
    let alternatives = item.ports.len() > 1 && text.to_ascii_lowercase().contains(" or ");
    let rules: Vec<Rule> = item
        .protos
        .iter()
        .map(|&proto| Rule {
            service: item.service.clone(),
            proto,
            ports: Ports::List(item.ports.iter().map(|&p| PortRange::single(p)).collect()),
            alternatives,
            direction: Direction::Outbound,
            local_role: intro.opener.clone(),
            peer_role: Some(item.peer.clone()),
            required,
            condition: condition.clone(),
            notes: vec![format!(
                "an outgoing connection the paragraph at line {} lists",
                intro.line
            )],
            review: vec!["read from a list item: check who is the peer".into()],
            ..super::read_at(line)
        })
        .collect();
    ctx.add_rules(line, rules);
    true
}

fn parse(text: &str) -> Option<Item> {
    let lower = text.to_ascii_lowercase();
    let at = lower
        .match_indices("port")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphanumeric())?;
    let mut ports = Vec::new();
    let mut protos = Vec::new();
    for word in lower[at..].split_whitespace().skip(1) {
        let bare = word.trim_matches(|c: char| matches!(c, ',' | ')' | '(' | ';' | '.'));
        if let Ok(p) = bare.parse::<u16>() {
            if p > 0 && !ports.contains(&p) {
                ports.push(p);
            }
        } else if let Some(p) = transport(bare) {
            if !protos.contains(&p) {
                protos.push(p);
            }
        } else if !matches!(bare, "or" | "and" | "") {
            break;
        }
        if word.ends_with(')') {
            break;
        }
    }
    if ports.is_empty() {
        return None;
    }
    let head_end = text.find(['(', ',', ':']).unwrap_or(text.len()).min(at);
    let head = text[..head_end].trim();
    let service = text[..text.find('(').unwrap_or(text.len()).min(at)]
        .trim()
        .trim_end_matches(',')
        .trim();
    if head.is_empty() || head.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if protos.is_empty() {
        protos = protocol::from_service(head).map_or(vec![Proto::Tcp], |r| r.protos.clone());
    }
    let peer = named_server(&lower)
        .or_else(|| {
            let first = head.split_whitespace().next()?;
            roles::slug(&format!("{first} server"))
        })
        .unwrap_or_else(|| "any".into());
    Some(Item {
        service: service.to_string(),
        ports,
        protos,
        peer,
    })
}

fn transport(word: &str) -> Option<Proto> {
    match word {
        "tcp" => Some(Proto::Tcp),
        "udp" => Some(Proto::Udp),
        _ => None,
    }
}

/// "your mail server", "the LDAP server": the server an item names.
fn named_server(lower: &str) -> Option<String> {
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let at = words.iter().position(|w| *w == "server")?;
    let start = words[..at]
        .iter()
        .rposition(|w| matches!(*w, "your" | "the" | "a"))?;
    (at - start <= 3 && at > start + 1)
        .then(|| roles::slug(&words[start + 1..=at].join(" ")))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_of_outgoing_connections() {
        let smtp = parse(
            "SMTP, to send notifications by email (port 25, 465 or 587 TCP, whichever your \
             mail server is set up for)",
        )
        .unwrap();
        assert_eq!(smtp.ports, vec![25, 465, 587]);
        assert_eq!(smtp.protos, vec![Proto::Tcp]);
        assert_eq!(smtp.peer, "mail-server");
        assert_eq!(smtp.service, "SMTP, to send notifications by email");
        let ldap = parse("LDAP authentication (port 389 TCP, or 636 TCP for LDAPS)").unwrap();
        assert_eq!(ldap.ports, vec![389, 636]);
        assert_eq!(ldap.peer, "ldap-server");
        let dns = parse("DNS (port 53 UDP)").unwrap();
        assert_eq!(
            (dns.protos, dns.peer.as_str()),
            (vec![Proto::Udp], "dns-server")
        );
        assert!(parse("Keep the report ports closed").is_none());
        assert!(parse("Agent Bakery (see the table above)").is_none());
    }

    #[test]
    fn paragraphs_that_introduce_them() {
        let ctx = Ctx::new("doc.md", "doc");
        let it = intro(
            &ctx,
            "Depending on the features you use, the server may also need these outgoing \
             connections:",
            7,
            &[],
        )
        .unwrap();
        assert!(it.conditional);
        assert!(intro(&ctx, "Open port 443 for outgoing connections.", 1, &[]).is_none());
        assert!(intro(&ctx, "The agent listens on these ports:", 1, &[]).is_none());
    }
}
