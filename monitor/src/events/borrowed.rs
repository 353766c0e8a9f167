//! An [`EventRecord`] that borrows its text, and the hand-written JSON
//! writer both share.
//!
//! The daemon writes a line per new flow and keeps nothing of the record
//! but its explanation, which flows share: owning the interface name, the
//! host, the reason and the note meant four allocations per event, a
//! measurable share of the drain. The daemon builds this view instead, from
//! the names it already holds; an owned record writes through it too, so
//! there is one serializer, and the tests hold it equal to serde's.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::SystemTime;

use super::record::{ConnDir, EventKind, EventRecord, IpProto, clamp_rfc3339};
use super::text;

/// The fields of an [`EventRecord`], in its order, borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub ts: SystemTime,
    pub kind: EventKind,
    /// Borrowed from the interface list, but owned for an interface it does
    /// not know (`if7`).
    pub iface: Cow<'a, str>,
    pub direction: ConnDir,
    pub proto: IpProto,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub count: u64,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    pub rule: Option<&'a str>,
    pub source: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub bytes: Option<u64>,
    pub reply_packets: Option<u64>,
    pub peer_roles: Option<&'a [String]>,
    pub note: Option<&'a str>,
    pub update_of: Option<EventKind>,
    pub host: Option<&'a str>,
}

impl EventRecord {
    /// The record as a view, to write it.
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            ts: self.ts,
            kind: self.kind,
            iface: Cow::Borrowed(&self.iface),
            direction: self.direction,
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            count: self.count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            rule: self.rule.as_deref(),
            source: self.source.as_deref(),
            reason: self.reason.as_deref(),
            bytes: self.bytes,
            reply_packets: self.reply_packets,
            peer_roles: self.peer_roles.as_deref(),
            note: self.note.as_deref(),
            update_of: self.update_of,
            host: self.host.as_deref(),
        }
    }
}

impl RecordRef<'_> {
    /// The record with its text copied.
    pub fn to_record(&self) -> EventRecord {
        EventRecord {
            ts: self.ts,
            kind: self.kind,
            iface: self.iface.clone().into_owned(),
            direction: self.direction,
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            count: self.count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            rule: self.rule.map(str::to_owned),
            source: self.source.map(str::to_owned),
            reason: self.reason.map(str::to_owned),
            bytes: self.bytes,
            reply_packets: self.reply_packets,
            peer_roles: self.peer_roles.map(<[String]>::to_vec),
            note: self.note.map(str::to_owned),
            update_of: self.update_of,
            host: self.host.map(str::to_owned),
        }
    }

    /// Appends the record as one JSON object, byte for byte what the derived
    /// `Serialize` of [`EventRecord`] gives through serde_json (the tests
    /// hold them equal).
    ///
    /// Through serde each key and value is escaped and passed piecewise to
    /// the writer, and that was most of the cost of a line. Here the keys
    /// are literals and only strings that need escaping go through
    /// serde_json.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ts\":");
        let ts = json_time(out, self.ts);
        out.extend_from_slice(b",\"kind\":\"");
        out.extend_from_slice(self.kind.as_str().as_bytes());
        out.extend_from_slice(b"\",\"iface\":");
        json_str(out, &self.iface);
        out.extend_from_slice(b",\"direction\":\"");
        out.extend_from_slice(self.direction.as_str().as_bytes());
        out.extend_from_slice(b"\",\"proto\":\"");
        match self.proto {
            IpProto::Other(n) => json_u64(out, u64::from(n)),
            p => out.extend_from_slice(proto_name(p).as_bytes()),
        }
        out.extend_from_slice(b"\",\"src\":\"");
        out.extend_from_slice(text::IpText::new(self.src).as_str().as_bytes());
        out.extend_from_slice(b"\",\"dst\":\"");
        out.extend_from_slice(text::IpText::new(self.dst).as_str().as_bytes());
        out.extend_from_slice(b"\",\"sport\":");
        json_u64(out, u64::from(self.sport));
        out.extend_from_slice(b",\"dport\":");
        json_u64(out, u64::from(self.dport));
        out.extend_from_slice(b",\"count\":");
        json_u64(out, self.count);
        // A first sighting's three times are one: formatted once.
        out.extend_from_slice(b",\"first_seen\":");
        let first_seen = json_time_as(out, self.first_seen, (self.ts, &ts));
        out.extend_from_slice(b",\"last_seen\":");
        json_time_as(out, self.last_seen, (self.first_seen, &first_seen));
        opt_str(out, b",\"rule\":", self.rule);
        opt_str(out, b",\"source\":", self.source);
        opt_str(out, b",\"reason\":", self.reason);
        opt_u64(out, b",\"bytes\":", self.bytes);
        opt_u64(out, b",\"reply_packets\":", self.reply_packets);
        if let Some(roles) = self.peer_roles {
            out.extend_from_slice(b",\"peer_roles\":[");
            for (i, role) in roles.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, role);
            }
            out.push(b']');
        }
        opt_str(out, b",\"note\":", self.note);
        if let Some(v) = self.update_of {
            out.extend_from_slice(b",\"update_of\":\"");
            out.extend_from_slice(v.as_str().as_bytes());
            out.push(b'"');
        }
        opt_str(out, b",\"host\":", self.host);
        out.push(b'}');
    }
}

/// An optional field: absent fields are left out, as serde's
/// `skip_serializing_if` does for [`EventRecord`].
fn opt_str(out: &mut Vec<u8>, key: &[u8], v: Option<&str>) {
    if let Some(v) = v {
        out.extend_from_slice(key);
        json_str(out, v);
    }
}

fn opt_u64(out: &mut Vec<u8>, key: &[u8], v: Option<u64>) {
    if let Some(v) = v {
        out.extend_from_slice(key);
        json_u64(out, v);
    }
}

fn proto_name(p: IpProto) -> &'static str {
    match p {
        IpProto::Tcp => "tcp",
        IpProto::Udp => "udp",
        IpProto::Icmp => "icmp",
        IpProto::Icmpv6 => "icmpv6",
        IpProto::Other(_) => "",
    }
}

type TimeText = [u8; text::RFC3339_LEN];

/// Writes `t` quoted; returns its text for the next time to reuse.
fn json_time(out: &mut Vec<u8>, t: SystemTime) -> TimeText {
    let text = text::rfc3339_nanos(clamp_rfc3339(t));
    put_time(out, &text);
    text
}

/// [`json_time`], reusing the text of an earlier time when `t` is it.
fn json_time_as(out: &mut Vec<u8>, t: SystemTime, earlier: (SystemTime, &TimeText)) -> TimeText {
    if t == earlier.0 {
        put_time(out, earlier.1);
        *earlier.1
    } else {
        json_time(out, t)
    }
}

fn put_time(out: &mut Vec<u8>, text: &TimeText) {
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

fn json_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; text::U64_MAX_LEN];
    out.extend_from_slice(text::decimal(v, &mut buf));
}

/// A JSON string. Names, notes and addresses almost never hold a quote, a
/// backslash or a control character; those that do are escaped by
/// serde_json itself, so the escaping is the same as everywhere else.
///
/// The test reads every byte without stopping at the first that needs
/// escaping, which is what lets it run on many bytes at once: a note is
/// checked on every line.
fn json_str(out: &mut Vec<u8>, s: &str) {
    let plain = !s.bytes().fold(false, |bad, b| {
        bad | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec does not fail");
    }
}
