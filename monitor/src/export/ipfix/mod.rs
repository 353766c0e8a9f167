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
//! collector may have restarted, in messages that fit one frame.
//! `ipfix+tcp://` sends the same records (see `tcp.rs`) in messages as
//! long as IPFIX allows, the templates once at the start of each
//! connection. Lines that are not flows (a rule's status, a flood
//! aggregate) have no IPFIX form: they never reach an IPFIX sink's spool.

mod record;

use std::time::Duration;

pub use record::{Flow, from_line, from_spool, to_spool, verdict};

/// Templates are sent again this often over UDP.
pub const TEMPLATE_EVERY: Duration = Duration::from_secs(30);
/// Over UDP, a message stays within one Ethernet frame's IPv6 UDP payload.
pub const MAX_UDP_MESSAGE: usize = 1400;
/// Over TCP, a message may be as long as its 16-bit length says (RFC 7011
/// §3.1): a batch of records is a few messages, not hundreds.
pub const MAX_TCP_MESSAGE: usize = 65535;
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

/// Builds messages: records in, whole messages of at most `max` bytes out, numbered as RFC 7011 says (data records sent before).
pub struct Messages {
    domain: u32,
    max: usize,
    sequence: u32,
    /// The message being filled, and its open data set's template.
    message: Vec<u8>,
    open: Option<(u16, usize)>,
    records_in_message: u32,
}

impl Messages {
    pub fn new(domain: u32, max: usize) -> Self {
        Self {
            domain,
            max,
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
        if !self.message.is_empty() && self.message.len() + set_header + data.len() > self.max {
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

    #[test]
    fn messages_stay_small_carry_templates_when_asked_and_count_records() {
        let (t, data) = from_line(record::tests::LINE.as_bytes()).unwrap();
        let mut m = Messages::new(7, MAX_UDP_MESSAGE);
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
            assert!(msg.len() <= MAX_UDP_MESSAGE);
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
