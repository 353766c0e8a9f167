//! Records and console lines for blocked and recovered required flows, and
//! the per-rule verdicts a run or replay ends with.

use std::time::SystemTime;

use monitor_common::flow::FlowKey;

use super::{Blocked, tracker::RuleVerdict};
use crate::{
    enrich::Enricher,
    events::{ConnDir, EventKind, EventRecord, IpProto, RequiredState, RequiredStatus},
    policy,
};

/// The record of a blocked flow: `Blocked` when first reported, `Update` as
/// attempts accumulate, `Recovered` (at `ts`) when it works again.
pub fn record(
    enricher: &Enricher,
    kind: EventKind,
    key: &FlowKey,
    b: &Blocked,
    ts: SystemTime,
) -> EventRecord {
    let mut r = enricher.flow_base(kind, key, ts, b.ifindex, b.initiator_port);
    let (proto, direction) = (r.proto, r.direction);
    r.count = b.attempts;
    r.first_seen = enricher.clock.wall(b.first_ns);
    r.last_seen = enricher.clock.wall(b.last_ns);
    r.rule = Some(b.rule.id.clone());
    r.source = Some(b.rule.source.clone());
    r.reason = Some(b.reason.to_string());
    let towards = if direction == ConnDir::Inbound {
        "from"
    } else {
        "to"
    };
    // A local drop names the kernel's reason: `local-firewall
    // (NETFILTER_DROP)`, `local-drop (NO_SOCKET)`.
    let reason = match b.reason.kernel_reason() {
        Some(kernel) => format!("{} ({kernel})", b.reason),
        None => b.reason.to_string(),
    };
    let what = match kind {
        EventKind::Recovered => format!(
            "works again after {} failed attempts ({reason})",
            b.attempts
        ),
        _ => format!("{reason} after {} attempts", b.attempts),
    };
    r.note = Some(format!(
        "{what}: {} {} {} {} {towards} {} is required ({} {})",
        b.rule.service,
        proto,
        key.service_port,
        direction,
        b.rule.peer_label,
        b.rule.id,
        b.rule.source
    ));
    if kind == EventKind::Update {
        r.update_of = Some(EventKind::Blocked);
    }
    r
}

/// The `required` lines of the events file.
pub fn statuses(
    verdicts: &[RuleVerdict],
    ts: SystemTime,
    host: Option<&str>,
) -> Vec<RequiredStatus> {
    verdicts
        .iter()
        .map(|v| RequiredStatus {
            ts,
            kind: EventKind::Required,
            host: host.map(str::to_owned),
            rule: v.rule.id.clone(),
            source: v.rule.source.clone(),
            service: v.rule.service.clone(),
            proto: match v.rule.proto {
                policy::Proto::Tcp => IpProto::Tcp,
                policy::Proto::Udp => IpProto::Udp,
                policy::Proto::Icmp => IpProto::Icmp,
            },
            ports: v.rule.ports.clone(),
            direction: v.rule.direction.name().to_string(),
            peer: v.rule.peer_label.clone(),
            status: v.state,
            reason: v.reason.map(|r| r.to_string()),
            working: v.tally.working,
            blocked_flows: v.blocked_flows,
            failed_attempts: v.tally.failed_attempts,
        })
        .collect()
}

/// The closing table: per required rule, seen working or blocked (with
/// reason), one line each; the rules not seen at all as one list of ids, so
/// that a profile with dozens of required rules stays readable.
pub fn summary_lines(verdicts: &[RuleVerdict]) -> Vec<String> {
    let count = |s| verdicts.iter().filter(|v| v.state == s).count();
    let mut out = vec![format!(
        "required flows: {} rules working, {} blocked, {} not seen",
        count(RequiredState::Working),
        count(RequiredState::Blocked),
        count(RequiredState::NotSeen)
    )];
    for v in verdicts {
        let detail = match v.state {
            RequiredState::Blocked => format!(
                "BLOCKED ({}): {} flows, {} failed attempts",
                v.reason.map_or("unknown", |r| r.as_str()),
                v.blocked_flows,
                v.tally.failed_attempts
            ),
            RequiredState::Working if v.tally.recovered > 0 => format!(
                "working: {} handshakes, recovered after {} failed attempts",
                v.tally.working, v.tally.failed_attempts
            ),
            RequiredState::Working => format!("working: {} handshakes", v.tally.working),
            RequiredState::NotSeen => continue,
        };
        out.push(format!(
            "  {:<8} {:<24} {} {} {} {}  {detail}  ({})",
            v.rule.id,
            truncate(&v.rule.service, 24),
            v.rule.proto.name(),
            v.rule.ports,
            v.rule.direction.name(),
            v.rule.peer_label,
            v.rule.source
        ));
    }
    let unseen: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.state == RequiredState::NotSeen)
        .map(|v| v.rule.id.as_str())
        .collect();
    if !unseen.is_empty() {
        out.push(format!("  not seen: {}", unseen.join(" ")));
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
