//! Sentences that say who opens a connection without a "connects to" verb,
//! as port tables' "Use" cells and their notes write them:
//!
//! - "Code Manager on the primary server uses this port to fetch from your
//!   Git server": the subject opens, the object of the purpose listens;
//!   "... uses this port to accept requests from agents": the subject
//!   listens, "from" names the openers;
//! - "The console sends requests to the primary server on this port";
//! - "PostgreSQL data is replicated between the primary server and the
//!   replica": both ways;
//! - "this port must be open on the primary server to that workstation":
//!   the host after "open on" listens, the one after "to" opens.

use super::phrases::{object, subject};

/// Who listens and who opens, and whether both ways, as one sentence says.
pub(super) struct Ends {
    pub(super) listeners: Vec<String>,
    pub(super) openers: Vec<String>,
    pub(super) both_ways: bool,
}

/// Verbs after "to" by which the subject of "uses this port to" receives.
const RECEIVE: &[&str] = &["accept", "receive", "listen", "serve", "answer", "handle"];

/// Verbs whose object is the listener itself ("to reach X").
const DIRECT: &[&str] = &[
    "reach", "contact", "query", "poll", "call", "connect", "access",
];

/// Verbs of data that moves both ways between two ends.
const EXCHANGE: &[&str] = &[
    "replicated",
    "synchronized",
    "synchronised",
    "exchanged",
    "mirrored",
];

/// The first reading that fits `padded` (the sentence between spaces) and
/// `lower` (its ASCII lower case, same offsets).
pub(super) fn ends(padded: &str, lower: &str) -> Option<Ends> {
    uses_port(padded, lower)
        .or_else(|| sends_to(padded, lower))
        .or_else(|| exchanged_between(padded, lower))
        .or_else(|| open_on_to(padded, lower))
}

/// "X uses this port [on H] to VERB ...".
fn uses_port(padded: &str, lower: &str) -> Option<Ends> {
    let (at, verb) = [
        " uses this port",
        " use this port",
        " uses the port",
        " use the port",
    ]
    .iter()
    .find_map(|v| lower.find(v).map(|i| (i, *v)))?;
    let after = at + verb.len();
    let to = lower[after..].find(" to ")? + after;
    // "use this port on the primary server to accept ...": the host.
    let host = lower[after..to]
        .find(" on ")
        .filter(|i| lower[after..after + i].trim().is_empty())
        .map(|i| object(&padded[after + i + 4..to]))
        .filter(|h| !h.is_empty());
    let rest_at = to + 4;
    let rest = &lower[rest_at..];
    let first = rest.split_whitespace().next().unwrap_or("");
    let stem = |w: &str| w.trim_end_matches('s').to_string();
    let subject = subject(&padded[..at]);
    if RECEIVE.contains(&stem(first).as_str()) {
        let openers = rest
            .find(" from ")
            .map(|f| object(&padded[rest_at + f + 6..]))
            .unwrap_or_default();
        return Some(Ends {
            listeners: host.unwrap_or(subject),
            openers,
            both_ways: false,
        });
    }
    let target = if DIRECT.contains(&stem(first).as_str()) {
        Some(rest_at + first.len() + 1)
    } else {
        [" to ", " from ", " with "]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| rest_at + i + m.len()))
            .min()
    }?;
    let listeners = object(&padded[target.min(padded.len())..]);
    (!listeners.is_empty()).then_some(Ends {
        listeners,
        openers: host.unwrap_or(subject),
        both_ways: false,
    })
}

/// "X send(s) [requests|traffic|...] to Y": at most three words between.
fn sends_to(padded: &str, lower: &str) -> Option<Ends> {
    let (at, verb) = [" sends ", " send "]
        .iter()
        .find_map(|v| lower.find(v).map(|i| (i, *v)))?;
    let after = at + verb.len();
    let to = lower[after..].find("to ")? + after;
    if lower[after..to].split_whitespace().count() > 3 {
        return None;
    }
    let listeners = object(&padded[to + 3..]);
    let openers = subject(&padded[..at]);
    (!listeners.is_empty() && !openers.is_empty()).then_some(Ends {
        listeners,
        openers,
        both_ways: false,
    })
}

/// "... is replicated between A and B ...": both ways.
fn exchanged_between(padded: &str, lower: &str) -> Option<Ends> {
    let i = lower.find(" between ")?;
    if !EXCHANGE.iter().any(|v| lower[..i].contains(v)) {
        return None;
    }
    let rest = &padded[i + 9..];
    let (a, b) = rest.split_once(" and ")?;
    let openers = object(a);
    let listeners = object(b);
    (!openers.is_empty() && !listeners.is_empty()).then_some(Ends {
        listeners,
        openers,
        both_ways: true,
    })
}

/// "... must be open on H to P": H listens, P opens.
fn open_on_to(padded: &str, lower: &str) -> Option<Ends> {
    let i = lower.find(" open on ")?;
    let start = i + 9;
    let to = lower[start..].find(" to ")? + start;
    let listeners = object(&padded[start..to]);
    let openers = object(&padded[to + 4..]);
    (!listeners.is_empty() && !openers.is_empty()).then_some(Ends {
        listeners,
        openers,
        both_ways: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Option<(Vec<String>, Vec<String>, bool)> {
        let padded = format!(" {s} ");
        ends(&padded, &padded.to_ascii_lowercase()).map(|e| (e.listeners, e.openers, e.both_ways))
    }

    #[test]
    fn a_port_used_to_reach_or_to_accept() {
        let (l, o, _) = read("Code Manager on the primary server uses this port to clone and fetch from your Git server over SSH.").unwrap();
        assert_eq!(
            (l, o),
            (
                vec!["your Git server".to_string()],
                vec!["the primary server".to_string()]
            )
        );
        let (l, o, _) = read(
            "The primary server uses this port to accept inbound traffic and requests from agents.",
        )
        .unwrap();
        assert_eq!(
            (l, o),
            (
                vec!["The primary server".to_string()],
                vec!["agents".to_string()]
            )
        );
        let (l, o, _) = read("The orchestrator and the button use this port on the primary server to accept responses from agents, through the agent.").unwrap();
        assert_eq!(
            (l, o),
            (
                vec!["the primary server".to_string()],
                vec!["agents".to_string()]
            )
        );
    }

    #[test]
    fn sending_replicating_and_opening() {
        let (l, o, _) =
            read("The console sends requests to the primary server on this port.").unwrap();
        assert_eq!(
            (l, o),
            (
                vec!["the primary server".to_string()],
                vec!["The console".to_string()]
            )
        );
        let (l, o, both) =
            read("Data is replicated between the primary server and the replica over this port.")
                .unwrap();
        assert_eq!(
            (l, o, both),
            (
                vec!["the replica".to_string()],
                vec!["the primary server".to_string()],
                true
            )
        );
        let (l, o, _) =
            read("If you do, this port must be open on the primary server to that workstation.")
                .unwrap();
        assert_eq!(
            (l, o),
            (
                vec!["the primary server".to_string()],
                vec!["workstation".to_string()]
            )
        );
        assert!(read("Status checks are sent over this port.").is_none());
    }
}
