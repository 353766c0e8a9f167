//! What validate found: per required rule (working, blocked, untested) and
//! per attempt (the client's result, the nftables rule that stopped it,
//! what the monitor said), as a table or JSON; with a baseline, only what
//! changed between the two rulesets.

use std::{
    io::{self, Write},
    net::IpAddr,
};

use serde::Serialize;

use crate::{
    events::ConnDir,
    reach::{L4, Observed, Outcome},
};

use super::{
    hosts::Hosts,
    observe::{FlowKey, Seen},
    plan::{Plan, Purpose},
    trace::{self, Dropped},
};

#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    pub purpose: &'static str,
    pub proto: &'static str,
    pub direction: &'static str,
    /// The role on the other side of the appliance.
    pub peer: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub port: u16,
    pub rules: Vec<String>,
    /// `working` / `blocked` for required flows; `let-through` / `stopped`
    /// for ports no rule allows.
    pub status: &'static str,
    pub client: Observed,
    /// The nftables rule or policy that dropped it (or its answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nft_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Seen>,
    /// Whether the monitor's view matches the client's; `None` where the
    /// monitor cannot have a view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_agrees: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub id: String,
    pub source: String,
    pub service: String,
    pub proto: String,
    pub ports: String,
    pub direction: String,
    pub peer: String,
    /// `working`, `blocked` or `untested`.
    pub status: &'static str,
    /// The outcome of the first failed attempt, for blocked rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untested: Option<String>,
    pub attempts: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ruleset: String,
    pub rules: Vec<RuleReport>,
    pub attempts: Vec<AttemptReport>,
    pub blocked: usize,
    pub let_through: usize,
    pub untested: usize,
}

fn nft_rule(drops: &[Dropped], l4: L4, src: IpAddr, dst: IpAddr, port: u16) -> Option<String> {
    let (d, answer) = trace::stopper(drops, l4, src, dst, port)?;
    Some(if answer {
        format!("{} (the answer)", d.describe())
    } else {
        d.describe()
    })
}

/// Joins the plan, the client results, the trace and the monitor's flows.
pub fn build(
    ruleset: &str,
    plan: &Plan,
    hosts: &Hosts,
    observed: &[Observed],
    drops: &[Dropped],
    seen: &[(FlowKey, Seen)],
) -> Report {
    let attempts: Vec<AttemptReport> = plan
        .attempts
        .iter()
        .zip(observed)
        .map(|(a, client)| {
            let works = client.outcome == Outcome::Working;
            let key = FlowKey {
                l4: a.l4,
                src: a.src,
                dst: a.dst,
                dport: a.port,
            };
            let monitor = seen.iter().find(|(k, _)| *k == key).map(|(_, s)| s.clone());
            let kind = monitor.as_ref().map(|s| s.kind.as_str());
            let (status, agrees) = match a.purpose {
                // A required flow: the monitor flags it `blocked` when its
                // handshake failed, and nothing when it worked.
                Purpose::Required if works => {
                    ("working", Some(kind.is_none() || kind == Some("recovered")))
                }
                // The appliance's own packets dropped by its output hook
                // never reach tc egress, where the monitor would see them.
                Purpose::Required if a.direction == ConnDir::Outbound && kind.is_none() => {
                    ("blocked", None)
                }
                Purpose::Required => ("blocked", Some(kind == Some("blocked"))),
                // The kernel sees an inbound SYN before nftables does.
                Purpose::Unexpected => (
                    if works { "let-through" } else { "stopped" },
                    Some(kind == Some("unexpected")),
                ),
            };
            AttemptReport {
                purpose: match a.purpose {
                    Purpose::Required => "required",
                    Purpose::Unexpected => "unexpected",
                },
                proto: a.l4.as_str(),
                direction: a.direction.as_str(),
                peer: a.peer(hosts).to_string(),
                src: a.src,
                dst: a.dst,
                port: a.port,
                rules: a.rules.clone(),
                status,
                nft_rule: (!works)
                    .then(|| nft_rule(drops, a.l4, a.src, a.dst, a.port))
                    .flatten(),
                client: client.clone(),
                monitor,
                monitor_agrees: agrees,
            }
        })
        .collect();
    let rules: Vec<RuleReport> = plan
        .rules
        .iter()
        .map(|r| {
            let failed: Vec<&AttemptReport> = r
                .attempts
                .iter()
                .map(|&i| &attempts[i])
                .filter(|a| a.status != "working")
                .collect();
            let blocked = if r.untested.is_some() {
                false
            } else if r.alternatives {
                failed.len() == r.attempts.len()
            } else {
                !failed.is_empty()
            };
            RuleReport {
                id: r.id.clone(),
                source: r.source.clone(),
                service: r.service.clone(),
                proto: r.proto.clone(),
                ports: r.ports.clone(),
                direction: r.direction.clone(),
                peer: r.peer.clone(),
                status: match (&r.untested, blocked) {
                    (Some(_), _) => "untested",
                    (None, true) => "blocked",
                    (None, false) => "working",
                },
                reason: blocked.then(|| failed[0].client.outcome),
                untested: r.untested.clone(),
                attempts: r.attempts.clone(),
            }
        })
        .collect();
    Report {
        ruleset: ruleset.to_string(),
        blocked: rules.iter().filter(|r| r.status == "blocked").count(),
        untested: rules.iter().filter(|r| r.status == "untested").count(),
        let_through: attempts
            .iter()
            .filter(|a| a.status == "let-through")
            .count(),
        rules,
        attempts,
    }
}

fn flow(a: &AttemptReport) -> String {
    let (from, to) = if a.direction == "inbound" {
        (format!("{} {}", a.peer, a.src), format!("{}", a.dst))
    } else {
        (format!("{}", a.src), format!("{} {}", a.peer, a.dst))
    };
    format!("{}/{} {from} -> {to}", a.port, a.proto)
}

fn monitor_text(a: &AttemptReport) -> String {
    match &a.monitor {
        None if a.monitor_agrees.is_none() => {
            "monitor: not seen (an outbound packet dropped before tc egress)".into()
        }
        None => "monitor: not flagged".into(),
        Some(s) => {
            let mut t = format!("monitor: {}", s.kind);
            if let Some(r) = &s.reason {
                t.push_str(&format!(" ({r})"));
            }
            if let Some(n) = s.reply_packets {
                t.push_str(&format!(", {n} answer packets"));
            }
            t
        }
    }
}

fn write_attempt(out: &mut dyn Write, a: &AttemptReport) -> io::Result<()> {
    writeln!(
        out,
        "    {:<8} {}  [{}]",
        a.client.outcome.as_str(),
        flow(a),
        a.client.detail
    )?;
    if let Some(rule) = &a.nft_rule {
        writeln!(out, "             nft: {rule}")?;
    }
    let disagree = if a.monitor_agrees == Some(false) {
        "  <- differs from the client's result"
    } else {
        ""
    };
    writeln!(out, "             {}{disagree}", monitor_text(a))
}

/// The table a person reads.
pub fn table(out: &mut dyn Write, r: &Report, notes: &[String]) -> io::Result<()> {
    let blocked: Vec<&RuleReport> = r.rules.iter().filter(|x| x.status == "blocked").collect();
    writeln!(
        out,
        "{}: {} required rules blocked",
        r.ruleset,
        blocked.len()
    )?;
    for rule in &blocked {
        writeln!(
            out,
            "  BLOCKED {} {} {} {} {} ({}) {}",
            rule.id, rule.proto, rule.ports, rule.direction, rule.peer, rule.service, rule.source
        )?;
        for &i in &rule.attempts {
            if r.attempts[i].status != "working" {
                write_attempt(out, &r.attempts[i])?;
            }
        }
    }
    let through: Vec<&AttemptReport> = r
        .attempts
        .iter()
        .filter(|a| a.status == "let-through")
        .collect();
    writeln!(
        out,
        "{}: {} ports that no rule allows are let through",
        r.ruleset,
        through.len()
    )?;
    for a in &through {
        writeln!(out, "  UNEXPECTED-ALLOWED {}", flow(a))?;
        if let Some(s) = &a.monitor {
            writeln!(
                out,
                "             {}{}",
                monitor_text(a),
                s.note
                    .as_ref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            )?;
        } else {
            writeln!(out, "             {}", monitor_text(a))?;
        }
    }
    let untested: Vec<&RuleReport> = r.rules.iter().filter(|x| x.status == "untested").collect();
    if !untested.is_empty() {
        writeln!(out, "not tried in the lab ({}):", untested.len())?;
        for rule in untested {
            writeln!(
                out,
                "  {} {} {} {} {}: {}",
                rule.id,
                rule.proto,
                rule.ports,
                rule.direction,
                rule.peer,
                rule.untested.as_deref().unwrap_or("")
            )?;
        }
    }
    let differ: Vec<&AttemptReport> = r
        .attempts
        .iter()
        .filter(|a| a.monitor_agrees == Some(false))
        .collect();
    if !differ.is_empty() {
        writeln!(
            out,
            "the monitor saw {} attempts differently from the client:",
            differ.len()
        )?;
        for a in differ {
            writeln!(
                out,
                "  {} {} ({}): client {}, {}",
                a.purpose,
                flow(a),
                a.rules.join(","),
                a.client.outcome,
                monitor_text(a)
            )?;
        }
    }
    for n in notes {
        writeln!(out, "note: {n}")?;
    }
    let required = r
        .attempts
        .iter()
        .filter(|a| a.purpose == "required")
        .count();
    writeln!(
        out,
        "summary: {} required rules ({} working, {} blocked, {} not tried), {} required attempts; {} unexpected ports tried, {} let through",
        r.rules.len(),
        r.rules.len() - r.blocked - r.untested,
        r.blocked,
        r.untested,
        required,
        r.attempts.len() - required,
        r.let_through
    )
}

/// A rule or attempt whose status differs between baseline and candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Change<T> {
    pub before: T,
    pub after: T,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub baseline: String,
    pub candidate: String,
    pub rules: Vec<Change<RuleReport>>,
    pub unexpected: Vec<Change<AttemptReport>>,
    /// Rules working with the baseline and blocked with the candidate.
    pub newly_blocked: usize,
}

/// What changed from `before` to `after` (same plan, so same indices).
pub fn diff(before: &Report, after: &Report) -> Diff {
    let rules: Vec<Change<RuleReport>> = before
        .rules
        .iter()
        .zip(&after.rules)
        .filter(|(b, a)| b.status != a.status)
        .map(|(b, a)| Change {
            before: b.clone(),
            after: a.clone(),
        })
        .collect();
    let unexpected = before
        .attempts
        .iter()
        .zip(&after.attempts)
        .filter(|(b, a)| b.purpose == "unexpected" && b.status != a.status)
        .map(|(b, a)| Change {
            before: b.clone(),
            after: a.clone(),
        })
        .collect();
    Diff {
        baseline: before.ruleset.clone(),
        candidate: after.ruleset.clone(),
        newly_blocked: rules
            .iter()
            .filter(|c| c.before.status == "working" && c.after.status == "blocked")
            .count(),
        rules,
        unexpected,
    }
}

pub fn diff_table(out: &mut dyn Write, d: &Diff, after: &Report) -> io::Result<()> {
    writeln!(
        out,
        "changes from {} to {}: {} required rules, {} unexpected ports",
        d.baseline,
        d.candidate,
        d.rules.len(),
        d.unexpected.len()
    )?;
    for c in &d.rules {
        let r = &c.after;
        writeln!(
            out,
            "  {} -> {}: {} {} {} {} {} ({}) {}",
            c.before.status.to_uppercase(),
            r.status.to_uppercase(),
            r.id,
            r.proto,
            r.ports,
            r.direction,
            r.peer,
            r.service,
            r.source
        )?;
        if r.status == "blocked" {
            for &i in &r.attempts {
                if after.attempts[i].status != "working" {
                    write_attempt(out, &after.attempts[i])?;
                }
            }
        }
    }
    for c in &d.unexpected {
        let label = if c.after.status == "let-through" {
            "NEWLY UNEXPECTED-ALLOWED"
        } else {
            "NO LONGER LET THROUGH"
        };
        writeln!(out, "  {label} {}", flow(&c.after))?;
    }
    writeln!(
        out,
        "summary: {} required rules newly blocked, {} ports newly let through",
        d.newly_blocked,
        d.unexpected
            .iter()
            .filter(|c| c.after.status == "let-through")
            .count()
    )
}
