//! Every link type replay reads, against tshark as the oracle (issue 18,
//! items 1 and 2): for each, a capture of IPv4 and IPv6 packets under that
//! link's header (and frames of it that carry no IP) is written, and for
//! every frame the packet replay parses must be the one tshark dissects:
//! same addresses, same ports, and no IP where tshark finds none. The
//! closing line gives the share of tshark's IP packets replay read.

mod common;

use std::{collections::BTreeMap, path::Path, process::Command};

use common::pcap::pcap_bytes;
use etherparse::PacketBuilder;
use monitor::replay::{capture::CaptureSet, parse_frame};
use pcap_file::{DataLink, Endianness, TsResolution};

const V4_SRC: [u8; 4] = [192, 0, 2, 10];
const V4_DST: [u8; 4] = [198, 51, 100, 20];
const V6_SRC: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
];
const V6_DST: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14,
];

fn v4_syn() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(V4_SRC, V4_DST, 64)
        .tcp(40001, 5432, 1, 1024)
        .syn()
        .write(&mut out, &[])
        .unwrap();
    out
}

fn v6_udp() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(V6_SRC, V6_DST, 64)
        .udp(40002, 53)
        .write(&mut out, b"query")
        .unwrap();
    out
}

/// An Ethernet frame around `ip` (ethertype from its version nibble).
fn ethernet(ip: &[u8]) -> Vec<u8> {
    let kind: [u8; 2] = if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    [&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2][..], &kind, ip].concat()
}

/// 802.11 data frame (to the AP) around `ip`, LLC/SNAP included.
fn wifi(ip: &[u8]) -> Vec<u8> {
    let kind: [u8; 2] = if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    let mut f = vec![0x08, 0x01, 0, 0];
    f.extend_from_slice(&[
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 3, 0, 0,
    ]);
    f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
    f.extend_from_slice(&kind);
    f.extend_from_slice(ip);
    f
}

/// An 802.11 beacon: management, no IP.
fn beacon() -> Vec<u8> {
    let mut f = vec![0x80, 0, 0, 0];
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 9, 0x02, 0, 0, 0, 0, 9, 0, 0]);
    f.extend_from_slice(&[0; 12]);
    f
}

fn nflog(family: u8, ip: &[u8]) -> Vec<u8> {
    let mut f = vec![family, 0, 0, 1];
    // NFULA_PACKET_HDR (type 1): hw protocol, hook, pad.
    f.extend_from_slice(&[8, 0, 1, 0, 0x08, 0x00, 3, 0]);
    let len = (4 + ip.len()) as u16;
    f.extend_from_slice(&len.to_le_bytes());
    f.extend_from_slice(&9u16.to_le_bytes());
    f.extend_from_slice(ip);
    while f.len() % 4 != 0 {
        f.push(0);
    }
    f
}

fn pktap(inner_dlt: u32, inner: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 108];
    h[..4].copy_from_slice(&108u32.to_le_bytes());
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h[8..12].copy_from_slice(&inner_dlt.to_le_bytes());
    h[12..15].copy_from_slice(b"en0");
    [h, inner.to_vec()].concat()
}

/// Each link type with its frames: IP under every header variant replay
/// reads, and what that link carries besides IP.
fn corpus() -> Vec<(u32, &'static str, Vec<Vec<u8>>)> {
    let (v4, v6) = (v4_syn(), v6_udp());
    let cat = |head: &[u8], ip: &[u8]| [head, ip].concat();
    vec![
        (
            0,
            "NULL",
            vec![
                cat(&2u32.to_le_bytes(), &v4),
                cat(&2u32.to_be_bytes(), &v4),
                cat(&24u32.to_le_bytes(), &v6),
                cat(&28u32.to_le_bytes(), &v6),
                cat(&30u32.to_le_bytes(), &v6),
                cat(&30u32.to_be_bytes(), &v6),
                cat(&7u32.to_le_bytes(), &[0u8; 20]),
            ],
        ),
        (
            108,
            "LOOP",
            vec![
                cat(&2u32.to_be_bytes(), &v4),
                cat(&24u32.to_be_bytes(), &v6),
            ],
        ),
        (
            9,
            "PPP",
            vec![
                cat(&[0xff, 0x03, 0x00, 0x21], &v4),
                cat(&[0xff, 0x03, 0x00, 0x57], &v6),
                cat(&[0x00, 0x21], &v4),
                cat(&[0xff, 0x03, 0xc0, 0x21], &[1, 1, 0, 4]),
            ],
        ),
        (
            50,
            "PPP_HDLC",
            vec![
                cat(&[0xff, 0x03, 0x00, 0x21], &v4),
                cat(&[0xff, 0x03, 0x00, 0x57], &v6),
                cat(&[0x0f, 0x00, 0x08, 0x00], &v4),
            ],
        ),
        (
            104,
            "C_HDLC",
            vec![
                cat(&[0x0f, 0x00, 0x08, 0x00], &v4),
                cat(&[0x8f, 0x00, 0x86, 0xdd], &v6),
            ],
        ),
        (
            107,
            "FRELAY",
            vec![
                cat(&[0x18, 0x41, 0x03, 0xcc], &v4),
                cat(&[0x18, 0x41, 0x03, 0x8e], &v6),
                cat(&[0x18, 0x41, 0x03, 0x00, 0x80, 0, 0, 0, 0x08, 0x00], &v4),
            ],
        ),
        (101, "RAW", vec![v4.clone(), v6.clone()]),
        (12, "RAW (BSD 12)", vec![v4.clone(), v6.clone()]),
        (14, "RAW (BSD 14)", vec![v4.clone(), v6.clone()]),
        (228, "IPV4", vec![v4.clone()]),
        (229, "IPV6", vec![v6.clone()]),
        (239, "NFLOG", vec![nflog(2, &v4), nflog(10, &v6)]),
        (105, "IEEE802_11", vec![wifi(&v4), wifi(&v6), beacon()]),
        (
            127,
            "IEEE802_11_RADIOTAP",
            vec![
                cat(&[0, 0, 8, 0, 0, 0, 0, 0], &wifi(&v4)),
                cat(&[0, 0, 8, 0, 0, 0, 0, 0], &wifi(&v6)),
                cat(&[0, 0, 8, 0, 0, 0, 0, 0], &beacon()),
            ],
        ),
        (
            192,
            "PPI",
            vec![
                cat(&[0, 0, 8, 0, 105, 0, 0, 0], &wifi(&v4)),
                cat(&[0, 0, 8, 0, 105, 0, 0, 0], &wifi(&v6)),
            ],
        ),
        (
            258,
            "PKTAP",
            vec![pktap(1, &ethernet(&v4)), pktap(1, &ethernet(&v6))],
        ),
        (
            // Ethernet with an FCS-length flag in the link type's upper bits.
            0x0400_0001,
            "ETHERNET+FCS flag",
            vec![ethernet(&v4), ethernet(&v6)],
        ),
    ]
}

/// What tshark dissects in each frame: (source, destination, source port),
/// or None where it finds no IP.
fn tshark_view(file: &Path) -> Vec<Option<(String, String, u16)>> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.src",
            "-e",
            "ipv6.dst",
            "-e",
            "tcp.srcport",
            "-e",
            "udp.srcport",
        ])
        .output()
        .expect("tshark (Debian's tshark package; `cargo xtask setup` installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let (src, dst) = if !f[0].is_empty() {
                (f[0], f[1])
            } else if !f[2].is_empty() {
                (f[2], f[3])
            } else {
                return None;
            };
            let port = [f[4], f[5]]
                .iter()
                .find_map(|p| p.parse().ok())
                .unwrap_or(0);
            Some((src.to_string(), dst.to_string(), port))
        })
        .collect()
}

fn addr(bytes: [u8; 16], v6: bool) -> String {
    if v6 {
        std::net::Ipv6Addr::from(bytes).to_string()
    } else {
        std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()
    }
}

#[test]
fn every_link_type_gives_replay_the_ip_packets_tshark_sees() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (linktype, name, frames) in corpus() {
        let pkts: Vec<_> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| (1_000_000_000 + i as u64, f.clone(), f.len() as u32))
            .collect();
        let path = dir.path().join(format!("{linktype}.pcap"));
        let bytes = pcap_bytes(
            &pkts,
            TsResolution::MicroSecond,
            Endianness::Little,
            DataLink::from(linktype),
            65535,
        );
        std::fs::write(&path, bytes).unwrap();
        let oracle = tshark_view(&path);
        assert_eq!(
            oracle.len(),
            frames.len(),
            "{name}: tshark read every frame"
        );

        let mut set = CaptureSet::open(std::slice::from_ref(&path));
        let mut scratch = Vec::new();
        let mut i = 0;
        set.for_each::<()>(|p, _| {
            let ours = parse_frame(p.link, p.data, p.orig_len, &mut scratch)
                .ok()
                .map(|(parsed, _)| {
                    let v6 = parsed.family == monitor_common::packet::Family::V6;
                    (addr(parsed.src, v6), addr(parsed.dst, v6), parsed.sport)
                });
            assert_eq!(ours, oracle[i], "{name}, frame {}", i + 1);
            let entry = seen.entry(name).or_default();
            entry.0 += usize::from(oracle[i].is_some());
            entry.1 += usize::from(ours.is_some());
            i += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(i, frames.len(), "{name}: replay read every frame");
    }
    let (tshark, replay) = seen.values().fold((0, 0), |(t, r), (a, b)| (t + a, r + b));
    println!(
        "replay read {replay} of the {tshark} IP packets tshark dissects over {} link types ({:.1}%)",
        seen.len(),
        100.0 * replay as f64 / tshark as f64
    );
}
