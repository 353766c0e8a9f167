//! What is not a service: ephemeral ports, scans, floods, ICMP, one-offs,
//! groups below a threshold; and files that are not events.

use super::*;

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

#[test]
fn answers_without_a_request_are_no_service() {
    // SYN-ACKs from many hosts of one network to this one, which never
    // sent a SYN: the monitor reads each as an outbound connection to
    // port 80 whose opener sent nothing (count 0).
    let lines: Vec<String> = (1..=5)
        .map(|i| {
            line(
                "node-a",
                "outbound",
                "tcp",
                "192.0.2.1",
                40000 + i,
                &format!("203.0.113.{i}"),
                80,
                DAY1,
            )
            .replace("\"count\":5", "\"count\":0")
        })
        .collect();
    let (p, text) = learn(&[&lines]);
    assert!(p.rows.is_empty(), "{text}");
    assert_eq!(p.aside[0].reason, Reason::AnswersOnly);
    assert!(
        text.contains("answers only: tcp 80 outbound from nodes to 203.0.113.0/24: no packet of the opening side"),
        "{text}"
    );
}
