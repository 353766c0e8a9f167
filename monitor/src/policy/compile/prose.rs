//! Rules stated in prose rather than tables. Three shapes occur in vendor
//! port documents and are compiled:
//!
//! - a dynamic (ephemeral) port range between nodes, whose bounds the
//!   document leaves vague ("20K+"): compiled as `ports = "dynamic"`,
//!   resolved from the host's `ip_local_port_range` when used;
//! - a release change ("in releases X.Y.Z and later, port N is not required
//!   ... open the following port instead:") that applies to the next table:
//!   the old rules get `until`, the new ones `since`, linked by
//!   `superseded_by`;
//! - a list of endpoint host names under a heading whose prose names the port
//!   or scheme (call-home uploads): one outbound rule to those names.
//!
//! Conditional prose requirements that name no port or endpoint cannot be
//! compiled; they are recorded as skipped so that a reviewer sees them.

use super::Ctx;
use crate::policy::{
    document::ProseKind,
    model::{Direction, NODES, Peer, PortRange, Ports, Proto, Release, Required, Rule},
    values::is_dns_name,
};

/// What the prose of the current section has said so far.
#[derive(Debug, Default)]
pub struct SectionProse {
    start_line: u32,
    /// Level of the heading that opened the section (0 before any).
    level: u8,
    pub tables: usize,
    hosts: Vec<(u32, String)>,
    port: Option<(u32, u16)>,
    scheme: Option<(u32, u16, &'static str)>,
    pending: Option<PendingRelease>,
}

#[derive(Debug)]
struct PendingRelease {
    line: u32,
    release: Release,
    old_port: u16,
}

impl SectionProse {
    /// A new section under a heading of `level` at `line`. A release change
    /// still waiting for its table carries into subsections of its section.
    pub fn next(&mut self, level: u8, line: u32) -> Self {
        let pending = if self.level > 0 && level > self.level {
            self.pending.take()
        } else {
            None
        };
        SectionProse {
            start_line: line,
            level: if pending.is_some() { self.level } else { level },
            pending,
            ..SectionProse::default()
        }
    }
}

pub fn read(
    ctx: &mut Ctx,
    section: &mut SectionProse,
    headings: &[(u8, String)],
    kind: ProseKind,
    text: &str,
    code: &[String],
    line: u32,
) {
    let lower = text.to_ascii_lowercase();
    if let Some(pending) = release_change(&lower, line) {
        ctx.decide(
            line,
            format!(
                "prose: from release {} port {} is replaced by the rules of the next table",
                pending.release, pending.old_port
            ),
        );
        section.pending = Some(pending);
        return;
    }
    if lower.contains("dynamic")
        && lower.contains("port")
        && ["range", "assigned", "allocated", "ephemeral"]
            .iter()
            .any(|k| lower.contains(k))
    {
        dynamic_range(ctx, headings, &lower, text, line);
        return;
    }
    let hosts: Vec<String> = code
        .iter()
        .map(String::as_str)
        .chain((kind == ProseKind::ListItem).then_some(text))
        .filter(|c| is_dns_name(c.trim()))
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if kind == ProseKind::ListItem && !hosts.is_empty() {
        for h in hosts {
            if !section.hosts.iter().any(|(_, known)| *known == h) {
                section.hosts.push((line, h));
            }
        }
        return;
    }
    if section.port.is_none()
        && let Some(port) = port_mention(&lower)
    {
        section.port = Some((line, port));
    }
    if section.scheme.is_none() {
        if lower.contains("https") {
            section.scheme = Some((line, 443, "https"));
        } else if lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == "http")
        {
            section.scheme = Some((line, 80, "http"));
        }
    }
    if let Some(condition) = unhandled_condition(&lower, text) {
        ctx.skip(
            line,
            format!("prose requirement if {condition}"),
            "names no port and no endpoint: nothing to compile; add a rule by hand if it applies"
                .into(),
        );
    }
}

/// Links the table that follows a release-change paragraph.
pub fn after_table(ctx: &mut Ctx, section: &mut SectionProse, ids: &[String], table_line: u32) {
    let Some(p) = section.pending.take() else {
        return;
    };
    if ids.is_empty() {
        ctx.warn(
            p.line,
            format!(
                "release change to port {} announced, but the table at line {table_line} yields \
                 no rule",
                p.old_port
            ),
        );
        return;
    }
    for id in ids {
        if let Some(rule) = ctx.rule_mut(id) {
            rule.since = Some(p.release.clone());
            rule.notes.push(format!(
                "applies from release {} (prose at line {})",
                p.release, p.line
            ));
        }
    }
    let old = Ports::List(vec![PortRange::single(p.old_port)]);
    let replaced: Vec<String> = ctx
        .rules
        .iter()
        .filter(|r| {
            r.source.line < p.line && r.ports == old && r.since.is_none() && r.until.is_none()
        })
        .map(|r| r.id.clone())
        .collect();
    if replaced.is_empty() {
        ctx.warn(
            p.line,
            format!(
                "port {} is replaced from release {}, but no earlier rule has exactly that port",
                p.old_port, p.release
            ),
        );
        return;
    }
    let successor = ids[0].clone();
    for id in &replaced {
        if let Some(rule) = ctx.rule_mut(id) {
            rule.until = Some(p.release.clone());
            rule.superseded_by = Some(successor.clone());
            rule.notes.push(format!(
                "replaced by {successor} from release {} (prose at line {}); pick with --release",
                p.release, p.line
            ));
        }
    }
    ctx.warn(
        p.line,
        format!(
            "read as: {} applies before release {}, {} from it on (choose with --release)",
            replaced.join(", "),
            p.release,
            ids.join(", ")
        ),
    );
}

/// Closes a section: a list of endpoint hosts becomes a rule if the section
/// says which port; a release change with no table after it is reported.
pub fn finish_section(ctx: &mut Ctx, section: &mut SectionProse, headings: &[(u8, String)]) {
    if let Some(p) = section.pending.take() {
        ctx.skip(
            p.line,
            format!("release change to port {} from {}", p.old_port, p.release),
            "no table follows in its section".into(),
        );
    }
    let hosts = std::mem::take(&mut section.hosts);
    if hosts.is_empty() || section.tables > 0 {
        return;
    }
    let first = hosts[0].0;
    let last = hosts[hosts.len() - 1].0;
    let (port, why) = match (section.port, section.scheme) {
        (Some((line, port)), _) => (port, format!("port {port} from the prose at line {line}")),
        (None, Some((line, port, scheme))) => (
            port,
            format!("port {port}: the default of {scheme}, named at line {line}"),
        ),
        (None, None) => {
            ctx.skip(
                first,
                format!("list of {} host names", hosts.len()),
                "the section names no port or scheme for them".into(),
            );
            return;
        }
    };
    let service = headings
        .last()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| "listed endpoints".into());
    let peers: Vec<Peer> = hosts.iter().map(|(_, h)| Peer::Name(h.clone())).collect();
    let rule = Rule {
        id: String::new(),
        service,
        proto: Proto::Tcp,
        ports: Ports::List(vec![PortRange::single(port)]),
        alternatives: false,
        direction: Direction::Outbound,
        local_role: NODES.into(),
        peer_role: None,
        peer: peers,
        required: Required::Yes,
        condition: None,
        notes: vec![
            format!(
                "endpoints from the list at lines {first}-{last} (section at line {})",
                section.start_line
            ),
            why.clone(),
            "uploads from the nodes: outbound TCP".into(),
        ],
        review: vec![format!(
            "a list of hosts read as outbound TCP/{port} endpoints ({why})"
        )],
        ..super::read_at(first)
    };
    ctx.warn(
        first,
        format!(
            "prose: the {} hosts listed at lines {first}-{last} read as outbound TCP/{port} \
             endpoints of the nodes ({why})",
            hosts.len()
        ),
    );
    ctx.add_rules(first, vec![rule]);
}

fn dynamic_range(ctx: &mut Ctx, headings: &[(u8, String)], lower: &str, text: &str, line: u32) {
    let section = headings
        .iter()
        .map(|(_, h)| h.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let between_nodes = ["cluster", "node", "intracluster"]
        .iter()
        .any(|k| section.contains(k) || lower.contains(k));
    let hint = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .find(|w| {
            let w = w.trim_end_matches('.');
            w.len() > 1
                && w.chars().next().is_some_and(|c| c.is_ascii_digit())
                && (w.ends_with('+') || w.to_ascii_lowercase().ends_with('k'))
        })
        .map(|w| w.trim_end_matches('.').to_string());
    let hint_note = match &hint {
        Some(h) => format!("the document gives the range only as {h:?}"),
        None => "the document gives no range".into(),
    };
    let mut notes = vec![
        format!(
            "dynamic ports: {hint_note}; resolved from the host's net.ipv4.ip_local_port_range \
             when the policy is used (override with --dynamic-ports LO-HI)"
        ),
        "TCP assumed: the services that use them are RPC/HTTP services".into(),
    ];
    let mut review = vec![format!(
        "dynamic ports read from a sentence: {hint_note}, TCP assumed"
    )];
    if !between_nodes {
        notes.push("the section names no peers: between nodes assumed".into());
        review.push("the section names no peers: between nodes assumed".into());
    }
    ctx.warn(
        line,
        format!(
            "prose: dynamic ports between nodes: {hint_note}; the host's ip_local_port_range is \
             used, TCP assumed"
        ),
    );
    let rule = Rule {
        id: String::new(),
        service: "dynamic ports (between services)".into(),
        proto: Proto::Tcp,
        ports: Ports::Dynamic,
        alternatives: false,
        direction: Direction::Bidirectional,
        local_role: NODES.into(),
        peer_role: Some(NODES.into()),
        peer: Vec::new(),
        required: Required::Yes,
        condition: None,
        notes,
        review,
        ..super::read_at(line)
    };
    ctx.add_rules(line, vec![rule]);
}

/// "In releases 4.5.1 and later, port 8086 is not required ... instead".
fn release_change(lower: &str, line: u32) -> Option<PendingRelease> {
    if !(lower.contains("release") || lower.contains("version")) {
        return None;
    }
    if !["later", "onward", "above", "newer"]
        .iter()
        .any(|k| lower.contains(k))
    {
        return None;
    }
    if !["not required", "no longer", "instead", "replace"]
        .iter()
        .any(|k| lower.contains(k))
    {
        return None;
    }
    let release = lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
        .map(|w| w.trim_end_matches(['.', ':']))
        .filter(|w| w.contains('.') && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .find_map(|w| w.parse::<Release>().ok())?;
    let old_port = port_mention(lower)?;
    Some(PendingRelease {
        line,
        release,
        old_port,
    })
}

/// The first "port N" in a sentence.
fn port_mention(lower: &str) -> Option<u16> {
    let mut rest = lower;
    while let Some(i) = rest.find("port ") {
        rest = &rest[i + 5..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(p) = digits.parse::<u16>()
            && p > 0
        {
            return Some(p);
        }
    }
    None
}

/// "If you use X, the cluster must be able to connect to X's endpoints":
/// a requirement with a condition but nothing concrete to allow.
fn unhandled_condition(lower: &str, text: &str) -> Option<String> {
    if !lower.starts_with("if ") {
        return None;
    }
    let demands = ["must", "required", "need"]
        .iter()
        .any(|k| lower.contains(k));
    let network = ["connect", "endpoint", "access", "port"]
        .iter()
        .any(|k| lower.contains(k));
    if !(demands && network) || port_mention(lower).is_some() {
        return None;
    }
    let end = lower.find(',').unwrap_or(lower.len()).min(120);
    text.get(3..end).map(|c| c.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_change_is_read() {
        let p = release_change(
            "in releases 4.5.1 and later, port 8086 is not required for transferring data. open the following port instead:",
            72,
        )
        .unwrap();
        assert_eq!(p.release.to_string(), "4.5.1");
        assert_eq!(p.old_port, 8086);
        assert!(release_change("port 80 is used by release 4.5.1", 1).is_none());
    }

    #[test]
    fn port_mentions() {
        assert_eq!(port_mention("default port 443 is used"), Some(443));
        assert_eq!(
            port_mention("the port is open; port 0 and port 99999"),
            None
        );
    }

    #[test]
    fn conditional_prose_without_endpoints() {
        let t = "If you are using social providers for logins, the cluster must be able to connect to the providers' endpoints.";
        assert_eq!(
            unhandled_condition(&t.to_ascii_lowercase(), t).as_deref(),
            Some("you are using social providers for logins")
        );
        let t = "The Jump Host IP is stable.";
        assert!(unhandled_condition(&t.to_ascii_lowercase(), t).is_none());
    }
}
