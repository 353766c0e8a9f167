//! The product's host roles as a document names them: in the heading or
//! `<caption>` above a table ("Worker node(s)", "etcd nodes - Inbound
//! rules", "Ports on broker hosts"), and in endpoint cells that name the
//! same hosts ("controlplane nodes", "other brokers").
//!
//! Role names are slugs: lower case, words joined by `-`, without leading
//! fillers (the, other, all...), without trailing generic words (node(s),
//! host(s), machine(s), instance(s)) and with the last word singular
//! ("Worker node(s)" is `worker`, "Control plane" is `control-plane`, "Connect
//! workers" is `connect-worker`). "server" is kept: "ksqlDB server" and
//! "ksqlDB" may be different things.

use crate::policy::model::Direction;

/// Trailing words that say "a host" without saying which one.
const GENERIC: &[&str] = &[
    "node",
    "nodes",
    "host",
    "hosts",
    "machine",
    "machines",
    "instance",
    "instances",
    // A cloud security group named after its hosts (`master-sg`).
    "sg",
];

/// Leading words that do not belong to the role's name.
const LEADING: &[&str] = &[
    "the", "other", "all", "any", "each", "every", "a", "an", "its", "your", "their", "our",
];

/// The first of `known` roles that `text` names ("Ops Manager connects to
/// its application database" names ops-manager first).
pub fn mentioned(text: &str, known: &[String]) -> Option<String> {
    let lower = format!(" {} ", text.to_lowercase().replace(['-', ','], " "));
    known
        .iter()
        .filter_map(|r| {
            let name = format!(" {} ", r.replace('-', " "));
            lower.find(&name).map(|i| (i, r))
        })
        .min_by_key(|(i, _)| *i)
        .map(|(_, r)| r.clone())
}

/// Words that make a heading about something other than one kind of host.
const NOT_A_ROLE: &[&str] = &[
    "port",
    "ports",
    "requirement",
    "requirements",
    "firewall",
    "reference",
    "network",
    "overview",
    "about",
    "traffic",
    "hardware",
    "changing",
    "kernel",
    "version",
    "versions",
    "localhost",
    "loopback",
    "between",
    "and",
    "table",
    // "Monitoring of hosts": an activity about hosts, not a kind of host.
    "of",
];

/// Words a heading ends with when it names a kind of host.
const HOST_WORDS: &[&str] = &[
    "node", "nodes", "host", "hosts", "server", "servers", "machine", "machines", "plane",
    "client", "clients",
];

/// Whether a phrase ends in a word for hosts ("control plane", "worker
/// nodes", "all-machine").
pub fn ends_in_host_word(phrase: &str) -> bool {
    phrase
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .rfind(|w| !w.is_empty())
        .is_some_and(|w| HOST_WORDS.contains(&w))
}

/// The kind of server a document names most, at least three times: the
/// word before "server(s)" or "controller(s)" ("domain controllers",
/// "member servers"), not an article, a number or a product with its
/// version ("Windows Server 2003", "Windows 2000 Server").
pub fn most_named_server(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (i, w) in words.iter().enumerate().skip(1) {
        if !matches!(*w, "server" | "servers" | "controller" | "controllers") {
            continue;
        }
        let prev = words[i - 1];
        let numeric = |s: &str| s.chars().any(|c| c.is_ascii_digit());
        let versioned = words.get(i + 1).is_some_and(|n| numeric(n));
        if numeric(prev) || versioned || LEADING.contains(&prev) || prev.len() < 3 {
            continue;
        }
        let Some(role) = slug(&format!("{prev} {w}")) else {
            continue;
        };
        match counts.iter_mut().find(|(r, _)| *r == role) {
            Some((_, n)) => *n += 1,
            None => counts.push((role, 1)),
        }
    }
    // The first named wins a tie: documents introduce their subject early.
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == best && best >= 3)
        .map(|(r, _)| r)
}

/// The slug of a role phrase; `None` when nothing but fillers is left.
pub fn slug(phrase: &str) -> Option<String> {
    let lower = strip_parentheticals(&phrase.to_lowercase().replace("(s)", ""));
    let mut words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1 && LEADING.contains(&words[0]) {
        words.remove(0);
    }
    while words.len() > 1 && words.last().is_some_and(|w| GENERIC.contains(w)) {
        words.pop();
    }
    if words.is_empty() || (words.len() == 1 && LEADING.contains(&words[0])) {
        return None;
    }
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    if let Some(last) = out.last_mut() {
        if last.len() > 4 && last.ends_with("ies") {
            // "proxies" is a proxy.
            last.truncate(last.len() - 3);
            last.push('y');
        } else if last.len() > 3 && last.ends_with('s') && !last.ends_with("ss") {
            last.pop();
        }
    }
    Some(out.join("-"))
}

/// The role a heading or caption names, if it names one kind of host;
/// words it shares with the document's title ("Consul servers" under
/// "Consul ports reference") are the product's name, not the role's.
pub fn of_heading(text: &str, title: Option<&str>) -> Option<String> {
    let phrase = role_phrase(text)?;
    let words: Vec<&str> = phrase.split_whitespace().collect();
    // The title itself ("Cluster node ports") names its role in full.
    let title = title.filter(|t| *t != text);
    let title_words: Vec<String> = title
        .map(|t| {
            t.to_lowercase()
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut start = 0;
    while start + 1 < words.len() && title_words.iter().any(|w| w == words[start]) {
        start += 1;
    }
    slug(&words[start..].join(" "))
}

/// The role a table's caption names: as a heading does, or, since a
/// caption belongs to its table alone, a short name with no word that
/// makes it about something else (".PostgreSQL", ".Automation Hub" above
/// an AsciiDoc table of that component's ports).
pub fn of_caption(text: &str, title: Option<&str>) -> Option<String> {
    if let Some(role) = of_heading(text, title) {
        return Some(role);
    }
    let lower = strip_numbering(text).to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let short = (1..=3).contains(&words.len())
        && !words
            .iter()
            .any(|w| NOT_A_ROLE.contains(w) || direction_word(w).is_some());
    short.then(|| slug(&words.join(" "))).flatten()
}

/// Every role a caption or heading lists ("Ports on REST Proxy, ksqlDB and
/// Control Center hosts"), for recognising them in endpoint cells.
pub fn all_of_heading(text: &str, title: Option<&str>) -> Vec<String> {
    let lower = strip_numbering(text).to_ascii_lowercase();
    let Some(rest) = after_ports_on(&lower) else {
        return of_heading(text, title).into_iter().collect();
    };
    // "Ports on X, Y and Z hosts" lists hosts; "Ports for SNMP, LDAP and
    // KMIP" lists services.
    let names_hosts = rest
        .split_whitespace()
        .last()
        .is_some_and(|w| HOST_WORDS.contains(&w.trim_end_matches(['.', ':'])));
    if !names_hosts {
        return Vec::new();
    }
    rest.split([',', ';'])
        .flat_map(|p| p.split(" and "))
        .filter_map(slug)
        .collect()
}

/// "Ports on X hosts" / "Table 2. Ports on X hosts": the X hosts part.
fn after_ports_on(lower: &str) -> Option<&str> {
    ["ports on ", "ports used by ", "ports for "]
        .iter()
        .find_map(|m| lower.find(m).map(|i| &lower[i + m.len()..]))
}

/// The words of a heading that name the hosts, without direction words,
/// anchors and qualifiers; `None` if the heading is about something else.
fn role_phrase(text: &str) -> Option<String> {
    // "Client --> Management point" names two hosts, read by their arrow
    // (`heading_arrows`).
    if ["-->", "->", "==>", "→", "↔", "⇄", "⟷", "⟶"]
        .iter()
        .any(|a| text.contains(a))
    {
        return None;
    }
    let text = strip_numbering(text);
    let lower = strip_parentheticals(&text.to_lowercase().replace("(s)", "s"));
    let lower = lower.split("{#").next().unwrap_or("").to_string();
    let (lower, listed) = match after_ports_on(&lower) {
        Some(rest) => (rest.to_string(), true),
        None => (lower, false),
    };
    if listed && (lower.contains(',') || lower.contains(" and ")) {
        return None;
    }
    let mut words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .filter(|w| direction_word(w).is_none() && *w != "rules" && *w != "rule")
        .collect();
    // "Cluster node ports", "Broker host ports": the ports of that host;
    // "Cassandra inter-node ports" are ports between hosts.
    if words.len() >= 3
        && words.last().is_some_and(|w| *w == "ports")
        && HOST_WORDS.contains(&words[words.len() - 2])
        && !lower.contains(&format!("-{} ports", words[words.len() - 2]))
    {
        words.pop();
    }
    // "OpsCenter specific", "Broker-specific ports": what follows names
    // the ports, what precedes names the host they belong to.
    if let Some(at) = words.iter().position(|w| *w == "specific") {
        let named = &words[..at];
        let ok = !named.is_empty() && named.len() <= 3;
        return (ok && !named.iter().any(|w| NOT_A_ROLE.contains(w))).then(|| named.join(" "));
    }
    if words.is_empty() || words.len() > 4 || words.iter().any(|w| NOT_A_ROLE.contains(w)) {
        return None;
    }
    if !words.last().is_some_and(|w| HOST_WORDS.contains(w)) {
        return None;
    }
    Some(words.join(" "))
}

/// The direction a heading gives its tables ("Inbound rules", "Egress").
pub fn heading_direction(text: &str) -> Option<Direction> {
    let lower = text.to_ascii_lowercase();
    let found: Vec<Direction> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter_map(direction_word)
        .collect();
    match found.as_slice() {
        [] => None,
        [d, rest @ ..] if rest.iter().all(|r| r == d) => Some(*d),
        _ => Some(Direction::Bidirectional),
    }
}

fn direction_word(w: &str) -> Option<Direction> {
    match w {
        "inbound" | "ingress" | "incoming" => Some(Direction::Inbound),
        "outbound" | "egress" | "outgoing" => Some(Direction::Outbound),
        _ => None,
    }
}

/// Whether an endpoint phrase means the host itself ("Self", "the etcd node
/// itself", "localhost"): such traffic never crosses the network.
pub fn is_self(phrase: &str) -> bool {
    let lower = phrase.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    matches!(words.as_slice(), ["self"] | ["localhost"] | ["local"])
        || words.contains(&"itself")
        || lower.contains("local traffic")
        || lower.trim() == "127.0.0.1"
        || lower.trim() == "::1"
}

/// A heading without its section number ("2.1 Monitored host", "3. Remote
/// sites", "A.2 Clients"): the number orders sections, it names no host.
pub fn strip_numbering(text: &str) -> &str {
    let t = text.trim_start();
    let Some((first, rest)) = t.split_once(char::is_whitespace) else {
        return t;
    };
    // "2.1", "3.": a dot sets a section number apart from a port ("8080").
    if !first.contains('.') {
        return t;
    }
    let parts: Vec<&str> = first.trim_end_matches('.').split('.').collect();
    let numbered = parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        || (parts.len() >= 2
            && parts[0].len() == 1
            && parts[0].chars().all(|c| c.is_ascii_uppercase())
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())));
    if numbered { rest.trim_start() } else { t }
}

fn strip_parentheticals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod server_tests {
    use super::*;

    #[test]
    fn the_server_a_document_names_most() {
        let text = "Windows Server 2003 domain controllers. Two domain controllers, member \
                    servers, Windows 2000 Server. The domain controllers. The server.";
        assert_eq!(
            most_named_server(text).as_deref(),
            Some("domain-controller")
        );
        assert_eq!(most_named_server("one web server, two web servers"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_headings() {
        assert_eq!(
            of_heading("2.1 Monitored host", None).as_deref(),
            Some("monitored")
        );
        assert_eq!(of_heading("3. Edge nodes", None).as_deref(), Some("edge"));
        assert_eq!(strip_numbering("A.2 Client hosts"), "Client hosts");
        assert_eq!(strip_numbering("8080 port notes"), "8080 port notes");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Worker node(s)").as_deref(), Some("worker"));
        assert_eq!(slug("Control plane").as_deref(), Some("control-plane"));
        assert_eq!(
            slug("other brokers (replication)").as_deref(),
            Some("broker")
        );
        assert_eq!(slug("Connect workers").as_deref(), Some("connect-worker"));
        assert_eq!(slug("ksqlDB servers").as_deref(), Some("ksqldb-server"));
        assert_eq!(slug("the"), None);
        assert_eq!(slug("Zabbix proxies").as_deref(), Some("zabbix-proxy"));
    }

    #[test]
    fn headings_that_name_roles() {
        let h = |t: &str| of_heading(t, None);
        assert_eq!(h("Worker node(s) {#node}").as_deref(), Some("worker"));
        assert_eq!(h("Control plane").as_deref(), Some("control-plane"));
        assert_eq!(h("etcd nodes - Inbound rules").as_deref(), Some("etcd"));
        assert_eq!(h("Master nodes (`master-sg`)").as_deref(), Some("master"));
        assert_eq!(
            h("Table 2. Ports on broker hosts").as_deref(),
            Some("broker")
        );
        assert_eq!(h("OpsCenter specific").as_deref(), Some("opscenter"));
        let title = "Cluster node ports";
        assert_eq!(of_heading(title, Some(title)).as_deref(), Some("cluster"));
        assert_eq!(h("Node ports"), None);
        assert_eq!(h("Cassandra inter-node ports"), None);
        assert_eq!(h("Broker-specific ports").as_deref(), Some("broker"));
        assert_eq!(
            of_heading("Consul servers", Some("Consul ports reference")).as_deref(),
            Some("server")
        );
        for not in [
            "Ports",
            "Port requirements for RKE cluster nodes",
            "About local node traffic",
            "Ports on REST Proxy, ksqlDB and Control Center hosts",
            "Open ports between the MongoDB hosts",
        ] {
            assert_eq!(h(not), None, "{not}");
        }
        assert_eq!(
            all_of_heading("Ports on REST Proxy, ksqlDB and Control Center hosts", None),
            vec!["rest-proxy", "ksqldb", "control-center"]
        );
    }

    #[test]
    fn services_are_not_hosts() {
        assert!(all_of_heading("Open ports for SNMP, LDAP and KMIP", None).is_empty());
    }

    #[test]
    fn mentions_of_known_roles() {
        let known = vec!["ops-manager".to_string(), "mongodb".to_string()];
        assert_eq!(
            mentioned("The MongoDB Agent talks to Ops Manager", &known).as_deref(),
            Some("mongodb")
        );
        assert_eq!(
            mentioned("Open ports to reach Ops Manager", &known).as_deref(),
            Some("ops-manager")
        );
        assert_eq!(mentioned("Users open a session", &known), None);
    }

    #[test]
    fn directions_and_self() {
        assert_eq!(
            heading_direction("etcd nodes - Inbound rules"),
            Some(Direction::Inbound)
        );
        assert_eq!(heading_direction("Egress"), Some(Direction::Outbound));
        assert_eq!(heading_direction("Control plane"), None);
        assert!(is_self("Self"));
        assert!(is_self("the etcd node itself"));
        assert!(!is_self("Control plane"));
    }
}
