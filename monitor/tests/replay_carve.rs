//! `replay --pcap` (issue 18, item 3): the offending packets carved out of a
//! capture, read back by tshark, the oracle a reviewer opens them with.
//!
//! The capture holds, on the host 192.0.2.1 (node1, thoughtspot):
//! - an unexpected flow from a stranger to port 7777, 12 packets;
//! - a required flow (node2 → 5432) refused by a reset: a blocked attempt;
//! - the same flow answered from another port: a working attempt, not
//!   offending;
//! - allowed traffic (node2 → 2181, answered), never carved.

mod common;

use std::{path::Path, process::Command};

use common::{
    frames::{INVENTORY, MAC, NODE1, NODE2, STRANGER, T0, tcp},
    pcap::write_pcap,
};
use etherparse::PacketBuilder;
use monitor_common::packet::{TCP_ACK, TCP_RST, TCP_SYN};
use pcap_file::DataLink;

const MS: u64 = 1_000_000;

/// The capture's frames, in time order.
fn frames() -> Vec<(u64, Vec<u8>)> {
    // Allowed and answered: nothing to carve. Then the unexpected flow: a
    // SYN, its answer, and ten more segments.
    let mut f = vec![
        (T0, tcp(NODE2, NODE1, 41000, 2181, TCP_SYN)),
        (T0 + MS, tcp(NODE1, NODE2, 2181, 41000, TCP_SYN | TCP_ACK)),
        (T0 + 10 * MS, tcp(STRANGER, NODE1, 50000, 7777, TCP_SYN)),
        (
            T0 + 11 * MS,
            tcp(NODE1, STRANGER, 7777, 50000, TCP_SYN | TCP_ACK),
        ),
    ];
    for i in 0..10u64 {
        let (src, dst, sp, dp) = if i % 2 == 0 {
            (STRANGER, NODE1, 50000, 7777)
        } else {
            (NODE1, STRANGER, 7777, 50000)
        };
        f.push((T0 + (12 + i) * MS, tcp(src, dst, sp, dp, TCP_ACK)));
    }
    // The required flow refused: SYN, a retransmission, the reset.
    f.push((T0 + 30 * MS, tcp(NODE2, NODE1, 42000, 5432, TCP_SYN)));
    f.push((T0 + 31 * MS, tcp(NODE2, NODE1, 42000, 5432, TCP_SYN)));
    f.push((
        T0 + 32 * MS,
        tcp(NODE1, NODE2, 5432, 42000, TCP_RST | TCP_ACK),
    ));
    // The same flow answered from another port: working, not carved.
    f.push((T0 + 40 * MS, tcp(NODE2, NODE1, 43000, 5432, TCP_SYN)));
    f.push((
        T0 + 41 * MS,
        tcp(NODE1, NODE2, 5432, 43000, TCP_SYN | TCP_ACK),
    ));
    // Capture time moves on past the sweep that judges the reset.
    f.push((T0 + 500 * MS, tcp(NODE2, NODE1, 41000, 2181, TCP_ACK)));
    f
}

/// One carved packet as tshark dissects it.
#[derive(Debug)]
struct Carved {
    iface: String,
    encap: String,
    src: String,
    sport: u16,
    dport: u16,
    flags: String,
    comment: String,
    len: usize,
}

fn tshark(path: &Path) -> Vec<Carved> {
    let tshark = Path::new("/usr/bin/tshark");
    assert!(
        tshark.exists(),
        "tshark is required for this test: install it with `apt-get install tshark`"
    );
    let out = Command::new(tshark)
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=f"])
        .args(["-e", "frame.interface_name", "-e", "frame.encap_type"])
        .args(["-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.dstport"])
        .args([
            "-e",
            "tcp.flags.str",
            "-e",
            "frame.comment",
            "-e",
            "frame.len",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert_eq!(f.len(), 8, "{l}");
            Carved {
                iface: f[0].into(),
                encap: f[1].into(),
                src: f[2].into(),
                sport: f[3].parse().unwrap(),
                dport: f[4].parse().unwrap(),
                flags: f[5].into(),
                comment: f[6].into(),
                len: f[7].parse().unwrap(),
            }
        })
        .collect()
}

fn replay(capture: &Path, inventory: &Path, extra: &[&str]) -> String {
    let mut cmd = common::command(&["replay", "--no-resolve", "--host", "192.0.2.1"]);
    cmd.arg(capture)
        .args(["--profile", "thoughtspot", "--inventory"])
        .arg(inventory)
        .args(extra);
    common::succeeds(&mut cmd).1
}

#[test]
fn offending_packets_are_carved_with_their_lines_and_interface() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("node1.pcap");
    write_pcap(&capture, DataLink::ETHERNET, &frames());
    let inventory = dir.path().join("inv.toml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let carved = dir.path().join("carved.pcapng");
    let stderr = replay(&capture, &inventory, &["--pcap", carved.to_str().unwrap()]);
    assert!(
        stderr.contains(&format!(
            "wrote 11 packets to {}: 8 of unexpected flows, 3 of blocked attempts",
            carved.display()
        )),
        "{stderr}"
    );
    let packets = tshark(&carved);
    assert_eq!(packets.len(), 11, "{packets:#?}");
    for p in &packets {
        assert_eq!(p.iface, "node1.pcap", "{p:?}");
        assert_eq!(p.encap, "1", "Ethernet, as in the source: {p:?}");
        assert_eq!(p.len, 54, "whole frames: {p:?}");
        assert_ne!(p.dport, 2181, "allowed traffic is not carved: {p:?}");
        assert_ne!(p.sport, 43000, "an answered attempt is not carved: {p:?}");
    }
    // The unexpected flow's first 8 packets, both ways, in capture order;
    // the first carries the event's console line.
    let (flow, blocked) = packets.split_at(8);
    assert!(
        flow[0]
            .comment
            .starts_with("UNEXPECTED inbound tcp 203.0.113.9:50000 -> 192.0.2.1:7777"),
        "{:?}",
        flow[0]
    );
    assert_eq!(flow[1].src, "192.0.2.1");
    for (i, p) in flow.iter().enumerate().skip(1) {
        assert!(
            p.comment
                .starts_with(&format!("UNEXPECTED flow, its packet {}: tcp", i + 1)),
            "{p:?}"
        );
        assert!(p.comment.ends_with("on node1.pcap"), "{p:?}");
    }
    // The blocked attempt: both SYNs and the reset, each with the BLOCKED line.
    let kinds: Vec<(&str, u16)> = blocked.iter().map(|p| (&p.src[..], p.sport)).collect();
    assert_eq!(
        kinds,
        [
            ("192.0.2.2", 42000),
            ("192.0.2.2", 42000),
            ("192.0.2.1", 5432)
        ]
    );
    assert!(blocked[2].flags.contains('R'), "{:?}", blocked[2]);
    for p in blocked {
        assert!(
            p.comment
                .starts_with("BLOCKED inbound tcp 192.0.2.2:42000 -> 192.0.2.1:5432")
                && p.comment.contains("[reset]"),
            "{p:?}"
        );
    }

    // Every packet of the flagged flows.
    let all = dir.path().join("all.pcapng");
    let stderr = replay(
        &capture,
        &inventory,
        &["--pcap", all.to_str().unwrap(), "--pcap-all-packets"],
    );
    assert!(
        stderr.contains("wrote 15 packets") && stderr.contains("12 of unexpected flows"),
        "{stderr}"
    );
    assert_eq!(tshark(&all).len(), 15);
}

/// A capture of another link type is carved in it: the packets are the
/// source's bytes, not a rebuilt Ethernet frame.
#[test]
fn the_source_link_type_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("ppp.pcap");
    // PPP in HDLC-like framing (LINKTYPE_PPP_HDLC): ff 03, then protocol 0x0021.
    let ppp = |ip: Vec<u8>| [&[0xff, 0x03, 0x00, 0x21][..], &ip].concat();
    let ip = |sport: u16| {
        let mut v = Vec::new();
        PacketBuilder::ipv4(STRANGER, NODE1, 64)
            .tcp(sport, 7777, 1, 1024)
            .syn()
            .write(&mut v, &[])
            .unwrap();
        v
    };
    let frames = vec![(T0, ppp(ip(50000))), (T0 + MS, ppp(ip(50001)))];
    write_pcap(&capture, DataLink::PPP_HDLC, &frames);
    let inventory = dir.path().join("inv.toml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let carved = dir.path().join("carved.pcapng");
    replay(&capture, &inventory, &["--pcap", carved.to_str().unwrap()]);
    let packets = tshark(&carved);
    assert_eq!(packets.len(), 2, "{packets:#?}");
    for (p, sport) in packets.iter().zip([50000, 50001]) {
        // Wireshark's WTAP_ENCAP_PPP_WITH_PHDR/PPP encapsulations, not Ethernet.
        assert_ne!(p.encap, "1", "{p:?}");
        assert_eq!(
            (p.src.as_str(), p.sport, p.dport),
            ("203.0.113.9", sport, 7777)
        );
        assert_eq!(p.len, frames[0].1.len(), "{p:?}");
    }
    let raw = std::fs::read(&carved).unwrap();
    assert!(
        raw.windows(frames[0].1.len()).any(|w| w == frames[0].1),
        "the source frame's bytes are in the file"
    );
}

/// The size limit holds, and what it kept out is said.
#[test]
fn the_file_stops_at_pcap_max_mib_and_says_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("big.pcap");
    // 1000 segments of 1514 bytes in one unexpected flow: 1.5 MB.
    let mut frames = Vec::new();
    for i in 0..1000u64 {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv4(STRANGER, NODE1, 64)
            .tcp(50000, 7777, 1 + i as u32 * 1460, 1024)
            .ack(1)
            .write(&mut v, &[0x5a; 1460])
            .unwrap();
        frames.push((T0 + i * MS, v));
    }
    write_pcap(&capture, DataLink::ETHERNET, &frames);
    let inventory = dir.path().join("inv.toml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let carved = dir.path().join("carved.pcapng");
    let stderr = replay(
        &capture,
        &inventory,
        &[
            "--pcap",
            carved.to_str().unwrap(),
            "--pcap-all-packets",
            "--pcap-max-mib",
            "1",
        ],
    );
    let size = std::fs::metadata(&carved).unwrap().len();
    assert!(size <= 1 << 20, "{size}");
    let written = tshark(&carved).len();
    assert!(written > 600 && written < 1000, "{written}");
    assert!(
        stderr.contains(&format!("wrote {written} packets"))
            && stderr.contains(&format!(
                "{} more not written: the file reached --pcap-max-mib",
                1000 - written
            )),
        "{stderr}"
    );
    // Without --pcap, the options that shape it are refused.
    let mut cmd = common::command(&["replay", "--no-resolve", "--pcap-all-packets"]);
    cmd.arg(&capture).args(["--profile", "thoughtspot"]);
    let stderr = common::fails(&mut cmd);
    assert!(stderr.contains("--pcap"), "{stderr}");
}
