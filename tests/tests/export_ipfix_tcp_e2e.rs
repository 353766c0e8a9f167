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
//! Lab (documentation ranges only): node2 (socat, tcpdump) ── node1
//! (monitored, thoughtspot, exporting to node2).

use std::time::{Duration, Instant};

use portconform_tests::{
    capture::Tcpdump,
    lab::{Background, Netns},
    monitor_proc::read_events,
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

/// One IPFIX data record as tshark decoded it.
#[derive(Debug)]
struct Decoded {
    /// Source, destination, their ports, the protocol number.
    five_tuple: [String; 5],
    /// The enterprise-specific elements tshark shows (it leaves out
    /// empty strings), as text.
    enterprise: Vec<String>,
}

/// A JSON value that tshark's `--no-duplicate-keys` makes a list when a
/// key repeats, as a list either way.
fn all(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    match v {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Null => vec![],
        v => vec![v],
    }
}

/// `aa:bb:...` as text.
fn hex_text(h: &str) -> String {
    let bytes: Vec<u8> = h
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// tshark's reading of the capture, IPFIX over TCP on [`PORT`]: every
/// data record of every message, in order.
fn decoded(pcap: &str) -> Vec<Decoded> {
    let out = std::process::Command::new("timeout")
        .args(["-s", "KILL", "60", "tshark", "-n", "-r", pcap])
        .args(["-d", &format!("tcp.port=={PORT},cflow")])
        .args(["-Y", "cflow", "-T", "json", "--no-duplicate-keys"])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tshark's JSON");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let mut records = Vec::new();
    for packet in all(&packets) {
        for message in all(&packet["_source"]["layers"]["cflow"]) {
            let Some(message) = message.as_object() else {
                continue;
            };
            let sets = message.iter().filter(|(k, _)| k.starts_with("Set "));
            for set in sets.flat_map(|(_, v)| all(v)) {
                let Some(set) = set.as_object() else { continue };
                let flows = set.iter().filter(|(k, _)| k.starts_with("Flow "));
                for flow in flows.flat_map(|(_, v)| all(v)) {
                    records.push(Decoded {
                        five_tuple: [
                            text(&flow["cflow.srcaddr"]),
                            text(&flow["cflow.dstaddr"]),
                            text(&flow["cflow.srcport"]),
                            text(&flow["cflow.dstport"]),
                            text(&flow["cflow.protocol"]),
                        ],
                        enterprise: all(&flow["cflow.enterprise_private_entry"])
                            .into_iter()
                            .map(|h| hex_text(h.as_str().unwrap_or("")))
                            .collect(),
                    });
                }
            }
        }
    }
    records
}

#[test]
fn tshark_decodes_every_flow_sent_over_tcp_across_a_collector_outage() {
    let lab = Pair::new(94, "ipfixtcp").expect("lab");
    let pcap = lab.dir.file("collector.pcapng");
    let capture =
        Tcpdump::start_immediate_whole(&lab.node2, &lab.n2.ifname, &pcap).expect("tcpdump");
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
    let url = format!("ipfix+tcp://{}:{PORT}", lab.n2.v4);
    let peer = lab.n2.v4.clone();

    let socat = collector();
    let mon = lab
        .exporting(&url, &["--interval", "3600"])
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
    capture.stop().expect("tcpdump stops");

    let records = decoded(&pcap);
    let lines = read_events(lab.events_path()).expect("events");
    let flows: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| ["unexpected", "blocked"].contains(&l["kind"].as_str().unwrap_or("")))
        .collect();
    assert!(flows.len() >= 4, "{lines:#?}");
    for e in flows {
        let field = |k: &str| e[k].as_str().unwrap_or("").to_string();
        let want = [
            field("src"),
            field("dst"),
            e["sport"].to_string(),
            e["dport"].to_string(),
            "6".to_string(),
        ];
        // The verdict, its reason, and for a blocked flow the rule and
        // its doc:line, in portconform's enterprise elements.
        let mut texts = vec![field("kind"), field("reason")];
        if e["rule"].is_string() {
            texts.extend([field("rule"), field("source")]);
        }
        assert!(
            records
                .iter()
                .any(|r| r.five_tuple == want && r.enterprise.starts_with(&texts)),
            "{want:?} {texts:?} not decoded by tshark:\n{records:#?}"
        );
    }
    assert!(
        records
            .iter()
            .any(|r| r.enterprise.first().is_some_and(|v| v == "blocked")),
        "{records:#?}"
    );
}
