//! Both ends of a table's rows, stated once in the sentence just above it:
//! "The Checkmk server must be able to reach the following ports on every
//! monitored host.", "Open these ports on the database hosts for the
//! application servers.", "The broker must accept connections on these
//! ports from the clients.", "the following ports from the agents to the
//! manager". Port documents very often say so instead of giving each row
//! Source and Destination columns: who connects, and the host whose ports
//! the rows list.

use super::roles;

/// Who opens the connections and who listens, as role slugs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ends {
    pub opener: String,
    pub listener: String,
}

/// Whether a paragraph says the table after it lists ports of the
/// loopback interface ("uses the following ports on its loopback
/// interface", "allow it in both directions on 127.0.0.1"): traffic that
/// never leaves the host.
/// The sentence must point at the rows ("the following ports", "allow
/// them"), so that a legend ("*localhost* means the port is bound to the
/// loopback interface") is not taken for one.
pub fn loopback(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.split(". ").any(|s| {
        ["loopback", "127.0.0.1", "localhost"]
            .iter()
            .any(|w| s.contains(w))
            && [
                "following port",
                "these ports",
                "ports below",
                "allow them",
                "allow it ",
                "open them",
            ]
            .iter()
            .any(|w| s.contains(w))
            && !s.contains(" means ")
    })
}

/// The ends a caption or heading names: "Ports used for all-machine to
/// control plane communications", "Traffic from workers to the API
/// server". Both ends must end in a word for hosts.
pub fn of_caption(text: &str) -> Option<Ends> {
    let lower = text.trim().to_ascii_lowercase();
    // "Table 2. ..."
    let lower = match lower.split_once(". ") {
        Some((head, rest)) if head.starts_with("table ") => rest.to_string(),
        _ => lower,
    };
    let rest = [
        "ports used for ",
        "ports for ",
        "traffic from ",
        "ports from ",
    ]
    .iter()
    .find_map(|p| lower.strip_prefix(p))?;
    let rest = rest.strip_prefix("from ").unwrap_or(rest);
    let (from, to) = rest.split_once(" to ")?;
    let to = [
        " communications",
        " communication",
        " traffic",
        " connections",
    ]
    .iter()
    .find_map(|s| to.strip_suffix(s))
    .unwrap_or(to);
    if !roles::ends_in_host_word(from) || !roles::ends_in_host_word(to) {
        return None;
    }
    Some(Ends {
        opener: every_or_host(from)?,
        listener: every_or_host(to)?,
    })
}

/// "all-machine", "all machines": every host of the product, a role of its
/// own (the slug would drop "all" and leave a bare "machine").
fn every_or_host(phrase: &str) -> Option<String> {
    let words: Vec<&str> = phrase
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        ["all" | "every", host] if roles::slug(host).is_some() => {
            Some(format!("all-{}", roles::slug(host)?))
        }
        _ => host_phrase(phrase),
    }
}

/// The host a section's prose says its table's connections go to: "The
/// destination for these clients and services is the Client Access
/// services on a Mailbox server." (a table with no Destination column,
/// whose notes say where its rows end). The host is what follows the last
/// "on"/"of" when the destination is a service on it.
pub fn destination(text: &str) -> Option<String> {
    let text = text.replace(['*', '`'], "");
    text.split(". ").find_map(|sentence| {
        let s = sentence.trim().trim_end_matches('.').to_ascii_lowercase();
        // A bullet or a "Notes:" label may run into the sentence.
        let at = s.find("the destination ")?;
        let rest = &s[at + "the destination ".len()..];
        let (_, what) = rest.split_once(" is ")?;
        let host = what.rsplit_once(" on ").map_or(what, |(_, h)| h);
        roles::ends_in_host_word(host)
            .then(|| host_phrase(host))
            .flatten()
    })
}

/// Who a section's prose says its table's connections come from: "the
/// source can be any location outside the organization" is anyone
/// (`any`); "the source is the monitoring server" that host.
pub fn source(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase().replace(['*', '`'], "");
    lower.split(". ").find_map(|s| {
        let at = s.find("the source ")?;
        let rest = &s[at + "the source ".len()..];
        let what = ["can be ", "is ", "may be "]
            .iter()
            .find_map(|v| rest.find(v).map(|i| &rest[i + v.len()..]))?;
        if what.starts_with("any ") || what.starts_with("anywhere") {
            return Some("any".to_string());
        }
        let what = what.trim_end_matches('.');
        roles::ends_in_host_word(what)
            .then(|| host_phrase(what))
            .flatten()
    })
}

/// Verbs of connecting, as written after "must be able to" / "needs to".
const REACH: &[&str] = &[
    "reach ",
    "connect to ",
    "access ",
    "contact ",
    "communicate with ",
    "talk to ",
    "send traffic to ",
];

/// What the rows are, after the verb: "the following ports", "these ports".
const ROWS: &[&str] = &[
    "the following ports ",
    "the following port ",
    "following ports ",
    "these ports ",
    "the ports below ",
    "the ports listed below ",
    "the ports in the table below ",
    "the ports listed ",
];

/// The ends a paragraph states for the table after it, from its last
/// sentence that speaks of the rows.
pub fn of_paragraph(text: &str) -> Option<Ends> {
    let text = text.replace(['*', '`'], "");
    text.rsplit(". ").find_map(of_sentence)
}

fn of_sentence(sentence: &str) -> Option<Ends> {
    let s = sentence
        .trim()
        .trim_end_matches(['.', ':', ';'])
        .to_ascii_lowercase();
    let s = format!("{s} ");
    if s.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    reach(&s)
        .or_else(|| open_on_for(&s))
        .or_else(|| accept_from(&s))
        .or_else(|| from_to(&s))
}

/// "X must be able to reach the following ports on Y".
fn reach(s: &str) -> Option<Ends> {
    let (verb_at, verb) = REACH
        .iter()
        .filter_map(|v| s.find(&format!(" {v}")).map(|i| (i + 1, *v)))
        .min_by_key(|(i, _)| *i)?;
    let subject = strip_modal(&s[..verb_at])?;
    let rest = &s[verb_at + verb.len()..];
    let (_, after) = split_rows(rest)?;
    let host = after.strip_prefix("on ")?;
    ends(subject, host)
}

/// "Open the following ports on Y for X" (also "... for traffic from X").
fn open_on_for(s: &str) -> Option<Ends> {
    let rest = s
        .strip_prefix("open ")
        .or_else(|| s.split_once(", open ").map(|(_, r)| r))?;
    let (_, after) = split_rows(rest)?;
    let after = after.strip_prefix("on ")?;
    let (host, who) = after.split_once(" for ")?;
    let who = [
        "traffic from ",
        "connections from ",
        "access from ",
        "access by ",
    ]
    .iter()
    .find_map(|p| who.strip_prefix(p))
    .unwrap_or(who);
    ends(who, host)
}

/// "Y must accept connections [on the following ports] from X".
fn accept_from(s: &str) -> Option<Ends> {
    let at = s.find(" accept ")?;
    let subject = strip_modal(&s[..at + 1])?;
    let rest = &s[at + " accept ".len()..];
    if !ROWS.iter().any(|r| rest.contains(r.trim_end())) {
        return None;
    }
    let (_, who) = rest.split_once(" from ")?;
    ends(who, subject)
}

/// "The following ports [must be open] from X to Y".
fn from_to(s: &str) -> Option<Ends> {
    let (_, after) = split_rows(s)?;
    let after = after
        .strip_prefix("must be open ")
        .or_else(|| after.strip_prefix("are used "))
        .or_else(|| after.strip_prefix("are needed "))
        .unwrap_or(after);
    let rest = after.strip_prefix("from ")?;
    let (who, host) = rest.split_once(" to ")?;
    ends(who, host)
}

/// The text after the rows' phrase ("the following ports ...").
fn split_rows(s: &str) -> Option<(&str, &str)> {
    ROWS.iter()
        .filter_map(|r| s.find(r).map(|i| (&s[..i], &s[i + r.len()..])))
        .min_by_key(|(before, _)| before.len())
}

/// The subject before "must be able to" / "needs to" / "should": `None`
/// without such a modal, which a statement of the rows' ends has.
fn strip_modal(before: &str) -> Option<&str> {
    const MODALS: &[&str] = &[
        " must be able to ",
        " should be able to ",
        " needs to be able to ",
        " need to be able to ",
        " must ",
        " should ",
        " needs to ",
        " need to ",
        " has to ",
        " have to ",
        " can ",
    ];
    let padded = before.trim_end();
    MODALS.iter().find_map(|m| {
        let m = m.trim_end();
        padded.strip_suffix(m)
    })
}

/// Role slugs of both ends, each a short phrase naming hosts.
fn ends(opener: &str, listener: &str) -> Option<Ends> {
    let opener = host_phrase(opener)?;
    let listener = host_phrase(listener)?;
    Some(Ends { opener, listener })
}

/// The role a phrase names: its last clause ("For the features described,
/// the remote sites"), the role a host plays ("the server acting as the
/// central site"), cut before what qualifies it ("on the server for
/// notifications"); a few words with no verb.
fn host_phrase(phrase: &str) -> Option<String> {
    let mut p = phrase.trim();
    if let Some((_, last)) = p.rsplit_once(", ") {
        p = last;
    }
    for cut in [" acting as ", " in the role of ", " as the "] {
        if let Some((_, role)) = p.split_once(cut) {
            p = role;
        }
    }
    for stop in [
        " for ", " from ", " to ", " if ", " when ", " in ", " with ", " that ", " which ", " (",
        ",",
    ] {
        if let Some((head, _)) = p.split_once(stop) {
            p = head;
        }
    }
    let words: Vec<&str> = p.split_whitespace().filter(|w| !SOFT.contains(w)).collect();
    if words.is_empty() || words.len() > 5 {
        return None;
    }
    if words.iter().any(|w| NOT_HOSTS.contains(w)) {
        return None;
    }
    roles::slug(&words.join(" "))
}

/// Words that only say which of the hosts: "the associated remote sites".
const SOFT: &[&str] = &["associated", "respective", "relevant", "corresponding"];

/// Words that make a phrase something other than hosts.
const NOT_HOSTS: &[&str] = &[
    "port",
    "ports",
    "it",
    "they",
    "you",
    "we",
    "firewall",
    "traffic",
    "following",
    "these",
    "this",
    "there",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn e(o: &str, l: &str) -> Option<Ends> {
        Some(Ends {
            opener: o.into(),
            listener: l.into(),
        })
    }

    #[test]
    fn sentences_that_state_both_ends() {
        assert_eq!(
            of_paragraph(
                "The Checkmk server must be able to reach the following ports on every monitored host."
            ),
            e("checkmk-server", "monitored")
        );
        assert_eq!(
            of_paragraph(
                "For the features described, the associated remote sites must be able to reach these ports on the central site:"
            ),
            e("remote-site", "central-site")
        );
        assert_eq!(
            of_paragraph(
                "The Checkmk server acting as the central site must be able to reach the following ports on the remote sites."
            ),
            e("central-site", "remote-site")
        );
        assert_eq!(
            of_paragraph("Open these ports on the database hosts for the application servers."),
            e("application-server", "database")
        );
        assert_eq!(
            of_paragraph("The broker must accept connections on these ports from the clients."),
            e("client", "broker")
        );
        assert_eq!(
            of_paragraph("Allow the following ports from the agents to the manager:"),
            e("agent", "manager")
        );
    }

    #[test]
    fn captions_that_name_both_ends() {
        assert_eq!(
            of_caption("Table 1. Ports used for all-machine to all-machine communications"),
            e("all-machine", "all-machine")
        );
        assert_eq!(
            of_caption("Ports used for all-machine to control plane communications"),
            e("all-machine", "control-plane")
        );
        assert_eq!(of_caption("Table 4. API load balancer"), None);
        assert_eq!(of_caption("Ports used for SNMP to reach hosts"), None);
    }

    #[test]
    fn destinations_stated_in_prose() {
        assert_eq!(
            destination(
                "The destination for these clients and services is the Client Access services on a Mailbox server. In 2016 ..."
            )
            .as_deref(),
            Some("mailbox-server")
        );
        assert_eq!(destination("The destination is configurable."), None);
        assert_eq!(
            source("The table has no source column: the source can be any location outside.")
                .as_deref(),
            Some("any")
        );
        assert_eq!(source("The source port is random."), None);
    }

    #[test]
    fn loopback_paragraphs() {
        assert!(loopback(
            "The server uses the following ports on its loopback interface."
        ));
        assert!(loopback(
            "Allow it in both directions on 127.0.0.1 (IPv4) and ::1 (IPv6)."
        ));
        assert!(!loopback("Open the following ports on the server."));
    }

    #[test]
    fn other_sentences_state_no_ends() {
        for text in [
            "Open the following ports for inbound and outbound traffic on both nodes.",
            "The Checkmk server uses the following ports on its loopback interface.",
            "If the hosts run a firewall, open the ports below.",
            "You must be able to reach port 443 on the server.",
            "Required only when the policy is enabled.",
        ] {
            assert_eq!(of_paragraph(text), None, "{text}");
        }
    }
}
