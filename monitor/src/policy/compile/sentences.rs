//! Rules stated in sentences: "The Zabbix agent listens on port 10050
//! (TCP)", "Agents connect to the server on TCP port 10051", "open TCP
//! 8201 in both directions between the primary cluster and each performance
//! secondary cluster", "TCP ports 20000 through 32000". A sentence becomes a
//! rule when it states a port and who listens on it; the opener is named in
//! the same sentence or the next ones of the paragraph ("only the server and
//! the proxies poll it"), or is anyone. Each rule carries its doc:line and a
//! warning that it was read from prose; a condition in the sentence ("If you
//! enable replication, ...", "only applies to proxies in active mode") or in
//! a following one ("You only need this when ...") makes it conditional.

use super::{
    Ctx,
    normalize::{endpoints, required},
    roles,
};
use crate::policy::model::{
    Direction, NODES, Peer, PortRange, Ports, Proto, Required, Rule, Source,
};

/// What one sentence states.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Statement {
    ports: Vec<PortRange>,
    protos: Vec<Proto>,
    listeners: Vec<String>,
    openers: Vec<String>,
    both_ways: bool,
    condition: Option<String>,
}

/// Verbs whose subject opens a connection to what follows "to".
const CONNECT: &[&str] = &[
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
];

/// Verbs whose subject listens.
const LISTEN: &[&str] = &[" listens on ", " listen on ", " serve ", " serves "];

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

/// Reads the sentences of one paragraph; `line` is the paragraph's first
/// line, `lines` the document's lines (to give each rule its own line).
pub fn read(ctx: &mut Ctx, text: &str, line: u32, lines: &[String]) {
    let sentences = split_sentences(text);
    let mut last_port: Option<(Vec<PortRange>, Vec<Proto>)> = paragraph_default(text);
    let mut last_ids: Vec<String> = Vec::new();
    let mut last_listeners: Vec<String> = Vec::new();
    let only_tcp = text.to_lowercase().contains("tcp only");
    for (i, sentence) in sentences.iter().enumerate() {
        let mut st = statement(sentence);
        let padded = format!(" {} ", sentence.to_lowercase());
        // "You only need this when ...": a condition on the sentence before.
        if st.ports.is_empty()
            && st.listeners.is_empty()
            && let Some(cond) = condition(sentence)
        {
            for id in &last_ids {
                if let Some(rule) = ctx.rule_mut(id)
                    && rule.condition.is_none()
                {
                    rule.required = Required::Conditional;
                    rule.condition = Some(cond.clone());
                    rule.notes
                        .push(format!("the next sentence makes it conditional: {cond}"));
                }
            }
        }
        // "Servers and clients both serve the HTTP API on this port".
        if st.ports.is_empty()
            && (padded.contains(" this port") || padded.contains(" the same port"))
            && let Some((ports, protos)) = &last_port
        {
            st.ports = ports.clone();
            if st.protos.is_empty() {
                st.protos = protos.clone();
            }
        }
        if st.ports.is_empty() {
            continue;
        }
        if st.listeners.is_empty() {
            st.listeners = last_listeners.clone();
        }
        if st.listeners.is_empty() {
            continue;
        }
        // Openers named in the next sentences ("only the server and the
        // proxies poll it"), and their conditions.
        if st.openers.is_empty() {
            for next in sentences.iter().skip(i + 1).take(2) {
                let more = statement(next);
                if !more.ports.is_empty() {
                    break;
                }
                st.openers.extend(more.openers);
                if st.condition.is_none() {
                    st.condition = more.condition;
                }
            }
        }
        if st.protos.is_empty() {
            // "TCP only" in the paragraph, or the usual transport.
            let _ = only_tcp;
            st.protos = vec![Proto::Tcp];
        }
        last_port = Some((st.ports.clone(), st.protos.clone()));
        last_listeners = st.listeners.clone();
        let at = line_of(sentence, line, lines);
        let rules = rules_of(ctx, &st, sentence);
        if rules.is_empty() {
            continue;
        }
        ctx.warn(
            at,
            format!(
                "rule read from prose: {:?} (check it against the document)",
                shorten(sentence)
            ),
        );
        last_ids = ctx.add_rules(at, rules);
    }
}

/// The ports of "**HTTP API** (default `4646`)": what "this port" means
/// in the paragraph's sentences.
fn paragraph_default(text: &str) -> Option<(Vec<PortRange>, Vec<Proto>)> {
    let lower = text.to_lowercase();
    let i = lower.find("(default ")?;
    let n: String = lower[i + 9..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    let port: u16 = n.parse().ok().filter(|p| *p > 0)?;
    let protos = if lower.contains("tcp only") {
        vec![Proto::Tcp]
    } else {
        Vec::new()
    };
    Some((vec![PortRange::single(port)], protos))
}

pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        current.push(c);
        let ends = matches!(c, '.' | '!' | '?')
            && chars.get(i + 1).is_none_or(|n| n.is_whitespace())
            && chars
                .get(i + 2)
                .is_none_or(|n| n.is_uppercase() || !n.is_alphabetic());
        if ends {
            out.push(current.trim().to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// A sentence's condition: "required if ..." and the like, "If you ...,"
/// or "this only applies to proxies in active mode".
fn condition(sentence: &str) -> Option<String> {
    let padded = format!(" {} ", sentence.trim());
    let lower = padded.to_lowercase();
    let after = |i: usize| {
        let rest = &padded[i..];
        let end = rest.find([',', '.', ';']).unwrap_or(rest.len());
        rest[..end].trim().to_string()
    };
    required::condition_of(sentence.trim())
        .or_else(|| lower.find(" if ").map(|i| after(i + 4)))
        .or_else(|| lower.find(" only ").map(|i| after(i + 6)))
        .filter(|c| !c.is_empty())
}

/// The ports, protocols, ends and condition a sentence states.
fn statement(sentence: &str) -> Statement {
    let mut st = Statement::default();
    let padded = format!(" {} ", sentence.replace(['`', '*'], ""));
    let lower = padded.to_lowercase();
    ports_of(&lower, &mut st);
    if lower.contains(" tcp") {
        st.protos.push(Proto::Tcp);
    }
    if lower.contains(" udp") {
        st.protos.push(Proto::Udp);
    }
    st.condition = condition(sentence);
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

fn find_any(lower: &str, verbs: &[&'static str]) -> Option<(usize, &'static str)> {
    verbs
        .iter()
        .filter_map(|v| lower.find(v).map(|i| (i, *v)))
        .min_by_key(|(i, _)| *i)
}

/// The subject before a verb: the text after the last clause break.
fn subject(before: &str) -> Vec<String> {
    let clause = before.rsplit([',', ':', ';']).next().unwrap_or(before);
    let clause = clause.trim();
    // "Both the server and the frontend", "only the server".
    let clause = clause
        .strip_prefix("Both ")
        .or_else(|| clause.strip_prefix("both "))
        .unwrap_or(clause);
    list(clause)
}

/// The object after a verb or preposition, up to what qualifies it.
fn object(after: &str) -> Vec<String> {
    let lower = after.to_lowercase();
    let end = [
        " on ", " over ", " to ", " for ", " in ", " which ", ",", ".", ";", " while ",
    ]
    .iter()
    .filter_map(|m| lower.find(m))
    .min()
    .unwrap_or(after.len());
    list(&after[..end])
}

/// "the Zabbix server, or the Zabbix proxy that monitors the host" as
/// names.
fn list(text: &str) -> Vec<String> {
    text.split([',', ';'])
        .flat_map(|p| p.split(" and "))
        .flat_map(|p| p.split(" or "))
        .map(|p| {
            let p = p.split(" that ").next().unwrap_or(p);
            let mut words: Vec<&str> = p.split_whitespace().collect();
            while words.first().is_some_and(|w| {
                matches!(
                    w.to_lowercase().as_str(),
                    "only" | "also" | "or" | "and" | "their" | "its" | "both"
                )
            }) {
                words.remove(0);
            }
            while words
                .last()
                .is_some_and(|w| matches!(w.to_lowercase().as_str(), "also" | "both" | "only"))
            {
                words.pop();
            }
            words.join(" ")
        })
        .filter(|p| !p.is_empty() && p.split_whitespace().count() <= 5)
        .collect()
}

/// "If you monitor devices over SNMP, ... poll them": the devices.
fn pronoun_them(lower: &str) -> Vec<String> {
    for verb in [" monitor ", " manage ", " watch "] {
        if let Some(i) = lower.find(verb) {
            let rest = &lower[i + verb.len()..];
            let end = rest.find([' ', ',']).unwrap_or(rest.len());
            return vec![rest[..end].to_string()];
        }
    }
    Vec::new()
}

/// Port numbers in a sentence: after "port(s)", "TCP", "UDP" or glued to
/// "/tcp"; "N through M" and "N-M" are ranges; further numbers joined by
/// "or"/"and" to an anchored one count too ("3306 for MySQL or 5432").
fn ports_of(lower: &str, st: &mut Statement) {
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut anchored = false;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let (num, glued) = match w.split_once('/') {
            Some((n, p)) if p.starts_with("tcp") || p.starts_with("udp") => (n, true),
            _ => (w.trim_end_matches(['.', ';', ':']), false),
        };
        let prev = if i > 0 { words[i - 1] } else { "" };
        let keyword = matches!(prev, "port" | "ports" | "tcp" | "udp");
        if let Ok(n) = num.parse::<u32>()
            && (1..=65535).contains(&n)
            && (keyword || glued || (anchored && matches!(prev, "or" | "and")))
            && !words.get(i + 1).is_some_and(|n| n.starts_with('%'))
        {
            anchored = true;
            let lo = n as u16;
            let mut hi = lo;
            if matches!(
                words.get(i + 1),
                Some(&"through") | Some(&"to") | Some(&"-")
            ) && let Some(Ok(m)) = words
                .get(i + 2)
                .map(|m| m.trim_end_matches(['.', ';']).parse::<u32>())
                && m >= n
                && m <= 65535
            {
                hi = m as u16;
                i += 2;
            } else if let Some((a, b)) = num.split_once('-')
                && let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>())
                && a > 0
                && b >= a
            {
                st.ports.push(PortRange { lo: a, hi: b });
                i += 1;
                continue;
            }
            let r = PortRange { lo, hi };
            if !st.ports.contains(&r) {
                st.ports.push(r);
            }
        } else if !matches!(w, "or" | "and" | "for") && prev != "for" {
            // "3306 for MySQL or 5432": the chain of ports goes on across
            // "for X" and "or"; any other word ends it.
            anchored = false;
        }
        i += 1;
    }
}

fn rules_of(ctx: &mut Ctx, st: &Statement, sentence: &str) -> Vec<Rule> {
    let known = endpoints::Known {
        roles: &ctx.roles,
        local: None,
    };
    let role = |name: &str| -> Option<String> { own_role(name, known) };
    let listeners: Vec<String> = st.listeners.iter().filter_map(|l| role(l)).collect();
    let mut peers: Vec<(Option<String>, Vec<Peer>)> = Vec::new();
    for o in &st.openers {
        match endpoints::literal(o) {
            Some(p) => peers.push((None, vec![p])),
            None => {
                if let Some(r) = role(o)
                    && !peers
                        .iter()
                        .any(|(have, _)| have.as_deref() == Some(r.as_str()))
                {
                    peers.push((Some(r), Vec::new()));
                }
            }
        }
    }
    if peers.is_empty() {
        peers.push((Some(endpoints::ANY.into()), Vec::new()));
    }
    let mut rules = Vec::new();
    for local in &listeners {
        for (peer_role, peer) in &peers {
            for &proto in &st.protos {
                rules.push(Rule {
                    id: String::new(),
                    service: shorten(sentence),
                    proto,
                    ports: Ports::List(st.ports.clone()),
                    alternatives: false,
                    direction: if st.both_ways {
                        Direction::Bidirectional
                    } else {
                        Direction::Inbound
                    },
                    local_role: local.clone(),
                    peer_role: peer_role.clone(),
                    peer: peer.clone(),
                    required: if st.condition.is_some() {
                        Required::Conditional
                    } else {
                        Required::Yes
                    },
                    condition: st.condition.clone(),
                    since: None,
                    until: None,
                    superseded_by: None,
                    duplicate_of: None,
                    source: Source {
                        doc: String::new(),
                        line: 0,
                    },
                    notes: vec!["read from a sentence, not a table".into()],
                });
            }
        }
    }
    rules
}

/// A name as a role: the document's own roles by their last words ("the
/// server" in a document about a Zabbix server), otherwise its slug.
fn own_role(name: &str, known: endpoints::Known) -> Option<String> {
    let slug = roles::slug(name)?;
    if slug == NODES || known.roles.contains(&slug) {
        return Some(slug);
    }
    let words: Vec<&str> = slug.split('-').collect();
    for start in 0..words.len() {
        let tail = words[start..].join("-");
        let found: Vec<&String> = known
            .roles
            .iter()
            .filter(|r| **r == tail || r.ends_with(&format!("-{tail}")))
            .collect();
        if let [one] = found.as_slice() {
            return Some((*one).clone());
        }
    }
    Some(slug)
}

/// The line of the document where `sentence` starts, searched from the
/// paragraph's first line.
fn line_of(sentence: &str, from: u32, lines: &[String]) -> u32 {
    let head: String = sentence
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
        .replace(['`', '*'], "");
    let start = from.saturating_sub(1) as usize;
    lines
        .iter()
        .enumerate()
        .skip(start)
        .take(40)
        .find(|(_, l)| l.replace(['`', '*'], "").contains(&head))
        .map_or(from, |(i, _)| i as u32 + 1)
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        s.push('…');
    }
    s
}

/// Roles a document's prose names as its parts: "A Zabbix installation is
/// made of a Zabbix server, optional Zabbix proxies, the Zabbix agents ...".
pub fn learn_parts(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let Some(i) = [
        "is made of ",
        "consists of ",
        "is made up of ",
        "kinds of hosts: ",
    ]
    .iter()
    .find_map(|m| lower.find(m).map(|i| i + m.len())) else {
        return Vec::new();
    };
    let rest = &text[i..];
    let end = rest.find(['.', ';']).unwrap_or(rest.len());
    rest[..end]
        .split(',')
        .flat_map(|p| p.split(" and "))
        .filter_map(|p| {
            let words: Vec<&str> = p
                .split_whitespace()
                .filter(|w| {
                    !matches!(
                        w.to_lowercase().as_str(),
                        "optional" | "a" | "the" | "an" | "and" | "or"
                    )
                })
                .collect();
            // "the Zabbix agents on the monitored hosts": the name only.
            let cut = words
                .iter()
                .position(|w| {
                    matches!(
                        *w,
                        "on" | "for" | "of" | "in" | "running" | "that" | "which" | "each"
                    )
                })
                .unwrap_or(words.len());
            (cut > 0 && cut <= 3)
                .then(|| roles::slug(&words[..cut].join(" ")))
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> (Vec<String>, Vec<String>, Vec<PortRange>, bool) {
        let st = statement(s);
        (st.openers, st.listeners, st.ports, st.condition.is_some())
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
            statement("Any of these default port numbers can be changed.")
                .ports
                .is_empty()
        );
    }

    #[test]
    fn kinds_of_hosts() {
        let parts = learn_parts(
            "The deployment has three kinds of hosts: the Ops Manager host running the application, the application database hosts that back it, and the MongoDB hosts of the deployments, each running an agent.",
        );
        assert_eq!(
            parts,
            vec!["ops-manager", "application-database", "mongodb"]
        );
    }

    #[test]
    fn parts_and_roles() {
        let parts = learn_parts(
            "A Zabbix installation is made of a Zabbix server, optional Zabbix proxies, the Zabbix agents on the monitored hosts, the web frontend and, for JMX monitoring, the Java gateway.",
        );
        assert_eq!(
            parts[..4],
            [
                "zabbix-server",
                "zabbix-proxy",
                "zabbix-agent",
                "web-frontend"
            ]
        );
        let known = endpoints::Known {
            roles: &parts,
            local: None,
        };
        assert_eq!(
            own_role("An active proxy", known).as_deref(),
            Some("zabbix-proxy")
        );
        assert_eq!(
            own_role("the server", known).as_deref(),
            Some("zabbix-server")
        );
        assert_eq!(split_sentences("One. Two three. four.").len(), 2);
    }
}
