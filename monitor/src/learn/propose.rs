//! From flows to proposed rows: noise set aside first ([`super::noise`]),
//! the rest grouped ([`super::group`]), and each group held to the
//! thresholds. Everything is in ordered collections, so the same files
//! give the same proposal byte for byte.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::SystemTime,
};

use super::{
    collect::{Collected, FlowId, FlowSeen},
    group::{GroupKey, Grouper},
    noise::{self, Ephemeral, FloodSeen, Scan},
};
use crate::events::IpProto;

/// What a group needs to become a row. See `learn --help` for why the
/// defaults are what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Monitored hosts that saw the group.
    pub min_hosts: usize,
    /// Distinct UTC days on which it was seen.
    pub min_days: usize,
    /// Flows, each (host, peer) counted once per day it was seen: one peer
    /// seen by one host on one day is a one-off.
    pub min_flows: usize,
    /// Distinct ports one peer opens on one host before it is a scan.
    pub scan_ports: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_hosts: 1,
            min_days: 1,
            min_flows: 2,
            scan_ports: noise::DEFAULT_SCAN_PORTS,
        }
    }
}

/// What the events say about a row (or a set-aside group).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    pub hosts: BTreeSet<String>,
    pub peers: BTreeSet<IpAddr>,
    pub days: BTreeSet<u64>,
    /// (host, peer, day) triples.
    pub flows: BTreeSet<(String, IpAddr, u64)>,
    pub packets: u64,
    /// Of `packets`, those sent by the side that opened the flows.
    pub opened: u64,
    pub first_seen: Option<SystemTime>,
    pub last_seen: Option<SystemTime>,
}

impl Evidence {
    fn add(&mut self, id: &FlowId, seen: &FlowSeen) {
        let t = seen.totals();
        let peer = id.peer();
        self.hosts.insert(id.host.clone());
        self.peers.insert(peer);
        for &day in &seen.days {
            self.days.insert(day);
            self.flows.insert((id.host.clone(), peer, day));
        }
        self.packets = self.packets.saturating_add(t.packets);
        self.opened = self.opened.saturating_add(t.opened);
        self.first_seen = Some(
            self.first_seen
                .map_or(t.first_seen, |f| f.min(t.first_seen)),
        );
        self.last_seen = Some(self.last_seen.map_or(t.last_seen, |l| l.max(t.last_seen)));
    }
}

/// A proposed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: GroupKey,
    pub evidence: Evidence,
}

/// Why traffic was left out of the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Scan(Scan),
    Flood(FloodSeen),
    /// The group's port lies where clients pick theirs.
    Ephemeral,
    /// ICMP and protocols without ports: a row needs a port.
    NoPort,
    /// Only answers were seen, never a packet of the side that would
    /// have opened the flows: backscatter of someone else's spoofed
    /// traffic, or a capture that missed every request.
    AnswersOnly,
    /// One peer, one host, one day.
    OneOff,
    /// Below a threshold other than the one-off's: which, in words.
    Threshold(String),
    /// The monitored host plays no role of the policy: the message.
    NoRole(String),
}

/// A group (or a scanner, or a flood) left out, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aside {
    /// The group, when the reason concerns one.
    pub key: Option<GroupKey>,
    pub reason: Reason,
    pub evidence: Evidence,
}

/// The rows and the rest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proposal {
    pub rows: Vec<Row>,
    pub aside: Vec<Aside>,
    /// Unexpected flows read.
    pub flows: usize,
}

/// Turns what was read into rows and set-aside traffic.
pub fn propose(
    collected: &Collected,
    grouper: &mut Grouper,
    thresholds: &Thresholds,
    ephemeral: &Ephemeral,
) -> Proposal {
    let scans = noise::scans(collected, thresholds.scan_ports);
    let floods = noise::floods(&collected.floods);
    let mut aside: Vec<Aside> = Vec::new();
    let mut scan_evidence: Vec<Evidence> = vec![Evidence::default(); scans.len()];
    let mut flood_evidence: Vec<Evidence> = vec![Evidence::default(); floods.len()];
    // Groups, and groups set aside as a whole, with their evidence.
    let mut groups: BTreeMap<GroupKey, Evidence> = BTreeMap::new();
    let mut rejected: BTreeMap<(Reason, Option<GroupKey>), Evidence> = BTreeMap::new();
    for (id, seen) in &collected.flows {
        if let Some(i) = scans.iter().position(|s| s.covers(id)) {
            scan_evidence[i].add(id, seen);
            continue;
        }
        let key = match grouper.key(id, &seen.peer_roles) {
            Ok(key) => key,
            Err(why) => {
                rejected
                    .entry((Reason::NoRole(why), None))
                    .or_default()
                    .add(id, seen);
                continue;
            }
        };
        if let Some(i) = floods.iter().position(|f| f.target.covers(id)) {
            flood_evidence[i].add(id, seen);
            continue;
        }
        let reason = if !matches!(id.proto, IpProto::Tcp | IpProto::Udp) {
            Some(Reason::NoPort)
        } else if ephemeral.contains(id.dport) {
            Some(Reason::Ephemeral)
        } else {
            None
        };
        match reason {
            Some(reason) => rejected.entry((reason, Some(key))).or_default(),
            None => groups.entry(key).or_default(),
        }
        .add(id, seen);
    }
    let mut rows = Vec::new();
    for (key, evidence) in groups {
        match below(&evidence, thresholds) {
            None => rows.push(Row { key, evidence }),
            Some(reason) => aside.push(Aside {
                key: Some(key),
                reason,
                evidence,
            }),
        }
    }
    for (scan, evidence) in scans.into_iter().zip(scan_evidence) {
        aside.push(Aside {
            key: None,
            reason: Reason::Scan(scan),
            evidence,
        });
    }
    for (flood, evidence) in floods.into_iter().zip(flood_evidence) {
        aside.push(Aside {
            key: None,
            reason: Reason::Flood(flood),
            evidence,
        });
    }
    for ((reason, key), evidence) in rejected {
        aside.push(Aside {
            key,
            reason,
            evidence,
        });
    }
    aside.sort_by(|a, b| (&a.reason, &a.key).cmp(&(&b.reason, &b.key)));
    Proposal {
        rows,
        aside,
        flows: collected.flows.len(),
    }
}

/// Why a group is no row, if it is not: nothing but answers seen; then the
/// one-off (the common case and the plainest reason); then hosts, days,
/// flows.
fn below(e: &Evidence, t: &Thresholds) -> Option<Reason> {
    if e.opened == 0 {
        return Some(Reason::AnswersOnly);
    }
    if e.flows.len() < t.min_flows && e.flows.len() <= 1 {
        return Some(Reason::OneOff);
    }
    let checks = [
        (e.hosts.len(), t.min_hosts, "hosts", "--min-hosts"),
        (e.days.len(), t.min_days, "days", "--min-days"),
        (e.flows.len(), t.min_flows, "flows", "--min-flows"),
    ];
    checks
        .iter()
        .find(|(have, need, _, _)| have < need)
        .map(|(have, need, what, flag)| {
            Reason::Threshold(format!("seen in {have} {what}, {flag} is {need}"))
        })
}
