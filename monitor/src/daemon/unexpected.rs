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
    events::{Direction, EventKind, EventRecord, Proto},
    tables::KernelTables,
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

impl Enricher<'_> {
    pub fn iface(&self, ifindex: u32) -> String {
        self.ifaces
            .iter()
            .find(|(i, _)| *i == ifindex)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("if{ifindex}"))
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
        let initiator = addr(key.family, &key.initiator);
        let responder = addr(key.family, &key.responder);
        let direction = if key.direction == CONN_INBOUND {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let proto = Proto::from_number(key.proto);
        let mut r = EventRecord::new(
            kind,
            ts,
            self.iface(ifindex),
            direction,
            proto,
            initiator,
            0,
            responder,
            key.service_port,
        );
        let peer = if direction == Direction::Inbound {
            initiator
        } else {
            responder
        };
        let roles = self.tables.roles.names(self.tables.peers.roles_of(peer));
        r.peer_roles = Some(roles.iter().map(|s| s.to_string()).collect());
        r.reason = Some(reason_name(reason).to_string());
        r.host = self.host.map(str::to_owned);
        let what = match proto {
            Proto::Icmp | Proto::Icmpv6 => format!("{proto} type {}", key.service_port),
            _ => format!("{proto} {}", key.service_port),
        };
        let rule = (nearest != NO_RULE)
            .then(|| self.tables.rule(nearest))
            .flatten();
        r.note = Some(match rule {
            Some(rule) => {
                r.rule = Some(rule.id.clone());
                r.source = Some(rule.source.clone());
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
        });
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
    explanation: Option<Explanation>,
}

#[derive(Clone)]
struct Explanation {
    rule: Option<String>,
    source: Option<String>,
    note: Option<String>,
    peer_roles: Option<Vec<String>>,
}

impl Reported {
    pub fn first(&mut self, ev: &FlowEvent, record: &EventRecord) {
        let fwd = u64::from(ev.forward != 0);
        self.flows.insert(
            ev.key,
            Seen {
                packets: fwd,
                reply_packets: 1 - fwd,
                initiator_port: record.sport,
                explanation: Some(Explanation {
                    rule: record.rule.clone(),
                    source: record.source.clone(),
                    note: record.note.clone(),
                    peer_roles: record.peer_roles.clone(),
                }),
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
