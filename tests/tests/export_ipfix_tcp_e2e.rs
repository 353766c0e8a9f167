//! `run --export ipfix+tcp://` (issue 19, item 2): the flow records of the
//! unexpected and blocked flows reach the collector as IPFIX over TCP (RFC
//! 7011 §10.4), across a collector outage, as tshark decodes them from a
//! capture of the collector's side.
//!
//! No collector in Debian speaks IPFIX over TCP, so the collector is socat
//! storing the bytes, and the oracle is tshark's IPFIX dissector reading
//! the capture: the templates at the start of each connection, every
//! record's 5-tuple and portconform's enterprise-specific elements.
//!
//! Lab (documentation ranges only): node2 (socat, dumpcap) ── node1
//! (monitored, thoughtspot, exporting to node2).

use std::time::{Duration, Instant};

use portconform_tests::{
    lab::{Background, Netns},
    monitor_proc::{MonitorProc, read_events},
    pair::{Pair, connect},
};

const PORT: u16 = 4739;

/// Waits (bounded) until `ns` has an established TCP connection on
/// `port`: the exporter is connected.
fn wait_established(ns: &Netns, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ns
            .run(
                Duration::from_secs(5),
                "ss",
                &["-Htn", "state", "established", &format!("sport = :{port}")],
            )
            .expect("ss");
        if !out.stdout.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "the exporter never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// tshark's reading of the capture: one row per IPFIX data record, its
/// fields split on `|`.
fn decoded(pcap: &str) -> (String, Vec<Vec<String>>) {
    let out = std::process::Command::new("timeout")
        .args(["-s", "KILL", "60", "tshark", "-n", "-r", pcap])
        .args(["-d", &format!("tcp.port=={PORT},cflow")])
        .args([
            "-Y",
            "cflow",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "occurrence=a",
        ])
        .args(["-E", "aggregator=;"])
        .args([
            "-e",
            "cflow.srcaddr",
            "-e",
            "cflow.dstaddr",
            "-e",
            "cflow.srcport",
            "-e",
            "cflow.dstport",
            "-e",
            "cflow.protocol",
            "-e",
            "cflow.template_id",
        ])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = Vec::new();
    for line in text.lines() {
        let cols: Vec<Vec<&str>> = line.split('|').map(|c| c.split(';').collect()).collect();
        let n = cols[0].len();
        for i in 0..n {
            rows.push(
                cols[..5]
                    .iter()
                    .map(|c| c.get(i).copied().unwrap_or("").to_string())
                    .collect(),
            );
        }
    }
    (text, rows)
}

#[test]
fn tshark_decodes_every_flow_sent_over_tcp_across_a_collector_outage() {
    let lab = Pair::new(94, "ipfixtcp").expect("lab");
    let pcap = lab.dir.file("collector.pcapng");
    let _dumpcap = lab
        .node2
        .spawn_graceful(
            "dumpcap",
            &[
                "-q",
                "-i",
                &lab.n2.ifname,
                "-f",
                &format!("tcp port {PORT}"),
                "-w",
                &pcap,
            ],
            libc::SIGINT,
            Duration::from_secs(10),
        )
        .expect("dumpcap");
    let stored = lab.dir.file("stored.ipfix");
    let collector = || -> Background {
        let bg = lab
            .node2
            .spawn(
                "socat",
                &[
                    "-u",
                    &format!("TCP-LISTEN:{PORT},bind={},reuseaddr", lab.n2.v4),
                    &format!("OPEN:{stored},creat,append"),
                ],
            )
            .expect("socat");
        lab.node2
            .wait_tcp_listening(PORT, Duration::from_secs(10))
            .expect("socat listens");
        bg
    };
    // dumpcap has its file open before any traffic.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&pcap).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "dumpcap never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let inv = lab.dir.file("inventory.toml");
    std::fs::write(&inv, "nodes = [\"192.0.2.0/24\"]\n").unwrap();
    let url = format!("ipfix+tcp://{}:{PORT}", lab.n2.v4);
    let spool = lab.dir.file("spool");
    let peer = lab.n2.v4.clone();

    let socat = collector();
    let mon = MonitorProc::classifying(
        &lab.node1,
        &[&lab.n1.ifname],
        "thoughtspot",
        &inv,
        &lab.events_path(),
        &[
            "--interval",
            "3600",
            "--export",
            &url,
            "--spool-dir",
            &spool,
        ],
    )
    .expect("start portconform");
    wait_established(&lab.node2, PORT);
    assert!(!connect(&lab.node2, &lab.n1.v4, 6666));
    lab.wait_event("unexpected", &peer, 6666);

    // The collector goes away; flows keep coming.
    drop(socat);
    for port in [6667, 6668] {
        assert!(!connect(&lab.node2, &lab.n1.v4, port));
        lab.wait_event("unexpected", &peer, port);
    }
    assert!(!connect(&lab.node2, &lab.n1.v4, 2888));
    lab.wait_event("blocked", &peer, 2888);
    let _socat = collector();
    wait_established(&lab.node2, PORT);
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains(&format!("export {url}: "))
            && !done.stderr.contains("not delivered yet"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("sending what was spooled"),
        "{}",
        done.stderr
    );
    drop(_dumpcap);

    let (text, records) = decoded(&pcap);
    let lines = read_events(lab.events_path()).expect("events");
    let flows: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| ["unexpected", "blocked"].contains(&l["kind"].as_str().unwrap_or("")))
        .collect();
    assert!(flows.len() >= 4, "{lines:#?}");
    for e in flows {
        let want = [
            e["src"].as_str().unwrap().to_string(),
            e["dst"].as_str().unwrap().to_string(),
            e["sport"].to_string(),
            e["dport"].to_string(),
            "6".to_string(),
        ];
        assert!(
            records.iter().any(|r| r[..] == want),
            "{want:?} not decoded by tshark:\n{text}"
        );
    }
}
