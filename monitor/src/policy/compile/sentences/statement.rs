//! One sentence's statement: the ports it names, their protocols, who
//! listens, who opens the connection, and under which condition.

use super::{
    numbers::ports_of,
    phrases::{list, object, subject},
    verbs,
};
use crate::policy::{
    compile::normalize::required,
    model::{PortRange, Proto},
};

/// What one sentence states.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Statement {
    pub(super) ports: Vec<PortRange>,
    pub(super) protos: Vec<Proto>,
    pub(super) listeners: Vec<String>,
    pub(super) openers: Vec<String>,
    pub(super) both_ways: bool,
    pub(super) condition: Option<String>,
    /// "(Not required to run PE.)", "optional": required = no.
    pub(super) optional: bool,
}

/// Verbs whose subject opens a connection to what follows "to".
pub(super) const CONNECT: &[&str] = &[
    " connects to ",
    " connect to ",
    " talks to ",
    " talk to ",
    " keep a connection to ",
    " keeps a connection to ",
    " send them to ",
    " sends them to ",
    " needs to reach ",
    " need to reach ",
    " poll them ",
    " polls them ",
    " gossip with ",
    // "Clients reach the monitors on TCP port 3300".
    " reach ",
    " reaches ",
    " communicates with ",
    " communicate with ",
    // A load balancer's second hop.
    " passes the connection on to ",
    " passes the connection to ",
    " forwards the connection to ",
];

/// Verbs whose subject listens: a daemon "binds to" the ports it serves.
const LISTEN: &[&str] = &[
    " listens on ",
    " listen on ",
    " serve ",
    " serves ",
    " bind to ",
    " binds to ",
    " accepts ",
    " accept ",
];

/// What names a connection's other end after "for" ("listens on port 6789
/// for clients and daemons"), rather than a use ("for passive checks").
const PEER_NOUNS: &[&str] = &[
    "client",
    "agent",
    "server",
    "node",
    "host",
    "daemon",
    "user",
    "browser",
    "peer",
    "member",
    "worker",
    "replica",
    "proxy",
    "application",
    "tool",
];

/// Words that point back at the listener a sentence named before ("bind to
/// ports ..., and clients connect to them there").
const BACK: &[&str] = &["them", "it", "this port", "these ports", "those ports"];

/// Verbs whose subject opens connections to a listener named earlier ("call
/// it", "poll it", "opens the connection").
const OPEN_IT: &[&str] = &[
    " call it",
    " calls it",
    " poll it",
    " polls it",
    " opens the connection",
    " open the connection",
];

/// A sentence's condition: "required if ..." and the like, "If you ...,"
/// or "this only applies to proxies in active mode".
pub(super) fn condition(sentence: &str) -> Option<String> {
    let padded = format!(" {} ", sentence.trim());
    let lower = padded.to_ascii_lowercase();
    let after = |i: usize| {
        let rest = &padded[i..];
        let end = rest.find([',', '.', ';']).unwrap_or(rest.len());
        rest[..end].trim().to_string()
    };
    required::condition_of(sentence.trim())
        .or_else(|| lower.find(" if ").map(|i| after(i + 4)))
        // "..., when the control repository has an SSH URL": a trailing
        // clause that says when the connection happens at all.
        .or_else(|| lower.find(", when ").map(|i| after(i + 7)))
        .or_else(|| lower.find(" only ").map(|i| after(i + 6)))
        .filter(|c| !c.is_empty())
}

/// The ports, protocols, ends and condition a sentence states.
pub(super) fn statement(sentence: &str) -> Statement {
    let mut st = Statement::default();
    let padded = format!(" {} ", sentence.replace(['`', '*'], ""));
    let lower = padded.to_ascii_lowercase();
    st.ports = ports_of(&lower);
    if lower.contains(" tcp") {
        st.protos.push(Proto::Tcp);
    }
    if lower.contains(" udp") {
        st.protos.push(Proto::Udp);
    }
    st.condition = condition(sentence);
    st.optional = optional(&lower);
    // "open ... between A and B" in both directions.
    if let Some(i) = lower.find(" between ") {
        let rest = &padded[i + 9..];
        let end = rest.find(['.', ';', ',']).unwrap_or(rest.len());
        let parts: Vec<&str> = rest[..end].splitn(2, " and ").collect();
        if parts.len() == 2 && lower.contains("open") {
            st.openers.push(parts[0].trim().to_string());
            st.listeners.push(parts[1].trim().to_string());
            st.both_ways = true;
            return st;
        }
    }
    // "OSDs bind to ports ..., and clients and monitors connect to them".
    if let Some(back) = connect_back(&padded, &lower) {
        st.listeners = back.0;
        st.openers = back.1;
        return st;
    }
    // "open TCP ports 20000 through 32000 on every client".
    if lower.contains(" open ")
        && let Some(i) = lower.find(" on every ").or_else(|| lower.find(" on each "))
    {
        st.listeners.extend(object(&padded[i + 4..]));
        return st;
    }
    // "Clients never need to reach this port": no rule.
    if lower.contains(" never ") {
        st.ports.clear();
        return st;
    }
    if let Some(e) = verbs::ends(&padded, &lower) {
        st.listeners = e.listeners;
        st.openers = e.openers;
        st.both_ways = e.both_ways;
        return st;
    }
    if let Some((at, verb)) = find_any(&lower, CONNECT) {
        st.openers.extend(subject(&padded[..at]));
        let after = &padded[at + verb.len()..];
        if verb.contains("poll them") {
            st.listeners.extend(pronoun_them(&lower));
        } else {
            st.listeners.extend(object(after));
        }
        // "..., or to their proxy, which listens on the same port".
        if let Some(j) = lower.find(", or to ") {
            st.listeners.extend(object(&padded[j + 8..]));
        }
        // "..., and the servers use the same port among themselves".
        if lower.contains(" among themselves") || lower.contains(" with each other") {
            st.openers.extend(st.listeners.clone());
        }
        return st;
    }
    if let Some((at, verb)) = find_any(&lower, LISTEN) {
        st.listeners.extend(subject(&padded[..at]));
        let rest = &lower[at + verb.len()..];
        if let Some((o, _)) = find_any(rest, OPEN_IT) {
            let start = at + verb.len();
            let clause = &padded[start..start + o];
            let clause = clause.rsplit([';', ':']).next().unwrap_or(clause);
            st.openers.extend(list(clause));
        } else if let Some(f) = rest.find(" from ") {
            // "accepts traffic from end users on this port".
            st.openers
                .extend(object(&padded[at + verb.len() + f + 6..]));
        } else if let Some(f) = rest.find(" for ") {
            let start = at + verb.len() + f + 5;
            st.openers.extend(
                object(&padded[start..])
                    .into_iter()
                    .filter(|p| names_peer(p)),
            );
        }
        return st;
    }
    if let Some((at, _)) = find_any(&lower, OPEN_IT) {
        st.openers.extend(subject(&padded[..at]));
        return st;
    }
    // "arrive on port 10051/tcp of the server or of a proxy".
    if let Some(i) = lower.find(" arrive on ") {
        if let Some(j) = lower[i..].find(" of ") {
            let rest = &padded[i + j + 4..];
            let end = rest.find([';', '.']).unwrap_or(rest.len());
            st.listeners.extend(
                rest[..end]
                    .split(" or of ")
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty()),
            );
        }
        if let Some(k) = lower.find(" with ") {
            st.openers.extend(object(&padded[k + 6..]));
        }
        return st;
    }
    st
}

/// A listener in one clause and its openers in a later one that points
/// back at it: "Ceph OSD Daemons bind to the ports in the 6800-7300 range,
/// and Ceph clients and monitors connect to them there". The openers'
/// subject starts after the clause break (", and", ";", ", so") before
/// their verb, so that a list of them keeps its commas.
pub(super) fn connect_back(padded: &str, lower: &str) -> Option<(Vec<String>, Vec<String>)> {
    let (l, lverb) = find_any(lower, LISTEN)?;
    let after = l + lverb.len();
    let (c, cverb) = find_any(&lower[after..], CONNECT)?;
    let (c, object_at) = (after + c, after + c + cverb.len());
    if !BACK.iter().any(|b| {
        lower[object_at..]
            .strip_prefix(b)
            .is_some_and(|r| r.starts_with([' ', ',', '.', ';']))
    }) {
        return None;
    }
    let start = [", and ", "; ", ", so ", ", while ", ", where "]
        .iter()
        .filter_map(|m| lower[after..c].rfind(m).map(|i| after + i + m.len()))
        .max()?;
    let openers = list(&padded[start..c]);
    let listeners = subject(&padded[..l]);
    (!openers.is_empty() && !listeners.is_empty()).then_some((listeners, openers))
}

/// Whether a phrase after "for" names who connects: its last word is a
/// kind of host or program.
fn names_peer(phrase: &str) -> bool {
    let last = phrase
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_ascii_lowercase();
    let one = last.strip_suffix('s').unwrap_or(&last);
    PEER_NOUNS.contains(&one)
}

/// "Not required to run PE", "optional": the sentence's port may stay
/// closed.
pub(super) fn optional(lower: &str) -> bool {
    lower.contains("not required") || required::says_optional(lower.trim())
}

pub(super) fn find_any(lower: &str, verbs: &[&'static str]) -> Option<(usize, &'static str)> {
    verbs
        .iter()
        .filter_map(|v| lower.find(v).map(|i| (i, *v)))
        .min_by_key(|(i, _)| *i)
}

/// "If you monitor devices over SNMP, ... poll them": the devices.
pub(super) fn pronoun_them(lower: &str) -> Vec<String> {
    for verb in [" monitor ", " manage ", " watch "] {
        if let Some(i) = lower.find(verb) {
            let rest = &lower[i + verb.len()..];
            let end = rest.find([' ', ',']).unwrap_or(rest.len());
            return vec![rest[..end].to_string()];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> (Vec<String>, Vec<String>, Vec<PortRange>, bool) {
        let st = statement(s);
        (st.openers, st.listeners, st.ports, st.condition.is_some())
    }

    /// Letters whose lower case is longer than their upper case ("İ") must
    /// not shift where the ends are cut: offsets found in the lowered text
    /// are used on the sentence as written.
    #[test]
    fn letters_that_grow_when_lowered_keep_the_ends_whole() {
        let (o, l, p, _) = st("İİİİ agents connect to the collector on TCP port 9441.");
        assert_eq!(o, vec!["İİİİ agents".to_string()]);
        assert_eq!(l, vec!["the collector".to_string()]);
        assert_eq!(p, vec![PortRange::single(9441)]);
    }

    #[test]
    fn a_member_connects_on_a_bare_port() {
        let (o, l, p, c) = st(
            "A node of the edge cluster connects to the hub cluster on 7000, \
             or 7001 with TLS, only if you use links.",
        );
        assert_eq!(o, vec!["the edge cluster".to_string()]);
        assert_eq!(l, vec!["the hub cluster".to_string()]);
        assert_eq!(p.len(), 2);
        assert!(c);
        assert!(st("Replicas sit on 3 nodes.").2.is_empty());
    }

    #[test]
    fn sentences_that_state_ports() {
        let (o, l, p, c) = st(
            "The Zabbix agent listens on port 10050 (TCP) for passive checks: the Zabbix server, or the Zabbix proxy that monitors the host, opens the connection.",
        );
        assert_eq!(l, vec!["The Zabbix agent"]);
        assert_eq!(o, vec!["the Zabbix server", "the Zabbix proxy"]);
        assert_eq!(p, vec![PortRange::single(10050)]);
        assert!(!c);
        let (o, l, p, _) = st(
            "Both the server and the frontend keep a connection to the database, on TCP port 3306 for MySQL or 5432 for PostgreSQL, whichever you installed.",
        );
        assert_eq!(o, vec!["the server", "the frontend"]);
        assert_eq!(l, vec!["the database"]);
        assert_eq!(p, vec![PortRange::single(3306), PortRange::single(5432)]);
        let (_, l, p, c) = st(
            "If your jobs use dynamic ports, open TCP ports 20000 through 32000 on every client.",
        );
        assert_eq!(l, vec!["every client"]);
        assert_eq!(
            p,
            vec![PortRange {
                lo: 20000,
                hi: 32000
            }]
        );
        assert!(c);
        let s = statement(
            "If you enable performance replication, also open TCP 8201 in both directions between the primary cluster and each performance secondary cluster.",
        );
        assert!(s.both_ways && s.condition.is_some());
        assert_eq!(s.ports, vec![PortRange::single(8201)]);
        assert!(
            statement(
                "Code Manager uses this port to fetch from Git, when the repository has an SSH URL."
            )
            .condition
            .is_some()
        );
        assert!(
            statement("Any of these default port numbers can be changed.")
                .ports
                .is_empty()
        );
    }
}
