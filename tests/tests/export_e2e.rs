//! `run --export syslog+tcp://` and `syslog+tls://` (issue 19, items 1
//! and 2): every events line reaches a real rsyslog as a well-formed RFC
//! 5424 message, and a collector outage loses none of them: they wait in
//! the spool and go once it is back, which the lines' gap-free `seq`
//! proves.
//!
//! Lab (documentation ranges only): node2 (rsyslog) ── node1 (monitored,
//! thoughtspot, exporting to node2).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use portconform_tests::{
    lab::Background,
    monitor_proc::read_events,
    pair::{Pair, connect},
    pki::Pki,
    services::{self, SyslogMessage},
};

const PORT: u16 = 10514;

/// Waits (bounded) until rsyslog has a message for every line of the
/// events file; the messages by seq.
fn wait_delivered(lab: &Pair, received: &str) -> BTreeMap<u64, SyslogMessage> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = read_events(lab.events_path()).unwrap_or_default();
        let got = services::syslog_messages_by_seq(received);
        let missing: Vec<u64> = lines
            .iter()
            .filter_map(|l| l["seq"].as_u64())
            .filter(|s| !got.contains_key(s))
            .collect();
        if !lines.is_empty() && missing.is_empty() {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "rsyslog never got seq {missing:?} of {} lines",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every line, the closing ones too, reached rsyslog as a well-formed RFC
/// 5424 message, and the daemon's summary says all were delivered.
fn check_messages(lab: &Pair, received: &str, stderr: &str, url: &str) {
    let got = wait_delivered(lab, received);
    let lines = read_events(lab.events_path()).expect("events");
    assert!(lines.len() >= 6, "{lines:#?}");
    for line in &lines {
        let seq = line["seq"].as_u64().expect("seq");
        let m = &got[&seq];
        let msg: serde_json::Value = serde_json::from_str(&m.msg).expect("JSON message");
        assert_eq!(&msg, line, "the message is the record");
        assert_eq!(m.version, "1", "read as RFC 5424: {m:?}");
        assert_eq!(m.app_name, "portconform", "{m:?}");
        assert_eq!(m.msgid, line["kind"].as_str().unwrap(), "{m:?}");
        assert_eq!(
            m.structured_data,
            format!("[meta sequenceId=\"{seq}\"]"),
            "{m:?}"
        );
        assert!(m.procid.parse::<u32>().is_ok(), "{m:?}");
        let ts = line["ts"].as_str().unwrap();
        assert_eq!(
            m.timestamp.get(..19),
            ts.get(..19),
            "the record's time: {m:?}"
        );
    }
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"blocked") && kinds.contains(&"required"),
        "{kinds:?}"
    );
    assert!(
        stderr.contains(&format!("export {url}: ")) && stderr.contains("lines delivered"),
        "{}",
        stderr
    );
    assert!(!stderr.contains("not delivered yet"), "{}", stderr);
}

#[test]
fn syslog_gets_every_line_across_a_collector_outage() {
    let lab = Pair::new(91, "export").expect("lab");
    let work = lab.dir.file("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let received = lab.dir.file("received.log");
    let rsyslog = || -> Background {
        let bg =
            services::rsyslog(&lab.node2, &lab.n2.v4, PORT, &work, &received).expect("rsyslogd");
        lab.node2
            .wait_tcp_listening(PORT, Duration::from_secs(10))
            .expect("rsyslog listens");
        bg
    };
    let url = format!("syslog+tcp://{}:{PORT}", lab.n2.v4);
    let peer = lab.n2.v4.clone();

    let collector = rsyslog();
    let mon = lab
        .exporting(&url, &["--interval", "3600"])
        .expect("start portconform");
    assert!(!connect(&lab.node2, &lab.n1.v4, 6666));
    lab.wait_event("unexpected", &peer, 6666);
    wait_delivered(&lab, &received);

    // The collector goes away (stopped as an operator would, so that what
    // its TCP acknowledged is in its file); events keep coming.
    drop(collector);
    for port in [6667, 6668, 6669] {
        assert!(!connect(&lab.node2, &lab.n1.v4, port));
        lab.wait_event("unexpected", &peer, port);
    }
    // A required port with nothing listening: blocked, reset.
    assert!(!connect(&lab.node2, &lab.n1.v4, 2888));
    lab.wait_event("blocked", &peer, 2888);
    std::thread::sleep(Duration::from_secs(2));
    let _collector = rsyslog();
    wait_delivered(&lab, &received);
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);

    check_messages(&lab, &received, &done.stderr, &url);
    // The outage was seen for one, and said.
    assert!(
        done.stderr.contains("connection lost") || done.stderr.contains("cannot connect"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("sending what was spooled"),
        "{}",
        done.stderr
    );
}

/// `run --export ipfix+udp://`: Debian's nfcapd stores the flow records,
/// and `nfdump` prints the 5-tuples of the unexpected and blocked flows the
/// events name.
#[test]
fn nfcapd_stores_the_flows_and_nfdump_prints_their_five_tuples() {
    let lab = Pair::new(92, "ipfix").expect("lab");
    let flows = lab.dir.file("nfcapd");
    std::fs::create_dir_all(&flows).unwrap();
    let port = 4739u16;
    let nfcapd = lab
        .node2
        .spawn_graceful(
            "nfcapd",
            &[
                "-b",
                &lab.n2.v4,
                "-p",
                &port.to_string(),
                "-w",
                &flows,
                "-t",
                "3600",
            ],
            libc::SIGTERM,
            Duration::from_secs(10),
        )
        .expect("nfcapd");
    lab.node2
        .wait_udp_bound(port, Duration::from_secs(10))
        .expect("nfcapd listens");
    let url = format!("ipfix+udp://{}:{port}", lab.n2.v4);
    let peer = lab.n2.v4.clone();
    let mon = lab
        .exporting(&url, &["--interval", "3600"])
        .expect("start portconform");
    for port in [6666, 6667] {
        assert!(!connect(&lab.node2, &lab.n1.v4, port));
        lab.wait_event("unexpected", &peer, port);
    }
    assert!(!connect(&lab.node2, &lab.n1.v4, 2888));
    lab.wait_event("blocked", &peer, 2888);
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains(&format!("export {url}: "))
            && !done.stderr.contains("not delivered yet"),
        "{}",
        done.stderr
    );
    // nfcapd writes its file out when it stops.
    drop(nfcapd);
    let out = std::process::Command::new("nfdump")
        .args(["-R", &flows, "-q", "-o", "fmt:%sa|%da|%sp|%dp|%pr|%pkt"])
        .output()
        .expect("nfdump");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split('|').map(|f| f.trim().to_string()).collect())
        .filter(|f: &Vec<String>| f.len() == 6)
        .collect();
    let lines = read_events(lab.events_path()).expect("events");
    let flows_in_events: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| ["unexpected", "blocked"].contains(&l["kind"].as_str().unwrap_or("")))
        .collect();
    assert!(flows_in_events.len() >= 3, "{lines:#?}");
    for e in flows_in_events {
        let want = [
            e["src"].as_str().unwrap().to_string(),
            e["dst"].as_str().unwrap().to_string(),
            e["sport"].to_string(),
            e["dport"].to_string(),
            e["proto"].as_str().unwrap().to_uppercase(),
        ];
        assert!(
            stored.iter().any(|s| s[..5] == want),
            "{want:?} not stored by nfcapd:\n{text}"
        );
    }
}

/// `run --export syslog+tls://` with mutual TLS: rsyslog (rsyslog-gnutls)
/// takes only a client its CA signed, portconform only a collector its
/// `--export-ca` signed for the URL's address. Every line arrives, across
/// an outage during which a collector with a certificate for another name
/// answers: that handshake fails, is said, and loses nothing.
#[test]
fn syslog_over_tls_gets_every_line_across_an_outage_and_a_wrong_certificate() {
    let lab = Pair::new(93, "exporttls").expect("lab");
    let pki = Pki::new(&lab.dir).expect("CA");
    let (cert, key) = pki
        .issue(&lab.dir, "collector", &lab.n2.v4)
        .expect("certificate");
    let (wrong_cert, wrong_key) = pki
        .issue(&lab.dir, "elsewhere", "203.0.113.7")
        .expect("certificate");
    let (client_cert, client_key) = pki.issue(&lab.dir, "client", "").expect("certificate");
    let received = lab.dir.file("received.log");
    let rsyslog = |name: &str, cert: &str, key: &str, out: &str| -> Background {
        let work = lab.dir.file(name);
        std::fs::create_dir_all(&work).unwrap();
        let files = services::TlsFiles {
            ca: &pki.ca,
            cert,
            key,
        };
        let bg = services::rsyslog_tls(&lab.node2, &lab.n2.v4, PORT, &files, &work, out)
            .expect("rsyslogd");
        lab.node2
            .wait_tcp_listening(PORT, Duration::from_secs(10))
            .expect("rsyslog listens");
        bg
    };
    let url = format!("syslog+tls://{}:{PORT}", lab.n2.v4);
    let peer = lab.n2.v4.clone();

    let collector = rsyslog("rsyslog", &cert, &key, &received);
    let mon = lab
        .exporting(
            &url,
            &[
                "--interval",
                "3600",
                "--export-ca",
                &pki.ca,
                "--export-cert",
                &client_cert,
                "--export-key",
                &client_key,
            ],
        )
        .expect("start portconform");
    assert!(!connect(&lab.node2, &lab.n1.v4, 6666));
    lab.wait_event("unexpected", &peer, 6666);
    wait_delivered(&lab, &received);

    drop(collector);
    let impostor = rsyslog(
        "rsyslog-wrong",
        &wrong_cert,
        &wrong_key,
        &lab.dir.file("wrong.log"),
    );
    for port in [6667, 6668] {
        assert!(!connect(&lab.node2, &lab.n1.v4, port));
        lab.wait_event("unexpected", &peer, port);
    }
    assert!(!connect(&lab.node2, &lab.n1.v4, 2888));
    lab.wait_event("blocked", &peer, 2888);
    std::thread::sleep(Duration::from_secs(2));
    drop(impostor);
    let _collector = rsyslog("rsyslog", &cert, &key, &received);
    wait_delivered(&lab, &received);
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    check_messages(&lab, &received, &done.stderr, &url);
    assert!(
        done.stderr
            .contains("TLS handshake failed (invalid peer certificate"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("sending what was spooled"),
        "{}",
        done.stderr
    );
    assert!(
        services::syslog_messages(&lab.dir.file("wrong.log")).is_empty(),
        "a collector with a certificate for another name got lines"
    );
}
