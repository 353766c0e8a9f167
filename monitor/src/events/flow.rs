//! A record as the flow an IPFIX sink exports (`export::ipfix::Flow`),
//! taken from its fields as the writer holds them, so that the sink never
//! reads the JSON line back; the tests hold it equal to reading the line.

use std::time::{SystemTime, UNIX_EPOCH};

use super::borrowed::RecordRef;
use super::record::{ConnDir, EventKind, clamp_rfc3339};
use crate::export::ipfix::{self, Flow};

/// Milliseconds since the epoch of a time as the JSON line writes it.
fn millis(t: SystemTime) -> u64 {
    clamp_rfc3339(t)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RecordRef<'_> {
    /// The flow the record states; `None` when it states none (see
    /// [`ipfix::verdict`]).
    pub fn flow(&self) -> Option<Flow<'_>> {
        Some(Flow {
            verdict: ipfix::verdict(self.kind.as_str(), self.update_of.map(EventKind::as_str))?,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            proto: self.proto.number(),
            octets: self.bytes.unwrap_or(0),
            packets: self.count,
            start_ms: millis(self.first_seen),
            end_ms: millis(self.last_seen),
            egress: self.direction == ConnDir::Outbound,
            iface: &self.iface,
            reason: self.reason.unwrap_or(""),
            rule: self.rule.unwrap_or(""),
            source: self.source.unwrap_or(""),
            reply_packets: self.reply_packets.unwrap_or(0),
        })
    }
}
