//! The capture reader on files written with pcap-file's writers, then on
//! the same files damaged: truncated, wrong magic, absurd lengths, cut by
//! the snapshot length, garbage. Every problem must name the file and byte
//! offset, whatever is readable must still be read, and nothing may panic.

mod common;

use std::{
    borrow::Cow,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use common::pcap::{Written, pcap_bytes};
use monitor::replay::capture::{CaptureSet, Link, MAX_PACKET, Problem};
use pcap_file::{
    DataLink, Endianness, TsResolution,
    pcapng::{
        PcapNgWriter,
        blocks::{
            enhanced_packet::EnhancedPacketBlock,
            interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
        },
    },
};
use proptest::prelude::*;

/// A packet as read: (ns, bytes, original length, link, interface name, file).
type Read = (u64, Vec<u8>, u32, Link, String, usize);

fn frame(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| n.wrapping_add(i as u8)).collect()
}

fn packets(count: usize, start_ns: u64, step_ns: u64) -> Vec<Written> {
    (0..count)
        .map(|i| {
            let data = frame(i as u8, 60 + i % 7);
            let len = data.len() as u32;
            (start_ns + i as u64 * step_ns, data, len)
        })
        .collect()
}

fn pcap(pkts: &[Written]) -> Vec<u8> {
    pcap_bytes(
        pkts,
        TsResolution::NanoSecond,
        Endianness::Little,
        DataLink::ETHERNET,
        65535,
    )
}

/// pcapng with one interface; `tsresol` None writes no option (µs).
fn pcapng_bytes(pkts: &[Written], name: Option<&str>, tsresol: Option<u8>) -> Vec<u8> {
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Big).unwrap();
    let mut options = Vec::new();
    if let Some(n) = name {
        options.push(InterfaceDescriptionOption::IfName(Cow::Owned(n.into())));
    }
    if let Some(r) = tsresol {
        options.push(InterfaceDescriptionOption::IfTsResol(r));
    }
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 65535,
        options,
    })
    .unwrap();
    let per_tick = match tsresol {
        None => 1000,
        Some(r) => 10u64.pow(9 - u32::from(r)),
    };
    for (ts, data, orig) in pkts {
        // pcap-file writes the Duration's nanoseconds as the raw tick count.
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(ts / per_tick),
            original_len: *orig,
            data: Cow::Borrowed(data),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
    w.into_inner()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn read_all(paths: &[PathBuf]) -> (Vec<Read>, CaptureSet) {
    let mut set = CaptureSet::open(paths);
    let mut out = Vec::new();
    set.for_each::<()>(|p, names| {
        out.push((
            p.ts_ns,
            p.data.to_vec(),
            p.orig_len,
            p.link,
            names.get(p.iface).to_string(),
            p.file,
        ));
        Ok(())
    })
    .unwrap();
    (out, set)
}

fn strip(read: &[Read]) -> Vec<Written> {
    read.iter()
        .map(|(ts, d, o, ..)| (*ts, d.clone(), *o))
        .collect()
}

fn problems(set: &CaptureSet) -> Vec<String> {
    set.stats()
        .iter()
        .flat_map(|s| s.errors.iter().map(|e| e.to_string()))
        .collect()
}

#[test]
fn pcap_in_both_resolutions_and_byte_orders_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(50, 1_795_365_758_123_456_000, 1_000_000);
    for (res, e) in [
        (TsResolution::MicroSecond, Endianness::Big),
        (TsResolution::MicroSecond, Endianness::Little),
        (TsResolution::NanoSecond, Endianness::Big),
        (TsResolution::NanoSecond, Endianness::Little),
    ] {
        let p = write(
            dir.path(),
            "a.pcap",
            &pcap_bytes(&pkts, res, e, DataLink::ETHERNET, 65535),
        );
        let (read, set) = read_all(std::slice::from_ref(&p));
        assert_eq!(strip(&read), pkts, "{res:?} {e:?}");
        assert!(problems(&set).is_empty());
        assert!(
            read.iter()
                .all(|r| r.3 == Link::Ethernet && r.4 == "a.pcap")
        );
    }
    // Nanoseconds survive a nanosecond file.
    let fine = packets(3, 1_795_365_758_123_456_789, 7);
    let p = write(dir.path(), "ns.pcap", &pcap(&fine));
    assert_eq!(strip(&read_all(&[p]).0), fine);
}

#[test]
fn pcapng_honours_the_interface_name_and_timestamp_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(10, 1_795_365_758_000_000_000, 1_500);
    let micro = packets(10, 1_795_365_758_000_001_000, 1_000);
    let ns = write(
        dir.path(),
        "n.pcapng",
        &pcapng_bytes(&pkts, Some("eth7"), Some(9)),
    );
    let us = write(dir.path(), "u.pcapng", &pcapng_bytes(&micro, None, None));
    let (read, set) = read_all(std::slice::from_ref(&ns));
    assert_eq!(strip(&read), pkts);
    assert!(read.iter().all(|r| r.4 == "eth7"));
    assert!(problems(&set).is_empty());
    let (read, _) = read_all(std::slice::from_ref(&us));
    assert_eq!(strip(&read), micro);
    assert!(read.iter().all(|r| r.4 == "u.pcapng"));
}

#[test]
fn pcapng_simple_packet_blocks_take_the_previous_time_and_the_snapshot_length() {
    use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 64,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    })
    .unwrap();
    let data = frame(3, 100);
    w.write_pcapng_block(EnhancedPacketBlock {
        interface_id: 0,
        timestamp: Duration::from_nanos(42),
        original_len: 61,
        data: Cow::Owned(frame(1, 61)),
        options: vec![],
    })
    .unwrap();
    // 61 bytes padded to 64 in the block: the original length says 61.
    w.write_pcapng_block(SimplePacketBlock {
        original_len: 61,
        data: Cow::Owned(frame(2, 61)),
    })
    .unwrap();
    // Longer than the snapshot length: only 64 bytes are real.
    w.write_pcapng_block(SimplePacketBlock {
        original_len: 100,
        data: Cow::Owned(data[..64].to_vec()),
    })
    .unwrap();
    let p = write(dir.path(), "spb.pcapng", &w.into_inner());
    let (read, set) = read_all(&[p]);
    assert!(problems(&set).is_empty());
    assert_eq!(
        strip(&read),
        vec![
            (42, frame(1, 61), 61),
            (42, frame(2, 61), 61),
            (42, data[..64].to_vec(), 100)
        ]
    );
}

#[test]
fn link_types_are_recognised_and_unknown_ones_skipped_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(3, 1_000_000_000, 1);
    for (dl, link) in [
        (DataLink::LINUX_SLL, Link::Sll),
        (DataLink::LINUX_SLL2, Link::Sll2),
        (DataLink::RAW, Link::RawIp),
        (DataLink::IPV4, Link::RawIpv4),
        (DataLink::IPV6, Link::RawIpv6),
        (DataLink::from(0), Link::Null),
        (DataLink::from(108), Link::Loop),
        (DataLink::from(9), Link::Ppp),
        (DataLink::from(50), Link::Ppp),
        (DataLink::from(104), Link::CiscoHdlc),
        (DataLink::from(107), Link::FrameRelay),
        (DataLink::from(239), Link::Nflog),
        (DataLink::from(105), Link::Ieee80211),
        (DataLink::from(127), Link::Radiotap),
        (DataLink::from(192), Link::Ppi),
        (DataLink::from(149), Link::Pktap),
        (DataLink::from(258), Link::Pktap),
        // Ethernet with the FCS-length flag in the upper bits, which
        // libpcap masks away.
        (DataLink::from(0x0400_0001), Link::Ethernet),
    ] {
        let p = write(
            dir.path(),
            "l.pcap",
            &pcap_bytes(&pkts, TsResolution::MicroSecond, Endianness::Big, dl, 65535),
        );
        let (read, _) = read_all(&[p]);
        assert!(read.iter().all(|r| r.3 == link), "{dl:?}");
        assert_eq!(read.len(), 3);
    }
    let p = write(
        dir.path(),
        "zigbee.pcap",
        &pcap_bytes(
            &pkts,
            TsResolution::MicroSecond,
            Endianness::Big,
            DataLink::from(195),
            65535,
        ),
    );
    let (read, set) = read_all(&[p]);
    assert!(read.is_empty());
    let msgs = problems(&set);
    assert!(
        msgs.iter()
            .any(|m| m.contains("link type 195 is not supported")),
        "{msgs:?}"
    );
    assert_eq!(set.stats()[0].skipped, 3);
}

#[test]
fn gzipped_captures_read_like_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(200, 1_795_365_758_000_000_000, 10_000);
    for (name, bytes) in [
        ("a.pcap.gz", pcap(&pkts)),
        ("a.pcapng.gz", pcapng_bytes(&pkts, None, Some(9))),
    ] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let p = write(dir.path(), name, &gz.finish().unwrap());
        let (read, set) = read_all(&[p]);
        assert_eq!(strip(&read), pkts, "{name}");
        assert!(problems(&set).is_empty());
    }
}

#[test]
fn several_files_merge_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let even: Vec<Written> = packets(20, 2_000, 20);
    let odd: Vec<Written> = packets(20, 2_010, 20)
        .into_iter()
        .map(|(t, mut d, o)| {
            d[0] = 0xee;
            (t, d, o)
        })
        .collect();
    let a = write(dir.path(), "a.pcap", &pcap(&even));
    let b = write(
        dir.path(),
        "b.pcapng",
        &pcapng_bytes(&odd, Some("eth1"), Some(9)),
    );
    let (read, _) = read_all(&[a, b]);
    assert_eq!(read.len(), 40);
    assert!(read.windows(2).all(|w| w[0].0 <= w[1].0));
    for (i, r) in read.iter().enumerate() {
        let from_b = i % 2 == 1;
        assert_eq!(r.5, usize::from(from_b));
        assert_eq!(r.4, if from_b { "eth1" } else { "a.pcap" });
    }
    // Equal timestamps: the file given first comes first.
    let a = write(dir.path(), "c.pcap", &pcap(&packets(2, 5, 0)));
    let b = write(dir.path(), "d.pcap", &pcap(&packets(2, 5, 0)));
    let (read, _) = read_all(&[b, a]);
    assert_eq!(
        read.iter().map(|r| r.5).collect::<Vec<_>>(),
        vec![0, 0, 1, 1]
    );
}

#[test]
fn a_truncated_pcap_keeps_its_whole_packets_and_names_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(10, 1_000, 1);
    let bytes = pcap(&pkts);
    // Offsets: 24-byte header, then 16 + len per record.
    let offsets: Vec<usize> = pkts
        .iter()
        .scan(24, |at, (_, d, _)| {
            let here = *at;
            *at += 16 + d.len();
            Some(here)
        })
        .collect();
    let cut = offsets[7] + 16 + 5;
    let p = write(dir.path(), "cut.pcap", &bytes[..cut]);
    let (read, set) = read_all(&[p]);
    assert_eq!(strip(&read), pkts[..7].to_vec());
    let msgs = problems(&set);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains("cut.pcap: byte ")
            && msgs[0].contains(&format!("byte {}:", offsets[7]))
            && msgs[0].contains("file ends inside a packet record"),
        "{msgs:?}"
    );
    // Cut inside a record header.
    let p = write(dir.path(), "cut2.pcap", &bytes[..offsets[3] + 9]);
    let (read, set) = read_all(&[p]);
    assert_eq!(read.len(), 3);
    assert!(problems(&set)[0].contains(&format!(
        "byte {}: file ends inside a packet record header",
        offsets[3]
    )));
    // Cut inside the file header: nothing to read.
    let p = write(dir.path(), "cut3.pcap", &bytes[..10]);
    let (read, set) = read_all(&[p]);
    assert!(read.is_empty());
    assert_eq!(set.failed.len(), 1);
    assert!(
        set.failed[0]
            .to_string()
            .contains("byte 0: file ends inside the pcap file header")
    );
}

#[test]
fn wrong_magic_empty_files_and_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "notes.txt", b"hello, this is not a capture\n");
    let e = write(dir.path(), "empty.pcap", b"");
    let m = dir.path().join("missing.pcap");
    let good = write(dir.path(), "good.pcap", &pcap(&packets(3, 1, 1)));
    let (read, set) = read_all(&[p, e, m, good]);
    assert_eq!(read.len(), 3);
    let msgs: Vec<String> = set.failed.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(
        msgs[0].contains("notes.txt: byte 0: not a pcap or pcapng file (starts with 68 65 6c 6c)")
    );
    assert!(msgs[1].contains("empty.pcap: byte 0: empty file"));
    assert!(msgs[2].contains("missing.pcap: byte 0: cannot open"));
}

#[test]
fn an_absurd_record_length_is_skipped_to_the_next_valid_record_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(5, 1_795_365_758_000_000_000, 1_000);
    let mut bytes = pcap(&pkts);
    let offsets: Vec<usize> = pkts
        .iter()
        .scan(24, |at, (_, d, _)| {
            let here = *at;
            *at += 16 + d.len();
            Some(here)
        })
        .collect();
    let third = offsets[2];
    // incl_len of the third record (little endian): 4 GiB - 16.
    bytes[third + 8..third + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let p = write(dir.path(), "huge.pcap", &bytes);
    let (read, set) = read_all(&[p]);
    assert_eq!(
        strip(&read),
        vec![
            pkts[0].clone(),
            pkts[1].clone(),
            pkts[3].clone(),
            pkts[4].clone()
        ]
    );
    let msgs = problems(&set);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains(&format!(
            "huge.pcap: byte {third}: a packet record claims 4294967280 bytes, more than any capture holds ({MAX_PACKET})"
        )) && msgs[0].contains(&format!(
            "{} bytes skipped to the next record that looks valid, at byte {}",
            offsets[3] - third,
            offsets[3]
        )),
        "{msgs:?}"
    );
    assert!(!set.stats()[0].stopped_early);

    // In the last record there is nothing to resume at: reading stops.
    let mut bytes = pcap(&pkts);
    let last = offsets[4];
    bytes[last + 8..last + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let p = write(dir.path(), "tail.pcap", &bytes);
    let (read, set) = read_all(&[p]);
    assert_eq!(strip(&read), pkts[..4].to_vec());
    let msgs = problems(&set);
    assert!(
        msgs[0].contains(&format!(
            "tail.pcap: byte {last}: a packet record claims 4294967280 bytes"
        )) && msgs[0].contains("the records after it cannot be framed"),
        "{msgs:?}"
    );
    assert!(set.stats()[0].stopped_early);
}

#[test]
fn packets_cut_by_the_snapshot_length_keep_their_wire_length() {
    let dir = tempfile::tempdir().unwrap();
    let full = frame(1, 1500);
    let pkts = vec![(1_000u64, full[..96].to_vec(), 1500u32)];
    let p = write(
        dir.path(),
        "snap.pcap",
        &pcap_bytes(
            &pkts,
            TsResolution::MicroSecond,
            Endianness::Little,
            DataLink::ETHERNET,
            96,
        ),
    );
    let (read, set) = read_all(&[p]);
    assert_eq!(strip(&read), pkts);
    assert!(problems(&set).is_empty());
}

#[test]
fn a_bad_timestamp_skips_one_record_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(4, 1_000_000, 1_000);
    let mut bytes = pcap_bytes(
        &pkts,
        TsResolution::MicroSecond,
        Endianness::Little,
        DataLink::ETHERNET,
        65535,
    );
    let second = 24 + 16 + pkts[0].1.len();
    bytes[second + 4..second + 8].copy_from_slice(&2_000_000u32.to_le_bytes());
    let p = write(dir.path(), "ts.pcap", &bytes);
    let (read, set) = read_all(&[p]);
    assert_eq!(strip(&read), [&pkts[..1], &pkts[2..]].concat());
    let msgs = problems(&set);
    assert!(msgs[0].contains(&format!(
        "ts.pcap: byte {second}: invalid packet record: timestamp fraction 2000000"
    )));
}

/// Offsets of the enhanced packet blocks of a big-endian pcapng file.
fn epb_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut epbs = Vec::new();
    while at < bytes.len() {
        let kind = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if kind == 6 {
            epbs.push(at);
        }
        at += len;
    }
    epbs
}

#[test]
fn pcapng_damage_inside_a_framed_block_skips_only_that_block() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(4, 1_000, 1);
    let mut bytes = pcapng_bytes(&pkts, Some("eth0"), Some(9));
    let epbs = epb_offsets(&bytes);
    let second = epbs[1];
    // Its captured length now exceeds the block.
    bytes[second + 20..second + 24].copy_from_slice(&5000u32.to_be_bytes());
    let p = write(dir.path(), "epb.pcapng", &bytes);
    let (read, set) = read_all(&[p]);
    assert_eq!(strip(&read), [&pkts[..1], &pkts[2..]].concat());
    let msgs = problems(&set);
    assert!(
        msgs[0].contains(&format!(
            "epb.pcapng: byte {second}: invalid enhanced packet block"
        )) && msgs[0].contains("block skipped"),
        "{msgs:?}"
    );
    // A trailer that disagrees with the header, then a block claiming
    // gigabytes: framing is lost there and found again at the next block.
    for (name, patch) in [("trailer.pcapng", true), ("big.pcapng", false)] {
        let mut bytes = pcapng_bytes(&pkts, None, Some(9));
        let epbs = epb_offsets(&bytes);
        let third = epbs[2];
        let len = u32::from_be_bytes(bytes[third + 4..third + 8].try_into().unwrap()) as usize;
        if patch {
            bytes[third + len - 4..third + len].copy_from_slice(&4u32.to_be_bytes());
        } else {
            bytes[third + 4..third + 8].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        }
        let p = write(dir.path(), name, &bytes);
        let (read, set) = read_all(&[p]);
        assert_eq!(
            strip(&read),
            vec![pkts[0].clone(), pkts[1].clone(), pkts[3].clone()],
            "{name}"
        );
        let msgs = problems(&set);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        let why = if patch {
            format!(
                "invalid enhanced packet block: total length {len} at its start but 4 at its end"
            )
        } else {
            "a block claims 2147483632 bytes".to_string()
        };
        assert!(
            msgs[0].contains(&format!("{name}: byte {third}: {why}"))
                && msgs[0].contains(&format!(
                    "{len} bytes skipped to the next record that looks valid, at byte {}",
                    epbs[3]
                )),
            "{msgs:?}"
        );
    }
    // Damage in the last block: nothing to resume at, reading stops.
    let mut bytes = pcapng_bytes(&pkts, None, Some(9));
    let last = *epb_offsets(&bytes).last().unwrap();
    bytes[last + 4..last + 8].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    let p = write(dir.path(), "tail.pcapng", &bytes);
    let (read, set) = read_all(&[p]);
    assert_eq!(strip(&read), pkts[..3].to_vec());
    assert!(set.stats()[0].stopped_early);
}

#[test]
fn a_truncated_gzip_stream_keeps_what_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(2000, 1_000, 1);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&pcap(&pkts)).unwrap();
    let full = gz.finish().unwrap();
    let p = write(dir.path(), "cut.pcap.gz", &full[..full.len() / 2]);
    let (read, set) = read_all(&[p]);
    assert!(
        !read.is_empty() && read.len() < pkts.len(),
        "{}",
        read.len()
    );
    assert_eq!(strip(&read), pkts[..read.len()].to_vec());
    let msgs = problems(&set);
    assert!(
        msgs[0].starts_with(&format!("{}", dir.path().join("cut.pcap.gz").display()))
            && msgs[0].contains("decompressed byte"),
        "{msgs:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any damage (bytes overwritten, the file cut anywhere) yields a
    /// prefix-faithful read or errors, never a panic, and never a packet
    /// longer than the cap.
    #[test]
    fn damaged_files_never_panic(
        ng in any::<bool>(),
        cut in 0usize..3000,
        flips in proptest::collection::vec((0usize..3000, any::<u8>()), 0..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let pkts = packets(30, 1_000_000_000, 1000);
        let mut bytes = if ng { pcapng_bytes(&pkts, Some("x"), Some(9)) } else { pcap(&pkts) };
        for (at, v) in flips {
            if at < bytes.len() {
                bytes[at] = v;
            }
        }
        bytes.truncate(cut.min(bytes.len()));
        let p = write(dir.path(), "x", &bytes);
        let (read, set) = read_all(&[p]);
        // Every record has a header of at least 12 bytes.
        prop_assert!(read.len() <= bytes.len() / 12);
        prop_assert!(read.iter().all(|r| r.1.len() <= MAX_PACKET));
        for s in set.stats() {
            for e in &s.errors {
                prop_assert!(e.to_string().contains(": byte "));
                prop_assert!(!matches!(e.problem, Problem::Io(_)), "{}", e);
            }
        }
    }
}
