//! The replay guarantee, proven differentially: one corpus of frames goes
//! through the kernel programs (BPF_PROG_TEST_RUN) and, written to a pcap
//! file, through `portconform replay`. Packet by packet the decisions are
//! the same (allowed by the same rule, unexpected, infrastructure, later
//! fragment), and the events are the same: replay's first sightings are the
//! kernel's ring-buffer events, enriched by the same code, stamped with the
//! capture time of the packet that caused them; its closing updates carry
//! the kernel's flow counters.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::Path,
    process::Command,
    time::{Duration, UNIX_EPOCH},
};

use monitor::{
    enrich::{Clock, Enricher},
    events::{EventKind, EventRecord},
    kernel_tables::KernelTables,
    replay::{Hosts, Outcome, Replayer, capture::CaptureSet},
};
use monitor_common::{
    classify::Verdict,
    flow::{FlowEvent, Kstat},
    packet::{TCP_ACK, TCP_RST, TCP_SYN},
    stats::PacketDir,
};
use portconform_tests::{
    fixtures::{
        self, ADMIN, INVENTORY, NODE1, NODE1_V6, NODE2, NODE2_V6, STRANGER, STRANGER_V6, echo,
        fragment, tcp, tcp_carrying, udp, unreachable, vlan,
    },
    kernel::{self, Kernel},
    portconform_bin,
};

/// 2026-11-22T16:42:38Z, and the gap between packets.
const T0: u64 = 1_795_365_758_000_000_000;
const STEP: u64 = 1_000_003;

/// A TCP segment between IPv6 addresses, with a byte of payload.
fn tcp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    tcp_carrying(src, dst, sport, dport, flags, b"x")
}

/// The corpus: (direction as the host sees it, frame).
fn corpus() -> Vec<(PacketDir, Vec<u8>)> {
    use PacketDir::{Egress as Out, Ingress as In};
    let mut c = vec![
        // Allowed ZooKeeper between nodes, both ways of a handshake.
        (In, tcp(NODE2, NODE1, 40000, 2181, TCP_SYN)),
        (Out, tcp(NODE1, NODE2, 2181, 40000, TCP_SYN | TCP_ACK)),
        (In, tcp(NODE2, NODE1, 40000, 2181, TCP_ACK)),
        // Admin on an allowed debug port and on a port only nodes may use.
        (In, tcp(ADMIN, NODE1, 50000, 2101, TCP_SYN)),
        (In, tcp(ADMIN, NODE1, 50000, 2100, TCP_SYN)),
        (Out, tcp(NODE1, ADMIN, 2100, 50000, TCP_RST | TCP_ACK)),
        // Strangers: SSH in, then HTTPS out, each answered.
        (In, tcp(STRANGER, NODE1, 50001, 22, TCP_SYN)),
        (Out, tcp(NODE1, STRANGER, 22, 50001, TCP_SYN | TCP_ACK)),
        (In, tcp(STRANGER, NODE1, 50001, 22, TCP_ACK)),
        (Out, tcp(NODE1, STRANGER, 50002, 443, TCP_SYN)),
        (In, tcp(STRANGER, NODE1, 443, 50002, TCP_SYN | TCP_ACK)),
        // An unexpected port, refused by resets, retried from new ports.
        (In, tcp(ADMIN, NODE1, 40010, 6666, TCP_SYN)),
        (Out, tcp(NODE1, ADMIN, 6666, 40010, TCP_RST | TCP_ACK)),
        (In, tcp(ADMIN, NODE1, 40011, 6666, TCP_SYN)),
        (Out, tcp(NODE1, ADMIN, 6666, 40011, TCP_RST | TCP_ACK)),
        // Between nodes, client ports in the dynamic range the document
        // allows between them: an unexpected connection's data both ways is
        // its own, and resets answer required attempts both ways.
        (In, tcp(NODE2, NODE1, 40030, 6666, TCP_SYN)),
        (
            In,
            tcp_carrying(NODE2, NODE1, 40030, 6666, TCP_ACK, b"data"),
        ),
        (
            Out,
            tcp_carrying(NODE1, NODE2, 6666, 40030, TCP_ACK, b"echo"),
        ),
        (In, tcp(NODE2, NODE1, 40030, 6666, TCP_ACK)),
        (In, tcp(NODE2, NODE1, 40031, 2888, TCP_SYN)),
        (Out, tcp(NODE1, NODE2, 2888, 40031, TCP_RST | TCP_ACK)),
        (Out, tcp(NODE1, NODE2, 40032, 4500, TCP_SYN)),
        (In, tcp(NODE2, NODE1, 4500, 40032, TCP_RST | TCP_ACK)),
        (In, tcp(NODE2, NODE1, 40033, 45000, TCP_ACK)),
        // A connection already open when the capture began (no SYN).
        (In, tcp(STRANGER, NODE1, 51000, 8443, TCP_ACK)),
        (Out, tcp(NODE1, STRANGER, 8443, 51000, TCP_ACK)),
        // UDP: DNS out to a stranger and its answer; a node's query in.
        (Out, udp(NODE1, STRANGER, 45000, 5353, b"query")),
        (In, udp(STRANGER, NODE1, 5353, 45000, b"query")),
        (In, udp(NODE2, NODE1, 40001, 53, b"query")),
        // IPv6.
        (In, tcp6(NODE2_V6, NODE1_V6, 40003, 2181, TCP_SYN)),
        (
            Out,
            tcp6(NODE1_V6, NODE2_V6, 2181, 40003, TCP_SYN | TCP_ACK),
        ),
        (In, tcp6(STRANGER_V6, NODE1_V6, 40004, 2181, TCP_SYN)),
        (
            Out,
            tcp6(NODE1_V6, STRANGER_V6, 2181, 40004, TCP_RST | TCP_ACK),
        ),
        (Out, udp(NODE1_V6, STRANGER_V6, 40005, 123, b"q")),
        (In, udp(STRANGER_V6, NODE1_V6, 123, 40005, b"q")),
        // ICMP: echo both ways, errors.
        (In, echo(NODE2, NODE1, false)),
        (Out, echo(NODE1, NODE2, true)),
        (In, echo(STRANGER, NODE1, false)),
        (Out, echo(NODE1, STRANGER, true)),
        (Out, echo(NODE1, STRANGER, false)),
        (In, echo(STRANGER, NODE1, true)),
        (In, echo(STRANGER_V6, NODE1_V6, false)),
        (Out, echo(NODE1_V6, STRANGER_V6, true)),
        (In, unreachable(STRANGER, NODE1)),
        (Out, unreachable(NODE1, STRANGER)),
        // VLAN and QinQ.
        (In, vlan(tcp(ADMIN, NODE1, 40020, 9999, TCP_SYN), &[7])),
        (In, vlan(tcp(ADMIN, NODE1, 40021, 9999, TCP_SYN), &[100, 7])),
        (In, vlan(tcp(NODE2, NODE1, 40022, 2181, TCP_SYN), &[7])),
        // Fragments: the first is judged by its ports, later ones are not.
        (In, fragment(STRANGER, NODE1, false)),
        (In, fragment(STRANGER, NODE1, true)),
        (Out, fragment(NODE1, STRANGER, true)),
    ];
    // A flood of one unexpected flow from random ports: one event, counts.
    for i in 0..20u16 {
        c.push((In, tcp(STRANGER, NODE1, 30000 + i, 7777, TCP_SYN)));
        c.push((
            Out,
            tcp(NODE1, STRANGER, 7777, 30000 + i, TCP_RST | TCP_ACK),
        ));
    }
    c
}

/// What a packet did, from the kernel's counters or replay's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Allowed(u16),
    Unexpected,
    Infrastructure,
    Fragment,
    Unparsed,
}

/// A nanosecond pcap, little endian, Ethernet. Written by hand: the format
/// is four fields, and this crate does not depend on a pcap library.
fn write_pcap(path: &Path, frames: &[(PacketDir, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, (_, f)) in frames.iter().enumerate() {
        let ts = T0 + i as u64 * STEP;
        out.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

fn hosts() -> Vec<IpAddr> {
    vec![IpAddr::from(NODE1), IpAddr::from(NODE1_V6)]
}

/// Runs the corpus through the kernel: each packet's class, and the first
/// sightings with the index of the packet that caused each.
fn through_kernel(
    tables: &KernelTables,
    frames: &[(PacketDir, Vec<u8>)],
) -> (Vec<Class>, Vec<(usize, FlowEvent)>, Kernel) {
    let mut kernel = Kernel::load().expect("load the eBPF object (needs root)");
    kernel.enable_policy(tables).expect("write the tables");
    let rules = tables.rules.len();
    let rule_counts = |k: &Kernel| -> Vec<u64> {
        (0..rules as u16)
            .map(|r| k.rule_packets(r).unwrap())
            .collect()
    };
    let kstats = |k: &Kernel| {
        [Kstat::Unexpected, Kstat::Infrastructure, Kstat::Fragments].map(|s| k.kstat(s).unwrap())
    };
    let mut classes = Vec::new();
    let mut events = Vec::new();
    for (i, (dir, frame)) in frames.iter().enumerate() {
        let (rules_before, stats_before) = (rule_counts(&kernel), kstats(&kernel));
        kernel
            .run(kernel::program(*dir), frame, 1)
            .expect("test_run");
        let (rules_after, stats_after) = (rule_counts(&kernel), kstats(&kernel));
        let bumped: Vec<u16> = (0..rules)
            .filter(|&r| rules_after[r] != rules_before[r])
            .map(|r| r as u16)
            .collect();
        let d = [0, 1, 2].map(|s| stats_after[s] - stats_before[s]);
        let class = match (bumped.as_slice(), d) {
            ([rule], [0, 0, 0]) => Class::Allowed(*rule),
            ([], [1, 0, 0]) => Class::Unexpected,
            ([], [0, 1, 0]) => Class::Infrastructure,
            ([], [0, 0, 1]) => Class::Fragment,
            ([], [0, 0, 0]) => Class::Unparsed,
            other => panic!("frame {i}: the kernel did several things: {other:?}"),
        };
        classes.push(class);
        for ev in kernel.events().unwrap() {
            events.push((i, ev));
        }
    }
    (classes, events, kernel)
}

fn class_of(outcome: Outcome) -> Class {
    match outcome {
        Outcome::Classified(_, Verdict::Allowed { rule, .. }) => Class::Allowed(rule),
        Outcome::Classified(_, Verdict::Unexpected { .. }) => Class::Unexpected,
        Outcome::Classified(_, Verdict::Infrastructure) => Class::Infrastructure,
        Outcome::Classified(_, Verdict::Fragment) => Class::Fragment,
        other => panic!("replay did not classify a corpus packet: {other:?}"),
    }
}

/// The key a record is matched on: everything but times and interface.
fn identity(r: &EventRecord) -> String {
    format!(
        "{} {} {} {}:{} -> {}:{}",
        r.kind, r.direction, r.proto, r.src, r.sport, r.dst, r.dport
    )
}

fn without_times(r: &EventRecord) -> EventRecord {
    let mut r = r.clone();
    r.ts = UNIX_EPOCH;
    r.first_seen = UNIX_EPOCH;
    r.last_seen = UNIX_EPOCH;
    r
}

#[test]
fn kernel_and_replay_decide_and_report_identically() {
    let tables = fixtures::tables().expect("tables");
    let frames = corpus();
    let dir = std::env::temp_dir().join(format!("pct-{}-replay-diff", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join("corpus.pcap");
    write_pcap(&capture, &frames);

    // 1. Packet by packet: the kernel's counters against replay's verdicts.
    let (kernel_classes, kernel_events, kernel) = through_kernel(&tables, &frames);
    let mut set = CaptureSet::open(std::slice::from_ref(&capture));
    let mut replayer = Replayer::new(&tables, Hosts::new(&hosts()));
    let mut outcomes = Vec::new();
    let mut sink = Vec::new();
    set.for_each::<()>(|p, names| {
        outcomes.push(replayer.packet(p, names, &mut sink));
        Ok(())
    })
    .unwrap();
    assert_eq!(outcomes.len(), frames.len());
    for (i, ((dir, frame), outcome)) in frames.iter().zip(&outcomes).enumerate() {
        let Outcome::Classified(replay_dir, _) = outcome else {
            panic!("frame {i}: {outcome:?}")
        };
        assert_eq!(replay_dir, dir, "frame {i}: direction");
        assert_eq!(
            class_of(*outcome),
            kernel_classes[i],
            "frame {i} {frame:02x?}: replay {outcome:?}"
        );
    }
    // The corpus exercises every class.
    for want in [Class::Unexpected, Class::Infrastructure, Class::Fragment] {
        assert!(kernel_classes.contains(&want), "{want:?}");
    }
    assert!(
        kernel_classes
            .iter()
            .any(|c| matches!(c, Class::Allowed(_)))
    );

    // 2. The command's events: first sightings equal the kernel's events.
    let events_path = dir.join("events.jsonl");
    let _ = std::fs::remove_file(&events_path);
    let inventory = dir.join("inventory.toml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let out = Command::new(portconform_bin())
        .arg("replay")
        .arg("--no-resolve")
        .arg(&capture)
        .args(["--host", "192.0.2.1", "--host", "2001:db8:1::1"])
        .args(["--profile", "thoughtspot", "--dynamic-ports", "32768-60999"])
        .arg("--inventory")
        .arg(&inventory)
        .arg("--events")
        .arg(&events_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let records: Vec<EventRecord> = std::fs::read_to_string(&events_path)
        .unwrap()
        .lines()
        // Per-rule verdicts close the file; they are not flow records.
        .filter(|l| !l.contains(r#""kind":"required""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let enricher = Enricher {
        tables: std::sync::Arc::new(tables.clone()),
        ifaces: vec![(1u32, "corpus.pcap".to_string())],
        clock: Clock::epoch(),
        host: Some("192.0.2.1,2001:db8:1::1".to_string()),
    };
    let firsts: Vec<&EventRecord> = records
        .iter()
        .filter(|r| r.kind == EventKind::Unexpected)
        .collect();
    assert_eq!(
        firsts.len(),
        kernel_events.len(),
        "replay: {firsts:#?}\nkernel: {kernel_events:#?}"
    );
    for ((i, ev), got) in kernel_events.iter().zip(&firsts) {
        let want = enricher.first_sighting(ev);
        assert_eq!(
            without_times(got),
            without_times(&want),
            "event of frame {i}"
        );
        let ts = UNIX_EPOCH + Duration::from_nanos(T0 + *i as u64 * STEP);
        assert_eq!((got.ts, got.first_seen, got.last_seen), (ts, ts, ts));
    }

    // 3. Closing updates carry the kernel's flow counters.
    let updates: HashMap<String, &EventRecord> = records
        .iter()
        .filter(|r| r.kind == EventKind::Update)
        .map(|r| (identity(r).replacen("update", "unexpected", 1), r))
        .collect();
    let kernel_flows = kernel.flows().unwrap();
    assert_eq!(kernel_flows.len(), kernel_events.len());
    let mut expected_updates = 0;
    for (_, ev) in &kernel_events {
        let first = enricher.first_sighting(ev);
        let (_, state) = kernel_flows
            .iter()
            .find(|(k, _)| *k == ev.key)
            .expect("the kernel tracks every flow it reported");
        let moved = (state.packets, state.reply_packets)
            != (u64::from(ev.forward != 0), u64::from(ev.forward == 0));
        let got = updates.get(&identity(&first));
        assert_eq!(got.is_some(), moved, "{}", identity(&first));
        if let Some(u) = got {
            expected_updates += 1;
            assert_eq!(
                (u.count, u.bytes, u.reply_packets),
                (state.packets, Some(state.bytes), Some(state.reply_packets)),
                "{}",
                identity(&first)
            );
        }
    }
    assert_eq!(updates.len(), expected_updates);
    eprintln!(
        "{} packets, {} first sightings, {expected_updates} updates agree",
        frames.len(),
        kernel_events.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
