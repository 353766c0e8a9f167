//! Turning the kernel's first sightings and flow counters into event records
//! a person can act on: interface and role names, the nearest rule, and the
//! document line behind it.

use std::{collections::HashMap, net::IpAddr, time::SystemTime};

use monitor_common::{
    classify::Reason,
    flow::{FlowEvent, FlowKey, FlowState},
    packet::Family,
    policy::{CONN_INBOUND, NO_RULE},
};

use super::clock::Clock;
use crate::{
    events::{Direction, EventKind, EventRecord, Proto, text},
    tables::{KernelTables, RuleInfo},
};

/// Everything needed to explain a flow.
pub struct Enricher<'a> {
    pub tables: &'a KernelTables,
    pub ifaces: &'a [(u32, String)],
    pub clock: Clock,
    /// Named in every record, so several hosts' files can be merged.
    pub host: Option<&'a str>,
}

pub(crate) fn addr(family: u8, bytes: &[u8; 16]) -> IpAddr {
    if family == Family::V4 as u8 {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        IpAddr::from(*bytes)
    }
}

fn reason_name(reason: u8) -> &'static str {
    match reason {
        r if r == Reason::PeerNotAllowed as u8 => "peer-not-allowed",
        _ => "no-rule",
    }
}

/// Why a flow is unexpected, in words: `tcp 2181 inbound is allowed, but
/// only from nodes (000-14 doc.txt:14)` or `no rule allows udp 7000 inbound`.
///
/// Built by appending pieces into one right-sized allocation: it is written
/// for every new flow, and through `format!` it cost as much as the rest of
/// the enrichment.
fn note(proto: Proto, port: u16, direction: Direction, rule: Option<&RuleInfo>) -> String {
    let proto_name = match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Icmp => "icmp",
        Proto::Icmpv6 => "icmpv6",
        Proto::Other(n) => return note_slow(n, port, direction, rule),
    };
    let dir = direction.as_str();
    let mut port_text = [0u8; text::U64_MAX_LEN];
    let port_text =
        std::str::from_utf8(text::decimal(u64::from(port), &mut port_text)).expect("ASCII digits");
    let icmp = matches!(proto, Proto::Icmp | Proto::Icmpv6);
    let what_len = proto_name.len() + if icmp { 6 } else { 1 } + port_text.len();
    let push_what = |n: &mut String| {
        n.push_str(proto_name);
        n.push_str(if icmp { " type " } else { " " });
        n.push_str(port_text);
    };
    match rule {
        Some(rule) => {
            let towards = if direction == Direction::Inbound {
                " is allowed, but only from "
            } else {
                " is allowed, but only to "
            };
            let mut n = String::with_capacity(
                what_len
                    + 1
                    + dir.len()
                    + towards.len()
                    + rule.peer_label.len()
                    + 2
                    + rule.id.len()
                    + 1
                    + rule.source.len()
                    + 1,
            );
            push_what(&mut n);
            n.push(' ');
            n.push_str(dir);
            n.push_str(towards);
            n.push_str(&rule.peer_label);
            n.push_str(" (");
            n.push_str(&rule.id);
            n.push(' ');
            n.push_str(&rule.source);
            n.push(')');
            n
        }
        None => {
            let mut n = String::with_capacity(15 + what_len + 1 + dir.len());
            n.push_str("no rule allows ");
            push_what(&mut n);
            n.push(' ');
            n.push_str(dir);
            n
        }
    }
}

/// [`note`] for protocols without a name, which are rare enough for `format!`.
fn note_slow(proto: u8, port: u16, direction: Direction, rule: Option<&RuleInfo>) -> String {
    let dir = direction.as_str();
    match rule {
        Some(rule) => {
            let towards = if direction == Direction::Inbound {
                "from"
            } else {
                "to"
            };
            format!(
                "{proto} {port} {dir} is allowed, but only {towards} {} ({} {})",
                rule.peer_label, rule.id, rule.source
            )
        }
        None => format!("no rule allows {proto} {port} {dir}"),
    }
}

impl Enricher<'_> {
    pub fn iface(&self, ifindex: u32) -> String {
        self.ifaces
            .iter()
            .find(|(i, _)| *i == ifindex)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("if{ifindex}"))
    }

    /// What every record of a flow says, unexpected or required: its
    /// interface, direction, ends, peer roles and host.
    pub fn flow_base(
        &self,
        kind: EventKind,
        key: &FlowKey,
        ts: SystemTime,
        ifindex: u32,
        initiator_port: u16,
    ) -> EventRecord {
        let initiator = addr(key.family, &key.initiator);
        let responder = addr(key.family, &key.responder);
        let direction = if key.direction == CONN_INBOUND {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let mut r = EventRecord::new(
            kind,
            ts,
            self.iface(ifindex),
            direction,
            Proto::from_number(key.proto),
            initiator,
            initiator_port,
            responder,
            key.service_port,
        );
        let peer = if direction == Direction::Inbound {
            initiator
        } else {
            responder
        };
        let mask = self.tables.peers.roles_of(peer);
        r.peer_roles = Some(self.tables.roles.owned_names(mask));
        r.host = self.host.map(str::to_owned);
        r
    }

    /// The record of a flow from its key and what the kernel knows of it.
    fn record(
        &self,
        kind: EventKind,
        key: &FlowKey,
        ts: SystemTime,
        ifindex: u32,
        reason: u8,
        nearest: u16,
    ) -> EventRecord {
        let mut r = self.flow_base(kind, key, ts, ifindex, 0);
        let (proto, direction) = (r.proto, r.direction);
        r.reason = Some(reason_name(reason).to_owned());
        let rule = (nearest != NO_RULE)
            .then(|| self.tables.rule(nearest))
            .flatten();
        r.note = Some(note(proto, key.service_port, direction, rule));
        if let Some(rule) = rule {
            r.rule = Some(rule.id.clone());
            r.source = Some(rule.source.clone());
        }
        r
    }

    /// The record of a first sighting.
    pub fn first_sighting(&self, ev: &FlowEvent) -> EventRecord {
        let ts = self.clock.wall(ev.ts_ns);
        let mut r = self.record(
            EventKind::Unexpected,
            &ev.key,
            ts,
            ev.ifindex,
            ev.reason,
            ev.nearest_rule,
        );
        // The initiator's port is the packet's source port if it travels
        // initiator → responder, else its destination port.
        r.sport = if ev.forward != 0 { ev.sport } else { ev.dport };
        if matches!(r.proto, Proto::Icmp | Proto::Icmpv6) {
            r.sport = 0;
        }
        r.count = u64::from(ev.forward != 0);
        r.bytes = Some(if ev.forward != 0 {
            u64::from(ev.packet_len)
        } else {
            0
        });
        r.reply_packets = Some(u64::from(ev.forward == 0));
        r
    }

    /// A refreshed count for a long-lived flow.
    pub fn update(&self, key: &FlowKey, state: &FlowState, initiator_port: u16) -> EventRecord {
        let last = self.clock.wall(state.last_seen_ns);
        let mut r = self.record(
            EventKind::Update,
            key,
            last,
            state.ifindex,
            state.reason,
            state.nearest_rule,
        );
        r.sport = initiator_port;
        r.count = state.packets;
        r.first_seen = self.clock.wall(state.first_seen_ns);
        r.last_seen = last;
        r.bytes = Some(state.bytes);
        r.reply_packets = Some(state.reply_packets);
        r.update_of = Some(EventKind::Unexpected);
        r
    }
}

/// What was last reported of each flow, so refreshes only mention flows that
/// changed and repeat the explanation of the first sighting (a reload may
/// renumber rules). Bounded by the kernel's LRU: flows it evicted are
/// forgotten.
#[derive(Default)]
pub struct Reported {
    flows: HashMap<FlowKey, Seen>,
}

#[derive(Default)]
struct Seen {
    packets: u64,
    reply_packets: u64,
    initiator_port: u16,
    explanation: Option<Box<Explanation>>,
}

#[derive(Clone, Default)]
struct Explanation {
    rule: Option<String>,
    source: Option<String>,
    note: Option<String>,
    peer_roles: Option<Vec<String>>,
}

impl Reported {
    /// Room for `flows` without growing. The daemon sizes it for the
    /// kernel's flow table: growing rehashes every entry, and it would
    /// happen in a flood of new flows, when the drain is busiest.
    pub fn with_capacity(flows: usize) -> Self {
        Self {
            flows: HashMap::with_capacity(flows),
        }
    }

    pub fn first(&mut self, ev: &FlowEvent, record: &EventRecord) {
        self.insert(
            ev,
            record.sport,
            Explanation {
                rule: record.rule.clone(),
                source: record.source.clone(),
                note: record.note.clone(),
                peer_roles: record.peer_roles.clone(),
            },
        );
    }

    /// [`first`](Self::first) for a record already written: its explanation
    /// moves here instead of being copied, four allocations fewer per new
    /// flow on the daemon's drain.
    pub fn first_written(&mut self, ev: &FlowEvent, record: EventRecord) {
        self.insert(
            ev,
            record.sport,
            Explanation {
                rule: record.rule,
                source: record.source,
                note: record.note,
                peer_roles: record.peer_roles,
            },
        );
    }

    fn insert(&mut self, ev: &FlowEvent, initiator_port: u16, explanation: Explanation) {
        let fwd = u64::from(ev.forward != 0);
        self.flows.insert(
            ev.key,
            Seen {
                packets: fwd,
                reply_packets: 1 - fwd,
                initiator_port,
                explanation: Some(Box::new(explanation)),
            },
        );
    }

    /// The update record for `key` if its counts changed since last reported.
    pub fn update(
        &mut self,
        enricher: &Enricher,
        key: &FlowKey,
        state: &FlowState,
    ) -> Option<EventRecord> {
        let seen = self.flows.entry(*key).or_default();
        if (seen.packets, seen.reply_packets) == (state.packets, state.reply_packets) {
            return None;
        }
        seen.packets = state.packets;
        seen.reply_packets = state.reply_packets;
        let mut r = enricher.update(key, state, seen.initiator_port);
        if let Some(e) = &seen.explanation {
            r.rule = e.rule.clone();
            r.source = e.source.clone();
            r.note = e.note.clone();
            r.peer_roles = e.peer_roles.clone();
        }
        Some(r)
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Past `limit` flows, keeps only those `live` (the kernel's table)
    /// still holds; `live` is read only then.
    pub fn prune_over(
        &mut self,
        limit: usize,
        live: impl FnOnce() -> anyhow::Result<std::collections::HashSet<FlowKey>>,
    ) -> anyhow::Result<()> {
        if self.flows.len() > limit {
            self.retain(&live()?);
        }
        Ok(())
    }

    /// Drops flows no longer in the kernel's table.
    pub fn retain(&mut self, live: &std::collections::HashSet<FlowKey>) {
        self.flows.retain(|k, _| live.contains(k));
    }
}

/// One console line per new unexpected flow.
pub fn console_line(r: &EventRecord) -> String {
    let roles = r
        .peer_roles
        .as_ref()
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
        r.note.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u32) -> FlowEvent {
        // SAFETY: FlowEvent is plain integers and byte arrays.
        let mut ev: FlowEvent = unsafe { std::mem::zeroed() };
        ev.key.initiator[..4].copy_from_slice(&i.to_be_bytes());
        ev.forward = 1;
        ev
    }

    /// A flood of new flows is trimmed to what the kernel still holds as
    /// soon as the table passes its limit, not at the next refresh; below
    /// the limit the kernel is not even asked.
    #[test]
    fn reported_flows_are_pruned_past_the_limit() {
        let mut reported = Reported::default();
        for i in 0..10 {
            reported.insert(&event(i), 40000, Explanation::default());
        }
        reported
            .prune_over(10, || panic!("asked the kernel below the limit"))
            .unwrap();
        assert_eq!(reported.len(), 10);
        reported.insert(&event(10), 40000, Explanation::default());
        let live: std::collections::HashSet<FlowKey> =
            [event(3).key, event(10).key].into_iter().collect();
        reported.prune_over(10, || Ok(live)).unwrap();
        assert_eq!(reported.len(), 2);
    }

    /// The note as it was written with `format!`, before it was built by
    /// hand for speed: the text is part of the events contract.
    fn reference(proto: Proto, port: u16, direction: Direction, rule: Option<&RuleInfo>) -> String {
        let what = match proto {
            Proto::Icmp | Proto::Icmpv6 => format!("{proto} type {port}"),
            _ => format!("{proto} {port}"),
        };
        match rule {
            Some(rule) => {
                let towards = if direction == Direction::Inbound {
                    "from"
                } else {
                    "to"
                };
                format!(
                    "{what} {} is allowed, but only {towards} {} ({} {})",
                    direction.as_str(),
                    rule.peer_label,
                    rule.id,
                    rule.source
                )
            }
            None => format!("no rule allows {what} {}", direction.as_str()),
        }
    }

    #[test]
    fn notes_read_as_they_always_did() {
        let rule = RuleInfo {
            id: "000-14".into(),
            service: "ZooKeeper".into(),
            source: "000_2809db0a7820664a.txt:14".into(),
            proto: crate::policy::Proto::Tcp,
            direction: crate::policy::Direction::Inbound,
            ports: "2181".into(),
            peer_label: "nodes".into(),
            required: true,
        };
        for proto in [
            Proto::Tcp,
            Proto::Udp,
            Proto::Icmp,
            Proto::Icmpv6,
            Proto::Other(0),
            Proto::Other(132),
        ] {
            for port in [0, 7, 10, 99, 100, 2181, 9999, 10000, 65535] {
                for direction in [Direction::Inbound, Direction::Outbound] {
                    for rule in [None, Some(&rule)] {
                        assert_eq!(
                            note(proto, port, direction, rule),
                            reference(proto, port, direction, rule)
                        );
                    }
                }
            }
        }
        assert_eq!(
            note(Proto::Tcp, 2181, Direction::Inbound, Some(&rule)),
            "tcp 2181 inbound is allowed, but only from nodes (000-14 000_2809db0a7820664a.txt:14)"
        );
    }
}
