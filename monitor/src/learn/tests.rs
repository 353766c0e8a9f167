//! `learn` over hand-written events lines: grouping, the noise it must
//! refuse (ephemeral ports, scans, floods, one-offs), determinism, bad
//! files, and its output read back by the policy compiler.

use std::{io::Write as _, path::PathBuf};

use super::{
    command::read,
    group::{Grouper, Prefixes},
    noise::Ephemeral,
    propose::{Proposal, Reason, Thresholds, propose},
    render::{Provenance, markdown},
};
use crate::policy::{self, Direction, Inventory, Peer, PortRange, Proto, profiles};

const DAY1: &str = "2026-11-22T10:00:00.000000000Z";
const DAY2: &str = "2026-11-23T10:00:00.000000000Z";

/// One `unexpected` line.
#[allow(clippy::too_many_arguments)]
fn line(
    host: &str,
    dir: &str,
    proto: &str,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    ts: &str,
) -> String {
    format!(
        r#"{{"ts":"{ts}","kind":"unexpected","iface":"eth0","direction":"{dir}","proto":"{proto}","src":"{src}","dst":"{dst}","sport":{sport},"dport":{dport},"count":5,"first_seen":"{ts}","last_seen":"{ts}","reply_packets":4,"host":"{host}"}}"#
    )
}

fn inbound(src: &str, dport: u16, ts: &str) -> String {
    line(
        "node-a",
        "inbound",
        "tcp",
        src,
        40000,
        "192.0.2.1",
        dport,
        ts,
    )
}

struct Files(Vec<PathBuf>, PathBuf);

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn files(contents: &[&[String]]) -> Files {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pc-learn-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for (i, lines) in contents.iter().enumerate() {
        let path = dir.join(format!("events-{i}.jsonl"));
        let mut f = std::fs::File::create(&path).unwrap();
        for l in lines.iter() {
            writeln!(f, "{l}").unwrap();
        }
        paths.push(path);
    }
    Files(paths, dir)
}

const EPHEMERAL: Ephemeral = Ephemeral {
    host: PortRange {
        lo: 32768,
        hi: 60999,
    },
};

fn learn_with(
    contents: &[&[String]],
    policy: Option<&policy::Policy>,
    inventory: Option<&Inventory>,
) -> (Proposal, String) {
    let f = files(contents);
    let collected = read(&f.0).unwrap();
    let mut grouper = Grouper::new(policy, inventory, Prefixes::default());
    let t = Thresholds::default();
    let p = propose(&collected, &mut grouper, &t, &EPHEMERAL);
    let text = markdown(
        &p,
        &Provenance {
            files: f.0.len(),
            policy: None,
            thresholds: &t,
            ephemeral: &EPHEMERAL,
        },
    );
    (p, text)
}

fn learn(contents: &[&[String]]) -> (Proposal, String) {
    learn_with(contents, None, None)
}

fn rows(p: &Proposal) -> Vec<String> {
    p.rows.iter().map(|r| r.key.to_string()).collect()
}

#[test]
fn flows_group_by_role_direction_port_and_peer_network() {
    let lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.8", 9100, DAY1),
        // An update of the first flow: the same flow, not a third.
        inbound("198.51.100.7", 9100, DAY1).replace("\"unexpected\"", "\"update\""),
        line(
            "node-a",
            "inbound",
            "udp",
            "2001:db8:5::1",
            40001,
            "2001:db8::1",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "inbound",
            "udp",
            "2001:db8:5::2",
            40002,
            "2001:db8::1",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            40003,
            "203.0.113.53",
            53,
            DAY1,
        ),
        line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            40004,
            "203.0.113.53",
            53,
            DAY2,
        ),
    ];
    let (p, text) = learn(&[&lines]);
    assert_eq!(
        rows(&p),
        [
            "tcp 9100 inbound from 198.51.100.0/24 to nodes",
            "udp 123 inbound from 2001:db8:5::/64 to nodes",
            "udp 53 outbound from nodes to 203.0.113.0/24",
        ]
    );
    let web = &p.rows[0].evidence;
    assert_eq!((web.flows.len(), web.peers.len(), web.packets), (2, 2, 18));
    // One peer seen on two days is two flows: a service, not a one-off.
    assert_eq!(p.rows[2].evidence.days.len(), 2);
    assert!(
        text.contains("| 9100 | TCP | inbound | 198.51.100.0/24 | nodes | learned: 1 host from 2 peers <!-- hosts: 1 (node-a); peers: 2; flows: 2; days: 1; packets: 18; first seen: 2026-11-22T10:00:00Z; last seen: 2026-11-22T10:00:00Z --> | No |"),
        "{text}"
    );
    assert!(
        text.contains("| 53 | UDP | outbound | nodes | 203.0.113.0/24 |"),
        "{text}"
    );
    assert!(p.aside.is_empty(), "{:?}", p.aside);
}

#[test]
fn peers_are_named_by_their_roles() {
    let policy = profiles::load("thoughtspot").unwrap();
    let inv = Inventory::parse(
        "nodes = [\"192.0.2.0/28\"]\nadmin = [\"198.51.100.0/24\", \"198.51.100.9\"]\n",
        "inv.toml",
    )
    .unwrap();
    let mut ldap = inbound("203.0.113.20", 9100, DAY1);
    ldap = ldap.replace("\"host\"", "\"peer_roles\":[\"ldap-server\"],\"host\"");
    let lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.9", 9100, DAY1),
        ldap.clone(),
        ldap.replace("203.0.113.20", "203.0.113.21"),
        inbound("192.0.2.5", 9100, DAY1),
        inbound("192.0.2.6", 9100, DAY1),
    ];
    let (p, _) = learn_with(&[&lines], Some(&policy), Some(&inv));
    assert_eq!(
        rows(&p),
        [
            "tcp 9100 inbound from admin to nodes",
            "tcp 9100 inbound from ldap-server to nodes",
            "tcp 9100 inbound from nodes to nodes",
        ]
    );
}

#[test]
fn a_client_ephemeral_port_is_never_proposed() {
    // Seen mid-connection, both ends high: the monitor names the lower
    // port the service, and here that is the client's. Many peers and days
    // do not make it one.
    let mut lines = Vec::new();
    for i in 1..=6 {
        for day in [DAY1, DAY2] {
            lines.push(line(
                "node-a",
                "inbound",
                "tcp",
                &format!("198.51.100.{i}"),
                61000,
                "192.0.2.1",
                45000,
                day,
            ));
        }
        lines.push(line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            50000,
            &format!("203.0.113.{i}"),
            50001,
            DAY1,
        ));
    }
    let (p, text) = learn(&[&lines]);
    assert!(p.rows.is_empty(), "{:?}", rows(&p));
    assert!(
        !text.contains("| 45000 |") && !text.contains("| 50001 |"),
        "{text}"
    );
    let ephemeral: Vec<u16> = p
        .aside
        .iter()
        .filter(|a| a.reason == Reason::Ephemeral)
        .map(|a| a.key.as_ref().unwrap().port)
        .collect();
    assert_eq!(ephemeral, [45000, 50001]);
    assert!(text.contains("ephemeral: tcp 45000 inbound from 198.51.100.0/24 to nodes: port 45000 is in 32768-60999"), "{text}");
    // The edges of the ranges: 32767 is a service port, 61000 and up are
    // IANA's dynamic range.
    assert!(!EPHEMERAL.contains(32767));
    assert!(EPHEMERAL.contains(32768) && EPHEMERAL.contains(60999));
    assert!(EPHEMERAL.contains(61000) && EPHEMERAL.contains(65535));
}

#[test]
fn a_scanner_is_set_aside_without_hiding_real_clients() {
    let mut lines: Vec<String> = (1000..1012)
        .map(|port| inbound("203.0.113.66", port, DAY1))
        .collect();
    // The scanner also touched the real service; two clients use it.
    lines.push(inbound("203.0.113.66", 9100, DAY1));
    lines.push(inbound("198.51.100.7", 9100, DAY1));
    lines.push(inbound("198.51.100.8", 9100, DAY1));
    // Nine ports from one peer is not a scan: a client of nine services.
    for port in 2000..2009 {
        lines.push(inbound("198.51.100.20", port, DAY1));
        lines.push(inbound("198.51.100.20", port, DAY2));
    }
    let (p, text) = learn(&[&lines]);
    let got = rows(&p);
    assert_eq!(got[0], "tcp 2000 inbound from 198.51.100.0/24 to nodes");
    assert_eq!(got.len(), 10, "{got:?}");
    assert!(got.contains(&"tcp 9100 inbound from 198.51.100.0/24 to nodes".to_string()));
    let nine = p.rows.iter().find(|r| r.key.port == 9100).unwrap();
    assert_eq!(nine.evidence.peers.len(), 2, "the scanner is not evidence");
    let scans: Vec<_> = p
        .aside
        .iter()
        .filter_map(|a| match &a.reason {
            Reason::Scan(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(scans.len(), 1);
    assert_eq!(scans[0].initiator.to_string(), "203.0.113.66");
    assert_eq!(scans[0].ports.len(), 13);
    assert!(
        text.contains("scan: 203.0.113.66 opened 13 ports of 192.0.2.1 on node-a (tcp 1000-1011, tcp 9100): one peer, many ports"),
        "{text}"
    );
    // Set-aside traffic is listed where the compiler does not read it.
    let fence = text.find("```text").unwrap();
    assert!(text[fence..].contains("scan:"));
}

#[test]
fn one_offs_floods_and_icmp_are_set_aside_with_the_reason() {
    let flood = r#"{"ts":"2026-11-22T10:00:05Z","kind":"flood","direction":"inbound","proto":"tcp","service_port":8080,"reason":"no-rule","packets":900,"bytes":54000,"total_packets":900,"sources":850,"sources_estimated":true,"sample":["198.51.100.77","203.0.113.9"],"first_seen":"2026-11-22T10:00:00Z","last_seen":"2026-11-22T10:00:04Z","note":"x","host":"node-a"}"#;
    let lines = vec![
        inbound("198.51.100.7", 7777, DAY1),
        inbound("198.51.100.77", 8080, DAY1),
        inbound("203.0.113.9", 8080, DAY1),
        flood.to_string(),
        line(
            "node-a",
            "inbound",
            "icmp",
            "198.51.100.7",
            0,
            "192.0.2.1",
            8,
            DAY1,
        ),
        line(
            "node-a",
            "inbound",
            "icmp",
            "198.51.100.8",
            0,
            "192.0.2.1",
            8,
            DAY1,
        ),
    ];
    let (p, text) = learn(&[&lines]);
    assert!(p.rows.is_empty(), "{:?}", rows(&p));
    let reasons: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("```text"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(reasons, ["flood", "no port", "one-off"], "{text}");
    assert!(text.contains("flood: inbound tcp 8080 on node-a: 900 packets past the monitor's budget from about 850 sources, and 2 flows tracked"), "{text}");
    assert!(
        text.contains(
            "one-off: tcp 7777 inbound from 198.51.100.0/24 to nodes: one peer, one host, one day"
        ),
        "{text}"
    );
    assert!(text.contains("No group of flows passed the thresholds."));
}

#[test]
fn thresholds_on_hosts_and_days_hold() {
    let lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.8", 9100, DAY1),
    ];
    let f = files(&[&lines]);
    let collected = read(&f.0).unwrap();
    let mut g = Grouper::new(None, None, Prefixes::default());
    let strict = Thresholds {
        min_days: 2,
        ..Thresholds::default()
    };
    let p = propose(&collected, &mut g, &strict, &EPHEMERAL);
    assert!(p.rows.is_empty());
    assert_eq!(
        p.aside[0].reason,
        Reason::Threshold("seen in 1 days, --min-days is 2".into())
    );
    let hosts = Thresholds {
        min_hosts: 2,
        ..Thresholds::default()
    };
    let p = propose(&collected, &mut g, &hosts, &EPHEMERAL);
    assert_eq!(
        p.aside[0].reason,
        Reason::Threshold("seen in 1 hosts, --min-hosts is 2".into())
    );
}

#[test]
fn the_same_events_give_the_same_bytes_whatever_their_order() {
    let mut lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.8", 9100, DAY2),
        line(
            "node-b",
            "inbound",
            "udp",
            "198.51.100.9",
            40000,
            "192.0.2.2",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "inbound",
            "udp",
            "198.51.100.9",
            40000,
            "192.0.2.1",
            123,
            DAY1,
        ),
        inbound("203.0.113.4", 7000, DAY1),
    ];
    lines.extend((1..=12).map(|p| inbound("203.0.113.66", p, DAY1)));
    let (_, first) = learn(&[&lines]);
    let mut reversed = lines.clone();
    reversed.reverse();
    let (half_a, half_b) = reversed.split_at(7);
    let (_, second) = learn(&[half_a, half_b]);
    // The header counts the files; everything after it must be equal.
    let body = |t: &str| t.split_once("-->").unwrap().1.to_string();
    assert_eq!(body(&first), body(&second));
    assert_eq!(first, learn(&[&lines]).1);
}

#[test]
fn bad_files_are_errors_naming_file_and_line() {
    let junk = vec!["this is not json".to_string(), "{\"kind\":1}".to_string()];
    let f = files(&[&junk]);
    let err = read(&f.0).unwrap_err().to_string();
    let want = format!("{}:1: not a JSON object", f.0[0].display());
    assert!(err.starts_with(&want), "{err}");
    assert!(err.contains("not an events file"), "{err}");

    // A torn line among good ones is skipped, the rest is read.
    let mixed = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.8", 9100, DAY1)[..50].to_string(),
        inbound("198.51.100.9", 9100, DAY1).replace("\"tcp\"", "\"sctpx\""),
    ];
    let f = files(&[&mixed]);
    let c = read(&f.0).unwrap();
    assert_eq!(c.flows.len(), 1);
    let bad: Vec<String> = c.bad_lines.iter().map(ToString::to_string).collect();
    assert!(
        bad[0].starts_with(&format!("{}:2: ", f.0[0].display())),
        "{bad:?}"
    );
    assert!(
        bad[1].contains(":3: bad \"unexpected\" record: unknown protocol"),
        "{bad:?}"
    );

    let missing = read(&[PathBuf::from("/nonexistent/learn.jsonl")]).unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/learn.jsonl"),
        "{missing}"
    );
}

/// The output read back by the compiler, with the vendor's own document:
/// every row becomes the rule it says, and the set-aside list none.
#[test]
fn the_output_compiles_into_the_rules_it_proposes() {
    let policy = profiles::load("thoughtspot").unwrap();
    let inv = Inventory::parse("nodes = [\"192.0.2.0/28\"]\n", "inv.toml").unwrap();
    let mut lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.8", 9100, DAY1),
        line(
            "node-a",
            "inbound",
            "udp",
            "2001:db8:5::1",
            40001,
            "192.0.2.1",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "inbound",
            "udp",
            "2001:db8:5::2",
            40002,
            "192.0.2.1",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            40003,
            "203.0.113.53",
            53,
            DAY1,
        ),
        line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            40004,
            "203.0.113.53",
            53,
            DAY2,
        ),
        inbound("192.0.2.5", 9200, DAY1),
        inbound("192.0.2.6", 9200, DAY1),
        inbound("198.51.100.7", 7777, DAY1),
    ];
    lines.extend((1000..1020).map(|p| inbound("203.0.113.66", p, DAY1)));
    let (p, text) = learn_with(&[&lines], Some(&policy), Some(&inv));
    assert_eq!(p.rows.len(), 4, "{text}");
    let vendor = policy::Document {
        name: "vendor.md".into(),
        text: "| Port | Protocol | Direction | Source | Destination |\n|---|---|---|---|---|\n| 80 | TCP | inbound | All nodes | All nodes |\n".into(),
    };
    let site = policy::Document {
        name: "site.md".into(),
        text: text.clone(),
    };
    let compiled = policy::compile(&[vendor, site]).unwrap();
    let learned: Vec<String> = compiled
        .rules
        .iter()
        .filter(|r| r.source.doc == "site.md")
        .map(|r| {
            let peer = r.peer_role.clone().unwrap_or_else(|| {
                r.peer
                    .iter()
                    .map(Peer::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            });
            format!(
                "{} {} {} from {} to {}",
                match r.proto {
                    Proto::Tcp => "tcp",
                    Proto::Udp => "udp",
                    Proto::Icmp => "icmp",
                },
                r.ports,
                r.direction.name(),
                if r.direction == Direction::Inbound {
                    peer.clone()
                } else {
                    r.local_role.clone()
                },
                if r.direction == Direction::Inbound {
                    r.local_role.clone()
                } else {
                    peer
                },
            )
        })
        .collect();
    assert_eq!(learned, rows(&p), "{text}");
    assert!(
        compiled.warnings.iter().all(|w| w.source.doc != "site.md"),
        "{:?}",
        compiled.warnings
    );
}
