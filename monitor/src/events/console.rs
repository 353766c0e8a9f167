//! The console's lines: one per new unexpected flow, one per blocked or
//! recovered required flow. Shared by `run` and `replay` so that both print
//! a flow alike.

use super::{EventKind, EventRecord, RecordRef};

/// The console line of a record, if its kind has one: new unexpected flows,
/// blocked and recovered required flows.
pub fn line(r: &EventRecord) -> Option<String> {
    match r.kind {
        EventKind::Unexpected => Some(unexpected_line(&r.borrowed())),
        EventKind::Blocked | EventKind::Recovered => Some(required_line(r)),
        _ => None,
    }
}

/// One console line per new unexpected flow, from the borrowed record the
/// daemon's drain holds.
pub fn unexpected_line(r: &RecordRef) -> String {
    let roles = r
        .peer_roles
        .filter(|r| !r.is_empty())
        .map(|r| r.join(","))
        .unwrap_or_else(|| "no role".into());
    format!(
        "UNEXPECTED {} {} {}:{} -> {}:{} on {} [peer: {}] {}",
        r.direction.as_str(),
        r.proto,
        r.src,
        r.sport,
        r.dst,
        r.dport,
        r.iface,
        roles,
        r.note.unwrap_or_default()
    )
}

/// The console line of a blocked or recovered flow: loud on purpose, it is
/// half of what the monitor is for.
pub fn required_line(r: &EventRecord) -> String {
    let tag = match r.kind {
        EventKind::Recovered => "RECOVERED",
        _ => "BLOCKED",
    };
    format!(
        "{tag} {} {} {}:{} -> {}:{} on {} [{}] {}",
        r.direction,
        r.proto,
        r.src,
        r.sport,
        r.dst,
        r.dport,
        r.iface,
        r.reason.as_deref().unwrap_or_default(),
        r.note.as_deref().unwrap_or_default()
    )
}
