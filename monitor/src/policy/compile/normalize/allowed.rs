//! Firewall instructions that name who connects: "ALLOW controller(s) to
//! reach the Receptor port", "Allow the web servers to connect to this
//! port", "allow the listener port between all controllers". Written as a
//! rule the reader must add, they name the opener more firmly than any
//! other phrase of the row, so they take its place.

use super::{
    endpoints::{Endpoint, Known},
    mentions,
};

/// Verbs (stems) that, after "allow X to", say X opens the connection.
const CONNECTS: &[&str] = &["reach", "connect", "access", "talk", "send", "call", "use"];

/// The peers the "allow ..." clauses of `text` name, in order, without
/// repeats; empty when it has none.
pub fn openers(text: &str, known: Known) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = Vec::new();
    for clause in text.split([';', '.', '\n']) {
        let lower = clause.to_ascii_lowercase();
        let Some(at) = lower
            .match_indices("allow ")
            .map(|(i, _)| i)
            .find(|&i| i == 0 || lower[..i].ends_with(' '))
        else {
            continue;
        };
        let rest = &clause[at + "allow ".len()..];
        let rest_lower = &lower[at + "allow ".len()..];
        let named = opener_before_verb(rest, rest_lower).or_else(|| between(rest, rest_lower));
        let Some(named) = named else { continue };
        for e in mentions::endpoints_of(named.trim(), known) {
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    out
}

/// "controller(s) to reach ...": the words before "to" and a connecting verb.
fn opener_before_verb<'t>(rest: &'t str, lower: &str) -> Option<&'t str> {
    lower.match_indices(" to ").find_map(|(i, m)| {
        let verb = lower[i + m.len()..].split_whitespace().next()?;
        CONNECTS
            .iter()
            .any(|v| verb.starts_with(v))
            .then(|| &rest[..i])
    })
}

/// "the receptor listener port between all controllers": the hosts after
/// "between", which reach each other.
fn between<'t>(rest: &'t str, lower: &str) -> Option<&'t str> {
    let i = lower.find(" between ")? + " between ".len();
    let end = lower[i..]
        .find([',', '('])
        .or_else(|| lower[i..].find(" for "))
        .map_or(lower.len(), |e| i + e);
    Some(&rest[i..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        let roles = vec!["controller".to_string(), "hop".to_string()];
        let known = Known {
            roles: &roles,
            local: Some("execution"),
        };
        openers(text, known)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn allow_clauses() {
        assert_eq!(
            names("Mesh; ALLOW controller(s) to reach the Receptor port"),
            vec!["controller"]
        );
        assert_eq!(
            names(
                "ALLOW controller(s) to reach the port (direct); ALLOW hop node(s) to reach the port"
            ),
            vec!["controller", "hop"]
        );
        assert_eq!(
            names("ALLOW the listener port between all controllers, for clustering"),
            vec!["controller"]
        );
        assert!(names("Allows remote access while installing").is_empty());
        assert!(names("UI/API").is_empty());
    }
}
