//! Kernel counters → the metrics endpoint and the summary's classifier line.

use monitor_common::{
    flow::{Kstat, KstatTotals},
    stats::{PacketDir, SLOT_MALFORMED, SLOT_TOO_DEEP, SLOT_TRUNCATED, SLOTS, slot_name},
};

use std::collections::BTreeMap;

use monitor_common::maps::Counter;

use crate::{
    events::record,
    kernel_tables::KernelTables,
    metrics::{self, Family, FlowTable, LocalDrops, ParseFailures, RuleCounter, TrafficCounter},
    stats::Snapshot,
};

/// The metrics view of one moment.
pub fn metrics_snapshot(
    traffic: &Snapshot,
    kstats: &KstatTotals,
    rules: &BTreeMap<String, (String, Counter)>,
    live_flows: u64,
    pcap_dropped: u64,
) -> metrics::Snapshot {
    let mut out = metrics::Snapshot::default();
    let mut failures = ParseFailures::default();
    for iface in &traffic.ifaces {
        for dir in PacketDir::ALL {
            for slot in 0..SLOTS {
                let c = iface.get(dir, slot);
                match slot {
                    SLOT_TRUNCATED => failures.truncated += c.packets,
                    SLOT_MALFORMED => failures.malformed += c.packets,
                    SLOT_TOO_DEEP => failures.too_deep += c.packets,
                    s if s < 10 => {
                        let (family, proto) = slot_name(s);
                        out.traffic.push(TrafficCounter {
                            iface: iface.name.clone(),
                            direction: match dir {
                                PacketDir::Ingress => record::ConnDir::Inbound,
                                PacketDir::Egress => record::ConnDir::Outbound,
                            },
                            family: if family == "ipv4" {
                                Family::Ipv4
                            } else {
                                Family::Ipv6
                            },
                            proto: proto.parse().unwrap_or(record::IpProto::Other(0)),
                            packets: c.packets,
                            bytes: c.bytes,
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    out.parse_failures = failures;
    out.rules = rules
        .iter()
        .map(|(id, (service, c))| RuleCounter {
            rule: id.clone(),
            service: service.clone(),
            packets: c.packets,
            bytes: c.bytes,
        })
        .collect();
    let new_flows = kstats[Kstat::NewFlows];
    out.unexpected_flows = new_flows;
    out.events_lost = kstats[Kstat::RingbufFull];
    out.flood_packets = kstats[Kstat::FloodPackets];
    out.flood_packets_lost = kstats[Kstat::FloodLost];
    out.flow_table = FlowTable {
        insert_failures: kstats[Kstat::FlowInsertFailed],
        // Flows are never deleted, so those gone from the LRU were evicted.
        evictions: new_flows.saturating_sub(live_flows),
    };
    out.pcap_packets_dropped = pcap_dropped;
    out.required_attempts_untracked = kstats[Kstat::HandshakeFull];
    out.local_drops = LocalDrops {
        required: kstats[Kstat::LocalDrops],
        other: kstats[Kstat::LocalDropsOther],
        lost: kstats[Kstat::LocalDropsLost],
        unparsed: kstats[Kstat::LocalDropsUnparsed],
    };
    out
}

/// One line for the summary: required flows' handshakes, and every way
/// one could go unreported.
pub fn required_line(
    kstats: &KstatTotals,
    blocked_now: u64,
    not_remembered: u64,
    not_watched: u64,
) -> String {
    format!(
        "  required flows: {} attempts, {} answered, {} refused, {} packets dropped by this host; {} flows blocked now; {} local drops of flows nobody requires; lost: {} attempts not tracked (table full), {} local drops not recorded (table full), {} not readable, {} blocked flows not remembered, {} not watched for recovery",
        kstats[Kstat::Handshakes],
        kstats[Kstat::Answered],
        kstats[Kstat::Refused],
        kstats[Kstat::LocalDrops],
        blocked_now,
        kstats[Kstat::LocalDropsOther],
        kstats[Kstat::HandshakeFull],
        kstats[Kstat::LocalDropsLost],
        kstats[Kstat::LocalDropsUnparsed],
        not_remembered,
        not_watched,
    )
}

/// One line for the summary: what the classifier did, and every loss.
pub fn classifier_line(kstats: &KstatTotals, allowed: u64, live_flows: u64) -> String {
    let new_flows = kstats[Kstat::NewFlows];
    format!(
        "  classifier: {} allowed, {} unexpected packets in {} flows ({} tracked, {} evicted), {} later fragments, {} packets of strangers' new flows past the budget counted as floods; lost: {} events (ring buffer full), {} flows not tracked, {} packets of evicted flows not counted, {} flood packets not counted (table full)",
        allowed,
        kstats[Kstat::Unexpected],
        new_flows,
        live_flows,
        new_flows.saturating_sub(live_flows),
        kstats[Kstat::Fragments],
        kstats[Kstat::FloodPackets],
        kstats[Kstat::RingbufFull],
        kstats[Kstat::FlowInsertFailed],
        kstats[Kstat::SeenUnflushed],
        kstats[Kstat::FloodLost],
    )
}

/// The busiest rules, for the table summary: which documented flows the
/// traffic actually uses, each with the document line that allows it.
pub fn top_rules_line(
    rules: &BTreeMap<String, (String, Counter)>,
    tables: Option<&KernelTables>,
    top: usize,
) -> Option<String> {
    let mut busy: Vec<(&String, &Counter)> = rules
        .iter()
        .filter(|(_, (_, c))| c.packets > 0)
        .map(|(id, (_, c))| (id, c))
        .collect();
    if busy.is_empty() {
        return None;
    }
    busy.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then(a.0.cmp(b.0)));
    let described: Vec<String> = busy
        .iter()
        .take(top)
        .map(|(id, c)| {
            let rule = tables.and_then(|t| t.rules.iter().find(|r| &r.id == *id));
            match rule {
                Some(r) => format!(
                    "{id} {} {} ({}) {} pkts",
                    r.proto, r.ports, r.source, c.packets
                ),
                None => format!("{id} {} pkts", c.packets),
            }
        })
        .collect();
    let more = busy.len().saturating_sub(top);
    Some(format!(
        "  allowed by rule: {}{}",
        described.join(", "),
        if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        }
    ))
}
