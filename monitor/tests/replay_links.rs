//! Every link type replay reads, against tshark as the oracle (issue 18,
//! items 1 and 2): for each, a capture of IPv4 and IPv6 packets under that
//! link's header (and frames of it that carry no IP) is written, and for
//! every frame the packet replay parses must be the one tshark dissects:
//! same addresses, same ports, and no IP where tshark finds none. The
//! closing line gives the share of tshark's IP packets replay read. One
//! small file per link type, to read when one fails; `replay_corpus.rs`
//! holds replay to tshark over hundreds of generated files.

mod common;

use std::collections::BTreeMap;

use common::{
    links::{beacon, cat, ethernet_ip, nflog_ip, pktap, wifi_ip},
    oracle,
    pcap::pcap_bytes,
};
use etherparse::PacketBuilder;
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

/// Each link type with its frames: IP under every header variant replay
/// reads, and what that link carries besides IP.
fn corpus() -> Vec<(u32, &'static str, Vec<Vec<u8>>)> {
    let (v4, v6) = (v4_syn(), v6_udp());
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
        (239, "NFLOG", vec![nflog_ip(2, &v4), nflog_ip(10, &v6)]),
        (
            105,
            "IEEE802_11",
            vec![wifi_ip(&v4), wifi_ip(&v6), beacon()],
        ),
        (
            127,
            "IEEE802_11_RADIOTAP",
            vec![
                cat(&[0, 0, 8, 0, 0, 0, 0, 0], &wifi_ip(&v4)),
                cat(&[0, 0, 8, 0, 0, 0, 0, 0], &wifi_ip(&v6)),
                cat(&[0, 0, 8, 0, 0, 0, 0, 0], &beacon()),
            ],
        ),
        (
            192,
            "PPI",
            vec![
                cat(&[0, 0, 8, 0, 105, 0, 0, 0], &wifi_ip(&v4)),
                cat(&[0, 0, 8, 0, 105, 0, 0, 0], &wifi_ip(&v6)),
            ],
        ),
        (
            258,
            "PKTAP",
            vec![
                pktap(1, 1, &ethernet_ip(&v4)),
                pktap(1, 1, &ethernet_ip(&v6)),
            ],
        ),
        (
            // Ethernet with an FCS-length flag in the link type's upper bits.
            0x0400_0001,
            "ETHERNET+FCS flag",
            vec![ethernet_ip(&v4), ethernet_ip(&v6)],
        ),
    ]
}

#[test]
fn every_link_type_gives_replay_the_ip_packets_tshark_sees() {
    oracle::require("tshark", "tshark");
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
        let oracle = oracle::tshark(&path);
        let replay = oracle::replay(&path);
        assert_eq!(
            oracle.len(),
            frames.len(),
            "{name}: tshark read every frame"
        );
        assert_eq!(
            replay.len(),
            frames.len(),
            "{name}: replay read every frame"
        );
        for (i, (t, r)) in oracle.iter().zip(&replay).enumerate() {
            match (&t.ip, r) {
                (Some(t), Ok(r)) => {
                    if let Some(why) = oracle::disagreement(t, r) {
                        panic!("{name}, frame {}: {why}: tshark {t:?}, replay {r:?}", i + 1);
                    }
                }
                (None, Err(_)) => {}
                (t, r) => panic!("{name}, frame {}: tshark {t:?}, replay {r:?}", i + 1),
            }
            let entry = seen.entry(name).or_default();
            entry.0 += usize::from(t.ip.is_some());
            entry.1 += usize::from(r.is_ok());
        }
    }
    let (tshark, replay) = seen.values().fold((0, 0), |(t, r), (a, b)| (t + a, r + b));
    println!(
        "replay read {replay} of the {tshark} IP packets tshark dissects over {} link types ({:.1}%)",
        seen.len(),
        100.0 * replay as f64 / tshark as f64
    );
}
