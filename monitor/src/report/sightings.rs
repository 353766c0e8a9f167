//! A flow's identity and its sightings: the cumulative counts its
//! `unexpected`, `update` and `blocked` records carry, folded so that
//! reading order does not matter. Shared by `report` and `learn`, which
//! must name a flow and count its packets the same way.
//!
//! Counts in one *sighting* (named by its `first_seen`) are cumulative:
//! the record with the most packets wins, never the sum. A flow seen again
//! after a restart of the monitor, or after its flow table evicted it,
//! starts a new sighting whose counts start over, so sightings add up.

use std::{collections::BTreeMap, net::IpAddr, time::SystemTime};

use crate::events::{ConnDir, EventRecord, IpProto};

/// A flow as the monitor names it: the client's port is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId {
    pub host: String,
    pub direction: ConnDir,
    pub proto: IpProto,
    /// The side that opened the connection.
    pub src: IpAddr,
    /// The side that serves it, on `dport`.
    pub dst: IpAddr,
    pub dport: u16,
}

impl FlowId {
    /// The flow record `r` of `host` counts.
    pub fn of(host: &str, r: &EventRecord) -> Self {
        FlowId {
            host: host.to_string(),
            direction: r.direction,
            proto: r.proto,
            src: r.src,
            dst: r.dst,
            dport: r.dport,
        }
    }

    /// The far end: the initiator of an inbound flow, the responder of an
    /// outbound one.
    pub fn peer(&self) -> IpAddr {
        match self.direction {
            ConnDir::Inbound => self.src,
            ConnDir::Outbound => self.dst,
        }
    }

    /// The monitored host's own address in the flow.
    pub fn local(&self) -> IpAddr {
        match self.direction {
            ConnDir::Inbound => self.dst,
            ConnDir::Outbound => self.src,
        }
    }
}

/// Sightings kept apart per flow; past this the oldest two are merged, so
/// that a flow evicted and seen again every second stays one small entry.
const MAX_SIGHTINGS: usize = 64;

/// Cumulative counts of one sighting, as its latest record gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub count: u64,
    pub bytes: u64,
    pub reply_packets: u64,
    pub last_seen: SystemTime,
}

impl Counts {
    pub fn of(r: &EventRecord) -> Self {
        Counts {
            count: r.count,
            bytes: r.bytes.unwrap_or(0),
            reply_packets: r.reply_packets.unwrap_or(0),
            last_seen: r.last_seen,
        }
    }

    /// Which of two records of one sighting is the later: counts only grow.
    fn rank(&self) -> (u64, SystemTime, u64) {
        (
            self.count.saturating_add(self.reply_packets),
            self.last_seen,
            self.bytes,
        )
    }
}

/// The sightings of one flow, by `first_seen`.
#[derive(Debug, Default, Clone)]
pub struct Sightings(BTreeMap<SystemTime, Counts>);

impl Sightings {
    pub fn add(&mut self, first_seen: SystemTime, counts: Counts) {
        let slot = self.0.entry(first_seen).or_insert(counts);
        if counts.rank() > slot.rank() {
            *slot = counts;
        }
        if self.0.len() > MAX_SIGHTINGS {
            let (_, oldest) = self.0.pop_first().expect("more than one sighting");
            let next = self.0.values_mut().next().expect("more than one sighting");
            next.count += oldest.count;
            next.bytes += oldest.bytes;
            next.reply_packets += oldest.reply_packets;
            next.last_seen = next.last_seen.max(oldest.last_seen);
        }
    }

    /// Whether no record was added yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (counts summed over sightings, earliest first_seen, sightings).
    pub fn total(&self) -> (Counts, SystemTime, u64) {
        let first = *self.0.keys().next().expect("a flow has a sighting");
        let mut sum = Counts {
            count: 0,
            bytes: 0,
            reply_packets: 0,
            last_seen: first,
        };
        for c in self.0.values() {
            sum.count += c.count;
            sum.bytes += c.bytes;
            sum.reply_packets += c.reply_packets;
            sum.last_seen = sum.last_seen.max(c.last_seen);
        }
        (sum, first, self.0.len() as u64)
    }
}
