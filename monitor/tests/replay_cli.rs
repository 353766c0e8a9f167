//! `portconform replay` as a user runs it: events on stdout with capture
//! times, problems named with file and byte offset on stderr, a non-zero
//! exit only when nothing could be read, and the host guessed and said.

mod common;

use std::io::Write as _;

use common::{
    frames::{ADMIN, INVENTORY, NODE1, T0, tcp},
    pcap::write_pcap,
};
use monitor::events::{EventKind, EventRecord};
use monitor_common::packet::{TCP_ACK, TCP_SYN};
use pcap_file::DataLink;

/// The one flow these captures hold: admin -> node1:7777 from port 40000.
fn frame(flags: u8) -> Vec<u8> {
    tcp(ADMIN, NODE1, 40000, 7777, flags)
}

/// Runs the binary; replays send no DNS query (tests stay off the network).
fn portconform(args: &[&str]) -> (bool, String, String) {
    let mut cmd = common::command(args);
    if args.first() == Some(&"replay") {
        cmd.arg("--no-resolve");
    }
    common::run(&mut cmd)
}

#[test]
fn replay_writes_events_and_fails_only_when_nothing_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pcap");
    let frames = [(T0, frame(TCP_SYN)), (T0 + 5, frame(TCP_ACK))];
    let bytes = write_pcap(&plain, DataLink::ETHERNET, &frames);
    let good = dir.path().join("good.pcap.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    std::fs::write(&good, gz.finish().unwrap()).unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"GARBAGE GARBAGE GARBAGE GARBAGE").unwrap();
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let (good_s, junk_s, inv_s) = (
        good.to_str().unwrap(),
        junk.to_str().unwrap(),
        inv.to_str().unwrap(),
    );

    let (ok, stdout, stderr) = portconform(&[
        "replay",
        junk_s,
        good_s,
        "--host",
        "192.0.2.1",
        "--profile",
        "thoughtspot",
        "--inventory",
        inv_s,
        "--events",
        "-",
    ]);
    assert!(ok, "{stderr}");
    // Not a terminal: no progress bar, no control characters.
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    assert!(
        stderr.contains(&format!("{junk_s}: byte 0: not a pcap or pcapng file")),
        "{stderr}"
    );
    // --no-resolve is said once, not as a warning per name it skipped.
    assert!(
        stderr.contains("--no-resolve: 6 DNS names of the policy and inventory are not looked up"),
        "{stderr}"
    );
    assert!(!stderr.contains("did not resolve"), "{stderr}");
    // Every line numbered 1, 2, 3, ... under one instance, so a collector
    // can tell it has them all.
    let stamps: Vec<(u64, String)> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                v["instance"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (i, (seq, instance)) in stamps.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "{stdout}");
        assert_eq!(instance, &stamps[0].1, "{stdout}");
    }
    // Flow records, then one verdict per required rule.
    let (required, flows): (Vec<&str>, Vec<&str>) = stdout
        .lines()
        .partition(|l| l.contains(r#""kind":"required""#));
    let lines: Vec<EventRecord> = flows
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(!required.is_empty(), "{stdout}");
    for l in &required {
        let s: monitor::events::RequiredStatus = serde_json::from_str(l).unwrap();
        assert_eq!(s.status, monitor::events::RequiredState::NotSeen, "{l}");
    }
    assert_eq!(lines[0].kind, EventKind::Unexpected);
    assert_eq!((lines[1].kind, lines[1].count), (EventKind::Update, 2));
    assert!(
        stdout.starts_with(
            r#"{"ts":"2026-11-22T16:42:38.000000000Z","kind":"unexpected","iface":"good.pcap.gz""#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""last_seen":"2026-11-22T16:42:38.000000005Z""#),
        "{stdout}"
    );

    let (ok, _, stderr) = portconform(&[
        "replay",
        junk_s,
        "--host",
        "192.0.2.1",
        "--profile",
        "thoughtspot",
    ]);
    assert!(!ok);
    assert!(stderr.contains("nothing could be read"), "{stderr}");

    // A wrong --host is pointed out.
    let (ok, _, stderr) = portconform(&[
        "replay",
        good_s,
        "--host",
        "192.0.2.99",
        "--profile",
        "thoughtspot",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("no packet is to or from 192.0.2.99: is --host the address"),
        "{stderr}"
    );

    // Without --host the choice is printed; without --inventory, `nodes`
    // is the host alone.
    let (ok, _, stderr) = portconform(&["replay", good_s, "--profile", "thoughtspot"]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("no --host: taking 192.0.2.1 as the capture's host"),
        "{stderr}"
    );
    assert!(
        stderr.contains("role `nodes` is the capture's host alone (192.0.2.1/32)"),
        "{stderr}"
    );
}

/// Without --host, a capture that stops before its first IP packet says
/// where it stopped, not only that no host could be guessed.
#[test]
fn a_capture_cut_short_names_the_offset_even_without_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    let bytes = write_pcap(&path, DataLink::ETHERNET, &[(T0, frame(TCP_SYN))]);
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let (ok, _, stderr) =
        portconform(&["replay", path.to_str().unwrap(), "--profile", "thoughtspot"]);
    assert!(!ok);
    assert!(
        stderr.contains("cut.pcap: byte 24: file ends inside a packet record"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no IP packet could be read from"),
        "{stderr}"
    );
}
