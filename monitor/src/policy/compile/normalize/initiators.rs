//! Who opens the connections to a listener the row already names (a
//! Component column): the subject of a connecting verb ("The Server
//! connects to each Agent", "Agents deliver audit events here") and the
//! phrase after from / by / for / with ("Queried by the Server", "Listening
//! for Agent messages"). Phrases after "to" name the listener itself, and a
//! phrase is kept only if it names one of the document's roles or a kind
//! of thing that opens connections (browsers, clients, agents, hosts), so
//! that "the publication of events" is no peer.

use super::{
    endpoints::{Endpoint, Known},
    mentions,
};

/// Markers after which a row about a listener names who connects.
const MARKERS: &[&str] = &[" from ", " by ", " for ", " with "];

/// Verbs (stems) by which a sentence says its subject opens connections.
const CONNECTS: &[&str] = &[
    "connect", "send", "publish", "deliver", "fetch", "quer", "reach", "call", "open", "talk",
    "push", "poll", "report", "forward", "hand", "run", "submit", "pull",
];

/// Nouns (singular) for things that open connections.
const OPENERS: &[&str] = &[
    "browser", "client", "agent", "user", "host", "device", "server", "node",
];

/// Words a subject starts with that are not part of its name ("Lets the
/// Server reach ...": the Server reaches).
const LEADING: &[&str] = &[
    "the", "each", "every", "a", "an", "all", "its", "their", "lets", "allows", "enables",
];

/// The initiators `text` names, in order, without repeats.
pub fn of(text: &str, known: Known) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = Vec::new();
    let add = |list: Vec<Endpoint>, out: &mut Vec<Endpoint>| {
        for e in list {
            if trusted(&e, known) && !out.contains(&e) {
                out.push(e);
            }
        }
    };
    for clause in text.split(['.', ';', ':']) {
        if let Some(subject) = connecting_subject(clause) {
            for part in subject.split(',').flat_map(|p| p.split(" and ")) {
                add(mentions::endpoints_of(part.trim(), known), &mut out);
            }
        }
    }
    add(mentions::subjects(text, known), &mut out);
    add(mentions::after(text, known, MARKERS), &mut out);
    out
}

/// The words before the first connecting verb of `clause`, if it comes
/// within the first few words ("The Event Server hands alerts to ...").
fn connecting_subject(clause: &str) -> Option<String> {
    let words: Vec<&str> = clause.split_whitespace().collect();
    let at = words.iter().take(8).position(|w| {
        let lower = w.to_lowercase();
        lower.chars().all(|c| c.is_ascii_lowercase())
            && CONNECTS
                .iter()
                .any(|v| lower.starts_with(v) && lower.len() <= v.len() + 3)
    })?;
    let mut start = 0;
    while start < at && LEADING.contains(&words[start].to_lowercase().as_str()) {
        start += 1;
    }
    (start < at).then(|| words[start..at].join(" "))
}

/// A document's own role (not the listener), or a name ending in a noun
/// for something that opens connections.
fn trusted(e: &Endpoint, known: Known) -> bool {
    let Endpoint::Role(r) = e else { return true };
    if Some(r.as_str()) == known.local {
        return false;
    }
    if known.roles.contains(r) {
        return true;
    }
    let last = r.rsplit('-').next().unwrap_or(r);
    let singular = last.strip_suffix('s').unwrap_or(last);
    OPENERS.contains(&singular)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        let roles = vec![
            "manager-server".to_string(),
            "manager-agent".to_string(),
            "event-server".to_string(),
        ];
        let known = Known {
            roles: &roles,
            local: Some("event-server"),
        };
        of(text, known).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn initiators_in_words() {
        assert_eq!(
            names("The Server connects to each Agent"),
            vec!["manager-server"]
        );
        assert_eq!(names("Queried by the Server"), vec!["manager-server"]);
        assert_eq!(names("Listening for Agent messages"), vec!["manager-agent"]);
        assert_eq!(
            names("Agents deliver audit events here"),
            vec!["manager-agent"]
        );
        assert!(names("Listens for the publication of events").is_empty());
        assert!(names("Debug web server of the Event Server").is_empty());
        assert_eq!(names("Navigator console for browsers"), vec!["browsers"]);
    }
}
