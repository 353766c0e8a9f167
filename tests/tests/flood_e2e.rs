//! A spoofed flood hides nothing (issue 16, items 3 and 4): 30 s of hping3
//! SYNs from random sources at node1, during which a node opens an
//! unexpected connection, an outsider opens two, and a node's connection
//! to a required port is refused. All four are reported; the flood is one
//! `flood` record per refresh, not a flow per source; the summary and the
//! metrics agree on what was counted and lost; the daemon's memory stays
//! bounded. Shipped defaults throughout.
//!
//! Lab (documentation ranges only): node2 ── node1 (monitored, thoughtspot
//! profile) ── outsider (on its own link, in no inventory). The spoofed
//! SYNs go from node2's namespace to node1, whose answers to random
//! addresses have no route and leave nothing.

use std::time::{Duration, Instant};

use portconform_tests::{
    lab::{self, TEST_NET_1, TEST_NET_2, TempDir},
    metrics,
    monitor_proc::{MonitorProc, read_events},
    pair::connect,
    services,
};
use serde_json::Value;

/// How long the flood runs.
const FLOOD: Duration = Duration::from_secs(30);
/// The daemon's peak resident memory may not pass this: its tables are
/// bounded (flows remembered, blocked flows, flood aggregates), and a
/// flood must not grow them past it.
const RSS_BOUND_KIB: u64 = 256 * 1024;

#[test]
fn a_random_source_flood_hides_no_genuine_flow() {
    let nodes = lab::host_and_peer("node1", "node2", 171, TEST_NET_1).expect("lab");
    let outsider = nodes
        .add_peer("outsider", 172, TEST_NET_2)
        .expect("outsider");
    let dir = TempDir::new("flood").expect("scratch dir");
    let (n1, n2, out) = (&nodes.host_if, &nodes.peer_if, &outsider.peer_if);
    let _servers =
        [7000u16, 7001, 7100].map(|p| services::tcp_echo(&nodes.host, p, 5).expect("listener"));
    lab::settle();
    let inventory = dir.file("inventory.toml");
    std::fs::write(
        &inventory,
        format!("nodes = [\"{}\", \"{}\"]\n", n1.v4, n2.v4),
    )
    .expect("inventory");
    let events = dir.file("events.jsonl");
    let mon = MonitorProc::classifying(
        &nodes.host,
        &[&n1.ifname, &outsider.host_if.ifname],
        "thoughtspot",
        &inventory,
        &events,
        &["--metrics", "9464"],
    )
    .expect("start portconform");
    let monitoring = Instant::now();

    let secs = FLOOD.as_secs().to_string();
    let mut flood = nodes
        .peer
        .command(FLOOD + Duration::from_secs(10), "timeout")
        .args([secs.as_str(), "hping3", "--flood", "-q", "-S", "-p", "7777"])
        .args(["--rand-source", &n1.v4])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hping3");
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    // While it floods: a node's unexpected connection, two outsiders', and
    // a node's attempt at a required port nothing listens on (a reset).
    assert!(connect(&nodes.peer, &n1.v4, 7100));
    assert!(connect(&outsider.ns, &outsider.host_if.v4, 7000));
    std::thread::sleep(Duration::from_secs(5));
    assert!(connect(&outsider.ns, &outsider.host_if.v4, 7001));
    assert!(!connect(&nodes.peer, &n1.v4, 2181));
    let _ = flood.wait();
    assert!(
        started.elapsed() >= FLOOD,
        "hping3 stopped early: {:?}",
        started.elapsed()
    );
    // The counts are still now; once the metrics have been fed after the
    // flood (every summary interval, 5 s), they must say what the final
    // summary says.
    std::thread::sleep(Duration::from_secs(6));
    let metrics = metrics::scrape(&nodes.host, 9464).expect("scrape");
    let rss = mon.peak_rss_kib().expect("rss");
    let done = mon.stop().expect("stop");
    let ran = monitoring.elapsed().as_secs_f64();
    assert!(done.status.success(), "{}", done.stderr);
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");

    let all = read_events(&events).expect("events");
    let has = |kind: &str, src: &str, dport: u64| {
        all.iter()
            .any(|e| e["kind"] == kind && e["src"] == src && e["dport"] == dport)
    };
    assert!(has("unexpected", &n2.v4, 7100), "the node's connection");
    assert!(has("unexpected", &out.v4, 7000), "the first outsider's");
    assert!(has("unexpected", &out.v4, 7001), "the second outsider's");
    let blocked: Vec<&Value> = all
        .iter()
        .filter(|e| e["kind"] == "blocked" && e["dport"] == 2181)
        .collect();
    assert_eq!(blocked.len(), 1, "{blocked:#?}");
    assert_eq!(blocked[0]["reason"], "reset");

    // The flood: records for tcp 7777 whose packets add up to the last
    // total, from many sources, with a sample and a sane time span.
    let floods: Vec<&Value> = all
        .iter()
        .filter(|e| e["kind"] == "flood" && e["service_port"] == 7777)
        .collect();
    assert!(!floods.is_empty(), "no flood record");
    let last = floods.last().unwrap();
    let total = last["total_packets"].as_u64().unwrap();
    let sum: u64 = floods.iter().map(|e| e["packets"].as_u64().unwrap()).sum();
    assert_eq!(sum, total, "{floods:#?}");
    assert!(total >= 10_000, "{last}");
    assert_eq!(last["direction"], "inbound");
    assert_eq!(last["proto"], "tcp");
    assert!(last["sources"].as_u64().unwrap() >= 1000, "{last}");
    assert_eq!(last["sources_estimated"], true);
    assert!(!last["sample"].as_array().unwrap().is_empty(), "{last}");
    assert!(
        last["first_seen"].as_str() <= last["last_seen"].as_str(),
        "{last}"
    );
    // Far fewer flows tracked one by one than packets sent: the budget.
    let tracked = all.iter().filter(|e| e["kind"] == "unexpected").count() as u64;
    assert!(
        tracked < total / 2,
        "{tracked} flows reported for {total} flood packets"
    );

    // Summary and metrics agree on the flood and on every loss.
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("portconform_{name}_total ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let summary = done
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains("counted as floods"))
        .unwrap_or_else(|| panic!("no classifier line: {}", done.stdout));
    let number_before = |marker: &str| -> u64 {
        let (before, _) = summary.split_once(marker).expect(marker);
        before.rsplit(' ').next().unwrap().parse().expect(marker)
    };
    assert_eq!(
        number_before(" packets of strangers' new flows past the budget"),
        metric("flood_packets"),
        "{summary}"
    );
    assert_eq!(
        number_before(" events (ring buffer full)"),
        metric("events_lost"),
        "{summary}"
    );
    assert_eq!(
        number_before(" flood packets not counted"),
        metric("flood_packets_lost"),
        "{summary}"
    );
    // The console stays bounded: each kind of line (new flows, floods) at
    // most a burst of 50 then 10 a second, each perhaps after one "held
    // back" notice, and a few lines at start and at the end.
    let lines = done.stderr.lines().count() as f64;
    let bound = 2.0 * (2.0 * (50.0 + 10.0 * ran)) + 40.0;
    assert!(lines <= bound, "{lines} stderr lines in {ran:.0} s");
}
