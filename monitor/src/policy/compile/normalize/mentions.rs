//! Peers named in a row's own words when the table has no Source or
//! Destination column: "DNS queries from applications", "HTTP API, called
//! by the CLI, the UI and API clients", "LAN gossip with every agent of the
//! datacenter". The phrases after from / by / for / with / to are read as
//! endpoints; "every agent" stands for every role the document names.

use super::endpoints::{self, Endpoint, Known};

/// Words after which a sentence names who is on the other side.
const MARKERS: &[&str] = &[
    " from ",
    " by ",
    " for ",
    " with ",
    " to ",
    " against ",
    " through ",
    " on each ",
    " on every ",
];

/// Words that end a peer's phrase: what follows qualifies it.
const CUT: &[&str] = &[
    " of ",
    " on ",
    " over ",
    " in ",
    " that ",
    " through ",
    " via ",
    " using ",
    " at ",
    " for ",
    // "Agents deliver audit events here": the listener, not a peer.
    " here ",
];

/// First words of parts that are not peers ("over TLS", "from it",
/// "(optional)").
const NOT_PEERS: &[&str] = &[
    "over", "via", "using", "in", "on", "at", "through", "when", "if", "it", "them", "this",
    "that", "these", "those", "optional", "required", "default", "never", "not", "port", "ports",
];

/// Nouns that, after "every"/"all", mean every host of the product.
const EVERYONE: &[&str] = &[
    "agent", "agents", "node", "nodes", "member", "members", "host", "hosts",
];

/// The peers `text` names, in order, without repeats; empty when it names
/// none that can be read.
pub fn peers(text: &str, known: Known) -> Vec<Endpoint> {
    let mut out = subjects(text, known);
    if names_clients(text) {
        for e in endpoints_of("clients", known) {
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    for e in after(text, known, MARKERS) {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// "Client port for the Thrift API", "it makes the client reconnect": a
/// port for clients, or clients that (re)connect to it, without a phrase
/// after from / by naming them.
fn names_clients(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.starts_with("client port")
        || lower.contains(" client port")
        || ["the client ", "the clients "].iter().any(|c| {
            lower.match_indices(c).any(|(i, _)| {
                let verb = lower[i + c.len()..].split_whitespace().next().unwrap_or("");
                verb.starts_with("connect") || verb.starts_with("reconnect")
            })
        })
}

/// "ESXi hosts send their logs here": the plural subjects of clauses.
pub fn subjects(text: &str, known: Known) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = Vec::new();
    for clause in text.split(['.', ';', ':']) {
        if let Some(subject) = plural_subject(clause) {
            for e in endpoints_of(&subject, known) {
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
    }
    out
}

/// The peers named after `markers` (" from ", " by ", ...).
pub fn after(text: &str, known: Known, markers: &[&str]) -> Vec<Endpoint> {
    let padded = format!(" {} ", text.replace(['(', ')'], " , "));
    let lower = padded.to_ascii_lowercase();
    let mut out: Vec<Endpoint> = Vec::new();
    for marker in markers {
        let mut from = 0;
        while let Some(i) = lower[from..].find(marker) {
            let start = from + i + marker.len();
            let before = lower[..from + i].trim_end();
            from = start;
            // "never through opscenterd", "not from clients".
            if before.ends_with(" never") || before.ends_with(" not") {
                continue;
            }
            let end = lower[start..]
                .find(['.', ';', ':'])
                .map_or(lower.len(), |e| start + e);
            for part in phrase_parts(&padded[start..end]) {
                for e in endpoints_of(&part, known) {
                    if !out.contains(&e) {
                        out.push(e);
                    }
                }
            }
        }
    }
    out
}

/// "the CLI, the UI and API clients" as its parts, each cut before what
/// qualifies it.
fn phrase_parts(phrase: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for chunk in phrase.split(',') {
        for piece in split_and(chunk) {
            let mut piece = format!(" {} ", piece.trim());
            let lower = piece.to_ascii_lowercase();
            if let Some(cut) = CUT.iter().filter_map(|c| lower.find(c)).min() {
                piece.truncate(cut);
            }
            let piece = piece.trim();
            let piece = MARKERS
                .iter()
                .find_map(|m| piece.strip_prefix(m.trim_start()))
                .unwrap_or(piece)
                .trim();
            let first = piece.split_whitespace().next().unwrap_or("").to_lowercase();
            // "redirected to 443": a port, not a peer.
            let numeric = first.starts_with(|c: char| c.is_ascii_digit());
            if piece.is_empty() || numeric || NOT_PEERS.contains(&first.as_str()) {
                continue;
            }
            if let Some(piece) = sender_of(piece) {
                parts.push(piece.to_string());
            }
        }
    }
    parts
}

/// Nouns that, in the plural, are hosts or people who open connections.
const OPENERS: &[&str] = &[
    "hosts", "clients", "agents", "servers", "devices", "users", "nodes", "browsers",
];

/// "ESXi hosts" in "ESXi hosts send their logs here": a clause that starts
/// with a short plural name followed by a verb.
fn plural_subject(clause: &str) -> Option<String> {
    let words: Vec<&str> = clause.split_whitespace().collect();
    let i = words
        .iter()
        .take(4)
        .position(|w| OPENERS.contains(&w.to_lowercase().as_str()))?;
    let verb = words.get(i + 1)?;
    if !verb.chars().all(|c| c.is_ascii_lowercase()) || matches!(*verb, "and" | "or" | "of") {
        return None;
    }
    Some(words[..=i].join(" "))
}

/// What a thing sends ("Agent messages"): the words before name the sender.
const SENT: &[&str] = &[
    "message",
    "messages",
    "request",
    "requests",
    "connection",
    "connections",
    "traffic",
    "event",
    "events",
    "queries",
    "heartbeats",
];

/// What a port serves ("the Thrift API", "the Job Tracker page"): a phrase
/// ending so names the service itself, not who connects to it.
const SERVED: &[&str] = &[
    "api",
    "apis",
    "port",
    "ports",
    "protocol",
    "page",
    "pages",
    "site",
    "console",
    "ui",
    "interface",
    "endpoint",
];

/// `piece` as the name of a peer: "Agent messages" is the agents, "the
/// Thrift API" none.
fn sender_of(piece: &str) -> Option<&str> {
    let words: Vec<&str> = piece.split_whitespace().collect();
    let last = words.last()?.to_ascii_lowercase();
    if SERVED.contains(&last.as_str()) {
        return None;
    }
    if words.len() > 1 && SENT.contains(&last.as_str()) {
        let cut = piece.trim_end().len() - words[words.len() - 1].len();
        return Some(piece[..cut].trim_end());
    }
    Some(piece)
}

fn split_and(chunk: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for word in chunk.split_whitespace() {
        if word.eq_ignore_ascii_case("and") || word.eq_ignore_ascii_case("or") {
            out.push(current.join(" "));
            current.clear();
        } else {
            current.push(word);
        }
    }
    out.push(current.join(" "));
    out
}

pub fn endpoints_of(part: &str, known: Known) -> Vec<Endpoint> {
    let lower = part.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    if let [first, noun, ..] = words.as_slice()
        && matches!(*first, "every" | "all" | "each")
        && EVERYONE.contains(noun)
    {
        let mut all: Vec<Endpoint> = known
            .roles
            .iter()
            .map(|r| Endpoint::Role(r.clone()))
            .collect();
        if let Some(local) = known.local
            && !known.roles.iter().any(|r| r == local)
        {
            all.push(Endpoint::Role(local.to_string()));
        }
        return all;
    }
    // A part of more than a few words is a clause, not a name.
    if words.len() > 5 {
        return Vec::new();
    }
    endpoints::parse_in(part, known)
        .map(|r| r.endpoints)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !matches!(e, Endpoint::Role(r) if r == endpoints::SELF))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        let roles = vec!["server".to_string(), "client".to_string()];
        let known = Known {
            roles: &roles,
            local: Some("server"),
        };
        peers(text, known).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn peers_in_words() {
        assert_eq!(names("DNS queries from applications"), vec!["applications"]);
        assert_eq!(
            names("xDS configuration for Envoy proxies, over TLS"),
            vec!["envoy-proxies"]
        );
        assert_eq!(
            names("Requests from clients and from the other servers"),
            vec!["client", "server"]
        );
        assert_eq!(
            names("LAN gossip with every agent of the datacenter"),
            vec!["server", "client"]
        );
        assert_eq!(names("Requests to the servers"), vec!["server"]);
        assert_eq!(names("Listening for client messages"), vec!["client"]);
        assert_eq!(names("Client port for the Thrift API"), vec!["client"]);
        assert_eq!(
            names("JMX. Once done, JMX makes the client reconnect elsewhere"),
            vec!["client"]
        );
        assert!(names("The Thrift API").is_empty());
        assert!(names("HTTP requests, never through the servers").is_empty());
        assert!(names("Plain-text listener").is_empty());
        assert!(
            names("Hosts download patches from it")
                .iter()
                .all(|n| n != "it")
        );
        assert_eq!(
            names("Health check for a monitoring service (optional)."),
            vec!["monitoring-endpoint"]
        );
        assert_eq!(
            names("Syslog; ESXi hosts send their logs here."),
            vec!["esxi-hosts"]
        );
    }
}
