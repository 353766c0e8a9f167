//! The classifier in the kernel (BPF_PROG_TEST_RUN) against the thoughtspot
//! profile: allowed traffic bumps its rule's counter and nothing else;
//! unexpected traffic is deduplicated into one flow and one ring-buffer
//! event; and for every frame, the kernel does what the same classifier
//! compiled for the host says it should (the replay guarantee).

use monitor::kernel_tables::KernelTables;
use monitor_common::{
    classify::{Conn, FlowLookup, Reason, Verdict, classify},
    flow::{EVENT_UNEXPECTED, FlowKey, Kstat},
    maps::{PROG_EGRESS, PROG_INGRESS},
    packet::{self, Parsed, TCP_ACK, TCP_RST, TCP_SYN},
    stats::{PacketDir, slot_of},
};
use portconform_tests::{
    fixtures::{
        self, ADMIN, NODE1, NODE1_V6, NODE2, NODE2_V6, STRANGER, echo, tcp, tcp_carrying, udp, vlan,
    },
    kernel::{self, Kernel},
};

fn setup() -> (Kernel, KernelTables) {
    let tables = fixtures::tables().expect("tables");
    let mut kernel = Kernel::load().expect("load");
    kernel.enable_policy(&tables).expect("write tables");
    (kernel, tables)
}

fn run(kernel: &Kernel, dir: PacketDir, frame: &[u8]) {
    kernel
        .run(kernel::program(dir), frame, 1)
        .expect("test_run");
}

fn rule_of(tables: &KernelTables, port: &str) -> u16 {
    tables
        .rules
        .iter()
        .position(|r| r.ports == port && r.peer_label.contains("nodes"))
        .expect("rule") as u16
}

#[test]
fn allowed_traffic_bumps_its_rule_and_reports_nothing() {
    let (mut kernel, tables) = setup();
    let zk = rule_of(&tables, "2181");
    run(
        &kernel,
        PacketDir::Ingress,
        &tcp(NODE2, NODE1, 40000, 2181, TCP_SYN),
    );
    run(
        &kernel,
        PacketDir::Egress,
        &tcp(NODE1, NODE2, 2181, 40000, TCP_SYN | TCP_ACK),
    );
    run(
        &kernel,
        PacketDir::Ingress,
        &tcp(NODE2, NODE1, 40000, 2181, TCP_ACK),
    );
    assert_eq!(kernel.rule_packets(zk).unwrap(), 3);
    assert_eq!(kernel.allowed_packets(tables.rules.len()).unwrap(), 3);
    assert_eq!(kernel.kstat(Kstat::Unexpected).unwrap(), 0);
    assert!(kernel.events().unwrap().is_empty());
    assert!(kernel.flows().unwrap().is_empty());
}

/// A reload makes the other policy set live. Traffic counters go on adding
/// up across it; rule counters belong to their set, and a set's are zeroed
/// when it is filled again.
#[test]
fn counters_carry_on_across_policy_swaps() {
    let (mut kernel, tables) = setup();
    let zk = rule_of(&tables, "2181");
    let ack = tcp(NODE2, NODE1, 40000, 2181, TCP_ACK);
    let tcp4 = slot_of(&packet::parse_ethernet(&ack[..]).unwrap());
    kernel.run(PROG_INGRESS, &ack, 5).expect("test_run");
    kernel
        .swap_policy(1, &tables, None, &tables)
        .expect("swap to B");
    kernel.run(PROG_INGRESS, &ack, 3).expect("test_run");
    assert_eq!(kernel.rule_packets_in(0, zk).unwrap(), 5);
    assert_eq!(kernel.rule_packets_in(1, zk).unwrap(), 3);
    let traffic = |k: &Kernel| k.counters().unwrap().get(PacketDir::Ingress, tcp4).packets;
    assert_eq!(traffic(&kernel), 8);

    kernel
        .swap_policy(0, &tables, Some(&tables), &tables)
        .expect("swap back to A");
    assert_eq!(kernel.rule_packets_in(0, zk).unwrap(), 0);
    kernel.run(PROG_INGRESS, &ack, 2).expect("test_run");
    assert_eq!(kernel.rule_packets_in(0, zk).unwrap(), 2);
    assert_eq!(kernel.rule_packets_in(1, zk).unwrap(), 3);
    assert_eq!(traffic(&kernel), 10);
}

#[test]
fn a_flood_of_one_unexpected_flow_is_one_event_and_a_count() {
    let (mut kernel, _) = setup();
    let syn = tcp(ADMIN, NODE1, 40000, 7777, TCP_SYN);
    kernel.run(PROG_INGRESS, &syn, 500).expect("test_run");
    // The host answers each with a reset: the same flow, counted as replies.
    kernel
        .run(
            PROG_EGRESS,
            &tcp(NODE1, ADMIN, 7777, 40000, TCP_RST | TCP_ACK),
            500,
        )
        .expect("test_run");
    // Another source port of the same client is still the same flow.
    run(
        &kernel,
        PacketDir::Ingress,
        &tcp(ADMIN, NODE1, 40001, 7777, TCP_SYN),
    );
    let events = kernel.events().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = events[0];
    assert_eq!(
        (
            ev.kind,
            ev.reason,
            ev.key.service_port,
            ev.sport,
            ev.forward
        ),
        (EVENT_UNEXPECTED, Reason::NoRule as u8, 7777, 40000, 1)
    );
    assert_eq!(&ev.key.initiator[..4], &ADMIN);
    assert_eq!(usize::from(ev.captured), syn.len());
    assert_eq!(&ev.header[..syn.len()], &syn[..]);
    let flows = kernel.flows().unwrap();
    assert_eq!(flows.len(), 1);
    let (_, state) = flows[0];
    assert_eq!((state.packets, state.reply_packets), (501, 500));
    assert_eq!(kernel.kstat(Kstat::NewFlows).unwrap(), 1);
}

/// An event carries the frame's first bytes, copied in the kernel (by
/// words, then bytes, on ingress; by the skb helper on egress): every byte
/// of a frame shorter than the header window whatever its length, the
/// window's worth of a longer one.
#[test]
fn events_carry_the_first_bytes_of_short_and_long_frames() {
    use monitor_common::flow::EVENT_HEADER_BYTES;
    let syn = |src, dst, dport, payload: usize| {
        tcp_carrying(src, dst, 41000, dport, TCP_SYN, &vec![0xa5; payload])
    };
    for payload in [0, 1, 7, 9, 74, 200] {
        let (mut kernel, _) = setup();
        let inbound = syn(STRANGER, NODE1, 7777, payload);
        let outbound = syn(NODE1, STRANGER, 7778, payload);
        run(&kernel, PacketDir::Ingress, &inbound);
        run(&kernel, PacketDir::Egress, &outbound);
        let events = kernel.events().unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        for ev in events {
            let frame = if ev.key.service_port == 7777 {
                &inbound
            } else {
                &outbound
            };
            let n = frame.len().min(EVENT_HEADER_BYTES);
            assert_eq!(usize::from(ev.captured), n, "{} bytes", frame.len());
            assert_eq!(&ev.header[..n], &frame[..n], "{} bytes", frame.len());
        }
    }
}

/// Two flows sharing one seen-flow slot take it from each other on every
/// packet: each handover adds the slot's packets to the flow's LRU entry,
/// and the packets still in the slot are added when userspace reads. The
/// counts stay exact either way.
#[test]
fn flows_sharing_a_seen_slot_keep_exact_counts() {
    let (mut kernel, _) = setup();
    let key = |src: [u8; 4]| {
        let mut k = FlowKey {
            service_port: 7777,
            proto: 6,
            direction: 0,
            ..Default::default()
        };
        k.initiator[..4].copy_from_slice(&src);
        k.responder[..4].copy_from_slice(&NODE1);
        k
    };
    let first = ADMIN;
    let slot = key(first).seen_slot();
    let second = (1..=254u8)
        .map(|i| [203, 0, 113, i])
        .find(|a| key(*a).seen_slot() == slot)
        .expect("a documentation address sharing the slot");
    let a = tcp(first, NODE1, 40000, 7777, TCP_SYN);
    let b = tcp(second, NODE1, 40000, 7777, TCP_SYN);
    for round in 1..=20u32 {
        kernel.run(PROG_INGRESS, &a, round).expect("test_run");
        kernel.run(PROG_INGRESS, &b, 3).expect("test_run");
    }
    // The last packets stay in the slot until userspace reads them.
    kernel.run(PROG_INGRESS, &a, 7).expect("test_run");
    assert_eq!(kernel.events().unwrap().len(), 2);
    let mut counts: Vec<([u8; 4], u64)> = kernel
        .flows()
        .unwrap()
        .iter()
        .map(|(k, s)| {
            (
                [
                    k.initiator[0],
                    k.initiator[1],
                    k.initiator[2],
                    k.initiator[3],
                ],
                s.packets,
            )
        })
        .collect();
    counts.sort();
    let mut want = vec![(first, 210 + 7), (second, 60)];
    want.sort();
    assert_eq!(counts, want);
    assert_eq!(kernel.kstat(Kstat::Unexpected).unwrap(), 277);
}

/// A flood held in its seen-flow slot reads the clock only when a timer tick
/// has passed; its last sighting must still move on with the flood.
#[test]
fn a_flood_held_in_its_slot_keeps_its_last_sighting_current() {
    let (mut kernel, _) = setup();
    let syn = tcp(ADMIN, NODE1, 40000, 7777, TCP_SYN);
    kernel.run(PROG_INGRESS, &syn, 100).expect("test_run");
    let last_seen = |kernel: &Kernel| {
        let flows = kernel.flows().unwrap();
        assert_eq!(flows.len(), 1);
        (flows[0].1.packets, flows[0].1.last_seen_ns)
    };
    let (packets, before) = last_seen(&kernel);
    assert_eq!(packets, 100);
    std::thread::sleep(std::time::Duration::from_millis(100));
    kernel.run(PROG_INGRESS, &syn, 100).expect("test_run");
    let (packets, after) = last_seen(&kernel);
    assert_eq!(packets, 200);
    // 100 ms passed; the coarse clock may lag by a tick (10 ms at HZ=100)
    // at either end.
    assert!(
        after >= before + 70_000_000,
        "last sighting moved {} ns",
        after - before
    );
    assert_eq!(kernel.events().unwrap().len(), 1);
}

#[test]
fn an_allowed_port_from_the_wrong_peer_names_the_nearest_rule() {
    let (mut kernel, tables) = setup();
    run(
        &kernel,
        PacketDir::Ingress,
        &tcp(STRANGER, NODE1, 40000, 2181, TCP_SYN),
    );
    let events = kernel.events().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, Reason::PeerNotAllowed as u8);
    assert_eq!(tables.rule(events[0].nearest_rule).unwrap().ports, "2181");
}

#[test]
fn outbound_unexpected_and_udp_flows_are_oriented_by_service() {
    let (mut kernel, _) = setup();
    // node1 queries a DNS server that no rule names, then gets the answer.
    run(
        &kernel,
        PacketDir::Egress,
        &udp(NODE1, STRANGER, 45000, 5353, b"q"),
    );
    run(
        &kernel,
        PacketDir::Ingress,
        &udp(STRANGER, NODE1, 5353, 45000, b"q"),
    );
    let events = kernel.events().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].key.service_port, 5353);
    let flows = kernel.flows().unwrap();
    assert_eq!((flows[0].1.packets, flows[0].1.reply_packets), (1, 1));
}

/// The unexpected flows the kernel counts, as the host classifier sees
/// them: before each frame, the kernel's `PC_FLOWS` keys.
struct KernelCounts(Vec<FlowKey>);

impl FlowLookup for KernelCounts {
    fn tracks(&self, parsed: &Parsed, conn: &Conn) -> bool {
        self.0.contains(&FlowKey::new(parsed, conn))
    }
}

/// The classification corpus: for each frame and direction, what the host
/// classifier decides (knowing the flows the kernel counts) is what the
/// kernel does. Client ports 40000 and up lie in the dynamic range the
/// document allows between nodes, as a host's default range does.
#[test]
fn kernel_and_host_classifier_agree_frame_by_frame() {
    let (mut kernel, tables) = setup();
    let mut frames: Vec<(PacketDir, Vec<u8>)> = vec![
        (PacketDir::Ingress, tcp(NODE2, NODE1, 40000, 2181, TCP_SYN)),
        (
            PacketDir::Egress,
            tcp(NODE1, NODE2, 2181, 40000, TCP_SYN | TCP_ACK),
        ),
        (PacketDir::Ingress, tcp(ADMIN, NODE1, 50000, 2101, TCP_SYN)),
        (PacketDir::Ingress, tcp(ADMIN, NODE1, 50000, 2100, TCP_SYN)),
        (PacketDir::Ingress, tcp(STRANGER, NODE1, 50001, 22, TCP_SYN)),
        (PacketDir::Egress, tcp(NODE1, STRANGER, 50002, 443, TCP_SYN)),
        (PacketDir::Ingress, udp(NODE2, NODE1, 40001, 53, b"q")),
        (PacketDir::Ingress, tcp(NODE2, NODE1, 40002, 6666, TCP_SYN)),
        // Data of that unexpected connection, both ways: its own packets,
        // not dynamic-range traffic.
        (PacketDir::Ingress, tcp(NODE2, NODE1, 40002, 6666, TCP_ACK)),
        (PacketDir::Egress, tcp(NODE1, NODE2, 6666, 40002, TCP_ACK)),
        (
            PacketDir::Egress,
            tcp(NODE1, NODE2, 6666, 40002, TCP_RST | TCP_ACK),
        ),
        // A refused required attempt, both ways: the reset answers it.
        (PacketDir::Ingress, tcp(NODE2, NODE1, 40005, 2181, TCP_SYN)),
        (
            PacketDir::Egress,
            tcp(NODE1, NODE2, 2181, 40005, TCP_RST | TCP_ACK),
        ),
        (PacketDir::Egress, tcp(NODE1, NODE2, 40006, 2181, TCP_SYN)),
        (
            PacketDir::Ingress,
            tcp(NODE2, NODE1, 2181, 40006, TCP_RST | TCP_ACK),
        ),
        // Dynamic-range traffic between nodes that no tracked flow claims.
        (PacketDir::Ingress, tcp(NODE2, NODE1, 40007, 45000, TCP_ACK)),
    ];
    frames.push((
        PacketDir::Ingress,
        tcp(NODE2_V6, NODE1_V6, 40003, 2181, TCP_SYN),
    ));
    frames.push((PacketDir::Ingress, echo(NODE2, NODE1, false)));
    frames.push((
        PacketDir::Ingress,
        vlan(tcp(ADMIN, NODE1, 40004, 9999, TCP_SYN), &[7]),
    ));
    let mut frag = udp(NODE2, NODE1, 1, 2, b"q");
    frag[14 + 7] = 0x10; // a later fragment
    frames.push((PacketDir::Ingress, frag));

    for (dir, frame) in &frames {
        let parsed = packet::parse_ethernet(&frame[..]).expect("parses");
        let counted = KernelCounts(
            kernel
                .flows()
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
        );
        let verdict = classify(&tables, &counted, &parsed, *dir);
        let before = (
            kernel.allowed_packets(tables.rules.len()).unwrap(),
            kernel.kstat(Kstat::Unexpected).unwrap(),
            kernel.kstat(Kstat::Infrastructure).unwrap(),
            kernel.kstat(Kstat::Fragments).unwrap(),
        );
        run(&kernel, *dir, frame);
        let after = (
            kernel.allowed_packets(tables.rules.len()).unwrap(),
            kernel.kstat(Kstat::Unexpected).unwrap(),
            kernel.kstat(Kstat::Infrastructure).unwrap(),
            kernel.kstat(Kstat::Fragments).unwrap(),
        );
        let delta = (
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2,
            after.3 - before.3,
        );
        let want = match verdict {
            Verdict::Allowed { .. } => (1, 0, 0, 0),
            Verdict::Unexpected { .. } => (0, 1, 0, 0),
            Verdict::Infrastructure => (0, 0, 1, 0),
            Verdict::Fragment => (0, 0, 0, 1),
        };
        assert_eq!(
            delta, want,
            "{dir:?} frame {frame:02x?}: host says {verdict:?}"
        );
        if let Verdict::Unexpected { conn, .. } = verdict {
            let key = FlowKey::new(&parsed, &conn);
            let flipped = FlowKey::flipped(&parsed, &conn);
            assert!(
                kernel
                    .flows()
                    .unwrap()
                    .iter()
                    .any(|(k, _)| *k == key || *k == flipped),
                "{dir:?}: flow of {verdict:?} not tracked"
            );
        }
    }
    // Each distinct unexpected flow was reported once.
    let events = kernel.events().unwrap();
    assert_eq!(events.len(), kernel.flows().unwrap().len());
}

/// Runs the calling thread on CPU 0 only: the new-flow budget is per CPU.
fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "sched_setaffinity");
    }
}

/// Past the SYN budget, strangers' SYNs go to their service's aggregate
/// (both strangers far from every listed address and strangers in a /16
/// the inventory uses, which the known-peer bitmap sends on to the trie),
/// while the inventory's peers still open flows one by one.
#[test]
fn past_the_syn_budget_strangers_are_aggregated_and_listed_peers_tracked() {
    use monitor_common::flood::{BUDGET_BURST, BUDGET_PER_SEC};
    pin_to_cpu0();
    let (kernel, _) = setup();
    let strangers = 3 * BUDGET_BURST as u32;
    let start = std::time::Instant::now();
    for i in 0..strangers {
        let [_, _, hi, lo] = i.to_be_bytes();
        // Alternately outside every /16 the inventory uses, and inside the
        // admin's (198.51.100.7) without being it.
        let src = if i % 2 == 0 {
            [203, 0, hi, lo]
        } else {
            [198, 51, hi, lo]
        };
        run(
            &kernel,
            PacketDir::Ingress,
            &tcp(src, NODE1, 40000, 7777, TCP_SYN),
        );
    }
    let refill = (start.elapsed().as_secs_f64() * BUDGET_PER_SEC as f64).ceil() as u64 + 1;
    let tracked = kernel.kstat(Kstat::NewFlows).unwrap();
    let flooded = kernel.kstat(Kstat::FloodPackets).unwrap();
    assert_eq!(tracked + flooded, u64::from(strangers));
    assert!(
        (BUDGET_BURST..=BUDGET_BURST + refill).contains(&tracked),
        "{tracked} flows tracked, budget {BUDGET_BURST} + {refill}"
    );
    // The budget is spent: listed peers, IPv4 and IPv6, under any role,
    // are not held to it.
    run(
        &kernel,
        PacketDir::Ingress,
        &tcp(NODE2, NODE1, 40001, 7777, TCP_SYN),
    );
    run(
        &kernel,
        PacketDir::Ingress,
        &tcp(ADMIN, NODE1, 40001, 7777, TCP_SYN),
    );
    run(
        &kernel,
        PacketDir::Ingress,
        &tcp(NODE2_V6, NODE1_V6, 40001, 7777, TCP_SYN),
    );
    assert_eq!(kernel.kstat(Kstat::NewFlows).unwrap(), tracked + 3);
    assert_eq!(kernel.kstat(Kstat::FloodPackets).unwrap(), flooded);
}
