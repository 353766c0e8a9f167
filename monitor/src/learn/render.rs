//! The proposal as a Markdown document the policy compiler reads: one pipe
//! table in the column order it knows, each row's evidence in an HTML
//! comment inside its Description cell (the compiler drops comments, and a
//! cell is the only place beside a row that keeps the table whole), and
//! the set-aside traffic in a fenced block after it, which the compiler
//! does not read: its lines name ports and peers, and as prose they could
//! become rules.

use std::{collections::BTreeSet, fmt::Write as _, time::SystemTime};

use super::{
    group::GroupKey,
    noise::Ephemeral,
    propose::{Aside, Evidence, Proposal, Reason, Thresholds},
};
use crate::events::{ConnDir, IpProto};

/// Hosts named in one evidence comment; the rest are counted.
const HOSTS_NAMED: usize = 5;

/// How the output was made, for its header comment.
pub struct Provenance<'a> {
    pub files: usize,
    /// `--profile thoughtspot`, `--policy site.toml`, or none.
    pub policy: Option<&'a str>,
    pub thresholds: &'a Thresholds,
    pub ephemeral: &'a Ephemeral,
}

/// The whole document.
pub fn markdown(p: &Proposal, how: &Provenance) -> String {
    let mut out = String::new();
    out.push_str("# Site additions learned from observed traffic\n\n");
    let t = how.thresholds;
    let _ = writeln!(
        out,
        "<!-- portconform learn: {} events files, {} unexpected flows{}; \
         thresholds: --min-hosts {} --min-days {} --min-flows {} --scan-ports {}; \
         ephemeral ports: {} -->\n",
        how.files,
        p.flows,
        how.policy
            .map(|l| format!(", judged by {l}"))
            .unwrap_or_default(),
        t.min_hosts,
        t.min_days,
        t.min_flows,
        t.scan_ports,
        how.ephemeral.describe(),
    );
    out.push_str(
        "Review each row before adding this document to the vendor's. A row \
         allows what was seen; the comment in its Description gives the \
         evidence. Required? says Yes: the site was seen relying on it, so \
         the monitor reports it when it is blocked and `policy export` \
         opens it in the firewall; write No for traffic that may stop.\n\n",
    );
    if p.rows.is_empty() {
        out.push_str("No group of flows passed the thresholds.\n\n");
    } else {
        out.push_str(
            "| Port | Protocol | Direction | Source | Destination | Description | Required? |\n\
             |------|----------|-----------|--------|-------------|-------------|-----------|\n",
        );
        for row in &p.rows {
            let (source, dest) = ends(&row.key);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {source} | {dest} | {} <!-- {} --> | Yes |",
                row.key.port,
                proto_name(row.key.proto),
                row.key.direction,
                description(&row.evidence),
                evidence(&row.evidence),
            );
        }
        out.push('\n');
    }
    if !p.aside.is_empty() {
        out.push_str("## Set aside\n\n```text\n");
        for a in &p.aside {
            let _ = writeln!(out, "{}", aside_line(a, how.thresholds, how.ephemeral));
        }
        out.push_str("```\n");
    }
    out
}

/// Source and Destination: the opener first, as the compiler reads them.
fn ends(key: &GroupKey) -> (String, String) {
    match key.direction {
        ConnDir::Inbound => (key.peer.to_string(), key.local_role.clone()),
        ConnDir::Outbound => (key.local_role.clone(), key.peer.to_string()),
    }
}

fn proto_name(p: IpProto) -> String {
    p.to_string().to_uppercase()
}

fn description(e: &Evidence) -> String {
    format!(
        "learned: {} from {}",
        plural(e.hosts.len(), "host"),
        plural(e.peers.len(), "peer")
    )
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `hosts: 2 (a, b); peers: 3; flows: 4; packets: 120; first seen: ...;
/// last seen: ...`, safe inside a comment and a table cell.
pub fn evidence(e: &Evidence) -> String {
    let mut hosts: Vec<String> = e.hosts.iter().take(HOSTS_NAMED).map(|h| safe(h)).collect();
    if e.hosts.len() > HOSTS_NAMED {
        hosts.push(format!("{} more", e.hosts.len() - HOSTS_NAMED));
    }
    format!(
        "hosts: {} ({}); peers: {}; flows: {}; days: {}; packets: {}; first seen: {}; last seen: {}",
        e.hosts.len(),
        hosts.join(", "),
        e.peers.len(),
        e.flows.len(),
        e.days.len(),
        e.packets,
        time(e.first_seen),
        time(e.last_seen),
    )
}

fn time(t: Option<SystemTime>) -> String {
    t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "-".into())
}

/// Host names come from the files: nothing in them may end the comment or
/// the cell, or start a new line.
fn safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-' | '@' | ',') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out
}

fn aside_line(a: &Aside, t: &Thresholds, eph: &Ephemeral) -> String {
    let what = a.key.as_ref().map(ToString::to_string).unwrap_or_default();
    let why = match &a.reason {
        Reason::Scan(s) => format!(
            "scan: {} opened {} {} of {} on {} ({}): one peer, many ports (--scan-ports {})",
            s.initiator,
            s.ports.len(),
            if s.ports.len() == 1 { "port" } else { "ports" },
            s.responder,
            safe(&s.host),
            port_list(&s.ports),
            t.scan_ports
        ),
        Reason::Flood(f) => format!(
            "flood: {} {} {} on {}: {} packets past the monitor's budget from about {} sources{}",
            f.target.direction,
            f.target.proto,
            if f.target.port == 0 {
                "(several services)".to_string()
            } else {
                f.target.port.to_string()
            },
            safe(&f.target.host),
            f.packets,
            f.sources,
            if a.evidence.peers.is_empty() {
                String::new()
            } else {
                format!(", and {} flows tracked", a.evidence.flows.len())
            }
        ),
        Reason::Ephemeral => format!(
            "ephemeral: {what}: port {} is in {}, where clients pick their ports; \
             a service there is written by hand",
            a.key.as_ref().map_or(0, |k| k.port),
            eph.describe()
        ),
        Reason::NoPort => format!("no port: {what}: rows are for TCP and UDP services"),
        Reason::AnswersOnly => format!(
            "answers only: {what}: no packet of the opening side was seen \
             (backscatter of spoofed traffic, or requests the capture missed)"
        ),
        Reason::OneOff => format!("one-off: {what}: one peer, one host, one day"),
        Reason::Threshold(why) => format!("below threshold: {what}: {why}"),
        Reason::NoRole(why) => format!("no host role: {why}"),
    };
    format!("{why} [{}]", evidence(&a.evidence))
}

/// `tcp 1000-1030, udp 53`: consecutive ports as ranges.
fn port_list(ports: &BTreeSet<(IpProto, u16)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(IpProto, u16, u16)> = None;
    let flush = |run: Option<(IpProto, u16, u16)>, parts: &mut Vec<String>| {
        if let Some((p, lo, hi)) = run {
            parts.push(if lo == hi {
                format!("{p} {lo}")
            } else {
                format!("{p} {lo}-{hi}")
            });
        }
    };
    for &(proto, port) in ports {
        match run {
            Some((p, lo, hi)) if p == proto && u32::from(hi) + 1 == u32::from(port) => {
                run = Some((p, lo, port))
            }
            _ => {
                flush(run, &mut parts);
                run = Some((proto, port, port));
            }
        }
    }
    flush(run, &mut parts);
    parts.join(", ")
}
