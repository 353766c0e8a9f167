//! Who a row's words say a port is for, when they restrict it: "only the
//! cluster nodes need it", "you may block this port for traffic from
//! outside the cluster". Firewall pages write the peers of a port so as
//! often as in a column, and a restriction is the firmer statement: a
//! "Used by" column beside it names the software on the port, not who may
//! reach it.

use super::endpoints::{self, Endpoint, Known};
use crate::policy::model::NODES;

/// The peers the restriction in `text` names, if it has one: the table's
/// own hosts (`nodes`) when it names them or just "nodes", otherwise the
/// endpoints it names.
pub fn peers(text: &str, known: Known) -> Option<Vec<Endpoint>> {
    let phrase = restriction(text)?;
    let lower = format!(" {} ", phrase.to_lowercase());
    let own = ["node", "nodes", "host", "hosts", "cluster"]
        .iter()
        .any(|w| lower.trim() == *w || lower.trim() == format!("the {w}"))
        || known
            .local
            .is_some_and(|l| lower.contains(&format!(" {} ", l.replace('-', " "))));
    if own {
        return Some(vec![Endpoint::Role(NODES.into())]);
    }
    let named = endpoints::parse_in(&phrase, known).ok()?.endpoints;
    (!named.is_empty()).then_some(named)
}

/// The phrase naming who the port is restricted to.
fn restriction(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for clause in lower.split(['.', ';']) {
        let clause = clause.trim();
        // "in a multi-node cluster, only the cluster nodes need it".
        if let Some(i) = clause.find("only ") {
            let rest = &clause[i + "only ".len()..];
            let needs = [" need ", " needs ", " use ", " uses "]
                .iter()
                .filter_map(|v| format!("{rest} ").find(v))
                .min();
            if let Some(end) = needs
                && rest[..end].split_whitespace().count() <= 5
            {
                return Some(rest[..end].trim().to_string());
            }
        }
        // "you may block this port for traffic from outside the cluster":
        // the traffic that must pass comes from inside it.
        if clause.contains("block")
            && let Some(i) = clause.find("from outside ")
        {
            let rest = &clause[i + "from outside ".len()..];
            let end = rest.find([',', ':']).unwrap_or(rest.len());
            let phrase = rest[..end].trim();
            if !phrase.is_empty() && phrase.split_whitespace().count() <= 5 {
                return Some(phrase.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restrictions() {
        let roles = vec!["cluster".to_string(), "agent".to_string()];
        let known = Known {
            roles: &roles,
            local: Some("cluster"),
        };
        let nodes = Some(vec![Endpoint::Role(NODES.into())]);
        assert_eq!(
            peers(
                "You may block it. In a multi-node cluster, only the cluster nodes need it.",
                known
            ),
            nodes
        );
        assert_eq!(
            peers(
                "You may block this port for traffic from outside the Dynatrace cluster.",
                known
            ),
            nodes
        );
        assert_eq!(
            peers("Only agents use it.", known),
            Some(vec![Endpoint::Role("agent".into())])
        );
        assert_eq!(peers("Keep this port open.", known), None);
        assert_eq!(peers("Only needed if TLS is on.", known), None);
    }
}
