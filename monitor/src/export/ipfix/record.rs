//! One flow record: the fields it takes, its IPFIX data record, and the
//! form it waits in a spool.
//!
//! The writer hands an IPFIX sink the fields of the record it is writing
//! ([`Flow`]), encoded once, rather than the JSON line: reading the fields
//! back out of the line cost about a microsecond a record, more than all
//! the rest of the sink together. The spool keeps the encoded record, in
//! base64 on a line of its own (`256 BASE64`, the template first), which is
//! also less than half the JSON line's size. A spool an earlier version
//! left holds JSON lines; they are read as before ([`from_line`]).

use std::{borrow::Cow, net::IpAddr};

use base64::Engine as _;
use serde::Deserialize;

use super::{COMMON, TEMPLATE_V4, TEMPLATE_V6, put_text, put16, put64};

/// The base64 of the spool: standard, padded, as `base64 -d` reads it.
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What a flow record says, borrowed from whoever has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow<'a> {
    /// `unexpected`, `blocked` or `recovered` (see [`verdict`]).
    pub verdict: &'static str,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub octets: u64,
    pub packets: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The host opened it (flowDirection egress).
    pub egress: bool,
    pub iface: &'a str,
    pub reason: &'a str,
    pub rule: &'a str,
    pub source: &'a str,
    pub reply_packets: u64,
}

/// The verdict a record of `kind` (an update: of `update_of`) states, or
/// `None` for a line that is not a flow's (a rule's status, a flood
/// aggregate, an update of a recovered flow).
pub fn verdict(kind: &str, update_of: Option<&str>) -> Option<&'static str> {
    match (kind, update_of) {
        ("unexpected", _) | ("update", None | Some("unexpected")) => Some("unexpected"),
        ("blocked", _) | ("update", Some("blocked")) => Some("blocked"),
        ("recovered", _) => Some("recovered"),
        _ => None,
    }
}

impl Flow<'_> {
    /// Appends the data record (without a set header); its template, or
    /// `None` (and nothing appended) when the addresses are of two
    /// families, which no template takes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Option<u16> {
        let template = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
                TEMPLATE_V4
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
                TEMPLATE_V6
            }
            _ => return None,
        };
        // In the order of `COMMON`.
        debug_assert_eq!(COMMON.len(), 14);
        put16(out, self.sport);
        put16(out, self.dport);
        out.push(self.proto);
        put64(out, self.octets);
        put64(out, self.packets);
        put64(out, self.start_ms);
        put64(out, self.end_ms);
        out.push(u8::from(self.egress));
        put_text(out, self.iface);
        put_text(out, self.verdict);
        put_text(out, self.reason);
        put_text(out, self.rule);
        put_text(out, self.source);
        put64(out, self.reply_packets);
        Some(template)
    }
}

/// The protocol number of an events line's `proto` (`tcp`, ..., or the
/// number). Read here rather than through `events::IpProto`: the events
/// writer hands lines to this module, which must not reach back.
fn protocol(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "icmpv6" => Some(58),
        n => n.parse().ok(),
    }
}

/// RFC 3339 to milliseconds since the epoch (0 if it does not read).
fn millis(t: &str) -> u64 {
    humantime::parse_rfc3339(t)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// The fields of an events line a flow record takes, borrowed.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    kind: &'a str,
    #[serde(borrow, default)]
    update_of: Option<&'a str>,
    #[serde(borrow)]
    iface: Cow<'a, str>,
    #[serde(borrow)]
    direction: &'a str,
    #[serde(borrow)]
    proto: &'a str,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    count: u64,
    #[serde(borrow)]
    first_seen: &'a str,
    #[serde(borrow)]
    last_seen: &'a str,
    #[serde(borrow, default)]
    rule: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(default)]
    bytes: Option<u64>,
    #[serde(default)]
    reply_packets: Option<u64>,
}

/// The data record of an events line, and its template; `None` for a line
/// that is not a flow.
pub fn from_line(line: &[u8]) -> Option<(u16, Vec<u8>)> {
    let r: Line = serde_json::from_slice(line).ok()?;
    let flow = Flow {
        verdict: verdict(r.kind, r.update_of)?,
        src: r.src,
        dst: r.dst,
        sport: r.sport,
        dport: r.dport,
        proto: protocol(r.proto)?,
        octets: r.bytes.unwrap_or(0),
        packets: r.count,
        start_ms: millis(r.first_seen),
        end_ms: millis(r.last_seen),
        egress: r.direction == "outbound",
        iface: &r.iface,
        reason: r.reason.as_deref().unwrap_or(""),
        rule: r.rule.as_deref().unwrap_or(""),
        source: r.source.as_deref().unwrap_or(""),
        reply_packets: r.reply_packets.unwrap_or(0),
    };
    let mut out = Vec::with_capacity(160);
    let template = flow.encode(&mut out)?;
    Some((template, out))
}

/// The spool line of an encoded record: its template, a space, the
/// record in base64. Replaces `out`.
pub fn to_spool(template: u16, data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(template.to_string().as_bytes());
    out.push(b' ');
    let at = out.len();
    out.resize(at + base64::encoded_len(data.len(), true).unwrap_or(0), 0);
    let n = B64
        .encode_slice(data, &mut out[at..])
        .expect("sized by encoded_len");
    out.truncate(at + n);
}

/// A spool line's record into `data` (replaced), and its template; `None`
/// for a line that holds no flow record. Reads both the encoded form and
/// the JSON lines of a spool an earlier version left.
pub fn from_spool(line: &[u8], data: &mut Vec<u8>) -> Option<u16> {
    data.clear();
    if line.first() == Some(&b'{') {
        let (template, record) = from_line(line)?;
        *data = record;
        return Some(template);
    }
    let space = line.iter().position(|&b| b == b' ')?;
    let template: u16 = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
    if template != TEMPLATE_V4 && template != TEMPLATE_V6 {
        return None;
    }
    B64.decode_vec(&line[space + 1..], data).ok()?;
    Some(template)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) const LINE: &str = r#"{"ts":"2026-11-22T16:42:38Z","kind":"blocked","iface":"eth0","direction":"inbound","proto":"tcp","src":"192.0.2.2","dst":"192.0.2.1","sport":42000,"dport":5432,"count":3,"first_seen":"2026-11-22T16:42:38Z","last_seen":"2026-11-22T16:42:40Z","rule":"000-42","source":"doc.txt:42","reason":"reset","seq":4,"instance":"x"}"#;

    #[test]
    fn a_flow_line_is_a_record_and_others_are_not() {
        let (t, data) = from_line(LINE.as_bytes()).unwrap();
        assert_eq!(t, TEMPLATE_V4);
        assert_eq!(&data[..8], &[192, 0, 2, 2, 192, 0, 2, 1]);
        assert_eq!(&data[8..13], &[0xa4, 0x10, 0x15, 0x38, 6]);
        // packetTotalCount is the count; flowEnd two seconds after start.
        assert_eq!(u64::from_be_bytes(data[21..29].try_into().unwrap()), 3);
        let start = u64::from_be_bytes(data[29..37].try_into().unwrap());
        let end = u64::from_be_bytes(data[37..45].try_into().unwrap());
        assert_eq!(end - start, 2000);
        assert_eq!(data[45], 0, "ingress");
        assert_eq!(&data[46..51], b"\x04eth0");
        assert_eq!(&data[51..59], b"\x07blocked");
        assert!(from_line(br#"{"kind":"required","rule":"x"}"#).is_none());
        assert!(from_line(b"not json").is_none());
    }

    #[test]
    fn the_spool_form_gives_back_the_record_and_old_json_lines_still_read() {
        let (t, data) = from_line(LINE.as_bytes()).unwrap();
        let mut line = Vec::new();
        to_spool(t, &data, &mut line);
        assert!(line.starts_with(b"256 ") && !line.contains(&b'\n'));
        assert!(line.len() < LINE.len() / 2, "{}", line.len());
        let mut back = vec![1, 2, 3];
        assert_eq!(from_spool(&line, &mut back), Some(t));
        assert_eq!(back, data);
        assert_eq!(from_spool(LINE.as_bytes(), &mut back), Some(t));
        assert_eq!(back, data);
        for bad in [&b"256"[..], b"999 AAAA", b"256 !!!", b"x y", b""] {
            assert_eq!(from_spool(bad, &mut back), None, "{bad:?}");
        }
    }
}
