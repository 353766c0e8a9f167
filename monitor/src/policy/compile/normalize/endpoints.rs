//! Source / Destination / IP-DNS cells: roles ("All nodes", "Admin IP
//! addresses", "LDAP server (provided by customer)"), literal addresses and
//! networks, DNS names (repaired when a stray space split one), URLs (reduced
//! to their host), and lists of these ("Admin IP addresses and all nodes",
//! "apt-mirror.example.com (192.0.2.7)").

use std::net::IpAddr;

use ipnet::IpNet;

use crate::policy::{
    model::{NODES, Peer},
    values::is_dns_name,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Role(String),
    Literal(Peer),
}

impl Endpoint {
    pub fn is_nodes(&self) -> bool {
        matches!(self, Endpoint::Role(r) if r == NODES)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointReading {
    pub endpoints: Vec<Endpoint>,
    /// Decisions to record on the rules built from this cell.
    pub notes: Vec<Remark>,
    /// Guesses to warn about (and record).
    pub warnings: Vec<Remark>,
}

/// A note or warning, tied to the endpoint it is about (if any) so that it
/// is recorded only on the rules for that peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remark {
    pub about: Option<Endpoint>,
    pub text: String,
    /// A guess (warned) rather than a plain decision.
    pub warning: bool,
}

impl Remark {
    fn on(about: &Endpoint, text: String) -> Remark {
        Remark {
            about: Some(about.clone()),
            text,
            warning: false,
        }
    }

    fn guess(about: &Endpoint, text: String) -> Remark {
        Remark {
            warning: true,
            ..Remark::on(about, text)
        }
    }

    /// Whether the remark concerns a rule whose peer is `role` or `literals`.
    pub fn concerns(&self, role: Option<&str>, literals: &[Peer]) -> bool {
        match &self.about {
            None => true,
            Some(Endpoint::Role(r)) => role == Some(r.as_str()),
            Some(Endpoint::Literal(p)) => literals.contains(p),
        }
    }
}

/// Stable role names for the kinds of peer vendor documents name in words.
/// The inventory binds these names to addresses.
pub mod roles {
    pub const ADMIN: &str = "admin";
    pub const VENDOR_SUPPORT: &str = "vendor-support";
    pub const SMTP_RELAY: &str = "smtp-relay";
    pub const LDAP_SERVER: &str = "ldap-server";
    pub const LOAD_BALANCER: &str = "load-balancer";
    pub const JUMP_HOST: &str = "jump-host";
    pub const MONITORING: &str = "monitoring-endpoint";
    pub const LOCAL_DNS: &str = "local-dns";
    pub const CLI_CLIENTS: &str = "cli-clients";
}

/// The product roles a document names (from its headings and captions) and
/// the role of the table being read: endpoint phrases that name them
/// ("controlplane nodes", "other brokers") are those roles, not `nodes`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    pub roles: &'a [String],
    pub local: Option<&'a str>,
}

/// Stands for "the host itself" ("Self", "the etcd node itself"): traffic
/// that never crosses the network, so no rule.
pub const SELF: &str = "(self)";

/// The role of "All" / "Any source": whoever may reach the service.
pub const ANY: &str = "any";

pub fn parse(cell: &str) -> Result<EndpointReading, String> {
    parse_in(cell, Known::default())
}

/// [`parse`], recognising the document's own roles.
pub fn parse_in(cell: &str, known: Known) -> Result<EndpointReading, String> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Err("no endpoint given".into());
    }
    let mut out = EndpointReading::default();
    let (outside, parentheticals) = split_parentheticals(cell);
    // "the etcd node itself (local traffic, never across nodes)": the
    // qualifier says it too.
    if parentheticals
        .iter()
        .any(|p| super::super::roles::is_self(p))
        && !parentheticals
            .iter()
            .any(|p| p.trim().eq_ignore_ascii_case("self"))
    {
        push(&mut out.endpoints, Endpoint::Role(SELF.into()));
        return Ok(out);
    }
    for part in split_list(&outside) {
        if (!known.roles.is_empty() || known.local.is_some())
            && let Some(e) = own_role(&part, known)
        {
            push(&mut out.endpoints, e);
            continue;
        }
        classify(&part, &mut out);
    }
    // "`master-sg` (self)": the table's own role.
    if parentheticals
        .iter()
        .any(|p| p.trim().eq_ignore_ascii_case("self"))
        && let Some(local) = known.local
    {
        out.endpoints = vec![Endpoint::Role(local.to_string())];
        return Ok(out);
    }
    for inner in parentheticals {
        let parts = split_list(&inner);
        let literals: Vec<Peer> = parts.iter().filter_map(|p| literal(p)).collect();
        if !literals.is_empty() && literals.len() == parts.len() {
            for peer in literals {
                let e = Endpoint::Literal(peer);
                out.notes.push(Remark::on(
                    &e,
                    format!("{e} (in parentheses) kept as a peer beside the name"),
                ));
                push(&mut out.endpoints, e);
            }
        } else {
            out.notes.push(Remark {
                about: None,
                text: format!("qualifier ({}) dropped", inner.trim()),
                warning: false,
            });
        }
    }
    if out.endpoints.is_empty() {
        return Err(format!("no endpoint in {cell:?}"));
    }
    Ok(out)
}

/// A phrase naming the host itself or one of the document's own roles.
fn own_role(part: &str, known: Known) -> Option<Endpoint> {
    use super::super::roles;
    if roles::is_self(part) {
        return Some(Endpoint::Role(SELF.into()));
    }
    // "All", "Any source that consumes Ingress services": no one in
    // particular, which the inventory binds to the networks it trusts.
    let lower = part.trim().to_ascii_lowercase();
    let first = lower.split_whitespace().next().unwrap_or("");
    if matches!(
        first,
        "any" | "anyone" | "anywhere" | "everyone" | "internet"
    ) || lower == "all"
    {
        return Some(Endpoint::Role(ANY.into()));
    }
    let slug = roles::slug(part)?;
    if known.roles.contains(&slug) || known.local == Some(slug.as_str()) {
        return Some(Endpoint::Role(slug));
    }
    // "the Server", "Agents": the short name of the first role the document
    // introduced with that last word ("Cloudera Manager Server").
    if !slug.contains('-')
        && let Some(full) = known
            .roles
            .iter()
            .find(|r| r.rsplit('-').next() == Some(slug.as_str()) && r.contains('-'))
    {
        return Some(Endpoint::Role(full.clone()));
    }
    // "the opscenterd daemon": a Unix daemon is named after its program
    // with a trailing `d` (sshd, httpd), here the role's own program.
    let program = slug
        .strip_suffix("-daemon")
        .or_else(|| slug.strip_suffix("-process"))
        .unwrap_or(&slug);
    if !program.contains('-')
        && let Some(base) = program.strip_suffix('d')
        && base.len() > 2
        && (known.roles.iter().any(|r| r == base) || known.local == Some(base))
    {
        return Some(Endpoint::Role(base.to_string()));
    }
    // "other controllers" in the KRaft controller table.
    if lower.starts_with("other ")
        && let Some(local) = known.local
        && (local.ends_with(&format!("-{slug}")) || slug.starts_with(&format!("{local}-")))
    {
        return Some(Endpoint::Role(local.to_string()));
    }
    None
}

fn push(list: &mut Vec<Endpoint>, e: Endpoint) {
    if !list.contains(&e) {
        list.push(e);
    }
}

fn classify(part: &str, out: &mut EndpointReading) {
    let part = head_phrase(part.trim());
    if part.is_empty() {
        return;
    }
    if let Some(host) = url_host(part) {
        let e = classify_host(host, part, out);
        out.notes
            .push(Remark::on(&e, format!("URL {part} reduced to its host")));
        return;
    }
    if let Some(peer) = literal(part) {
        push(&mut out.endpoints, Endpoint::Literal(peer));
        return;
    }
    if looks_like_host(part) {
        classify_host(part, part, out);
        return;
    }
    if let Some(role) = role_of(part) {
        let e = Endpoint::Role(role.to_string());
        if role != NODES {
            out.notes
                .push(Remark::on(&e, format!("{part:?} read as role {role}")));
        }
        push(&mut out.endpoints, e);
        return;
    }
    let e = Endpoint::Role(slug(part));
    out.warnings.push(Remark::guess(
        &e,
        format!("unrecognised endpoint {part:?}: read as role {e} (bind it in the inventory)"),
    ));
    push(&mut out.endpoints, e);
}

fn classify_host(host: &str, written: &str, out: &mut EndpointReading) -> Endpoint {
    if let Some(peer) = literal(host) {
        let e = Endpoint::Literal(peer);
        push(&mut out.endpoints, e.clone());
        return e;
    }
    let joined: String = host.split_whitespace().collect();
    if is_dns_name(&joined) {
        let e = Endpoint::Literal(Peer::Name(joined.to_ascii_lowercase()));
        if joined != host {
            out.warnings.push(Remark::guess(
                &e,
                format!("stray space in DNS name {written:?} removed: {e}"),
            ));
        }
        push(&mut out.endpoints, e.clone());
        e
    } else {
        let e = Endpoint::Role(slug(written));
        out.warnings.push(Remark::guess(
            &e,
            format!(
                "{written:?} is not a valid host name: read as role {e} (bind it in the inventory)"
            ),
        ));
        push(&mut out.endpoints, e.clone());
        e
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Role(r) => f.write_str(r),
            Endpoint::Literal(p) => write!(f, "{p}"),
        }
    }
}

/// An address, a network, or a DNS name, written alone.
pub fn literal(text: &str) -> Option<Peer> {
    let t = text.trim();
    if let Ok(addr) = t.parse::<IpAddr>() {
        return Some(Peer::Net(IpNet::from(addr)));
    }
    if let Ok(net) = t.parse::<IpNet>() {
        return Some(Peer::Net(net.trunc()));
    }
    if is_dns_name(t) {
        return Some(Peer::Name(t.trim_end_matches('.').to_ascii_lowercase()));
    }
    None
}

/// Host-name characters only, with a dot, and at most one break: a name
/// split by a stray space ("api.mix  panel.com"), not a phrase.
fn looks_like_host(t: &str) -> bool {
    t.contains('.')
        && t.split_whitespace().count() <= 2
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ' ')
}

/// The host of `scheme://[user@]host[:port][/path]`.
fn url_host(t: &str) -> Option<&str> {
    let (_, rest) = t.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host.strip_prefix('[') {
        // [v6 address]:port
        bracketed.split(']').next().unwrap_or(bracketed)
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        }
    };
    (!host.trim().is_empty()).then_some(host)
}

/// The hosts a phrase names, without the clause that picks among them:
/// "Mailbox servers in the subscribed Active Directory site that take part
/// in sync" are Mailbox servers, not the directory the clause mentions.
/// Only when what is left ends in a word for hosts.
fn head_phrase(part: &str) -> &str {
    const HOSTS: &[&str] = &[
        "server", "servers", "host", "hosts", "node", "nodes", "machine", "machines", "client",
        "clients",
    ];
    let lower = part.to_ascii_lowercase();
    let cut = [
        " in the ",
        " in a ",
        " in your ",
        " that ",
        " which ",
        " located ",
    ]
    .iter()
    .filter_map(|m| lower.find(m))
    .min();
    match cut {
        Some(at)
            if lower[..at]
                .split_whitespace()
                .last()
                .is_some_and(|w| HOSTS.contains(&w))
                && lower[..at].split_whitespace().count() >= 2 =>
        {
            &part[..at]
        }
        _ => part,
    }
}

/// The stable role for a phrase, if it is one of the known kinds.
pub fn role_of(phrase: &str) -> Option<&'static str> {
    let lower = phrase.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let text = words.join(" ");
    let has = |w: &str| words.contains(&w);
    let role = if text.contains("load balancer") || has("loadbalancer") || has("lb") {
        roles::LOAD_BALANCER
    } else if (has("jump") && (has("host") || has("server") || has("box")))
        || has("jumphost")
        || has("bastion")
    {
        roles::JUMP_HOST
    } else if has("smtp")
        || (has("relay") && (has("mail") || has("email")))
        || text.contains("mail server")
    {
        roles::SMTP_RELAY
    } else if has("ldap") || has("ldaps") || text.contains("active directory") {
        roles::LDAP_SERVER
    } else if has("admin") || has("admins") || has("administrator") || has("administrators") {
        roles::ADMIN
    } else if has("support") {
        roles::VENDOR_SUPPORT
    } else if has("monitoring") {
        roles::MONITORING
    } else if has("dns")
        || text.contains("domain server")
        || text.contains("name server")
        || has("nameservers")
        || has("resolver")
        || has("resolvers")
    {
        roles::LOCAL_DNS
    } else if has("cli") || text.contains("command line") {
        roles::CLI_CLIENTS
    } else if has("node") || has("nodes") || has("instance") || has("instances") {
        NODES
    } else {
        return None;
    };
    Some(role)
}

/// A role name for a phrase no known role matches: lowercase words joined by
/// dashes, without filler words.
pub fn slug(phrase: &str) -> String {
    const FILLER: &[&str] = &[
        "your",
        "the",
        "a",
        "an",
        "all",
        "ip",
        "address",
        "addresses",
        "of",
        "our",
        "any",
    ];
    let lower = phrase.to_ascii_lowercase();
    let mut out = String::new();
    for w in lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !FILLER.contains(w))
    {
        if out.len() + w.len() + 1 > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(w);
    }
    // "Elasticsearch REST API": the host that serves the API.
    for suffix in ["-rest-api", "-api"] {
        if out.len() > suffix.len() && out.ends_with(suffix) {
            out.truncate(out.len() - suffix.len());
            break;
        }
    }
    if out.is_empty() {
        "unnamed-peer".into()
    } else {
        out
    }
}

/// Splits off top-level parenthesised parts: "LDAP server (provided by
/// customer)" is "LDAP server" plus the qualifier "provided by customer".
fn split_parentheticals(cell: &str) -> (String, Vec<String>) {
    let mut outside = String::new();
    let mut inner = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in cell.chars() {
        match c {
            '(' => {
                if depth > 0 {
                    current.push(c);
                }
                depth += 1;
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    inner.push(std::mem::take(&mut current));
                    outside.push(' ');
                } else {
                    current.push(c);
                }
            }
            _ if depth > 0 => current.push(c),
            _ => outside.push(c),
        }
    }
    if depth > 0 {
        // Unclosed: keep the text rather than lose it.
        outside.push_str(&current);
    }
    (outside, inner)
}

/// Splits a list on commas, semicolons and the words "and", "or", "&".
fn split_list(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for chunk in text.split([',', ';']) {
        let mut current: Vec<&str> = Vec::new();
        for word in chunk.split(' ') {
            // "Web browser / API client": a spaced slash lists two kinds of peer.
            if matches!(word.to_ascii_lowercase().as_str(), "and" | "or" | "&" | "/") {
                parts.push(current.join(" "));
                current.clear();
            } else {
                current.push(word);
            }
        }
        parts.push(current.join(" "));
    }
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(cell: &str) -> Vec<String> {
        parse(cell)
            .unwrap()
            .endpoints
            .into_iter()
            .map(|e| match e {
                Endpoint::Role(r) => format!("role:{r}"),
                Endpoint::Literal(p) => p.to_string(),
            })
            .collect()
    }

    #[test]
    fn roles_and_lists() {
        assert_eq!(roles("All nodes"), vec!["role:nodes"]);
        assert_eq!(
            roles("Admin IP addresses and all nodes"),
            vec!["role:admin", "role:nodes"]
        );
        assert_eq!(
            roles("All nodes and SMTP relay (provided by customer)"),
            vec!["role:nodes", "role:smtp-relay"]
        );
        assert_eq!(
            roles("LDAP server (provided by customer)"),
            vec!["role:ldap-server"]
        );
        assert_eq!(roles("ThoughtSpot Support"), vec!["role:vendor-support"]);
        assert_eq!(
            roles("Your load balancer IP address (often on internal network)"),
            vec!["role:load-balancer"]
        );
        assert_eq!(
            roles("CLI Applications (often on the internal network)"),
            vec!["role:cli-clients"]
        );
        assert_eq!(roles("Jump Host"), vec!["role:jump-host"]);
        assert_eq!(
            roles("Monitoring Endpoint"),
            vec!["role:monitoring-endpoint"]
        );
        assert_eq!(roles("Local domain servers"), vec!["role:local-dns"]);
    }

    #[test]
    fn literals_urls_and_repairs() {
        assert_eq!(roles("208.83.110.20   "), vec!["208.83.110.20"]);
        assert_eq!(
            roles("apt-mirror.it.auth0.com (52.8.153.197)"),
            vec!["apt-mirror.it.auth0.com", "52.8.153.197"]
        );
        assert_eq!(
            roles("https://je8b47jfif.execute-api.us-east-2.amazonaws.com/monitoring"),
            vec!["je8b47jfif.execute-api.us-east-2.amazonaws.com"]
        );
        let r = parse("https://api.mix  panel.com").unwrap();
        assert_eq!(
            r.endpoints,
            vec![Endpoint::Literal(Peer::Name("api.mixpanel.com".into()))]
        );
        assert!(r.warnings[0].text.contains("stray space"));
        assert_eq!(roles("2001:db8::/32"), vec!["2001:db8::/32"]);
        assert_eq!(roles("http://[2001:db8::1]:8080/x"), vec!["2001:db8::1"]);
    }

    #[test]
    fn unknown_phrases_become_warned_roles() {
        let r = parse("Partner gateway farm").unwrap();
        assert_eq!(
            r.endpoints,
            vec![Endpoint::Role("partner-gateway-farm".into())]
        );
        assert_eq!(r.warnings.len(), 1);
        assert!(parse("  ").is_err());
    }

    #[test]
    fn own_roles_self_and_any() {
        let known = vec!["etcd".to_string(), "controlplane".to_string()];
        let k = Known {
            roles: &known,
            local: Some("kraft-controller"),
        };
        let read = |cell: &str| {
            parse_in(cell, k)
                .unwrap()
                .endpoints
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read("etcd nodes; controlplane nodes"),
            vec!["etcd", "controlplane"]
        );
        assert_eq!(read("other controllers"), vec!["kraft-controller"]);
        assert_eq!(read("the etcdd daemon"), vec!["etcd"]);
        assert_eq!(read("Self, All"), vec![SELF, ANY]);
        assert_eq!(
            read("the etcd node itself (local traffic, never across nodes)"),
            vec![SELF]
        );
    }

    #[test]
    fn qualified_hosts() {
        assert_eq!(
            head_phrase("Mailbox servers in the subscribed Active Directory site"),
            "Mailbox servers"
        );
        assert_eq!(head_phrase("Servers in the DMZ"), "Servers in the DMZ");
        assert_eq!(head_phrase("LDAP in the DMZ"), "LDAP in the DMZ");
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_name("s3.us-west-1.amazonaws.com"));
        assert!(!is_dns_name("4.5.1"));
        assert!(!is_dns_name("localhost"));
        assert!(!is_dns_name("-a.example.com"));
    }
}
