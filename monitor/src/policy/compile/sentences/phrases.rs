//! The names in a sentence's phrases: the subject before a verb, the object
//! after one, and the list of names either is ("the Zabbix server, or the
//! Zabbix proxy that monitors the host"), with the host a program runs on
//! standing for it ("Code Manager on the primary server").

/// The subject before a verb: the text after the last clause break.
pub(super) fn subject(before: &str) -> Vec<String> {
    let clause = before.rsplit([',', ':', ';']).next().unwrap_or(before);
    let clause = clause.trim();
    // "Both the server and the frontend", "only the server".
    let clause = clause
        .strip_prefix("Both ")
        .or_else(|| clause.strip_prefix("both "))
        .unwrap_or(clause);
    list(clause)
}

/// The object after a verb or preposition, up to what qualifies it. "the
/// orchestration services on the primary server" is the host the services
/// run on.
pub(super) fn object(after: &str) -> Vec<String> {
    let lower = after.to_ascii_lowercase();
    let cut = |from: usize| {
        [
            " on ",
            " over ",
            " to ",
            " for ",
            " in ",
            " which ",
            ",",
            ".",
            ";",
            " while ",
            " through ",
            " unless ",
            " here",
            " there",
        ]
        .iter()
        .filter_map(|m| lower[from..].find(m).map(|i| (from + i, *m)))
        .min_by_key(|(i, _)| *i)
    };
    match cut(0) {
        Some((i, " on ")) if host_on(&lower[i + 4..]) => {
            let end = cut(i + 4).map_or(after.len(), |(j, _)| j);
            list(&after[i + 4..end])
        }
        Some((i, _)) => list(&after[..i]),
        None => list(after),
    }
}

/// Whether what follows "on" names a host ("on the primary server", "on
/// each compiler") rather than a port, a network or a manner ("on TCP
/// port 3300", "on this port", "on the public network", "on behalf of").
fn host_on(rest: &str) -> bool {
    const NOT_HOSTS: &[&str] = &[
        "port",
        "ports",
        "tcp",
        "udp",
        "this",
        "that",
        "these",
        "those",
        "its",
        "their",
        "same",
        "network",
        "networks",
        "interface",
        "interfaces",
        "range",
        "subnet",
        "address",
        "addresses",
        "behalf",
        "default",
        "request",
        "demand",
        "startup",
        "boot",
        "top",
        "both",
        "all",
        "one",
        "localhost",
        "loopback",
        "it",
        "them",
    ];
    let words: Vec<&str> = rest
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .take_while(|w| !w.is_empty())
        .take(4)
        .collect();
    !words.is_empty()
        && !words[0].starts_with(|c: char| c.is_ascii_digit())
        && !words.iter().any(|w| NOT_HOSTS.contains(w))
}

/// "the Zabbix server, or the Zabbix proxy that monitors the host" as
/// names.
pub(super) fn list(text: &str) -> Vec<String> {
    text.split([',', ';'])
        .flat_map(|p| p.split(" and "))
        .flat_map(|p| p.split(" or "))
        .map(|p| {
            let p = p.split(" that ").next().unwrap_or(p);
            // "Code Manager on the primary server": the host it runs on.
            let p = match p.to_ascii_lowercase().find(" on ") {
                Some(i) if host_on(&p.to_ascii_lowercase()[i + 4..]) => &p[i + 4..],
                _ => p,
            };
            let p = member_of(p);
            let mut words: Vec<&str> = p.split_whitespace().collect();
            while words.first().is_some_and(|w| {
                matches!(
                    w.to_lowercase().as_str(),
                    "only"
                        | "also"
                        | "or"
                        | "and"
                        | "their"
                        | "its"
                        | "both"
                        | "that"
                        | "this"
                        | "those"
                        | "these"
                )
            }) {
                words.remove(0);
            }
            while words.last().is_some_and(|w| {
                matches!(
                    w.to_lowercase().as_str(),
                    "also" | "both" | "only" | "all" | "too"
                )
            }) {
                words.pop();
            }
            words.join(" ")
        })
        .filter(|p| !p.is_empty() && p.split_whitespace().count() <= 5)
        .collect()
}

/// "a node of the downstream cluster" is the downstream cluster: a member
/// stands for its group.
fn member_of(phrase: &str) -> &str {
    // ASCII folding keeps byte offsets, so `i` indexes `phrase` safely.
    let lower = phrase.trim().to_ascii_lowercase();
    let member = ["a ", "an ", "one ", "each ", "every ", "the "]
        .iter()
        .any(|a| lower.starts_with(a))
        && ["node", "host", "member", "server"].iter().any(|m| {
            lower
                .split_whitespace()
                .nth(1)
                .is_some_and(|w| w.starts_with(m))
        });
    match lower.find(" of ") {
        Some(i) if member => phrase.trim()[i + 4..].trim(),
        _ => phrase,
    }
}
