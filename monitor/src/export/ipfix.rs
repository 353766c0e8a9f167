//! `ipfix+udp://HOST:PORT`: the flow records of the events (unexpected,
//! blocked, recovered, and their updates) as IPFIX (RFC 7011) data records,
//! which any flow collector (nfcapd, the SIEMs' NetFlow inputs) stores.
//!
//! Two templates, IPv4 and IPv6, of standard information elements:
//! addresses, ports, protocolIdentifier, octetTotalCount, packetTotalCount,
//! flowStartMilliseconds, flowEndMilliseconds, flowDirection and
//! interfaceName; and four enterprise-specific ones for what only
//! portconform knows: the verdict, its reason, the rule id and the rule's
//! `doc:line`. Their enterprise number is 32473, the one RFC 5612 sets
//! aside for documentation, until portconform has one of its own.
//!
//! Over UDP the templates go with the first message and again every
//! [`TEMPLATE_EVERY`], as RFC 7011 §8.4 asks of an exporter whose
//! collector may have restarted. `ipfix+tcp://` sends the same messages
//! (see `tcp.rs`), the templates once at the start of each connection. Lines that are not flows (a rule's
//! verdict, a flood aggregate) have no IPFIX form and are skipped.

use std::{borrow::Cow, net::IpAddr, time::Duration};

use serde::Deserialize;

/// Templates are sent again this often over UDP.
pub const TEMPLATE_EVERY: Duration = Duration::from_secs(30);
/// A message stays within one Ethernet frame's IPv6 UDP payload.
pub const MAX_MESSAGE: usize = 1400;
/// RFC 5612's documentation enterprise number.
pub const ENTERPRISE: u32 = 32473;
const VERSION: u16 = 10;
const TEMPLATE_SET: u16 = 2;
const TEMPLATE_V4: u16 = 256;
const TEMPLATE_V6: u16 = 257;
const VARIABLE: u16 = 0xffff;
/// Text fields are cut to this many bytes (an IPFIX string may not be
/// longer than its 16-bit length, and a record must fit a message).
const MAX_TEXT: usize = 200;

/// (element id, length, enterprise) of each field, in record order after
/// the addresses.
const COMMON: [(u16, u16, u32); 14] = [
    (7, 2, 0),                 // sourceTransportPort
    (11, 2, 0),                // destinationTransportPort
    (4, 1, 0),                 // protocolIdentifier
    (85, 8, 0),                // octetTotalCount
    (86, 8, 0),                // packetTotalCount
    (152, 8, 0),               // flowStartMilliseconds
    (153, 8, 0),               // flowEndMilliseconds
    (61, 1, 0),                // flowDirection: 0 ingress, 1 egress
    (82, VARIABLE, 0),         // interfaceName
    (1, VARIABLE, ENTERPRISE), // verdict
    (2, VARIABLE, ENTERPRISE), // reason
    (3, VARIABLE, ENTERPRISE), // rule id
    (4, VARIABLE, ENTERPRISE), // doc:line
    (5, 8, ENTERPRISE),        // reply packets
];

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A variable-length string (RFC 7011 §7): one length byte, cut to
/// [`MAX_TEXT`] at a character boundary.
fn put_text(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push(end as u8);
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// The template set: both templates.
fn templates(out: &mut Vec<u8>) {
    let start = out.len();
    put16(out, TEMPLATE_SET);
    put16(out, 0);
    for (id, src, dst) in [(TEMPLATE_V4, 8u16, 12u16), (TEMPLATE_V6, 27, 28)] {
        put16(out, id);
        put16(out, 2 + COMMON.len() as u16);
        let len = if id == TEMPLATE_V4 { 4 } else { 16 };
        for ie in [src, dst] {
            put16(out, ie);
            put16(out, len);
        }
        for (ie, len, pen) in COMMON {
            if pen == 0 {
                put16(out, ie);
                put16(out, len);
            } else {
                put16(out, ie | 0x8000);
                put16(out, len);
                put32(out, pen);
            }
        }
    }
    let set_len = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&set_len.to_be_bytes());
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

/// The fields of an events line a flow record takes, borrowed: a record
/// per line at hundreds of thousands a second cannot afford the
/// allocations of a whole `EventRecord`.
#[derive(Deserialize)]
struct Flow<'a> {
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

/// One flow record's data (without its set header), and its template;
/// `None` for a line that is not a flow.
pub fn record(line: &[u8]) -> Option<(u16, Vec<u8>)> {
    let r: Flow = serde_json::from_slice(line).ok()?;
    let verdict = match (r.kind, r.update_of) {
        ("unexpected", _) | ("update", None | Some("unexpected")) => "unexpected",
        ("blocked", _) | ("update", Some("blocked")) => "blocked",
        ("recovered", _) => "recovered",
        _ => return None,
    };
    let mut out = Vec::with_capacity(160);
    let template = match (r.src, r.dst) {
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
    put16(&mut out, r.sport);
    put16(&mut out, r.dport);
    out.push(protocol(r.proto)?);
    put64(&mut out, r.bytes.unwrap_or(0));
    put64(&mut out, r.count);
    put64(&mut out, millis(r.first_seen));
    put64(&mut out, millis(r.last_seen));
    out.push(u8::from(r.direction == "outbound"));
    put_text(&mut out, &r.iface);
    put_text(&mut out, verdict);
    put_text(&mut out, r.reason.as_deref().unwrap_or(""));
    put_text(&mut out, r.rule.as_deref().unwrap_or(""));
    put_text(&mut out, r.source.as_deref().unwrap_or(""));
    put64(&mut out, r.reply_packets.unwrap_or(0));
    Some((template, out))
}

/// Builds messages: records in, whole messages of at most [`MAX_MESSAGE`]
/// bytes out, numbered as RFC 7011 says (data records sent before).
pub struct Messages {
    domain: u32,
    sequence: u32,
    /// The message being filled, and its open data set's template.
    message: Vec<u8>,
    open: Option<(u16, usize)>,
    records_in_message: u32,
}

impl Messages {
    pub fn new(domain: u32) -> Self {
        Self {
            domain,
            sequence: 0,
            message: Vec::new(),
            open: None,
            records_in_message: 0,
        }
    }

    fn start(&mut self, export_time: u32, with_templates: bool) {
        self.message.clear();
        put16(&mut self.message, VERSION);
        put16(&mut self.message, 0);
        put32(&mut self.message, export_time);
        put32(&mut self.message, self.sequence);
        put32(&mut self.message, self.domain);
        if with_templates {
            templates(&mut self.message);
        }
        self.open = None;
        self.records_in_message = 0;
    }

    fn close_set(&mut self) {
        if let Some((_, at)) = self.open.take() {
            let len = (self.message.len() - at) as u16;
            self.message[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }

    /// The message so far, finished, if it holds anything; the next one
    /// starts empty.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.message.is_empty() {
            return None;
        }
        self.close_set();
        let len = self.message.len() as u16;
        self.message[2..4].copy_from_slice(&len.to_be_bytes());
        self.sequence = self.sequence.wrapping_add(self.records_in_message);
        Some(std::mem::take(&mut self.message))
    }

    /// Adds a record; returns the message it completed, if adding it
    /// needed a new one. `templates` asks for the templates in the next
    /// message started.
    pub fn add(
        &mut self,
        template: u16,
        data: &[u8],
        export_time: u32,
        templates: &mut bool,
    ) -> Option<Vec<u8>> {
        let set_header = if self.open.is_some_and(|(t, _)| t == template) {
            0
        } else {
            4
        };
        let mut done = None;
        if !self.message.is_empty() && self.message.len() + set_header + data.len() > MAX_MESSAGE {
            done = self.finish();
        }
        if self.message.is_empty() {
            self.start(export_time, std::mem::take(templates));
        }
        if self.open.is_none_or(|(t, _)| t != template) {
            self.close_set();
            self.open = Some((template, self.message.len()));
            put16(&mut self.message, template);
            put16(&mut self.message, 0);
        }
        self.message.extend_from_slice(data);
        self.records_in_message += 1;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"ts":"2026-11-22T16:42:38Z","kind":"blocked","iface":"eth0","direction":"inbound","proto":"tcp","src":"192.0.2.2","dst":"192.0.2.1","sport":42000,"dport":5432,"count":3,"first_seen":"2026-11-22T16:42:38Z","last_seen":"2026-11-22T16:42:40Z","rule":"000-42","source":"doc.txt:42","reason":"reset","seq":4,"instance":"x"}"#;

    #[test]
    fn a_flow_line_is_a_record_and_others_are_not() {
        let (t, data) = record(LINE.as_bytes()).unwrap();
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
        assert!(record(br#"{"kind":"required","rule":"x"}"#).is_none());
        assert!(record(b"not json").is_none());
    }

    #[test]
    fn messages_stay_small_carry_templates_when_asked_and_count_records() {
        let (t, data) = record(LINE.as_bytes()).unwrap();
        let mut m = Messages::new(7);
        let mut templates = true;
        let mut done = Vec::new();
        for _ in 0..40 {
            if let Some(msg) = m.add(t, &data, 1000, &mut templates) {
                done.push(msg);
            }
        }
        done.extend(m.finish());
        let mut records = 0u32;
        for (i, msg) in done.iter().enumerate() {
            assert!(msg.len() <= MAX_MESSAGE);
            assert_eq!(u16::from_be_bytes([msg[0], msg[1]]), 10);
            assert_eq!(usize::from(u16::from_be_bytes([msg[2], msg[3]])), msg.len());
            assert_eq!(u32::from_be_bytes(msg[8..12].try_into().unwrap()), records);
            assert_eq!(u32::from_be_bytes(msg[12..16].try_into().unwrap()), 7);
            // Sets: walk them, count the data records.
            let mut at = 16;
            while at < msg.len() {
                let id = u16::from_be_bytes([msg[at], msg[at + 1]]);
                let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
                assert!(len >= 4 && at + len <= msg.len());
                if id == TEMPLATE_SET {
                    assert_eq!(i, 0, "templates only where asked");
                } else {
                    assert_eq!(id, TEMPLATE_V4);
                    records += ((len - 4) / data.len()) as u32;
                }
                at += len;
            }
        }
        assert_eq!(records, 40);
        assert!(done.len() > 2);
    }
}
