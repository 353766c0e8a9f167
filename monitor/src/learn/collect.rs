//! What `learn` keeps of the events files: every unexpected flow with its
//! counts (folded by the report's own [`Sightings`], so both count a flow's
//! packets alike), the UTC days it was seen on, and the flood records. Lines
//! come through the report's loader; this is only its sink.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    events::{EventKind, EventRecord, flood::FloodRecord},
    report::{
        load::{BadLine, Record, Sink},
        sightings::{Counts, Sightings},
    },
};

pub use crate::report::sightings::FlowId;

/// Everything the files say about one flow.
#[derive(Debug, Default)]
pub struct FlowSeen {
    sightings: Sightings,
    /// UTC days (since the epoch) on which a record saw it active.
    pub days: BTreeSet<u64>,
    /// The peer's roles as the monitor resolved them (inventory addresses
    /// and the names it bound), from the first record that named any.
    pub peer_roles: Vec<String>,
}

/// A flow's totals over its sightings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTotals {
    /// Packets both ways.
    pub packets: u64,
    /// Packets from the initiator: none means only answers were seen.
    pub opened: u64,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
}

impl FlowSeen {
    pub fn totals(&self) -> FlowTotals {
        let (counts, first_seen, _) = self.sightings.total();
        FlowTotals {
            packets: counts.count.saturating_add(counts.reply_packets),
            opened: counts.count,
            first_seen,
            last_seen: counts.last_seen.max(first_seen),
        }
    }
}

/// The UTC day of `t`, as days since 1970-01-01.
pub fn day_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

/// The sink `learn` reads the files into. Ordered maps: the output must
/// not depend on hashing.
#[derive(Debug, Default)]
pub struct Collected {
    pub flows: BTreeMap<FlowId, FlowSeen>,
    /// Flood records, with their hosts.
    pub floods: Vec<(String, FloodRecord)>,
    /// Lines that could not be read, in reading order.
    pub bad_lines: Vec<BadLine>,
    /// Usable lines read, all kinds.
    pub records: u64,
    /// The lines' numbers: a line delivered twice (a stream's at least
    /// once, a file given twice) is read once.
    seen: crate::report::sequence::Sequences,
}

impl Collected {
    fn unexpected(&mut self, host: &str, r: &EventRecord) {
        let flow = self.flows.entry(FlowId::of(host, r)).or_default();
        flow.sightings.add(r.first_seen, Counts::of(r));
        flow.days.insert(day_of(r.first_seen));
        flow.days.insert(day_of(r.last_seen));
        if flow.peer_roles.is_empty()
            && let Some(roles) = &r.peer_roles
        {
            flow.peer_roles = roles.clone();
        }
    }
}

impl Sink for Collected {
    fn record(&mut self, host: &str, record: Record) {
        self.records += 1;
        if let Record::Event(r) = record
            && matches!(
                (r.kind, r.update_of),
                (EventKind::Unexpected, _)
                    | (EventKind::Update, None | Some(EventKind::Unexpected))
            )
        {
            self.unexpected(host, &r);
        }
    }

    fn bad_line(&mut self, bad: BadLine) {
        self.bad_lines.push(bad);
    }

    fn unknown_kind(&mut self, _kind: &str) {}

    fn numbered(&mut self, host: &str, instance: &str, seq: u64) -> bool {
        self.seen.add(host, instance, seq)
    }

    fn flood(&mut self, host: &str, flood: FloodRecord) {
        self.records += 1;
        self.floods.push((host.to_string(), flood));
    }
}
