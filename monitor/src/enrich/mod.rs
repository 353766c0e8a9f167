//! Turning the kernel's first sightings and flow counters into event records
//! a person can act on: interface and role names, the nearest rule, and the
//! document line behind it.

use std::{borrow::Cow, collections::HashMap, net::IpAddr, sync::Arc, time::SystemTime};

use monitor_common::{
    classify::Reason,
    flow::{FlowEvent, FlowKey, FlowState},
    packet::Family,
    policy::{ConnDir, NO_RULE},
};

mod clock;
mod reported;

use crate::{
    events::{EventKind, EventRecord, IpProto, RecordRef, text},
    kernel_tables::{KernelTables, RuleInfo},
};
pub use clock::{Clock, monotonic_ns};
pub use reported::Reported;

/// Everything needed to explain a flow. Built once per run: the daemon
/// swaps `tables` when a reload makes a new policy live, replay adds the
/// interfaces its captures name as it meets them.
pub struct Enricher {
    pub tables: Arc<KernelTables>,
    /// (ifindex, name) of the interfaces records name.
    pub ifaces: Vec<(u32, String)>,
    pub clock: Clock,
    /// Named in every record, so several hosts' files can be merged.
    pub host: Option<String>,
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
fn note(proto: IpProto, port: u16, direction: ConnDir, rule: Option<&RuleInfo>) -> String {
    let proto_name = match proto {
        IpProto::Tcp => "tcp",
        IpProto::Udp => "udp",
        IpProto::Icmp => "icmp",
        IpProto::Icmpv6 => "icmpv6",
        IpProto::Other(n) => return note_slow(n, port, direction, rule),
    };
    let dir = direction.as_str();
    let mut port_text = [0u8; text::U64_MAX_LEN];
    let port_text =
        std::str::from_utf8(text::decimal(u64::from(port), &mut port_text)).expect("ASCII digits");
    let icmp = matches!(proto, IpProto::Icmp | IpProto::Icmpv6);
    let what_len = proto_name.len() + if icmp { 6 } else { 1 } + port_text.len();
    let push_what = |n: &mut String| {
        n.push_str(proto_name);
        n.push_str(if icmp { " type " } else { " " });
        n.push_str(port_text);
    };
    match rule {
        Some(rule) => {
            let towards = if direction == ConnDir::Inbound {
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
fn note_slow(proto: u8, port: u16, direction: ConnDir, rule: Option<&RuleInfo>) -> String {
    let dir = direction.as_str();
    match rule {
        Some(rule) => {
            let towards = if direction == ConnDir::Inbound {
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

impl Enricher {
    pub fn iface(&self, ifindex: u32) -> String {
        self.iface_name(ifindex).into_owned()
    }

    /// The interface's name, borrowed from the list when it is there.
    fn iface_name(&self, ifindex: u32) -> Cow<'_, str> {
        self.ifaces
            .iter()
            .find(|(i, _)| *i == ifindex)
            .map(|(_, n)| Cow::Borrowed(n.as_str()))
            .unwrap_or_else(|| Cow::Owned(format!("if{ifindex}")))
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
        let ends = Ends::of(key);
        let mut r = EventRecord::new(
            kind,
            ts,
            self.iface(ifindex),
            ends.direction,
            IpProto::from_number(key.proto),
            ends.initiator,
            initiator_port,
            ends.responder,
            key.service_port,
        );
        let mask = self.tables.peers.roles_of(ends.peer());
        r.peer_roles = Some(self.tables.roles.owned_names(mask));
        r.host = self.host.clone();
        r
    }

    /// The rule, source and note of a flow, with its peer's `roles`.
    fn explain(&self, key: &FlowKey, nearest: u16, roles: Option<Vec<String>>) -> Explanation {
        let rule = (nearest != NO_RULE)
            .then(|| self.tables.rule(nearest))
            .flatten();
        Explanation {
            rule: rule.map(|r| r.id.clone()),
            source: rule.map(|r| r.source.clone()),
            note: Some(note(
                IpProto::from_number(key.proto),
                key.service_port,
                ConnDir::of_word(key.direction),
                rule,
            )),
            peer_roles: roles,
        }
    }

    /// The explanation of a first sighting, shared with the flows before
    /// it in `cache` that have the same.
    pub fn explain_first(&self, ev: &FlowEvent, cache: &mut Explanations) -> Arc<Explanation> {
        let key = &ev.key;
        let roles = self.tables.peers.roles_of(Ends::of(key).peer());
        let inputs = (
            ev.nearest_rule,
            key.proto,
            key.service_port,
            key.direction,
            roles,
        );
        cache.get_or_insert(inputs, || {
            let names = self.tables.roles.owned_names(roles);
            self.explain(key, ev.nearest_rule, Some(names))
        })
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
        r.reason = Some(reason_name(reason).to_owned());
        let roles = r.peer_roles.take();
        self.explain(key, nearest, roles).fill(&mut r);
        r
    }

    /// The record of a first sighting, explained by `why`
    /// ([`explain_first`](Self::explain_first)), borrowing its text.
    pub fn first_sighting_ref<'r>(&'r self, ev: &FlowEvent, why: &'r Explanation) -> RecordRef<'r> {
        let ts = self.clock.wall(ev.ts_ns);
        let key = &ev.key;
        let ends = Ends::of(key);
        let proto = IpProto::from_number(key.proto);
        let forward = ev.forward != 0;
        // The initiator's port is the packet's source port if it travels
        // initiator → responder, else its destination port.
        let sport = match proto {
            IpProto::Icmp | IpProto::Icmpv6 => 0,
            _ if forward => ev.sport,
            _ => ev.dport,
        };
        RecordRef {
            ts,
            kind: EventKind::Unexpected,
            iface: self.iface_name(ev.ifindex),
            direction: ends.direction,
            proto,
            src: ends.initiator,
            dst: ends.responder,
            sport,
            dport: key.service_port,
            count: u64::from(forward),
            first_seen: ts,
            last_seen: ts,
            rule: why.rule.as_deref(),
            source: why.source.as_deref(),
            reason: Some(reason_name(ev.reason)),
            bytes: Some(if forward { u64::from(ev.packet_len) } else { 0 }),
            reply_packets: Some(u64::from(!forward)),
            peer_roles: why.peer_roles.as_deref(),
            note: why.note.as_deref(),
            update_of: None,
            host: self.host.as_deref(),
        }
    }

    /// The record of a first sighting.
    pub fn first_sighting(&self, ev: &FlowEvent) -> EventRecord {
        let roles = self.tables.peers.roles_of(Ends::of(&ev.key).peer());
        let why = self.explain(
            &ev.key,
            ev.nearest_rule,
            Some(self.tables.roles.owned_names(roles)),
        );
        // The explanation's text moves in rather than being copied.
        let mut r = self.first_sighting_ref(ev, &Explanation::NONE).to_record();
        why.fill(&mut r);
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

/// A flow's ends and direction as its key gives them.
struct Ends {
    initiator: IpAddr,
    responder: IpAddr,
    direction: ConnDir,
}

impl Ends {
    fn of(key: &FlowKey) -> Self {
        Ends {
            initiator: addr(key.family, &key.initiator),
            responder: addr(key.family, &key.responder),
            direction: ConnDir::of_word(key.direction),
        }
    }

    /// The end that is not the monitored host, whose roles are named.
    fn peer(&self) -> IpAddr {
        if self.direction == ConnDir::Inbound {
            self.initiator
        } else {
            self.responder
        }
    }
}

/// What a flow's records repeat from its first sighting: refreshes keep
/// the explanation it was first given (a reload may renumber rules).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Explanation {
    pub rule: Option<String>,
    pub source: Option<String>,
    pub note: Option<String>,
    pub peer_roles: Option<Vec<String>>,
}

impl Explanation {
    /// None at all, for a record whose explanation is filled in later.
    const NONE: Explanation = Explanation {
        rule: None,
        source: None,
        note: None,
        peer_roles: None,
    };

    /// Moves the explanation into `r`.
    fn fill(self, r: &mut EventRecord) {
        r.rule = self.rule;
        r.source = self.source;
        r.note = self.note;
        r.peer_roles = self.peer_roles;
    }
}

/// What an explanation is made of: the nearest rule, protocol, service
/// port, direction and the peer's roles.
type ExplanationInputs = (u16, u8, u16, u32, u64);

/// Explanations of one drain's first sightings, shared by the flows that
/// have the same: in a flood of new flows (random sources, one port) that
/// is all of them, which would otherwise each build and keep their own
/// note and role names. A cache lives for one drain, whose tables cannot
/// change under it, so a reloaded policy is never explained with the old
/// one's names.
#[derive(Default)]
pub struct Explanations {
    by_inputs: HashMap<ExplanationInputs, Arc<Explanation>, Hasher>,
    /// The last one asked for, which in a flood is the next one too: found
    /// without hashing.
    last: Option<(ExplanationInputs, Arc<Explanation>)>,
}

impl Explanations {
    /// Distinct explanations kept; past that the cache starts over, so a
    /// drain of flows to every port does not grow it without bound.
    const LIMIT: usize = 1024;

    fn get_or_insert(
        &mut self,
        inputs: ExplanationInputs,
        explain: impl FnOnce() -> Explanation,
    ) -> Arc<Explanation> {
        if let Some((last, why)) = &self.last
            && *last == inputs
        {
            return Arc::clone(why);
        }
        let why = match self.by_inputs.get(&inputs) {
            Some(why) => Arc::clone(why),
            None => {
                if self.by_inputs.len() >= Self::LIMIT {
                    self.by_inputs.clear();
                }
                let why = Arc::new(explain());
                self.by_inputs.insert(inputs, Arc::clone(&why));
                why
            }
        };
        self.last = Some((inputs, Arc::clone(&why)));
        why
    }
}

/// Seeded at random per process: the reported-flow table is keyed by
/// addresses a spoofing sender picks, so the hash must not be predictable,
/// and foldhash is some times cheaper per lookup than std's SipHash.
type Hasher = foldhash::fast::RandomState;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{console, unexpected_line};

    /// Tables with two roles on two networks and one rule.
    fn tables() -> KernelTables {
        let mut t = KernelTables::default();
        let nodes = t.roles.bit("nodes").unwrap();
        let admin = t.roles.bit("admin").unwrap();
        t.peers.add("10.0.0.0/8".parse().unwrap(), 1 << nodes);
        t.peers
            .add("10.1.0.0/16".parse().unwrap(), (1 << nodes) | (1 << admin));
        t.peers.add("2001:db8::/32".parse().unwrap(), 1 << admin);
        t.rules.push(RuleInfo {
            id: "000-14".into(),
            service: "ZooKeeper".into(),
            source: "doc \"a\".txt:14".into(),
            proto: crate::policy::Proto::Tcp,
            direction: crate::policy::Direction::Inbound,
            ports: "2181".into(),
            peer_label: "nodes".into(),
            required: true,
        });
        t
    }

    /// First sightings of every shape: each family, direction, protocol,
    /// packet direction, a rule or none, peers with and without roles.
    fn sightings() -> Vec<FlowEvent> {
        let peers: [(u8, [u8; 16]); 5] = [
            (Family::V4 as u8, v4([10, 1, 2, 3])),
            (Family::V4 as u8, v4([10, 9, 2, 3])),
            (Family::V4 as u8, v4([192, 0, 2, 7])),
            (
                Family::V6 as u8,
                "2001:db8::7"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
            ),
            (
                Family::V6 as u8,
                "2001:db9::7"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
            ),
        ];
        let mut out = Vec::new();
        for (i, (family, peer)) in peers.into_iter().enumerate() {
            for proto in [6u8, 17, 1, 58, 132] {
                for direction in [ConnDir::Inbound as u32, ConnDir::Outbound as u32] {
                    for forward in [0, 1] {
                        for nearest in [0, NO_RULE] {
                            // SAFETY: FlowEvent is plain integers and byte arrays.
                            let mut ev: FlowEvent = unsafe { std::mem::zeroed() };
                            ev.ts_ns = 1_000_000_007 * out.len() as u64;
                            ev.key.family = family;
                            ev.key.proto = proto;
                            ev.key.direction = direction;
                            ev.key.service_port = 2181 + u16::from(proto == 17);
                            let host = if family == Family::V4 as u8 {
                                v4([192, 0, 2, 1])
                            } else {
                                [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
                            };
                            (ev.key.initiator, ev.key.responder) =
                                if direction == ConnDir::Inbound as u32 {
                                    (peer, host)
                                } else {
                                    (host, peer)
                                };
                            ev.ifindex = 1 + (i as u32 % 3);
                            ev.packet_len = 60 + out.len() as u32;
                            ev.reason = (out.len() % 2) as u8;
                            ev.nearest_rule = nearest;
                            ev.sport = 40000;
                            ev.dport = 2181;
                            ev.forward = forward;
                            out.push(ev);
                        }
                    }
                }
            }
        }
        out
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut x = [0; 16];
        x[..4].copy_from_slice(&a);
        x
    }

    /// A first sighting as it was built before records were borrowed.
    fn first_sighting_as_it_was(e: &Enricher, ev: &FlowEvent) -> EventRecord {
        let ts = e.clock.wall(ev.ts_ns);
        let mut r = e.flow_base(EventKind::Unexpected, &ev.key, ts, ev.ifindex, 0);
        let (proto, direction) = (r.proto, r.direction);
        r.reason = Some(reason_name(ev.reason).to_owned());
        let rule = (ev.nearest_rule != NO_RULE)
            .then(|| e.tables.rule(ev.nearest_rule))
            .flatten();
        r.note = Some(reference(proto, ev.key.service_port, direction, rule));
        if let Some(rule) = rule {
            r.rule = Some(rule.id.clone());
            r.source = Some(rule.source.clone());
        }
        r.sport = if ev.forward != 0 { ev.sport } else { ev.dport };
        if matches!(r.proto, IpProto::Icmp | IpProto::Icmpv6) {
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

    /// The drain's borrowed records, explained from one cache shared by
    /// all sightings, write what the owned records of replay write.
    #[test]
    fn borrowed_first_sightings_are_the_owned_ones() {
        let tables = Arc::new(tables());
        let ifaces = vec![(1, "eth0".to_string()), (2, "lo".to_string())];
        for host in [None, Some("db-1")] {
            let enricher = Enricher {
                tables: Arc::clone(&tables),
                ifaces: ifaces.clone(),
                clock: Clock::epoch(),
                host: host.map(str::to_owned),
            };
            let mut cache = Explanations::default();
            for ev in sightings() {
                let owned = enricher.first_sighting(&ev);
                assert_eq!(owned, first_sighting_as_it_was(&enricher, &ev));
                let why = enricher.explain_first(&ev, &mut cache);
                let borrowed = enricher.first_sighting_ref(&ev, &why);
                assert_eq!(borrowed.to_record(), owned);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                borrowed.write_json(&mut a);
                owned.write_json(&mut b);
                assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
                assert_eq!(Some(unexpected_line(&borrowed)), console::line(&owned));
            }
            // Flows explained alike share one explanation.
            assert!(cache.by_inputs.len() < sightings().len() / 2);
        }
    }

    #[test]
    fn the_explanation_cache_is_bounded() {
        let mut cache = Explanations::default();
        for port in 0..3 * Explanations::LIMIT as u16 {
            cache.get_or_insert((0, 6, port, 0, 0), Explanation::default);
            assert!(cache.by_inputs.len() <= Explanations::LIMIT);
        }
        let a = cache.get_or_insert((0, 6, 1, 0, 0), Explanation::default);
        let b = cache.get_or_insert((0, 6, 1, 0, 0), || unreachable!("cached"));
        assert!(Arc::ptr_eq(&a, &b));
        let c = cache.get_or_insert((0, 6, 2, 0, 0), Explanation::default);
        assert!(!Arc::ptr_eq(&a, &c));
        let d = cache.get_or_insert((0, 6, 1, 0, 0), || unreachable!("cached"));
        assert!(Arc::ptr_eq(&a, &d), "not the last one, but in the table");
    }

    /// The note as it was written with `format!`, before it was built by
    /// hand for speed: the text is part of the events contract.
    fn reference(proto: IpProto, port: u16, direction: ConnDir, rule: Option<&RuleInfo>) -> String {
        let what = match proto {
            IpProto::Icmp | IpProto::Icmpv6 => format!("{proto} type {port}"),
            _ => format!("{proto} {port}"),
        };
        match rule {
            Some(rule) => {
                let towards = if direction == ConnDir::Inbound {
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
            IpProto::Tcp,
            IpProto::Udp,
            IpProto::Icmp,
            IpProto::Icmpv6,
            IpProto::Other(0),
            IpProto::Other(132),
        ] {
            for port in [0, 7, 10, 99, 100, 2181, 9999, 10000, 65535] {
                for direction in [ConnDir::Inbound, ConnDir::Outbound] {
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
            note(IpProto::Tcp, 2181, ConnDir::Inbound, Some(&rule)),
            "tcp 2181 inbound is allowed, but only from nodes (000-14 000_2809db0a7820664a.txt:14)"
        );
    }
}
