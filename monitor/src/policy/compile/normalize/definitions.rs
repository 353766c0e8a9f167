//! Categories of traffic a document defines before the table that uses
//! them: "- **Internal**: traffic among the nodes of the cluster",
//! "Client-to-node: From clients, application servers and SDKs ...". A
//! column of categories, or a Yes/No column named after one, takes its ends
//! from the definition.

use super::agents;
use crate::policy::model::NODES;

/// The ends one category of traffic stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ends {
    /// Who opens the connection (a role slug).
    pub peer: String,
    /// Who listens, when the definition names someone other than the
    /// product's nodes ("to the nodes of the destination cluster").
    pub local: Option<String>,
    /// "needed only if ...", "Only needed where XDCR is set up".
    pub condition: Option<String>,
    /// "Reached over localhost only": no rule.
    pub local_only: bool,
}

/// "Term: definition" with a short term that is not a port.
pub fn definition(text: &str) -> Option<(String, String)> {
    let (term, def) = text.split_once(':')?;
    let term = term.trim().trim_matches('*').trim_matches('`').trim();
    let words = term.split_whitespace().count();
    let ok = (1..=4).contains(&words)
        && !term.starts_with(|c: char| c.is_ascii_digit())
        && !def.trim().is_empty();
    ok.then(|| (term.to_string(), def.trim().to_string()))
}

/// The ends a definition names; `None` when it names none.
pub fn ends(def: &str) -> Option<Ends> {
    let lower = def.to_ascii_lowercase();
    let condition = condition(def);
    if lower.contains("localhost") || lower.contains("loopback") {
        return Some(Ends {
            peer: NODES.into(),
            local: None,
            condition,
            local_only: true,
        });
    }
    // "from the nodes of a source cluster to the nodes of the destination
    // cluster": both ends named.
    if let Some(i) = lower.find("from ") {
        let rest = &lower[i + 5..];
        let cut = rest.find(['.', ';', '(']).unwrap_or(rest.len());
        let rest = &rest[..cut];
        if let Some((from, to)) = rest.split_once(" to ") {
            let (from, to) = (group(from), group(to));
            if let (Some(from), Some(to)) = (from, to)
                && from != to
            {
                return Some(Ends {
                    peer: from,
                    local: (to != NODES).then_some(to),
                    condition,
                    local_only: false,
                });
            }
        }
        let found = agents::agents_of(rest);
        let peer = match found.first() {
            Some(a) => Some(a.clone()),
            None => group(rest.split(',').next().unwrap_or(rest)),
        };
        if let Some(peer) = peer {
            return Some(Ends {
                peer,
                local: None,
                condition,
                local_only: false,
            });
        }
    }
    let found = agents::agents_of(&lower);
    found.first().map(|peer| Ends {
        peer: peer.clone(),
        local: None,
        condition,
        local_only: false,
    })
}

/// "the nodes of a source cluster" is `source-cluster`; "the peer
/// Active-Active clusters" is `active-active-cluster`; "all the nodes" is
/// `nodes`.
fn group(phrase: &str) -> Option<String> {
    let mut p = phrase.trim().to_string();
    for filler in [
        "the nodes of ",
        "nodes of ",
        "every node of ",
        "each node of ",
    ] {
        if let Some(i) = p.find(filler) {
            p = p[i + filler.len()..].to_string();
        }
    }
    // "the destination cluster of an XDCR replication": the group is the
    // head before "of".
    if let Some(i) = p.find(" of ") {
        p.truncate(i);
    }
    let words: Vec<&str> = p
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the" | "peer" | "all" | "each" | "every"))
        .collect();
    if words.is_empty() || words.len() > 4 {
        return None;
    }
    if words.iter().all(|w| matches!(*w, "node" | "nodes")) {
        return Some(NODES.into());
    }
    super::super::roles::slug(&words.join(" "))
}

fn condition(def: &str) -> Option<String> {
    let lower = def.to_ascii_lowercase();
    let at = [
        "only needed",
        "needed only",
        "only if",
        "only where",
        "only when",
    ]
    .iter()
    .filter_map(|k| lower.find(k))
    .min()?;
    let rest = &def[at..];
    let end = rest.find(['.', ';']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions() {
        assert_eq!(
            definition("**Internal**: traffic among the nodes").map(|d| d.0),
            Some("Internal".into())
        );
        assert!(definition("8080: web").is_none());
    }

    #[test]
    fn ends_of_definitions() {
        let e = ends("traffic among the nodes of the cluster").unwrap();
        assert_eq!(e.peer, NODES);
        let e = ends("From the nodes of a source cluster to the nodes of the destination cluster. Only needed where it is set up.").unwrap();
        assert_eq!(e.peer, "source-cluster");
        assert_eq!(e.local.as_deref(), Some("destination-cluster"));
        assert!(e.condition.is_some());
        let e = ends("traffic from the peer Blue-Green clusters; needed only if x").unwrap();
        assert_eq!(e.peer, "blue-green-cluster");
        let e = ends("From web clients and SDKs to every node").unwrap();
        assert!(e.peer.contains("client"));
        assert!(ends("Reached over localhost only").unwrap().local_only);
    }
}
