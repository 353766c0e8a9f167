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
        let topics = learn("The enrollment port is only used when an agent registers.");
        assert!(matches!(
            &about(&topics, "Agent enrollment").unwrap().effect,
            Effect::Condition(c) if c == "an agent registers"
        ));
    }
}
