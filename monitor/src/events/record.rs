//! The enriched event record: the JSON-lines contract of DESIGN.md.
//!
//! Field names and their order are a contract that `report`, operators' `jq`
//! scripts and log shippers rely on, so the struct mirrors the JSON exactly and
//! the tests pin the serialized form.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::text;

/// What happened. Lowercase in JSON because that is what consumers match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A flow that no rule allows.
    Unexpected,
    /// A required flow whose handshake was not answered or was refused.
    Blocked,
    /// A required flow that was blocked and has since succeeded.
    Recovered,
    /// A periodic or final refresh of a long-lived flow's counters; its
    /// `update_of` says whether the flow was `unexpected` or `blocked`.
    Update,
    /// The status of one required rule, written when a run or replay ends
    /// (a [`RequiredStatus`] line, not an [`EventRecord`]).
    Required,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Unexpected => "unexpected",
            EventKind::Blocked => "blocked",
            EventKind::Recovered => "recovered",
            EventKind::Update => "update",
            EventKind::Required => "required",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection's direction as seen from the monitored host: the kernel's
/// own type, written `inbound` / `outbound`.
pub use monitor_common::policy::ConnDir;

/// A packet's IP protocol. Protocols without a name of their own are written as their
/// IANA number so that no packet becomes unrepresentable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpProto {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Other(u8),
}

impl IpProto {
    /// Maps an IP protocol number; the named variants take precedence so that
    /// `Other(6)` is never produced and equality stays meaningful.
    pub fn from_number(n: u8) -> IpProto {
        match n {
            6 => IpProto::Tcp,
            17 => IpProto::Udp,
            1 => IpProto::Icmp,
            58 => IpProto::Icmpv6,
            n => IpProto::Other(n),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            IpProto::Tcp => 6,
            IpProto::Udp => 17,
            IpProto::Icmp => 1,
            IpProto::Icmpv6 => 58,
            IpProto::Other(n) => n,
        }
    }
}

impl fmt::Display for IpProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProto::Tcp => f.write_str("tcp"),
            IpProto::Udp => f.write_str("udp"),
            IpProto::Icmp => f.write_str("icmp"),
            IpProto::Icmpv6 => f.write_str("icmpv6"),
            IpProto::Other(n) => write!(f, "{n}"),
        }
    }
}

/// A protocol field that is neither a known name nor a number 0–255.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {0:?}: expected tcp, udp, icmp, icmpv6 or an IP protocol number 0-255")]
pub struct ProtoParseError(String);

impl FromStr for IpProto {
    type Err = ProtoParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(IpProto::Tcp),
            "udp" => Ok(IpProto::Udp),
            "icmp" => Ok(IpProto::Icmp),
            "icmpv6" => Ok(IpProto::Icmpv6),
            other => other
                .parse::<u8>()
                .map(IpProto::from_number)
                .map_err(|_| ProtoParseError(s.to_owned())),
        }
    }
}

impl Serialize for IpProto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IpProto::Tcp => s.serialize_str("tcp"),
            IpProto::Udp => s.serialize_str("udp"),
            IpProto::Icmp => s.serialize_str("icmp"),
            IpProto::Icmpv6 => s.serialize_str("icmpv6"),
            IpProto::Other(_) => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for IpProto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The latest instant RFC 3339 with a four-digit year can express.
const MAX_RFC3339_SECS: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z

/// Formats a time as RFC 3339 UTC with nanoseconds.
///
/// Kernel timestamps converted from boot time can be garbage after a clock
/// jump; humantime panics on times before 1970 or after 9999, so they are
/// clamped to that range instead: a wrong-looking timestamp in a log is
/// better than a daemon that dies on one.
pub fn rfc3339(t: SystemTime) -> String {
    let text = text::rfc3339_nanos(clamp_rfc3339(t));
    String::from_utf8_lossy(&text).into_owned()
}

pub(super) fn clamp_rfc3339(t: SystemTime) -> SystemTime {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    if since_epoch.as_secs() > MAX_RFC3339_SECS {
        UNIX_EPOCH + Duration::new(MAX_RFC3339_SECS, 999_999_999)
    } else {
        UNIX_EPOCH + since_epoch
    }
}

/// Serde adapter so that the record keeps `SystemTime`s (comparable, exact)
/// while the JSON carries the contract's RFC 3339 strings.
pub mod rfc3339_serde {
    use super::*;

    /// Formats on the stack without `core::fmt`: three timestamps per event
    /// are a measurable share of the daemon's per-event cost otherwise.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let text = text::rfc3339_nanos(clamp_rfc3339(*t));
        s.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        humantime::parse_rfc3339(&s).map_err(|e| {
            serde::de::Error::custom(format_args!("invalid RFC 3339 timestamp {s:?}: {e}"))
        })
    }
}

/// Addresses as `Display` writes them, formatted on the stack (see
/// [`text`]); human-readable serializers only, as serde's own impl does.
mod ip_serde {
    use super::*;

    pub fn serialize<S: Serializer>(a: &IpAddr, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(text::IpText::new(*a).as_str())
        } else {
            a.serialize(s)
        }
    }
}

/// One event, one JSON object per line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    #[serde(with = "rfc3339_serde")]
    pub ts: SystemTime,
    pub kind: EventKind,
    pub iface: String,
    pub direction: ConnDir,
    pub proto: IpProto,
    #[serde(serialize_with = "ip_serde::serialize")]
    pub src: IpAddr,
    #[serde(serialize_with = "ip_serde::serialize")]
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub count: u64,
    #[serde(with = "rfc3339_serde")]
    pub first_seen: SystemTime,
    #[serde(with = "rfc3339_serde")]
    pub last_seen: SystemTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Provenance of `rule` as `doc:line`, so a reader can open the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_packets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For `update` records: the kind of the flow being refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_of: Option<EventKind>,
    /// The monitored host (its hostname live, the `--host` address or the
    /// inferred one in replay), so that several hosts' files can be merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// How a required rule fared over a run or a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequiredState {
    /// At least one handshake of the rule was answered and none is blocked.
    Working,
    /// At least one (peer, port) of the rule is blocked at the end.
    Blocked,
    /// No attempt at all was seen.
    NotSeen,
}

impl RequiredState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequiredState::Working => "working",
            RequiredState::Blocked => "blocked",
            RequiredState::NotSeen => "not-seen",
        }
    }
}

impl fmt::Display for RequiredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `"kind":"required"` line: the per-rule verdict a run or replay ends
/// with, so that `report` can fill the required-flow matrix (including rules
/// never exercised) from the events files alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredStatus {
    #[serde(with = "rfc3339_serde")]
    pub ts: SystemTime,
    /// Always [`EventKind::Required`].
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub rule: String,
    /// `doc:line` of the rule.
    pub source: String,
    pub service: String,
    pub proto: IpProto,
    /// The rule's ports as text (`5432`, `20000-29999`, `8080,8443`).
    pub ports: String,
    /// `inbound`, `outbound` or `bidirectional`, as the policy says.
    pub direction: String,
    /// The peer role (or literal peers) the rule names.
    pub peer: String,
    pub status: RequiredState,
    /// Why it is blocked (`no-reply`, `reset`, `icmp-unreachable`,
    /// `admin-prohibited`, `local-firewall`, `local-drop`); the most
    /// frequent reason when several differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Handshakes (or UDP request/response pairs) seen answered.
    pub working: u64,
    /// Distinct (peer, port) flows of the rule blocked at the end.
    pub blocked_flows: u64,
    /// Unanswered or refused attempts over the whole run.
    pub failed_attempts: u64,
}

impl EventRecord {
    /// A record with the mandatory fields; `count` starts at 1 and both
    /// sightings at `ts`, which is what a first sighting is.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: EventKind,
        ts: SystemTime,
        iface: impl Into<String>,
        direction: ConnDir,
        proto: IpProto,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
    ) -> Self {
        EventRecord {
            ts,
            kind,
            iface: iface.into(),
            direction,
            proto,
            src,
            dst,
            sport,
            dport,
            count: 1,
            first_seen: ts,
            last_seen: ts,
            rule: None,
            source: None,
            reason: None,
            bytes: None,
            reply_packets: None,
            peer_roles: None,
            note: None,
            update_of: None,
            host: None,
        }
    }

    /// The record as one JSON object without the trailing newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        Ok(String::from_utf8(out).expect("JSON of UTF-8 strings is UTF-8"))
    }

    /// Appends the record as one JSON object, byte for byte what the derived
    /// `Serialize` gives through serde_json (the tests hold them equal); see
    /// [`RecordRef::write_json`](super::borrowed::RecordRef::write_json).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.borrowed().write_json(out);
    }
}

/// A port-less protocol (ICMP, others) shows as a bare address; IPv6 with a
/// port gets brackets so the port cannot be mistaken for a hextet.
struct Endpoint(IpAddr, Option<u16>);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (addr, None) => write!(f, "{addr}"),
            (IpAddr::V4(a), Some(p)) => write!(f, "{a}:{p}"),
            (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
        }
    }
}

/// The one-line description used for the console and pcapng comments, e.g.
/// `unexpected tcp 198.51.100.7:40000 -> 192.0.2.1:2181 inbound on eth0 x3: 2181 is allowed, but only from nodes`.
impl fmt::Display for EventRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = matches!(self.proto, IpProto::Tcp | IpProto::Udp);
        let port = |p| if ports { Some(p) } else { None };
        write!(
            f,
            "{} {} {} -> {} {} on {}",
            self.kind,
            self.proto,
            Endpoint(self.src, port(self.sport)),
            Endpoint(self.dst, port(self.dport)),
            self.direction,
            self.iface,
        )?;
        if self.count != 1 {
            write!(f, " x{}", self.count)?;
        }
        if let Some(rule) = &self.rule {
            write!(f, " rule {rule}")?;
            if let Some(source) = &self.source {
                write!(f, " ({source})")?;
            }
        }
        if let Some(reason) = &self.reason {
            write!(f, " reason {reason}")?;
        }
        if let Some(note) = &self.note {
            write!(f, ": {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn sample() -> EventRecord {
        let mut r = EventRecord::new(
            EventKind::Unexpected,
            at(1_795_365_758, 187_872_964),
            "eth0",
            ConnDir::Inbound,
            IpProto::Tcp,
            "198.51.100.7".parse().unwrap(),
            40000,
            "192.0.2.1".parse().unwrap(),
            2181,
        );
        r.first_seen = at(1_795_365_757, 5);
        r.count = 3;
        r
    }

    #[test]
    fn rfc3339_has_nanoseconds_and_z() {
        assert_eq!(
            rfc3339(at(1_795_365_758, 187_872_964)),
            "2026-11-22T16:42:38.187872964Z"
        );
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn rfc3339_clamps_instead_of_panicking() {
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(10)),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(400_000_000_000)),
            "9999-12-31T23:59:59.999999999Z"
        );
        let mut r = EventRecord::new(
            EventKind::Update,
            UNIX_EPOCH - Duration::from_secs(1),
            "lo",
            ConnDir::Outbound,
            IpProto::Icmp,
            "192.0.2.1".parse().unwrap(),
            0,
            "192.0.2.2".parse().unwrap(),
            0,
        );
        r.last_seen = UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
        let json = r.to_json().unwrap();
        assert!(
            json.contains(r#""ts":"1970-01-01T00:00:00.000000000Z""#),
            "{json}"
        );
        assert!(
            json.contains(r#""last_seen":"9999-12-31T23:59:59.999999999Z""#),
            "{json}"
        );
    }

    #[test]
    fn minimal_record_has_exactly_the_contract_fields_in_order() {
        let json = sample().to_json().unwrap();
        assert_eq!(
            json,
            r#"{"ts":"2026-11-22T16:42:38.187872964Z","kind":"unexpected","iface":"eth0","direction":"inbound","proto":"tcp","src":"198.51.100.7","dst":"192.0.2.1","sport":40000,"dport":2181,"count":3,"first_seen":"2026-11-22T16:42:37.000000005Z","last_seen":"2026-11-22T16:42:38.187872964Z"}"#
        );
    }

    #[test]
    fn optional_fields_appear_when_set_and_round_trip() {
        let mut r = sample();
        r.kind = EventKind::Blocked;
        r.direction = ConnDir::Outbound;
        r.proto = IpProto::Other(132);
        r.src = "2001:db8::1".parse().unwrap();
        r.dst = "2001:db8::2".parse().unwrap();
        r.rule = Some("ts-zookeeper-2181".into());
        r.source = Some("thoughtspot.md:42".into());
        r.reason = Some("no-reply".into());
        r.bytes = Some(1500);
        r.reply_packets = Some(0);
        r.peer_roles = Some(vec!["nodes".into(), "admin".into()]);
        r.note = Some("2181 is allowed, but only from nodes".into());
        let json = r.to_json().unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["kind"], "blocked");
        assert_eq!(v["direction"], "outbound");
        assert_eq!(v["proto"], "132");
        assert_eq!(v["src"], "2001:db8::1");
        assert_eq!(v["rule"], "ts-zookeeper-2181");
        assert_eq!(v["source"], "thoughtspot.md:42");
        assert_eq!(v["reason"], "no-reply");
        assert_eq!(v["bytes"], 1500);
        assert_eq!(v["reply_packets"], 0);
        assert_eq!(v["peer_roles"], serde_json::json!(["nodes", "admin"]));
        assert_eq!(v["note"], "2181 is allowed, but only from nodes");
        let back: EventRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn kinds_and_protocols_serialize_as_the_contract_says() {
        for (k, s) in [
            (EventKind::Unexpected, "\"unexpected\""),
            (EventKind::Blocked, "\"blocked\""),
            (EventKind::Recovered, "\"recovered\""),
            (EventKind::Update, "\"update\""),
            (EventKind::Required, "\"required\""),
        ] {
            assert_eq!(serde_json::to_string(&k).unwrap(), s);
        }
        for (p, s) in [
            (IpProto::Tcp, "tcp"),
            (IpProto::Udp, "udp"),
            (IpProto::Icmp, "icmp"),
            (IpProto::Icmpv6, "icmpv6"),
            (IpProto::Other(47), "47"),
        ] {
            assert_eq!(p.to_string(), s);
            assert_eq!(s.parse::<IpProto>().unwrap(), p);
        }
        assert_eq!(IpProto::from_number(6), IpProto::Tcp);
        assert_eq!("6".parse::<IpProto>().unwrap(), IpProto::Tcp);
        assert!("sctp".parse::<IpProto>().is_err());
        assert!("256".parse::<IpProto>().is_err());
    }

    mod hand_written_json {
        use super::*;
        use proptest::prelude::*;

        /// Strings as names and notes are, and as they should not be:
        /// quotes, backslashes, control characters, DEL, non-ASCII.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => "[a-z0-9.:_-]{0,12}",
                1 => "[ -~]{0,8}",
                1 => "[\\x00-\\x1f\"\\\\\\x7f a\u{e9}\u{2028}\u{1f600}]{0,6}",
            ]
        }

        fn time() -> impl Strategy<Value = SystemTime> {
            prop_oneof![
                (0u64..=253_402_300_799, 0u32..1_000_000_000)
                    .prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n)),
                (0u64..u64::MAX / 4).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s)),
                (1u64..1_000_000).prop_map(|s| UNIX_EPOCH - Duration::from_secs(s)),
            ]
        }

        fn kind() -> impl Strategy<Value = EventKind> {
            prop_oneof![
                Just(EventKind::Unexpected),
                Just(EventKind::Blocked),
                Just(EventKind::Recovered),
                Just(EventKind::Update),
                Just(EventKind::Required),
            ]
        }

        fn addr() -> impl Strategy<Value = IpAddr> {
            prop_oneof![
                any::<u32>().prop_map(|a| IpAddr::from(std::net::Ipv4Addr::from(a))),
                any::<u128>().prop_map(|a| IpAddr::from(std::net::Ipv6Addr::from(a))),
                proptest::array::uniform8(prop_oneof![Just(0u16), any::<u16>()])
                    .prop_map(|g| IpAddr::from(std::net::Ipv6Addr::from(g))),
            ]
        }

        prop_compose! {
            /// Every field listed, so a field added to the record fails to
            /// compile here until the hand-written serializer knows it.
            fn record()(
                head in (time(), kind(), text(), any::<bool>(), any::<u8>(), addr(), addr()),
                nums in (any::<u16>(), any::<u16>(), any::<u64>(), time(), time()),
                opt_text in (
                    proptest::option::of(text()),
                    proptest::option::of(text()),
                    proptest::option::of(text()),
                    proptest::option::of(text()),
                    proptest::option::of(text()),
                ),
                opt_nums in (proptest::option::of(any::<u64>()), proptest::option::of(any::<u64>())),
                peer_roles in proptest::option::of(proptest::collection::vec(text(), 0..4)),
                update_of in proptest::option::of(kind()),
                same_times in 0u8..4,
            ) -> EventRecord {
                let (ts, kind, iface, inbound, proto, src, dst) = head;
                let (sport, dport, count, mut first_seen, mut last_seen) = nums;
                // Equal times, as a first sighting has, are written once
                // and copied: every way of sharing them comes up.
                match same_times {
                    1 => first_seen = ts,
                    2 => (first_seen, last_seen) = (ts, ts),
                    3 => last_seen = first_seen,
                    _ => {}
                }
                let (rule, source, reason, note, host) = opt_text;
                let (bytes, reply_packets) = opt_nums;
                EventRecord {
                    ts,
                    kind,
                    iface,
                    direction: if inbound { ConnDir::Inbound } else { ConnDir::Outbound },
                    proto: IpProto::from_number(proto),
                    src,
                    dst,
                    sport,
                    dport,
                    count,
                    first_seen,
                    last_seen,
                    rule,
                    source,
                    reason,
                    bytes,
                    reply_packets,
                    peer_roles,
                    note,
                    update_of,
                    host,
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn is_what_serde_writes(r in record()) {
                let mut ours = Vec::new();
                r.write_json(&mut ours);
                let serde = serde_json::to_vec(&r).unwrap();
                prop_assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&serde)
                );
                prop_assert_eq!(ours, serde);
            }

            #[test]
            fn borrows_and_copies_back_unchanged(r in record()) {
                prop_assert_eq!(r.borrowed().to_record(), r);
            }

            /// The IPFIX sinks take the flow record the writer encodes
            /// from the fields; it is the one reading the line gives.
            #[test]
            fn its_ipfix_record_is_the_one_its_line_gives(r in record()) {
                use crate::events::jsonl::JsonLine as _;
                let mut line = Vec::new();
                r.write_json(&mut line);
                let mut ours = Vec::new();
                let template = r.ipfix(&mut ours);
                prop_assert_eq!(
                    template.map(|t| (t, ours)),
                    crate::export::ipfix::from_line(&line)
                );
            }
        }
    }

    #[test]
    fn bad_timestamps_are_rejected_with_the_value() {
        let json = sample()
            .to_json()
            .unwrap()
            .replace("2026-11-22T16:42:37.000000005Z", "yesterday");
        let err = serde_json::from_str::<EventRecord>(&json).unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
    }

    #[test]
    fn one_line_description() {
        let mut r = sample();
        r.note = Some("2181 is allowed, but only from nodes".into());
        assert_eq!(
            r.to_string(),
            "unexpected tcp 198.51.100.7:40000 -> 192.0.2.1:2181 inbound on eth0 x3: \
             2181 is allowed, but only from nodes"
        );
        r.proto = IpProto::Icmpv6;
        r.src = "2001:db8::7".parse().unwrap();
        r.dst = "2001:db8::1".parse().unwrap();
        r.count = 1;
        r.note = None;
        r.rule = Some("r1".into());
        r.source = Some("doc.md:3".into());
        assert_eq!(
            r.to_string(),
            "unexpected icmpv6 2001:db8::7 -> 2001:db8::1 inbound on eth0 rule r1 (doc.md:3)"
        );
        r.proto = IpProto::Udp;
        assert!(
            r.to_string()
                .contains("[2001:db8::7]:40000 -> [2001:db8::1]:2181")
        );
    }
}
