//! Folding records into the report. Every rule here is independent of the
//! order in which files and lines arrive, because rotated files are given in
//! any order (`events.jsonl.1` holds older lines than `events.jsonl`) and
//! several hosts' files are merged:
//!
//! - A flow's counts in `unexpected`/`update`/`blocked` records are
//!   cumulative for one *sighting* (named by its `first_seen`): the record
//!   with the most packets wins, never the sum. A flow seen again after a
//!   restart of the monitor, or after the monitor's flow table evicted it,
//!   starts a new sighting (a new `first_seen`) whose counts start over, so
//!   sightings add up.
//! - A rule's `required` verdict is the latest one (by `ts`) per host.
//! - A blocked flow is recovered when its latest `recovered` record is at
//!   or after the last failed attempt.
//!
//! Memory is one entry per distinct flow, whatever the size of the files.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    net::IpAddr,
    time::SystemTime,
};

use super::{
    context::PolicyContext,
    load::{BadLine, FileStats, Record, Sink},
    model::{
        Basis, BlockedFlow, HostSummary, Inputs, PEER_PORTS_SHOWN, PeerGroup, PortGroup, Report,
        RequiredCell, RequiredRow, Unexpected, UnexpectedFlow, service_label,
    },
    sightings::{Counts, FlowId, Sightings},
};
use crate::events::{ConnDir, EventKind, EventRecord, IpProto, RequiredState, RequiredStatus};

/// Bad lines kept verbatim for the report; the rest are counted.
pub const BAD_LINE_SAMPLES: usize = 100;

/// Why a flow is unexpected (or blocked), from the earliest first sighting
/// read; updates repeat the explanation, so they serve when no first
/// sighting was given (its rotated file was not passed).
#[derive(Debug, Default, Clone)]
struct Explanation {
    /// Which record it came from: (not a first sighting, first_seen, ts);
    /// the smallest wins, so the result does not depend on reading order.
    from: Option<(bool, SystemTime, SystemTime)>,
    iface: String,
    sport: u16,
    rule: Option<String>,
    source: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    peer_roles: Vec<String>,
}

impl Explanation {
    fn offer(&mut self, r: &EventRecord, first_sighting: bool) {
        let rank = (!first_sighting, r.first_seen, r.ts);
        if self.from.is_some_and(|from| from <= rank) {
            return;
        }
        self.from = Some(rank);
        self.iface = r.iface.clone();
        self.sport = r.sport;
        self.rule = r.rule.clone();
        self.source = r.source.clone();
        self.reason = r.reason.clone();
        self.note = r.note.clone();
        self.peer_roles = r.peer_roles.clone().unwrap_or_default();
    }
}

#[derive(Debug, Default, Clone)]
struct FlowAcc {
    sightings: Sightings,
    why: Explanation,
}

#[derive(Debug, Default, Clone)]
struct BlockedAcc {
    /// Failed attempts per blocking episode (`count` is cumulative).
    sightings: Sightings,
    why: Explanation,
    /// The reason of the latest failed attempt, with its time.
    latest_reason: Option<(SystemTime, String)>,
    recovered_at: Option<SystemTime>,
}

/// Everything read so far; [`Aggregator::finish`] turns it into a report.
#[derive(Debug, Default, Clone)]
pub struct Aggregator {
    unexpected: HashMap<FlowId, FlowAcc>,
    blocked: HashMap<(FlowId, String), BlockedAcc>,
    /// Latest verdict per (host, rule, direction): one line per rule is
    /// what a run writes; a line per direction is folded into one cell.
    required: HashMap<(String, String, String), RequiredStatus>,
    hosts: BTreeSet<String>,
    inputs: Inputs,
    sequences: super::sequence::Sequences,
}

impl Sink for Aggregator {
    fn record(&mut self, host: &str, record: Record) {
        self.inputs.records += 1;
        if !self.hosts.contains(host) {
            self.hosts.insert(host.to_string());
        }
        match record {
            Record::Required(r) => self.required_line(host, r),
            Record::Event(r) => match (r.kind, r.update_of) {
                (EventKind::Unexpected, _) => self.unexpected(host, &r, true),
                (EventKind::Update, None | Some(EventKind::Unexpected)) => {
                    self.unexpected(host, &r, false)
                }
                (EventKind::Blocked, _) => self.blocked(host, &r, true),
                (EventKind::Update, Some(EventKind::Blocked)) => self.blocked(host, &r, false),
                (EventKind::Recovered, _) => self.recovered(host, &r),
                // The loader lets no other combination through.
                _ => {}
            },
        }
    }

    fn bad_line(&mut self, bad: BadLine) {
        self.inputs.bad_lines += 1;
        if self.inputs.bad_line_samples.len() < BAD_LINE_SAMPLES {
            self.inputs.bad_line_samples.push(bad);
        }
    }

    fn numbered(&mut self, host: &str, instance: &str, seq: u64) -> bool {
        self.sequences.add(host, instance, seq)
    }

    fn unknown_kind(&mut self, kind: &str) {
        *self
            .inputs
            .unknown_kinds
            .entry(kind.to_string())
            .or_default() += 1;
    }
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what was read from a file, for the report's inputs.
    pub fn file_read(&mut self, stats: FileStats) {
        self.inputs.files.push(stats);
    }

    pub fn records(&self) -> u64 {
        self.inputs.records
    }

    fn unexpected(&mut self, host: &str, r: &EventRecord, first: bool) {
        let acc = self.unexpected.entry(FlowId::of(host, r)).or_default();
        acc.sightings.add(r.first_seen, Counts::of(r));
        acc.why.offer(r, first);
    }

    fn blocked(&mut self, host: &str, r: &EventRecord, first: bool) {
        let rule = r.rule.clone().unwrap_or_default();
        let acc = self.blocked.entry((FlowId::of(host, r), rule)).or_default();
        acc.sightings.add(r.first_seen, Counts::of(r));
        acc.why.offer(r, first);
        // Ties broken by the text, so that reading order never decides.
        if let Some(reason) = &r.reason
            && acc
                .latest_reason
                .as_ref()
                .is_none_or(|(t, old)| (r.last_seen, reason) > (*t, old))
        {
            acc.latest_reason = Some((r.last_seen, reason.clone()));
        }
    }

    /// A `recovered` record repeats the failed attempts and the last
    /// failure (`last_seen`), so it counts like an update of the blocking.
    fn recovered(&mut self, host: &str, r: &EventRecord) {
        let rule = r.rule.clone().unwrap_or_default();
        let acc = self.blocked.entry((FlowId::of(host, r), rule)).or_default();
        acc.sightings.add(r.first_seen, Counts::of(r));
        acc.why.offer(r, false);
        acc.recovered_at = acc.recovered_at.max(Some(r.ts));
    }

    fn required_line(&mut self, host: &str, r: RequiredStatus) {
        let key = (host.to_string(), r.rule.clone(), r.direction.clone());
        // The latest verdict; two written at the same instant are ordered
        // by status, so that reading order never decides.
        match self.required.get(&key) {
            Some(old) if (old.ts, old.status) >= (r.ts, r.status) => {}
            _ => {
                self.required.insert(key, r);
            }
        }
    }

    /// The report; with a policy, its required rules all get a row.
    pub fn finish(mut self, policy: Option<&PolicyContext>) -> Report {
        if let Some(ctx) = policy {
            self.inputs.policy = Some(ctx.label.clone());
        }
        self.inputs.sequences = self.sequences.report();
        self.inputs.instances_not_checked = self.sequences.instances_dropped;
        let unexpected = self.unexpected_view();
        let blocked = self.blocked_flows();
        let required = self.required_rows(policy, &blocked);
        let hosts = host_summaries(&self.hosts, &unexpected.flows, &blocked, &required);
        Report {
            inputs: self.inputs,
            hosts,
            required,
            blocked,
            unexpected,
        }
    }

    fn unexpected_view(&self) -> Unexpected {
        let mut flows: Vec<UnexpectedFlow> = self
            .unexpected
            .iter()
            .map(|(id, acc)| {
                let (sum, first_seen, sightings) = acc.sightings.total();
                UnexpectedFlow {
                    host: id.host.clone(),
                    iface: acc.why.iface.clone(),
                    direction: id.direction,
                    proto: id.proto,
                    src: id.src,
                    dst: id.dst,
                    sport: acc.why.sport,
                    dport: id.dport,
                    count: sum.count,
                    bytes: sum.bytes,
                    reply_packets: sum.reply_packets,
                    first_seen,
                    last_seen: sum.last_seen,
                    sightings,
                    rule: acc.why.rule.clone(),
                    source: acc.why.source.clone(),
                    reason: acc.why.reason.clone(),
                    note: acc.why.note.clone(),
                    peer_roles: acc.why.peer_roles.clone(),
                }
            })
            .collect();
        flows.sort_by(|a, b| {
            busiest(
                (a.count, a.reply_packets, a.bytes),
                (b.count, b.reply_packets, b.bytes),
            )
            .then_with(|| {
                (&a.host, a.direction, a.proto, a.src, a.dst, a.dport).cmp(&(
                    &b.host,
                    b.direction,
                    b.proto,
                    b.src,
                    b.dst,
                    b.dport,
                ))
            })
        });
        Unexpected {
            flows_total: flows.len() as u64,
            packets_total: flows.iter().map(|f| f.count).sum(),
            by_port: by_port(&flows),
            by_peer: by_peer(&flows),
            flows,
        }
    }

    fn blocked_flows(&self) -> Vec<BlockedFlow> {
        let mut out: Vec<BlockedFlow> = self
            .blocked
            .iter()
            .map(|((id, rule), acc)| {
                let (attempts, first_seen, last_seen) = if acc.sightings.is_empty() {
                    (0, None, None)
                } else {
                    let (sum, first, _) = acc.sightings.total();
                    (sum.count, Some(first), Some(sum.last_seen))
                };
                let recovered = match (acc.recovered_at, last_seen) {
                    (Some(at), Some(last)) => at >= last,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                BlockedFlow {
                    host: id.host.clone(),
                    rule: rule.clone(),
                    source: acc.why.source.clone(),
                    iface: acc.why.iface.clone(),
                    direction: id.direction,
                    proto: id.proto,
                    src: id.src,
                    dst: id.dst,
                    sport: acc.why.sport,
                    dport: id.dport,
                    reason: acc
                        .latest_reason
                        .as_ref()
                        .map(|(_, r)| r.clone())
                        .or_else(|| acc.why.reason.clone()),
                    attempts,
                    first_seen,
                    last_seen,
                    recovered_at: acc.recovered_at,
                    recovered,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (
                a.recovered,
                &a.host,
                natural_key(&a.rule),
                a.src,
                a.dst,
                a.dport,
            )
                .cmp(&(
                    b.recovered,
                    &b.host,
                    natural_key(&b.rule),
                    b.src,
                    b.dst,
                    b.dport,
                ))
        });
        out
    }

    fn required_rows(
        &self,
        policy: Option<&PolicyContext>,
        blocked: &[BlockedFlow],
    ) -> Vec<RequiredRow> {
        let mut rows: BTreeMap<String, RequiredRow> = BTreeMap::new();
        if let Some(ctx) = policy {
            for rule in ctx.required() {
                rows.insert(
                    rule.id.clone(),
                    RequiredRow {
                        rule: rule.id.clone(),
                        source: Some(rule.source.clone()),
                        service: rule.service.clone(),
                        proto: rule.proto.clone(),
                        ports: rule.ports.clone(),
                        direction: rule.direction.clone(),
                        peer: rule.peer.clone(),
                        hosts: BTreeMap::new(),
                    },
                );
            }
        }
        // Verdicts, directions of one rule folded into one cell.
        let mut lines: Vec<&RequiredStatus> = Vec::new();
        let mut by_cell: BTreeMap<(&str, &str), Vec<&RequiredStatus>> = BTreeMap::new();
        for ((host, rule, _), r) in &self.required {
            by_cell.entry((rule, host)).or_default().push(r);
            lines.push(r);
        }
        lines.sort_by(|a, b| {
            (natural_key(&a.rule), &a.direction).cmp(&(natural_key(&b.rule), &b.direction))
        });
        for r in &lines {
            let row = rows.entry(r.rule.clone()).or_insert_with(|| {
                let known = policy.and_then(|p| p.rule(&r.rule));
                RequiredRow {
                    rule: r.rule.clone(),
                    source: Some(known.map_or_else(|| r.source.clone(), |k| k.source.clone())),
                    service: known.map_or_else(|| r.service.clone(), |k| k.service.clone()),
                    proto: known.map_or_else(|| r.proto.to_string(), |k| k.proto.clone()),
                    ports: known.map_or_else(|| r.ports.clone(), |k| k.ports.clone()),
                    direction: known.map_or_else(|| r.direction.clone(), |k| k.direction.clone()),
                    peer: known.map_or_else(|| r.peer.clone(), |k| k.peer.clone()),
                    hosts: BTreeMap::new(),
                }
            });
            if policy.and_then(|p| p.rule(&r.rule)).is_none()
                && !row.direction.split(", ").any(|d| d == r.direction)
            {
                row.direction = format!("{}, {}", row.direction, r.direction);
            }
        }
        // Rules only the blocked events name (no `required` line at all).
        for f in blocked {
            rows.entry(f.rule.clone()).or_insert_with(|| {
                let known = policy.and_then(|p| p.rule(&f.rule));
                RequiredRow {
                    rule: f.rule.clone(),
                    source: known.map(|k| k.source.clone()).or_else(|| f.source.clone()),
                    service: known.map(|k| k.service.clone()).unwrap_or_default(),
                    proto: known.map_or_else(|| f.proto.to_string(), |k| k.proto.clone()),
                    ports: known.map_or_else(|| f.dport.to_string(), |k| k.ports.clone()),
                    direction: known
                        .map_or_else(|| f.direction.to_string(), |k| k.direction.clone()),
                    peer: known.map(|k| k.peer.clone()).unwrap_or_default(),
                    hosts: BTreeMap::new(),
                }
            });
        }
        for (id, row) in rows.iter_mut() {
            for host in &self.hosts {
                let flows: Vec<&BlockedFlow> = blocked
                    .iter()
                    .filter(|f| &f.rule == id && &f.host == host)
                    .collect();
                let recovered_flows = flows.iter().filter(|f| f.recovered).count() as u64;
                let cell = if let Some(verdicts) = by_cell.get(&(id.as_str(), host.as_str())) {
                    Some(from_lines(verdicts, recovered_flows))
                } else if !flows.is_empty() {
                    Some(from_events(&flows, recovered_flows))
                } else if policy
                    .and_then(|p| p.rule(id))
                    .is_some_and(|r| r.is_required)
                {
                    Some(RequiredCell {
                        status: RequiredState::NotSeen,
                        reason: None,
                        working: 0,
                        blocked_flows: 0,
                        failed_attempts: 0,
                        recovered_flows: 0,
                        basis: Basis::Policy,
                        as_of: None,
                    })
                } else {
                    None
                };
                if let Some(cell) = cell {
                    row.hosts.insert(host.clone(), cell);
                }
            }
        }
        let mut rows: Vec<RequiredRow> = rows.into_values().collect();
        rows.sort_by(|a, b| {
            let pos = |r: &RequiredRow| policy.and_then(|p| p.position(&r.rule));
            match (pos(a), pos(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => natural_key(&a.rule).cmp(&natural_key(&b.rule)),
            }
        });
        rows
    }
}

/// One cell from a host's latest verdicts on a rule (one per direction).
fn from_lines(verdicts: &[&RequiredStatus], recovered_flows: u64) -> RequiredCell {
    let status = if verdicts.iter().any(|v| v.status == RequiredState::Blocked) {
        RequiredState::Blocked
    } else if verdicts.iter().any(|v| v.status == RequiredState::Working) {
        RequiredState::Working
    } else {
        RequiredState::NotSeen
    };
    RequiredCell {
        status,
        reason: verdicts
            .iter()
            .filter(|v| v.status == RequiredState::Blocked)
            .find_map(|v| v.reason.clone()),
        working: verdicts.iter().map(|v| v.working).sum(),
        blocked_flows: verdicts.iter().map(|v| v.blocked_flows).sum(),
        failed_attempts: verdicts.iter().map(|v| v.failed_attempts).sum(),
        recovered_flows,
        basis: Basis::RequiredLine,
        as_of: verdicts.iter().map(|v| v.ts).max(),
    }
}

/// A cell when the host wrote no verdict but did report blocked flows.
fn from_events(flows: &[&BlockedFlow], recovered_flows: u64) -> RequiredCell {
    let still: Vec<&&BlockedFlow> = flows.iter().filter(|f| !f.recovered).collect();
    RequiredCell {
        status: if still.is_empty() {
            RequiredState::Working
        } else {
            RequiredState::Blocked
        },
        reason: still.iter().find_map(|f| f.reason.clone()),
        working: 0,
        blocked_flows: still.len() as u64,
        failed_attempts: flows.iter().map(|f| f.attempts).sum(),
        recovered_flows,
        basis: Basis::Events,
        as_of: None,
    }
}

fn host_summaries(
    hosts: &BTreeSet<String>,
    flows: &[UnexpectedFlow],
    blocked: &[BlockedFlow],
    required: &[RequiredRow],
) -> Vec<HostSummary> {
    let mut out: BTreeMap<&str, HostSummary> = hosts
        .iter()
        .map(|h| {
            (
                h.as_str(),
                HostSummary {
                    host: h.clone(),
                    ..HostSummary::default()
                },
            )
        })
        .collect();
    for f in flows {
        if let Some(s) = out.get_mut(f.host.as_str()) {
            s.unexpected_flows += 1;
            s.unexpected_packets += f.count;
        }
    }
    for f in blocked {
        if let Some(s) = out.get_mut(f.host.as_str()) {
            if f.recovered {
                s.recovered_flows += 1;
            } else {
                s.blocked_flows += 1;
            }
        }
    }
    for row in required {
        for (host, cell) in &row.hosts {
            if let Some(s) = out.get_mut(host.as_str()) {
                match cell.status {
                    RequiredState::Working => s.required_working += 1,
                    RequiredState::Blocked => s.required_blocked += 1,
                    RequiredState::NotSeen => s.required_not_seen += 1,
                }
            }
        }
    }
    out.into_values().collect()
}

/// Busiest first: packets, then replies, then bytes.
fn busiest(a: (u64, u64, u64), b: (u64, u64, u64)) -> Ordering {
    b.cmp(&a)
}

/// A port group while it is being summed.
struct PortAcc {
    group: PortGroup,
    peers: HashSet<IpAddr>,
    /// Packets of the busiest flow, whose nearest rule the group shows.
    top: u64,
}

fn by_port(flows: &[UnexpectedFlow]) -> Vec<PortGroup> {
    let mut groups: HashMap<(ConnDir, IpProto, u16), PortAcc> = HashMap::new();
    for f in flows {
        let acc = groups
            .entry((f.direction, f.proto, f.dport))
            .or_insert_with(|| PortAcc {
                group: PortGroup {
                    direction: f.direction,
                    proto: f.proto,
                    dport: f.dport,
                    flows: 0,
                    peers: 0,
                    hosts: Vec::new(),
                    packets: 0,
                    reply_packets: 0,
                    bytes: 0,
                    rule: None,
                    source: None,
                },
                peers: HashSet::new(),
                top: 0,
            });
        let g = &mut acc.group;
        g.flows += 1;
        g.packets += f.count;
        g.reply_packets += f.reply_packets;
        g.bytes += f.bytes;
        acc.peers.insert(f.peer());
        if !g.hosts.contains(&f.host) {
            g.hosts.push(f.host.clone());
        }
        if g.flows == 1 || f.count > acc.top {
            acc.top = f.count;
            g.rule = f.rule.clone();
            g.source = f.source.clone();
        }
    }
    let mut out: Vec<PortGroup> = groups
        .into_values()
        .map(|acc| {
            let mut g = acc.group;
            g.peers = acc.peers.len() as u64;
            g.hosts.sort();
            g
        })
        .collect();
    out.sort_by(|a, b| {
        busiest((a.packets, a.flows, a.bytes), (b.packets, b.flows, b.bytes))
            .then_with(|| (a.direction, a.proto, a.dport).cmp(&(b.direction, b.proto, b.dport)))
    });
    out
}

fn by_peer(flows: &[UnexpectedFlow]) -> Vec<PeerGroup> {
    let mut groups: HashMap<IpAddr, (PeerGroup, HashMap<String, u64>)> = HashMap::new();
    for f in flows {
        let (g, ports) = groups.entry(f.peer()).or_insert_with(|| {
            (
                PeerGroup {
                    peer: f.peer(),
                    flows: 0,
                    ports: Vec::new(),
                    hosts: Vec::new(),
                    packets: 0,
                    reply_packets: 0,
                    bytes: 0,
                },
                HashMap::new(),
            )
        });
        g.flows += 1;
        g.packets += f.count;
        g.reply_packets += f.reply_packets;
        g.bytes += f.bytes;
        if !g.hosts.contains(&f.host) {
            g.hosts.push(f.host.clone());
        }
        *ports
            .entry(service_label(f.proto, f.dport, f.direction))
            .or_default() += f.count;
    }
    let mut out: Vec<PeerGroup> = groups
        .into_values()
        .map(|(mut g, ports)| {
            let mut ports: Vec<(String, u64)> = ports.into_iter().collect();
            ports.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            g.ports = ports
                .into_iter()
                .take(PEER_PORTS_SHOWN)
                .map(|(p, _)| p)
                .collect();
            g.hosts.sort();
            g
        })
        .collect();
    out.sort_by(|a, b| {
        busiest((a.packets, a.flows, a.bytes), (b.packets, b.flows, b.bytes))
            .then_with(|| a.peer.cmp(&b.peer))
    });
    out
}

/// Orders `000-9` before `000-10`: digit runs compare as numbers.
pub fn natural_key(s: &str) -> Vec<(u8, u64, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let (d, r) = rest.split_at(digits);
            out.push((0, d.parse().unwrap_or(u64::MAX), d.to_string()));
            rest = r;
        } else {
            let text = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
            let (t, r) = rest.split_at(text);
            out.push((1, 0, t.to_string()));
            rest = r;
        }
    }
    out
}
