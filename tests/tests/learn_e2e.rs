//! `learn` on a site's real traffic (issue 20, items 1, 2 and 4): a
//! ThoughtSpot node that also runs what every site adds and the vendor's
//! document never lists: a monitoring agent's HTTP endpoint on 9100
//! (Debian's prometheus-node-exporter), NTP (chronyd) and DNS (dnsmasq),
//! each used by two clients; plus a port scan and one-off connections.
//! The node's traffic is watched by `run` and captured; the capture is
//! replayed under the vendor's profile, and `learn`, on either events
//! file, must propose the three services and none of the noise. Its
//! output compiled with the vendor's document must then allow, on a second
//! replay of the same capture, every flow of the proposed rows, and still
//! report the noise.
//!
//! Lab (documentation ranges only): clients 198.51.100.2 and .3 ── node
//! 198.51.100.1 | 203.0.113.1 ── scanner 203.0.113.2.

use std::{collections::BTreeSet, process::Command, time::Duration};

use portconform_tests::{
    capture::Tcpdump,
    lab::{self, TEST_NET_2, TEST_NET_3, TempDir},
    monitor_proc::{MonitorProc, read_events},
    portconform_bin, services,
};
use serde_json::Value;

const T: Duration = Duration::from_secs(20);
const VENDOR_DOC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/seeds/000_2809db0a7820664a.txt"
);

/// `portconform args...`, which must succeed; its stderr.
fn portconform(args: &[&str]) -> String {
    let out = Command::new(portconform_bin())
        .args(args)
        .output()
        .expect("portconform");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "portconform {args:?}: {stderr}");
    stderr
}

/// (direction, proto, dport, src) of each unexpected flow.
fn unexpected(events: &[Value]) -> BTreeSet<(String, String, u64, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "unexpected")
        .map(|e| {
            (
                e["direction"].as_str().unwrap().to_string(),
                e["proto"].as_str().unwrap().to_string(),
                e["dport"].as_u64().unwrap(),
                e["src"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The table's rows up to their Destination cell (the evidence differs
/// between runs: times, counts).
fn table(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Port"))
        .map(|l| l.split(" | ").take(5).collect::<Vec<_>>().join(" | "))
        .collect()
}

#[test]
fn learn_proposes_the_site_services_and_sets_the_noise_aside() {
    let dir = TempDir::new("learn").expect("dir");
    let lab = lab::host_and_peer("lnode", "lclients", 97, TEST_NET_2).expect("lab");
    let scanner = lab.add_peer("lscan", 98, TEST_NET_3).expect("scanner");
    let (node, clients) = (&lab.host_if, &lab.peer_if);
    // The clients' second address, on the same link.
    let client2 = format!("{TEST_NET_2}.3");
    lab.peer
        .ip(&[
            "addr",
            "add",
            &format!("{client2}/24"),
            "dev",
            &clients.ifname,
        ])
        .expect("second address");
    lab.host
        .ip(&[
            "neigh",
            "replace",
            &client2,
            "lladdr",
            &clients.mac,
            "dev",
            &node.ifname,
            "nud",
            "permanent",
        ])
        .expect("neighbour");
    let _exporter = services::node_exporter(&lab.host, &node.v4).expect("node exporter");
    let _chrony = services::chronyd(&lab.host, &node.v4, &format!("{TEST_NET_2}.0/24"), &dir)
        .expect("chronyd");
    let _dns = services::dnsmasq(
        &lab.host,
        &node.v4,
        &["--address=/metrics.site.example/198.51.100.1"],
    )
    .expect("dnsmasq");
    lab::settle();
    let inventory = dir.file("inventory.toml");
    std::fs::write(
        &inventory,
        format!("nodes = [\"{}\", \"{}\"]\n", node.v4, scanner.host_if.v4),
    )
    .unwrap();
    // The traffic is both captured, for replay, and watched live.
    let capture = dir.file("node.pcap");
    let dump = Tcpdump::start_immediate(&lab.host, "any", &capture).expect("tcpdump");
    let live = dir.file("live.jsonl");
    let mon = MonitorProc::start(
        &lab.host,
        &[&node.ifname, &scanner.host_if.ifname],
        &[
            "--profile",
            "thoughtspot",
            "--inventory",
            &inventory,
            "--events",
            &live,
        ],
    )
    .expect("portconform run");

    // The site's services, each from both clients.
    let ntp: Vec<_> = [clients.v4.as_str(), client2.as_str()]
        .iter()
        .enumerate()
        .map(|(i, src)| {
            services::ntp_query(&lab.peer, &node.v4, src, &format!("c{i}"), &dir).expect("ntp")
        })
        .collect();
    for src in [clients.v4.as_str(), client2.as_str()] {
        for _ in 0..3 {
            let out = lab
                .peer
                .run(
                    T,
                    "curl",
                    &[
                        "-sf",
                        "--interface",
                        src,
                        &format!("http://{}:9100/metrics", node.v4),
                        "-o",
                        "/dev/null",
                    ],
                )
                .expect("curl");
            assert!(out.status.success());
            let out = lab
                .peer
                .run(
                    T,
                    "dig",
                    &[
                        "+short",
                        "+time=2",
                        "+tries=1",
                        "-b",
                        src,
                        &format!("@{}", node.v4),
                        "metrics.site.example",
                    ],
                )
                .expect("dig");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "198.51.100.1");
        }
    }
    for child in ntp {
        let out = child.wait_with_output().expect("chronyd -Q");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.contains("System clock wrong by"),
            "{said}"
        );
    }
    // A scan of 30 ports, and one-offs: a client trying a port nobody
    // serves, the node reaching out once.
    scanner
        .ns
        .run(
            T,
            "nmap",
            &[
                "-Pn",
                "-n",
                "-sS",
                "--max-retries",
                "0",
                "-p",
                "6000-6029",
                &scanner.host_if.v4,
            ],
        )
        .expect("nmap");
    let _ = lab.peer.run(T, "nc", &["-z", "-w", "2", &node.v4, "7777"]);
    let _ = lab
        .host
        .run(T, "nc", &["-z", "-w", "2", &clients.v4, "8081"]);
    std::thread::sleep(Duration::from_millis(300));
    let captured = dump.stop().expect("tcpdump stop");
    assert_eq!(captured.dropped_by_kernel, 0, "{captured:?}");
    let done = mon.stop().expect("portconform run stop");
    assert!(done.status.success(), "{}", done.stderr);

    // Replay under the vendor's document alone.
    let replay = |events: &str, policy: &[&str]| {
        let mut args = vec!["replay", "--no-resolve", &capture, "--host", &node.v4];
        args.extend([
            "--host",
            &scanner.host_if.v4,
            "--inventory",
            &inventory,
            "--events",
            events,
        ]);
        args.extend(policy);
        portconform(&args);
        read_events(events).expect("events")
    };
    let before = replay(&dir.file("vendor.jsonl"), &["--profile", "thoughtspot"]);
    let seen = unexpected(&before);

    // learn: the three services, nothing else.
    let site = dir.file("site.md");
    let events = dir.file("vendor.jsonl");
    portconform(&[
        "learn",
        &events,
        "--profile",
        "thoughtspot",
        "--inventory",
        &inventory,
        "-o",
        &site,
    ]);
    let text = std::fs::read_to_string(&site).unwrap();
    let rows = table(&text);
    assert_eq!(
        rows,
        [
            "| 9100 | TCP | inbound | 198.51.100.0/24 | nodes",
            "| 53 | UDP | inbound | 198.51.100.0/24 | nodes",
            "| 123 | UDP | inbound | 198.51.100.0/24 | nodes",
        ],
        "{text}"
    );
    assert!(
        text.contains("hosts: 1 (198.51.100.1,203.0.113.1); peers: 2;"),
        "{text}"
    );
    assert!(
        text.contains(
            "scan: 203.0.113.2 opened 30 ports of 203.0.113.1 on 198.51.100.1,203.0.113.1 (tcp 6000-6029)"
        ),
        "{text}"
    );
    assert!(
        text.contains("one-off: tcp 7777 inbound from 198.51.100.0/24 to nodes"),
        "{text}"
    );
    assert!(
        text.contains("one-off: tcp 8081 outbound from nodes to 198.51.100.0/24"),
        "{text}"
    );
    // The live monitor's events propose the same rows.
    let from_live = dir.file("live.md");
    portconform(&[
        "learn",
        &live,
        "--profile",
        "thoughtspot",
        "--inventory",
        &inventory,
        "-o",
        &from_live,
    ]);
    assert_eq!(table(&std::fs::read_to_string(&from_live).unwrap()), rows);
    // Same input, same bytes.
    let again = dir.file("again.md");
    portconform(&[
        "learn",
        &events,
        "--profile",
        "thoughtspot",
        "--inventory",
        &inventory,
        "-o",
        &again,
    ]);
    assert_eq!(text, std::fs::read_to_string(&again).unwrap());

    // The addendum compiles with the vendor's document, and under it the
    // same capture leaves none of the services unexpected, only the noise.
    let policy = dir.file("site-policy.toml");
    portconform(&["policy", "compile", VENDOR_DOC, &site, "-o", &policy]);
    let after = unexpected(&replay(&dir.file("site.jsonl"), &["--policy", &policy]));
    let service = |(dir, proto, port, _): &(String, String, u64, String)| {
        dir == "inbound"
            && matches!(
                (proto.as_str(), port),
                ("udp", 53) | ("udp", 123) | ("tcp", 9100)
            )
    };
    let services_before: Vec<_> = seen.iter().filter(|f| service(f)).collect();
    assert_eq!(services_before.len(), 6, "{seen:#?}");
    assert!(after.iter().all(|f| !service(f)), "{after:#?}");
    let noise: BTreeSet<_> = seen.iter().filter(|f| !service(f)).cloned().collect();
    assert_eq!(after, noise);
    assert_eq!(noise.len(), 32, "{noise:#?}");

    // And the firewall exported from that policy opens the site's
    // services: the learned rows are required, so they go in by default.
    let ruleset = dir.file("site.nft");
    portconform(&[
        "policy", "export", "--policy", &policy, "--format", "nft", "-o", &ruleset,
    ]);
    let ruleset = std::fs::read_to_string(&ruleset).unwrap();
    for (proto, port) in [("udp", 53), ("udp", 123), ("tcp", 9100)] {
        assert!(
            ruleset
                .lines()
                .any(|l| l.contains(&format!("{proto} dport {port}")) && l.contains("site.md:")),
            "the export does not open {proto} {port} from site.md:\n{ruleset}"
        );
    }
}
