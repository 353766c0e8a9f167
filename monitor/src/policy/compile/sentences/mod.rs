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

pub mod cells;
mod numbers;
mod phrases;
mod statement;
mod verbs;

use statement::{CONNECT, Statement, condition, connect_back, find_any, optional, statement};

use super::{Ctx, normalize::endpoints, roles};
use crate::policy::model::{Direction, NODES, Peer, PortRange, Ports, Proto, Required, Rule};

/// A table row's ports and transports, what its cell's sentences are about.
type RowPort = (Vec<PortRange>, Vec<Proto>);

/// Reads the sentences of one paragraph; `line` is the paragraph's first
/// line, `lines` the document's lines (to give each rule its own line).
pub fn read(ctx: &mut Ctx, text: &str, line: u32, lines: &[String]) {
    read_in(ctx, text, line, lines, None);
}

/// Reads the sentences of a table cell about `row`'s port: a sentence that
/// names no port ("here", "over this port", or nothing) is about it.
/// Returns the ids of the rules read.
fn read_about(
    ctx: &mut Ctx,
    text: &str,
    line: u32,
    lines: &[String],
    row: &RowPort,
) -> Vec<String> {
    read_in(ctx, text, line, lines, Some(row))
}

fn read_in(
    ctx: &mut Ctx,
    text: &str,
    line: u32,
    lines: &[String],
    row: Option<&RowPort>,
) -> Vec<String> {
    let mut all_ids = Vec::new();
    let sentences: Vec<String> = split_sentences(text)
        .into_iter()
        .flat_map(|s| clauses(&s))
        .collect();
    let mut last_port: Option<(Vec<PortRange>, Vec<Proto>)> =
        row.cloned().or_else(|| paragraph_default(text));
    let mut last_ids: Vec<String> = Vec::new();
    let mut last_listeners: Vec<String> = Vec::new();
    for (i, sentence) in sentences.iter().enumerate() {
        let mut st = statement(sentence);
        let padded = format!(" {} ", sentence.to_lowercase());
        // "(Not required to run PE.)": the sentence before is optional.
        if st.ports.is_empty()
            && st.listeners.is_empty()
            && condition(sentence).is_none()
            && optional(&sentence.to_ascii_lowercase())
        {
            for id in &last_ids {
                if let Some(rule) = ctx.rule_mut(id)
                    && rule.required == Required::Yes
                {
                    rule.required = Required::No;
                    rule.notes
                        .push("the next sentence makes it optional".into());
                }
            }
        }
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
            && (row.is_some() || padded.contains(" this port") || padded.contains(" the same port"))
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
            st.protos = vec![Proto::Tcp];
        }
        last_port = Some((st.ports.clone(), st.protos.clone()));
        last_listeners = st.listeners.clone();
        let at = line_of(sentence, line, lines);
        let mut rules = rules_of(ctx, &st, sentence);
        if rules.is_empty() {
            continue;
        }
        for rule in &mut rules {
            rule.review
                .push("read from a sentence, not a table: check its ends and transport".into());
        }
        ctx.warn(
            at,
            format!(
                "rule read from prose: {:?} (check it against the document)",
                shorten(sentence)
            ),
        );
        last_ids = ctx.add_rules(at, rules);
        all_ids.extend(last_ids.iter().cloned());
    }
    all_ids
}

/// A sentence's clauses that each state a connection: "agents connect to
/// the load balancer on this port, and the load balancer passes the
/// connection on to a compiler". Not a clause that points back at the
/// listener of the first ("..., and clients connect to them there").
fn clauses(sentence: &str) -> Vec<String> {
    let lower = sentence.to_ascii_lowercase();
    let padded = format!(" {sentence} ");
    let Some(i) = lower.find(", and ") else {
        return vec![sentence.to_string()];
    };
    let second = &lower[i + 6..];
    if find_any(&format!(" {second} "), CONNECT).is_none()
        || connect_back(&padded, &format!(" {lower} ")).is_some()
    {
        return vec![sentence.to_string()];
    }
    vec![sentence[..i].to_string(), sentence[i + 6..].to_string()]
}

/// The ports of "**HTTP API** (default `4646`)": what "this port" means
/// in the paragraph's sentences.
fn paragraph_default(text: &str) -> Option<(Vec<PortRange>, Vec<Proto>)> {
    let lower = text.to_ascii_lowercase();
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

fn rules_of(ctx: &mut Ctx, st: &Statement, sentence: &str) -> Vec<Rule> {
    let known = endpoints::Known {
        roles: &ctx.roles,
        local: None,
    };
    let named = &ctx.named;
    let role = |name: &str| -> Option<String> {
        own_role(name, known).map(|r| shorthand(&r, named).unwrap_or(r))
    };
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
    for name in listeners
        .iter()
        .chain(peers.iter().filter_map(|(r, _)| r.as_ref()))
    {
        if !ctx.named.contains(name) && !ctx.roles.contains(name) {
            ctx.named.push(name.clone());
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
                    } else if st.optional {
                        Required::No
                    } else {
                        Required::Yes
                    },
                    condition: st.condition.clone(),
                    notes: vec!["read from a sentence, not a table".into()],
                    ..super::read_at(0)
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

/// The role a name read earlier in the prose stands for, when `slug` is its
/// shorthand: "the monitors" after "the Ceph Monitors". Only a name whose
/// words all belong to the earlier one, with the same last word: "Ceph OSD
/// Daemons" is not "the other Ceph daemons".
fn shorthand(slug: &str, named: &[String]) -> Option<String> {
    if named.iter().any(|n| n == slug) {
        return None;
    }
    let words: Vec<&str> = slug.split('-').collect();
    let found: Vec<&String> = named
        .iter()
        .filter(|n| {
            let theirs: Vec<&str> = n.split('-').collect();
            theirs.last() == words.last() && words.iter().all(|w| theirs.contains(w))
        })
        .collect();
    match found.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
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
    let lower = text.to_ascii_lowercase();
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
