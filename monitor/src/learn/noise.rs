//! Traffic that is not a service, found before flows are grouped: scans
//! (one peer reaching many ports of one host), floods (the monitor's own
//! `flood` records), and ports no service listens on (a client's ephemeral
//! port, which an unexpected flow seen mid-connection can name as its
//! service). What remains still has to pass [`super::propose`]: a group
//! of which only answers were seen, or one below the thresholds (a
//! one-off), is no row either.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use super::collect::{Collected, FlowId};
use crate::{
    events::{ConnDir, IpProto, flood::FloodRecord},
    policy::PortRange,
};

/// IANA's dynamic ports (RFC 6335): clients of other systems pick theirs
/// here, whatever this host's own range.
pub const IANA_DYNAMIC: PortRange = PortRange {
    lo: 49152,
    hi: 65535,
};

/// Distinct ports one peer opens towards one host before it is a scan.
pub const DEFAULT_SCAN_PORTS: usize = 10;

/// Ports clients pick their source ports from: the host's (or
/// `--dynamic-ports`) range and IANA's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ephemeral {
    pub host: PortRange,
}

impl Ephemeral {
    pub fn contains(&self, port: u16) -> bool {
        [self.host, IANA_DYNAMIC]
            .iter()
            .any(|r| (r.lo..=r.hi).contains(&port))
    }

    pub fn describe(&self) -> String {
        format!(
            "{}-{} (the dynamic range) or {}-{} (IANA's)",
            self.host.lo, self.host.hi, IANA_DYNAMIC.lo, IANA_DYNAMIC.hi
        )
    }
}

/// One scanner: a peer that opened connections to many ports of a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scan {
    pub host: String,
    pub initiator: IpAddr,
    pub responder: IpAddr,
    pub direction: ConnDir,
    /// The ports it reached, by protocol.
    pub ports: BTreeSet<(IpProto, u16)>,
}

impl Scan {
    /// Whether `flow` is one of this scan's.
    pub fn covers(&self, flow: &FlowId) -> bool {
        flow.host == self.host
            && flow.src == self.initiator
            && flow.dst == self.responder
            && flow.direction == self.direction
    }
}

/// (host, initiator, responder, direction): the pair a scan is judged on.
type Pair<'a> = (&'a str, IpAddr, IpAddr, ConnDir);

/// Every initiator that opened unexpected connections to at least
/// `min_ports` distinct (protocol, port) of one responder, in order.
pub fn scans(collected: &Collected, min_ports: usize) -> Vec<Scan> {
    let mut by_pair: BTreeMap<Pair, BTreeSet<(IpProto, u16)>> = BTreeMap::new();
    for id in collected.flows.keys() {
        by_pair
            .entry((id.host.as_str(), id.src, id.dst, id.direction))
            .or_default()
            .insert((id.proto, id.dport));
    }
    by_pair
        .into_iter()
        .filter(|(_, ports)| ports.len() >= min_ports.max(2))
        .map(|((host, initiator, responder, direction), ports)| Scan {
            host: host.to_string(),
            initiator,
            responder,
            direction,
            ports,
        })
        .collect()
}

/// A service a flood aimed at on one host: the flows to it are not
/// evidence of a service, whoever sent them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flooded {
    pub host: String,
    pub direction: ConnDir,
    pub proto: IpProto,
    /// 0: the kernel's catch-all for floods on more services than it
    /// aggregates apart; it names no port.
    pub port: u16,
}

impl Flooded {
    pub fn covers(&self, flow: &FlowId) -> bool {
        self.port != 0
            && flow.host == self.host
            && flow.direction == self.direction
            && flow.proto == self.proto
            && flow.dport == self.port
    }
}

/// A flood as the set-aside list shows it, all its records merged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FloodSeen {
    pub target: Flooded,
    /// Packets past the monitor's budget, over all records.
    pub packets: u64,
    /// The largest estimate of distinct sources any record gave.
    pub sources: u64,
    pub first_seen: std::time::SystemTime,
    pub last_seen: std::time::SystemTime,
}

/// The floods of the files, one per (host, direction, protocol, port).
pub fn floods(records: &[(String, FloodRecord)]) -> Vec<FloodSeen> {
    let mut by_target: BTreeMap<Flooded, FloodSeen> = BTreeMap::new();
    for (host, f) in records {
        let target = Flooded {
            host: host.clone(),
            direction: f.direction,
            proto: f.proto,
            port: f.service_port,
        };
        let seen = by_target
            .entry(target.clone())
            .or_insert_with(|| FloodSeen {
                target,
                packets: 0,
                sources: 0,
                first_seen: f.first_seen,
                last_seen: f.last_seen,
            });
        // `total_packets` is cumulative per flood; `packets` is per record.
        seen.packets = seen.packets.max(f.total_packets);
        seen.sources = seen.sources.max(f.sources);
        seen.first_seen = seen.first_seen.min(f.first_seen);
        seen.last_seen = seen.last_seen.max(f.last_seen);
    }
    by_target.into_values().collect()
}
