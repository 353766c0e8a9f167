//! The daemon's other outputs, end to end: the pcapng of offending packets
//! read back by tshark (the reference reader), the Prometheus endpoint
//! scraped over HTTP, and the JSON events for the same flows.

use std::{process::Command, time::Duration};

use portconform_tests::{
    fixtures::node_and_admin,
    lab::{self, TEST_NET_3, TempDir, sh},
    metrics,
    monitor_proc::{MonitorProc, read_events},
};

const T: Duration = Duration::from_secs(20);
const PORTS: [u16; 3] = [7001, 7002, 7003];

#[test]
fn pcapng_opens_in_tshark_and_metrics_count_the_same_flows() {
    let dir = TempDir::new("sinks").expect("dir");
    let lab = lab::host_and_peer("sinkhost", "sinkpeer", 61, TEST_NET_3)
        .expect("lab")
        .settled();
    let inventory = dir.file("inventory.toml");
    std::fs::write(&inventory, node_and_admin(&lab.host_if, &lab.peer_if)).unwrap();
    let (events, pcap) = (dir.file("events.jsonl"), dir.file("unexpected.pcapng"));
    let mon = MonitorProc::classifying(
        &lab.host,
        &[lab.host_if.ifname.as_str()],
        "thoughtspot",
        &inventory,
        &events,
        &["--pcap", &pcap, "--metrics", "9464", "--interval", "0.5"],
    )
    .expect("start");

    // Three SYNs to three ports no rule names (closed: each answered by a reset).
    for port in PORTS {
        let port = port.to_string();
        let _ = lab.peer.run(
            T,
            "hping3",
            &[
                "-q",
                "-S",
                "-s",
                "40000",
                "-k",
                "-p",
                &port,
                "-c",
                "1",
                &lab.host_if.v4,
            ],
        );
    }
    std::thread::sleep(Duration::from_millis(1200));
    // Scrape from inside the host namespace: the endpoint binds its loopback.
    let metrics = metrics::scrape(&lab.host, 9464).expect("scrape");
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);

    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("portconform_unexpected_flows_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portconform_events_lost_total 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("portconform_packets_total{")
                && l.contains("direction=\"inbound\"")),
        "{metrics}"
    );

    let fields = sh(Command::new("tshark").args([
        "-r",
        &pcap,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "frame.interface_name",
        "-e",
        "ip.src",
        "-e",
        "ip.dst",
        "-e",
        "tcp.dstport",
        "-e",
        "tcp.flags.syn",
        "-e",
        "frame.comment",
    ]))
    .expect("tshark reads the pcapng");
    let rows: Vec<Vec<String>> = String::from_utf8_lossy(&fields.stdout)
        .lines()
        .map(|l| l.split('|').map(String::from).collect())
        .collect();
    assert_eq!(
        rows.len(),
        PORTS.len(),
        "one packet per unexpected flow: {rows:?}"
    );
    for (row, port) in rows.iter().zip(PORTS) {
        assert_eq!(row[0], lab.host_if.ifname);
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            (lab.peer_if.v4.as_str(), lab.host_if.v4.as_str())
        );
        assert_eq!(row[3], port.to_string());
        assert!(row[4] == "1" || row[4] == "True", "a SYN: {row:?}");
        assert!(
            row[5].contains(&format!("{}:{port}", lab.host_if.v4)) && row[5].contains("UNEXPECTED"),
            "{row:?}"
        );
    }

    let ev = read_events(&events).expect("events");
    let first: Vec<u64> = ev
        .iter()
        .filter(|e| e["kind"] == "unexpected")
        .filter_map(|e| e["dport"].as_u64())
        .collect();
    assert_eq!(
        first,
        PORTS.iter().map(|p| u64::from(*p)).collect::<Vec<_>>()
    );
}
