//! Prometheus metrics: what the kernel counted, as of the daemon's last read.
//!
//! The kernel's per-CPU counters are the source of truth, so the daemon does
//! not increment anything here: it hands over a whole [`Snapshot`] each time
//! it has summed the maps, and a scrape renders the latest one. That is why
//! the families are built by a custom collector from constant counters
//! instead of owning live `Counter`s that would have to mirror the kernel.

mod addr;
mod http;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

pub use crate::events::record::{ConnDir, IpProto};
pub use addr::{MetricsAddrError, parse_metrics_addr};
pub use http::{
    CONTENT_TYPE, MAX_CONNECTIONS, MAX_REQUEST_BYTES, MetricsServer, REQUEST_TIMEOUT, ServeError,
    serve,
};

/// Address family of a traffic counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// Packets and bytes the kernel saw on one interface in one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficCounter {
    pub iface: String,
    pub direction: ConnDir,
    pub family: Family,
    pub proto: IpProto,
    pub packets: u64,
    pub bytes: u64,
}

/// Packets and bytes a policy rule allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCounter {
    pub rule: String,
    pub service: String,
    pub packets: u64,
    pub bytes: u64,
}

/// Packets the kernel passed without classifying them, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseFailures {
    /// Shorter than the headers they announce.
    pub truncated: u64,
    /// Headers with impossible values.
    pub malformed: u64,
    /// More encapsulation or extension headers than the kernel walks.
    pub too_deep: u64,
}

/// Pressure on the kernel's flow table (the LRU of unexpected flows and
/// pending handshakes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTable {
    pub insert_failures: u64,
    pub evictions: u64,
}

/// Required flows currently seen blocked for one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedRequired {
    pub rule: String,
    pub service: String,
    pub flows: u64,
}

/// Everything the endpoint shows. Counters are totals since the programs were
/// loaded; the daemon replaces the whole snapshot after each map read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub traffic: Vec<TrafficCounter>,
    pub rules: Vec<RuleCounter>,
    /// Distinct unexpected flows (first sightings), not packets.
    pub unexpected_flows: u64,
    /// Events the kernel could not queue because the ring buffer was full.
    pub events_lost: u64,
    /// Packets of strangers' new flows past the budget, counted in flood
    /// aggregates; and those no aggregate could count (table full).
    pub flood_packets: u64,
    pub flood_packets_lost: u64,
    pub flow_table: FlowTable,
    pub parse_failures: ParseFailures,
    pub blocked_required: Vec<BlockedRequired>,
    /// Offending packets not written because the pcapng file reached its limit.
    pub pcap_packets_dropped: u64,
    /// Attempts of required flows the kernel could not track (table full).
    pub required_attempts_untracked: u64,
    /// Packets the host's own stack dropped (kfree_skb, watched reasons, on
    /// monitored interfaces): of required flows, of nothing required, not
    /// recorded (table full), unreadable.
    pub local_drops: LocalDrops,
    /// Each `--export` sink's deliveries.
    pub exports: Vec<crate::export::SinkCounts>,
}

/// See [`Snapshot::local_drops`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalDrops {
    pub required: u64,
    pub other: u64,
    pub lost: u64,
    pub unparsed: u64,
}

impl Snapshot {
    /// Sums entries that share a label set and sorts them: a duplicate series
    /// would make the whole exposition invalid for Prometheus, and a stable
    /// order keeps scrapes diffable.
    fn normalized(self) -> Snapshot {
        let mut traffic: BTreeMap<(String, ConnDir, Family, IpProto), (u64, u64)> = BTreeMap::new();
        for t in self.traffic {
            let e = traffic
                .entry((t.iface, t.direction, t.family, t.proto))
                .or_default();
            e.0 = e.0.saturating_add(t.packets);
            e.1 = e.1.saturating_add(t.bytes);
        }
        let mut rules: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for r in self.rules {
            let e = rules.entry((r.rule, r.service)).or_default();
            e.0 = e.0.saturating_add(r.packets);
            e.1 = e.1.saturating_add(r.bytes);
        }
        let mut blocked: BTreeMap<(String, String), u64> = BTreeMap::new();
        for b in self.blocked_required {
            let e = blocked.entry((b.rule, b.service)).or_default();
            *e = e.saturating_add(b.flows);
        }
        Snapshot {
            traffic: traffic
                .into_iter()
                .map(
                    |((iface, direction, family, proto), (packets, bytes))| TrafficCounter {
                        iface,
                        direction,
                        family,
                        proto,
                        packets,
                        bytes,
                    },
                )
                .collect(),
            rules: rules
                .into_iter()
                .map(|((rule, service), (packets, bytes))| RuleCounter {
                    rule,
                    service,
                    packets,
                    bytes,
                })
                .collect(),
            blocked_required: blocked
                .into_iter()
                .map(|((rule, service), flows)| BlockedRequired {
                    rule,
                    service,
                    flows,
                })
                .collect(),
            ..self
        }
    }
}

/// The daemon's metrics: update with [`Metrics::update`], render on scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    snapshot: Arc<Mutex<Snapshot>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let mut registry = Registry::with_prefix("portconform");
        registry.register_collector(Box::new(SnapshotCollector {
            snapshot: Arc::clone(&snapshot),
        }));
        Metrics { registry, snapshot }
    }

    /// Replaces what the next scrape shows.
    pub fn update(&self, snapshot: Snapshot) {
        let snapshot = snapshot.normalized();
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    /// Changes part of the current snapshot, for counters that come from a
    /// different place than the kernel maps (e.g. the pcapng writer).
    pub fn update_with(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut guard = self.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        let mut s = std::mem::take(&mut *guard);
        f(&mut s);
        *guard = s.normalized();
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The OpenMetrics text exposition (served as [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail, and the collector never returns
        // an error of its own.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[derive(Debug)]
struct SnapshotCollector {
    snapshot: Arc<Mutex<Snapshot>>,
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        // Cloned so a slow scrape never holds the lock the daemon updates.
        let s = self
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();

        for (name, help, pick) in [
            (
                "packets",
                "Packets seen by the classifier, by interface, direction, address family and L4 protocol.",
                (|t: &TrafficCounter| t.packets) as fn(&TrafficCounter) -> u64,
            ),
            (
                "bytes",
                "Bytes seen by the classifier, by interface, direction, address family and L4 protocol.",
                |t: &TrafficCounter| t.bytes,
            ),
        ] {
            let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for t in &s.traffic {
                let proto = t.proto.to_string();
                let labels = [
                    ("iface", t.iface.as_str()),
                    ("direction", t.direction.as_str()),
                    ("family", t.family.as_str()),
                    ("proto", proto.as_str()),
                ];
                ConstCounter::new(pick(t)).encode(family.encode_family(&labels)?)?;
            }
        }

        for (name, help, pick) in [
            (
                "rule_packets",
                "Packets allowed by each policy rule.",
                (|r: &RuleCounter| r.packets) as fn(&RuleCounter) -> u64,
            ),
            (
                "rule_bytes",
                "Bytes allowed by each policy rule.",
                |r: &RuleCounter| r.bytes,
            ),
        ] {
            let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for r in &s.rules {
                let labels = [("rule", r.rule.as_str()), ("service", r.service.as_str())];
                ConstCounter::new(pick(r)).encode(family.encode_family(&labels)?)?;
            }
        }

        counter(
            &mut enc,
            "unexpected_flows",
            "Distinct flows that no rule allows (first sightings).",
            s.unexpected_flows,
        )?;
        counter(
            &mut enc,
            "events_lost",
            "Events dropped in the kernel because the ring buffer was full.",
            s.events_lost,
        )?;
        counter(
            &mut enc,
            "flood_packets",
            "Packets of new flows from peers with no role past the per-CPU new-flow budget, counted in flood aggregates instead of tracked.",
            s.flood_packets,
        )?;
        counter(
            &mut enc,
            "flood_packets_lost",
            "Flood packets no aggregate could count (the aggregate table was full).",
            s.flood_packets_lost,
        )?;
        counter(
            &mut enc,
            "flow_table_insert_failures",
            "Flows the kernel could not insert into its flow table.",
            s.flow_table.insert_failures,
        )?;
        counter(
            &mut enc,
            "flow_table_evictions",
            "Flow-table entries evicted under pressure (pending handshakes lose their state).",
            s.flow_table.evictions,
        )?;
        counter(
            &mut enc,
            "required_attempts_untracked",
            "Connection attempts of required flows not tracked because the attempt table was full.",
            s.required_attempts_untracked,
        )?;
        for (name, help, v) in [
            (
                "local_drops_required",
                "Packets of required flows this host's own stack dropped (netfilter, no socket, no route...).",
                s.local_drops.required,
            ),
            (
                "local_drops_other",
                "Packets this host's own stack dropped that no required flow owns (counted, never reported).",
                s.local_drops.other,
            ),
            (
                "local_drops_lost",
                "Drops of required flows not recorded because the kernel's drop table was full.",
                s.local_drops.lost,
            ),
            (
                "local_drops_unparsed",
                "Dropped packets whose headers could not be read.",
                s.local_drops.unparsed,
            ),
        ] {
            counter(&mut enc, name, help, v)?;
        }
        counter(
            &mut enc,
            "pcap_packets_dropped",
            "Offending packets not written because the pcapng file reached its size limit.",
            s.pcap_packets_dropped,
        )?;

        {
            let mut family = enc.encode_descriptor(
                "parse_failures",
                "Packets passed unclassified because their headers could not be parsed, by reason.",
                None,
                MetricType::Counter,
            )?;
            let p = s.parse_failures;
            for (reason, value) in [
                ("truncated", p.truncated),
                ("malformed", p.malformed),
                ("too-deep", p.too_deep),
            ] {
                ConstCounter::new(value).encode(family.encode_family(&[("reason", reason)])?)?;
            }
        }

        {
            let mut family = enc.encode_descriptor(
                "blocked_required_flows",
                "Required flows currently seen blocked, by rule.",
                None,
                MetricType::Gauge,
            )?;
            for b in &s.blocked_required {
                let labels = [("rule", b.rule.as_str()), ("service", b.service.as_str())];
                let flows = i64::try_from(b.flows).unwrap_or(i64::MAX);
                ConstGauge::new(flows).encode(family.encode_family(&labels)?)?;
            }
        }

        {
            let mut family = enc.encode_descriptor(
                "export_lines",
                "Events lines per --export sink: sent (acknowledged by the collector), retried (sent again after a connection failed) and dropped (removed undelivered from a full spool).",
                None,
                MetricType::Counter,
            )?;
            for e in &s.exports {
                for (outcome, n) in [
                    ("sent", e.sent),
                    ("retried", e.retried),
                    ("dropped", e.dropped),
                ] {
                    let labels = [("sink", e.sink.as_str()), ("outcome", outcome)];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = enc.encode_descriptor(
                "export_connect_failures",
                "Connection attempts per --export sink that failed, by stage: tcp (refused, unreachable, timed out) or tls (the handshake: the collector's certificate, the protocol).",
                None,
                MetricType::Counter,
            )?;
            for e in &s.exports {
                for (stage, n) in [("tcp", e.connect_failures), ("tls", e.tls_failures)] {
                    let labels = [("sink", e.sink.as_str()), ("stage", stage)];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        for (name, help, pick) in [
            (
                "export_spooled_lines",
                "Events lines waiting in each --export sink's spool.",
                (|e: &crate::export::SinkCounts| i64::try_from(e.spooled).unwrap_or(i64::MAX))
                    as fn(&crate::export::SinkCounts) -> i64,
            ),
            (
                "export_connected",
                "Whether each --export sink is connected (1) or not (0).",
                |e: &crate::export::SinkCounts| i64::from(e.connected),
            ),
        ] {
            let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for e in &s.exports {
                ConstGauge::new(pick(e))
                    .encode(family.encode_family(&[("sink", e.sink.as_str())])?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sample() -> Snapshot {
        Snapshot {
            traffic: vec![
                TrafficCounter {
                    iface: "eth0".into(),
                    direction: ConnDir::Inbound,
                    family: Family::Ipv4,
                    proto: IpProto::Tcp,
                    packets: 10,
                    bytes: 1000,
                },
                TrafficCounter {
                    iface: "eth0".into(),
                    direction: ConnDir::Outbound,
                    family: Family::Ipv6,
                    proto: IpProto::Other(47),
                    packets: 2,
                    bytes: 200,
                },
                // Same label set as the first: summed, not duplicated.
                TrafficCounter {
                    iface: "eth0".into(),
                    direction: ConnDir::Inbound,
                    family: Family::Ipv4,
                    proto: IpProto::Tcp,
                    packets: 5,
                    bytes: 500,
                },
            ],
            rules: vec![RuleCounter {
                rule: "ts-zookeeper-2181".into(),
                service: "ZooKeeper \"quorum\"".into(),
                packets: 7,
                bytes: 700,
            }],
            unexpected_flows: 3,
            events_lost: 1,
            flood_packets: 7,
            flood_packets_lost: 0,
            flow_table: FlowTable {
                insert_failures: 4,
                evictions: 5,
            },
            parse_failures: ParseFailures {
                truncated: 6,
                malformed: 7,
                too_deep: 8,
            },
            blocked_required: vec![BlockedRequired {
                rule: "ts-ssh-22".into(),
                service: "SSH".into(),
                flows: 2,
            }],
            pcap_packets_dropped: 9,
            required_attempts_untracked: 10,
            local_drops: LocalDrops {
                required: 11,
                other: 12,
                lost: 13,
                unparsed: 14,
            },
            exports: vec![crate::export::SinkCounts {
                sink: "syslog+tcp://192.0.2.9:514".into(),
                sent: 15,
                retried: 16,
                spooled: 17,
                dropped: 18,
                connected: true,
                connect_failures: 19,
                tls_failures: 20,
            }],
        }
    }

    #[test]
    fn render_contains_every_family_and_label() {
        let m = Metrics::new();
        m.update(sample());
        let text = m.render();
        for line in [
            "# TYPE portconform_packets counter",
            "portconform_packets_total{iface=\"eth0\",direction=\"inbound\",family=\"ipv4\",proto=\"tcp\"} 15",
            "portconform_packets_total{iface=\"eth0\",direction=\"outbound\",family=\"ipv6\",proto=\"47\"} 2",
            "portconform_bytes_total{iface=\"eth0\",direction=\"inbound\",family=\"ipv4\",proto=\"tcp\"} 1500",
            "portconform_rule_packets_total{rule=\"ts-zookeeper-2181\",service=\"ZooKeeper \\\"quorum\\\"\"} 7",
            "portconform_rule_bytes_total{rule=\"ts-zookeeper-2181\",service=\"ZooKeeper \\\"quorum\\\"\"} 700",
            "portconform_unexpected_flows_total 3",
            "portconform_events_lost_total 1",
            "portconform_flood_packets_total 7",
            "portconform_flow_table_insert_failures_total 4",
            "portconform_flow_table_evictions_total 5",
            "portconform_pcap_packets_dropped_total 9",
            "portconform_required_attempts_untracked_total 10",
            "portconform_local_drops_required_total 11",
            "portconform_local_drops_other_total 12",
            "portconform_local_drops_lost_total 13",
            "portconform_local_drops_unparsed_total 14",
            "portconform_parse_failures_total{reason=\"truncated\"} 6",
            "portconform_parse_failures_total{reason=\"malformed\"} 7",
            "portconform_parse_failures_total{reason=\"too-deep\"} 8",
            "# TYPE portconform_blocked_required_flows gauge",
            "portconform_blocked_required_flows{rule=\"ts-ssh-22\",service=\"SSH\"} 2",
            "portconform_export_lines_total{sink=\"syslog+tcp://192.0.2.9:514\",outcome=\"sent\"} 15",
            "portconform_export_lines_total{sink=\"syslog+tcp://192.0.2.9:514\",outcome=\"retried\"} 16",
            "portconform_export_connect_failures_total{sink=\"syslog+tcp://192.0.2.9:514\",stage=\"tls\"} 20",
            "portconform_export_lines_total{sink=\"syslog+tcp://192.0.2.9:514\",outcome=\"dropped\"} 18",
            "portconform_export_spooled_lines{sink=\"syslog+tcp://192.0.2.9:514\"} 17",
            "portconform_export_connected{sink=\"syslog+tcp://192.0.2.9:514\"} 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing line {line:?} in:\n{text}"
            );
        }
        // Summed, not duplicated.
        assert_eq!(
            text.matches("portconform_packets_total{iface=\"eth0\",direction=\"inbound\"")
                .count(),
            1
        );
    }

    #[test]
    fn empty_snapshot_still_renders_the_scalar_families() {
        let text = Metrics::new().render();
        assert!(text.contains("portconform_events_lost_total 0"), "{text}");
        assert!(
            text.contains("portconform_parse_failures_total{reason=\"too-deep\"} 0"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn update_with_changes_part_of_the_snapshot() {
        let m = Metrics::new();
        m.update(sample());
        m.update_with(|s| s.pcap_packets_dropped = 42);
        let s = m.snapshot();
        assert_eq!(s.pcap_packets_dropped, 42);
        assert_eq!(s.unexpected_flows, 3);
        assert!(
            m.render()
                .contains("portconform_pcap_packets_dropped_total 42")
        );
    }
}
