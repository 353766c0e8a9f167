//! Who a phrase says opens a connection: the product's own nodes ("peer
//! nodes", "inter-node") or a party named by its head noun ("AMQP clients",
//! "CLI tools", "Prometheus scrapers", "administrators").

use crate::policy::{compile::roles, model::NODES};

/// Nouns that end a phrase naming who opens a connection.
const AGENT_HEADS: &[&str] = &[
    "clients",
    "client",
    "tools",
    "tool",
    "scrapers",
    "scraper",
    "browsers",
    "agents",
    "consumers",
    "producers",
    "applications",
    "administrators",
    "admins",
    "operators",
    "users",
];

/// Words that say the product's own hosts are the other end.
const NODE_WORDS: &[&str] = &[
    "node",
    "nodes",
    "inter-node",
    "internode",
    "node-to-node",
    "peers",
    "members",
];

/// Who the description says opens the connection: `nodes` for the
/// product's own hosts, a slug role for "... clients" and the like.
pub fn agents_of(lower: &str) -> Vec<String> {
    let cut = lower.find(['(', ';']).unwrap_or(lower.len());
    let words: Vec<&str> = lower[..cut]
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| matches!(c, ',' | '.' | ':' | '`' | ')')))
        .collect();
    let mut out: Vec<String> = Vec::new();
    let push = |role: String, out: &mut Vec<String>| {
        if !out.contains(&role) {
            out.push(role);
        }
    };
    for (i, w) in words.iter().enumerate() {
        if NODE_WORDS.contains(w) {
            push(NODES.to_string(), &mut out);
            continue;
        }
        if !AGENT_HEADS.contains(w) {
            continue;
        }
        // Up to three modifiers before the head, stopping at joiners and
        // version numbers ("AMQP 0-9-1 and AMQP 1.0 clients").
        let mut start = i;
        while start > 0 && i - start < 3 {
            let prev = words[start - 1];
            let stop = prev.is_empty()
                || prev.chars().any(|c| c.is_ascii_digit())
                || matches!(
                    prev,
                    "and"
                        | "or"
                        | "the"
                        | "a"
                        | "an"
                        | "by"
                        | "from"
                        | "for"
                        | "of"
                        | "to"
                        | "with"
                        | "used"
                        | "that"
                        | "other"
                        | "all"
                        | "its"
                );
            if stop {
                break;
            }
            start -= 1;
        }
        if let Some(role) = roles::slug(&words[start..=i].join(" ")) {
            push(role, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents() {
        assert_eq!(
            agents_of("a service used by peer nodes and cli tools"),
            vec!["nodes".to_string(), "cli-tool".to_string()]
        );
        assert!(
            agents_of("http api clients")
                .iter()
                .any(|a| a.contains("api"))
        );
    }
}
