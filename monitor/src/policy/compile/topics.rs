//! What a document's prose says about a kind of traffic as a whole, for
//! the rows that carry it: "Health monitoring is recommended but optional"
//! makes the "health checks" rows not required; "In VXLAN overlay mode
//! Cilium uses the Linux default VXLAN port" makes the "VXLAN overlay" rows
//! conditional on that mode. A row and a statement match when they share a
//! significant word.

use super::{normalize::required, sentences};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Significant words of the subject, lower case.
    words: Vec<String>,
    /// Ports the statement names ("Only one of the two web ports is in use:
    /// 8443 takes over once TLS is enabled, and 8080 serves plain HTTP").
    ports: Vec<u16>,
    pub effect: Effect,
    /// The sentence, for the rule's note.
    pub said: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Optional,
    Condition(String),
}

/// Words too common to tie a row to a statement.
const COMMON: &[&str] = &[
    "port", "ports", "traffic", "between", "nodes", "node", "every", "with", "from", "that",
    "this", "these", "their", "mode", "uses", "used", "open", "must", "should", "also",
];

/// The statements of one prose block.
pub fn learn(text: &str) -> Vec<Topic> {
    let mut out = Vec::new();
    for sentence in sentences::split_sentences(text) {
        let lower = sentence.to_ascii_lowercase();
        if lower.contains("only one of") {
            let ports: Vec<u16> = lower
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u16>().ok())
                .filter(|p| *p > 0)
                .collect();
            if !ports.is_empty() {
                let cond = sentence.trim_end_matches('.').trim().to_string();
                out.push(Topic {
                    words: Vec::new(),
                    ports,
                    effect: Effect::Condition(cond),
                    said: sentence.clone(),
                });
            }
            continue;
        }
        if required::says_optional(&sentence) || lower.contains(" is optional") {
            if let Some(i) = lower.find(" is ") {
                push(&mut out, &lower[..i], Effect::Optional, &sentence);
            }
        } else if let Some(i) = lower
            .find(" is only used when ")
            .or_else(|| lower.find(" is only needed when "))
        {
            // "The enrollment port is only used when an agent registers".
            let rest = &sentence[i..];
            let cond = rest
                .split_once(" when ")
                .map(|(_, c)| c.trim_end_matches('.').trim().to_string())
                .unwrap_or_default();
            push(&mut out, &lower[..i], Effect::Condition(cond), &sentence);
        } else if let Some((subject, cond)) = scoped(&sentence) {
            // "The privileged ports 1019 and 1022 are used only on a
            // DataNode in secure mode": the ports named, else the words.
            let ports = port_numbers(&subject);
            if ports.is_empty() {
                push(&mut out, &subject, Effect::Condition(cond), &sentence);
            } else {
                out.push(Topic {
                    words: Vec::new(),
                    ports,
                    effect: Effect::Condition(cond),
                    said: sentence.clone(),
                });
            }
        } else if let Some(rest) = lower.strip_prefix("in ")
            && let Some(i) = rest.find(" mode")
            && rest[..i].split_whitespace().count() <= 3
        {
            let mode = &rest[..i];
            push(
                &mut out,
                mode,
                Effect::Condition(format!("in {mode} mode")),
                &sentence,
            );
        }
    }
    out
}

/// Words that end a sentence's subject: its verb.
const VERBS: &[&str] = &[
    " are ", " is ", " run ", " runs ", " must ", " have ", " has ", " need ", " needs ", " can ",
    " should ", " will ", " only ",
];

/// Markers of a condition that scopes the subject to some deployments.
const ONLY: &[&str] = &[
    " only when ",
    " only if ",
    " only on ",
    " only while ",
    " only during ",
];

/// A note that scopes some of the product's parts or ports to a setup:
/// "JournalNode and ZKFC ... are needed only when NameNode High
/// Availability is enabled", "Ports 1019 and 1022 are used only on a
/// DataNode that runs in secure mode". The subject is the sentence's
/// first phrase, before its verb, and short: a sentence that starts with
/// anything longer is not about named parts.
fn scoped(sentence: &str) -> Option<(String, String)> {
    let lower = sentence.to_ascii_lowercase();
    let at = ONLY.iter().filter_map(|m| lower.find(m)).min()?;
    let body = ["note:", "note", "important:"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .unwrap_or(&lower)
        .trim_start();
    let end = VERBS.iter().filter_map(|v| body.find(v)).min()?;
    let subject = body[..end].trim();
    let words = subject.split_whitespace().count();
    if words == 0 || words > 6 || lower.len() - body.len() + end > at {
        return None;
    }
    // "Ports 1019 and 1022 ..." but not "If you ..." or "It ...".
    let first = subject.split_whitespace().next().unwrap_or("");
    if matches!(
        first,
        "if" | "it" | "this" | "they" | "you" | "when" | "while"
    ) {
        return None;
    }
    let cond = required::condition_of(&sentence[at..])?;
    let marker = sentence[at..].split_whitespace().nth(1)?;
    Some((
        subject.to_string(),
        format!("{} {cond}", marker.to_ascii_lowercase()),
    ))
}

/// The port numbers a phrase names.
fn port_numbers(text: &str) -> Vec<u16> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u16>().ok())
        .filter(|p| *p > 0)
        .collect()
}

fn push(out: &mut Vec<Topic>, subject: &str, effect: Effect, said: &str) {
    let words = significant(subject);
    if !words.is_empty() {
        out.push(Topic {
            words,
            ports: Vec::new(),
            effect,
            said: said.to_string(),
        });
    }
}

fn significant(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4 && !COMMON.contains(w))
        .map(String::from)
        .collect()
}

/// The first statement that names one of a row's ports.
pub fn about_ports<'t>(topics: &'t [Topic], ports: &[u16]) -> Option<&'t Topic> {
    topics
        .iter()
        .find(|t| t.ports.iter().any(|p| ports.contains(p)))
}

/// The first statement about a row described by `text`.
pub fn about<'t>(topics: &'t [Topic], text: &str) -> Option<&'t Topic> {
    let words = significant(text);
    topics
        .iter()
        .find(|t| t.words.iter().any(|w| words.contains(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_about_kinds_of_traffic() {
        let topics = learn(
            "Health monitoring is recommended but optional. For cilium-health to report, ping. \
             In VXLAN overlay mode Cilium uses the Linux default VXLAN port, so open it.",
        );
        assert_eq!(
            about(&topics, "health checks").unwrap().effect,
            Effect::Optional
        );
        assert_eq!(
            about(&topics, "VXLAN overlay").unwrap().effect,
            Effect::Condition("in vxlan overlay mode".into())
        );
        assert!(about(&topics, "etcd access").is_none());
        let topics = learn(
            "Only one of the two web ports is in use at a time: 8443 takes over once TLS is on, \
             and 8080 serves plain HTTP otherwise.",
        );
        assert!(about_ports(&topics, &[8080]).is_some());
        assert!(about_ports(&topics, &[25]).is_none());
        let topics = learn(
            "Note: JournalNode and ZKFC are not part of a standard installation; they run, and \
             their ports are needed, only when NameNode High Availability is enabled. The \
             privileged ports 1019 and 1022 are used only on a DataNode that runs in secure mode \
             (Kerberos).",
        );
        assert!(matches!(
            &about(&topics, "JournalNode RPC server").unwrap().effect,
            Effect::Condition(c) if c == "when NameNode High Availability is enabled"
        ));
        assert!(matches!(
            &about_ports(&topics, &[1022]).unwrap().effect,
            Effect::Condition(c) if c == "on a DataNode that runs in secure mode"
        ));
        assert!(about(&topics, "DataNode").is_none());
        assert!(learn("If you use TLS, the port is needed only when clients connect.").is_empty());
        let topics = learn("The enrollment port is only used when an agent registers.");
        assert!(matches!(
            &about(&topics, "Agent enrollment").unwrap().effect,
            Effect::Condition(c) if c == "an agent registers"
        ));
    }
}
