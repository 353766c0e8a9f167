//! The replay engine against the thoughtspot profile: the records the live
//! monitor would write, stamped with capture times, from every link type;
//! the kernel's flow deduplication and its bound; guessing the host.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, UNIX_EPOCH},
};

use etherparse::PacketBuilder;
use monitor::{
    events::{EventKind, EventRecord},
    kernel_tables::{self, KernelTables},
    policy::{
        self, DynamicPorts, Inventory, PortRange, ResolveOptions, profiles, resolve::Conditions,
    },
    replay::{
        Counters, Hosts, Outcome, Replayer,
        capture::{CaptureSet, Link},
        flows::FlowTable,
        infer_hosts,
    },
};
use monitor_common::{classify::Verdict, stats::PacketDir};
use pcap_file::{
    DataLink, Endianness, TsResolution,
    pcap::{PcapHeader, PcapPacket, PcapWriter},
};

const INVENTORY: &str = "nodes = [\"192.0.2.0/24\"]\nadmin = [\"198.51.100.7\"]\n";
const NODE1: [u8; 4] = [192, 0, 2, 1];
const NODE2: [u8; 4] = [192, 0, 2, 2];
const ADMIN: [u8; 4] = [198, 51, 100, 7];
const STRANGER: [u8; 4] = [203, 0, 113, 9];
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const T0: u64 = 1_795_365_758_000_000_000;
const SYN: u8 = 0x02;
const RST_ACK: u8 = 0x14;
const ACK: u8 = 0x10;

fn thoughtspot() -> KernelTables {
    let policy = profiles::load("thoughtspot").unwrap();
    let options = ResolveOptions {
        release: None,
        conditions: Conditions::default(),
        dynamic_ports: DynamicPorts::configured(PortRange {
            lo: 32768,
            hi: 60999,
        }),
    };
    let resolved = policy::resolve(&policy, &options).unwrap();
    let inv = Inventory::parse(INVENTORY, "inventory.toml").unwrap();
    let no_dns = |_: &str| Vec::new();
    kernel_tables::build(
        &policy::entries(&resolved, &[policy::model::NODES.into()]),
        &kernel_tables::Peers {
            inventory: Some(&inv),
            default_nodes: &[],
            resolve: &no_dns,
        },
    )
    .unwrap()
}

fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(MAC, MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 1024);
    if flags & SYN != 0 {
        b = b.syn();
    }
    if flags & ACK != 0 {
        b = b.ack(1);
    }
    if flags & 0x04 != 0 {
        b = b.rst();
    }
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

fn write_pcap(path: &Path, link: DataLink, frames: &[(u64, Vec<u8>)]) {
    let header = PcapHeader {
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Little,
        datalink: link,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (ts, f) in frames {
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(*ts),
            f.len() as u32,
            f,
        ))
        .unwrap();
    }
    std::fs::write(path, w.into_writer()).unwrap();
}

struct Replayed {
    outcomes: Vec<Outcome>,
    records: Vec<EventRecord>,
    counters: Counters,
    evictions: u64,
}

fn replay(tables: &KernelTables, host: &[IpAddr], paths: &[PathBuf], flows: FlowTable) -> Replayed {
    let mut set = CaptureSet::open(paths);
    let mut r = Replayer::with_flow_table(tables, Hosts::new(host), flows);
    let mut records = Vec::new();
    let mut outcomes = Vec::new();
    set.for_each::<()>(|p, names| {
        outcomes.push(r.packet(p, names, &mut records));
        Ok(())
    })
    .unwrap();
    r.finish(set.interfaces(), &mut records);
    Replayed {
        outcomes,
        records,
        evictions: r.evictions(),
        counters: r.counters.clone(),
    }
}

fn node1() -> Vec<IpAddr> {
    vec![IpAddr::from(NODE1)]
}

fn at(ns: u64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

#[test]
fn a_flood_is_one_unexpected_record_then_one_exact_update_at_capture_times() {
    let t = thoughtspot();
    let dir = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    for i in 0..50u64 {
        frames.push((T0 + i * 1000, tcp(ADMIN, NODE1, 40000, 7777, SYN)));
        frames.push((T0 + i * 1000 + 10, tcp(NODE1, ADMIN, 7777, 40000, RST_ACK)));
    }
    // Another source port of the same client: the same flow.
    frames.push((T0 + 99_000, tcp(ADMIN, NODE1, 40001, 7777, SYN)));
    // Allowed: a node reaching ZooKeeper, and its answer.
    frames.push((T0 + 100_000, tcp(NODE2, NODE1, 40002, 2181, SYN)));
    frames.push((T0 + 100_001, tcp(NODE1, NODE2, 2181, 40002, SYN | ACK)));
    // Not the host's traffic at all.
    frames.push((T0 + 100_002, tcp(NODE2, STRANGER, 40003, 22, SYN)));
    let p = dir.path().join("flood.pcap");
    write_pcap(&p, DataLink::ETHERNET, &frames);
    let r = replay(&t, &node1(), &[p], FlowTable::default());
    let c = &r.counters;
    assert_eq!(r.outcomes.len(), frames.len());
    assert_eq!(
        (c.packets, c.allowed, c.unexpected, c.not_host, c.new_flows),
        (104, 2, 101, 1, 1)
    );
    assert!(matches!(
        r.outcomes[102],
        Outcome::Classified(PacketDir::Egress, Verdict::Allowed { reply: true, .. })
    ));
    assert_eq!(r.outcomes[103], Outcome::NotHost);
    assert_eq!(r.records.len(), 2, "{:#?}", r.records);
    let first = &r.records[0];
    assert_eq!(first.kind, EventKind::Unexpected);
    assert_eq!(first.ts, at(T0));
    assert_eq!(first.iface, "flood.pcap");
    assert_eq!(
        (first.src, first.sport, first.dst, first.dport, first.count),
        (IpAddr::from(ADMIN), 40000, IpAddr::from(NODE1), 7777, 1)
    );
    assert_eq!(first.reason.as_deref(), Some("no-rule"));
    let update = &r.records[1];
    assert_eq!(update.kind, EventKind::Update);
    assert_eq!((update.count, update.reply_packets), (51, Some(50)));
    assert_eq!(update.bytes, Some(51 * frames[0].1.len() as u64));
    assert_eq!(
        (update.first_seen, update.last_seen),
        (at(T0), at(T0 + 99_000))
    );
    assert_eq!(update.ts, update.last_seen);
    assert_eq!(update.note, first.note);
}

/// The same packets captured as Ethernet, Linux cooked (SLL, SLL2) and raw
/// IP: the same decisions and records, with the same byte counts (those of
/// the Ethernet frame a live interface would have seen).
#[test]
fn every_link_type_gives_the_records_of_ethernet() {
    let t = thoughtspot();
    let dir = tempfile::tempdir().unwrap();
    let eth: Vec<(u64, Vec<u8>)> = vec![
        (T0, tcp(STRANGER, NODE1, 40000, 2181, SYN)),
        (T0 + 1, tcp(NODE1, STRANGER, 2181, 40000, RST_ACK)),
        (T0 + 2, tcp(STRANGER, NODE1, 40000, 2181, SYN)),
        (T0 + 3, tcp(NODE2, NODE1, 40001, 2181, SYN)),
    ];
    fn same(f: &[u8]) -> Vec<u8> {
        f.to_vec()
    }
    fn sll(f: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        v.extend_from_slice(&f[12..]);
        v
    }
    fn sll2(f: &[u8]) -> Vec<u8> {
        let mut v = f[12..14].to_vec();
        v.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        v.extend_from_slice(&f[14..]);
        v
    }
    fn raw(f: &[u8]) -> Vec<u8> {
        f[14..].to_vec()
    }
    type Convert = fn(&[u8]) -> Vec<u8>;
    let kinds: [(&str, DataLink, Convert); 5] = [
        ("eth", DataLink::ETHERNET, same),
        ("sll", DataLink::LINUX_SLL, sll),
        ("sll2", DataLink::LINUX_SLL2, sll2),
        ("raw", DataLink::RAW, raw),
        ("ipv4", DataLink::IPV4, raw),
    ];
    let mut results = Vec::new();
    for (name, dl, conv) in kinds {
        let p = dir.path().join(name);
        let frames: Vec<(u64, Vec<u8>)> = eth.iter().map(|(ts, f)| (*ts, conv(f))).collect();
        write_pcap(&p, dl, &frames);
        let mut r = replay(&t, &node1(), &[p], FlowTable::default());
        assert_eq!(r.counters.packets, 4, "{name}");
        for rec in &mut r.records {
            rec.iface.clear();
        }
        results.push((name, r.outcomes, r.records));
    }
    let (_, want_outcomes, want_records) = &results[0];
    assert_eq!(want_records.len(), 2);
    assert_eq!(want_records[1].bytes, Some(2 * eth[0].1.len() as u64));
    assert_eq!(want_records[1].count, 2);
    assert_eq!(want_records[1].reply_packets, Some(1));
    for (name, outcomes, records) in &results[1..] {
        assert_eq!(outcomes, want_outcomes, "{name}");
        assert_eq!(records, want_records, "{name}");
    }
    let mut set = CaptureSet::open(&[dir.path().join("sll2")]);
    set.for_each::<()>(|p, _| {
        assert_eq!(p.link, Link::Sll2);
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_full_flow_table_evicts_the_least_recent_flow_and_reports_its_counts() {
    let t = thoughtspot();
    let dir = tempfile::tempdir().unwrap();
    let frames = vec![
        (T0, tcp(ADMIN, NODE1, 40000, 7001, SYN)),
        (T0 + 1, tcp(ADMIN, NODE1, 40000, 7002, SYN)),
        // 7001 becomes the most recent.
        (T0 + 2, tcp(ADMIN, NODE1, 40001, 7001, SYN)),
        // Evicts 7002 (one packet: no update to write).
        (T0 + 3, tcp(ADMIN, NODE1, 40000, 7003, SYN)),
        // 7002 again: a new sighting, evicting 7001 with its two packets.
        (T0 + 4, tcp(ADMIN, NODE1, 40002, 7002, SYN)),
    ];
    let p = dir.path().join("lru.pcap");
    write_pcap(&p, DataLink::ETHERNET, &frames);
    let r = replay(&t, &node1(), &[p], FlowTable::with_capacity(2));
    assert_eq!(r.evictions, 2);
    assert_eq!(r.counters.new_flows, 4);
    let summary: Vec<(EventKind, u16, u64)> = r
        .records
        .iter()
        .map(|r| (r.kind, r.dport, r.count))
        .collect();
    assert_eq!(
        summary,
        vec![
            (EventKind::Unexpected, 7001, 1),
            (EventKind::Unexpected, 7002, 1),
            (EventKind::Unexpected, 7003, 1),
            (EventKind::Update, 7001, 2),
            (EventKind::Unexpected, 7002, 1),
        ]
    );
}

#[test]
fn without_host_the_address_in_most_packets_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    for i in 0..10u16 {
        frames.push((T0 + u64::from(i), tcp(STRANGER, NODE1, 40000 + i, 22, SYN)));
        frames.push((
            T0 + 100 + u64::from(i),
            tcp(NODE1, ADMIN, 50000 + i, 443, SYN),
        ));
    }
    frames.push((T0 + 1000, tcp(NODE2, [255, 255, 255, 255], 1, 2, 0)));
    let p = dir.path().join("host.pcap");
    write_pcap(&p, DataLink::ETHERNET, &frames);
    let inf = infer_hosts(&mut CaptureSet::open(&[p])).unwrap();
    assert_eq!(inf.hosts, vec![IpAddr::from(NODE1)]);
    assert_eq!(inf.evidence, vec![(IpAddr::from(NODE1), 20, 21)]);
}

/// Garbage inside packets (runts, impossible headers, headers cut by the
/// snapshot length, non-IP) is counted as the kernel counts it, never
/// classified and never fatal.
#[test]
fn garbage_headers_are_counted_as_unparsed_and_the_rest_is_classified() {
    use monitor_common::packet::ParseError;
    let t = thoughtspot();
    let dir = tempfile::tempdir().unwrap();
    let good = tcp(ADMIN, NODE1, 40000, 7777, SYN);
    let mut ihl3 = good.clone();
    ihl3[14] = 0x43;
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let frames = vec![
        (T0, vec![0xff; 10]),
        (T0 + 1, ihl3),
        (T0 + 2, good[..40].to_vec()),
        (T0 + 3, arp),
        (T0 + 4, good.clone()),
    ];
    let p = dir.path().join("garbage.pcap");
    write_pcap(&p, DataLink::ETHERNET, &frames);
    let r = replay(&t, &node1(), &[p], FlowTable::default());
    assert_eq!(
        r.outcomes[..4],
        [
            Outcome::Unparsed(ParseError::Truncated),
            Outcome::Unparsed(ParseError::Malformed),
            Outcome::Unparsed(ParseError::Truncated),
            Outcome::Unparsed(ParseError::NotIp),
        ]
    );
    assert!(matches!(
        r.outcomes[4],
        Outcome::Classified(PacketDir::Ingress, Verdict::Unexpected { .. })
    ));
    let c = &r.counters;
    assert_eq!(
        (
            c.truncated,
            c.malformed,
            c.not_ip,
            c.unexpected,
            c.new_flows
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(r.records.len(), 1);
}
