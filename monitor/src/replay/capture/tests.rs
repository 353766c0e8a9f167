//! The capture reader on hand-made files.

use std::io::Write as _;

use super::{
    CaptureError, CaptureReader, Names, TsUnit,
    window::{AHEAD_CHUNK, AHEAD_ROOM},
};

/// A microsecond pcap of `n` records of varied sizes (some longer than
/// the read-ahead's room, so records straddle chunks both ways), with
/// a corrupt length field at `damage` records in, if any.
fn capture(n: u32, damage: Option<u32>) -> Vec<u8> {
    let mut out = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    for i in 0..n {
        let len = match i % 97 {
            0 => AHEAD_ROOM + 3000,
            1 => 3 * AHEAD_ROOM,
            k => 40 + (k as usize * 37) % 1400,
        };
        let incl = if damage == Some(i) {
            0x7fff_0000
        } else {
            len as u32
        };
        out.extend_from_slice(&(1_700_000_000 + i / 1000).to_le_bytes());
        out.extend_from_slice(&((i % 1000) * 1000).to_le_bytes());
        out.extend_from_slice(&incl.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend((0..len).map(|b| (b as u32 ^ i) as u8));
    }
    out
}

type Read = (Vec<(u64, u32, u64)>, u64, u64, Vec<CaptureError>, bool);

/// Every packet (time, length, checksum of its bytes) and the file's
/// counters, read directly or ahead.
fn read(path: &std::path::Path, ahead: bool) -> Read {
    let mut names = Names::default();
    let mut r = CaptureReader::open(0, path, &mut names).unwrap();
    if ahead {
        r.window.read_ahead();
    }
    let mut packets = Vec::new();
    while r.advance(&mut names) {
        let p = r.current().unwrap();
        let sum = p
            .data
            .iter()
            .fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
        packets.push((p.ts_ns, p.orig_len, sum));
    }
    let s = r.stats;
    (packets, s.packets, s.skipped, s.errors, s.stopped_early)
}

/// A packet's time, length on the wire and bytes.
type Expected = (u64, u32, Vec<u8>);

/// A little-endian pcapng: one Ethernet interface with nanosecond
/// timestamps, then `n` enhanced packet blocks of varied sizes, every
/// seventh with a comment option (read by pcap-file, the others by the
/// framed-record path); and what each packet must read as.
fn pcapng(n: u32) -> (Vec<u8>, Vec<Expected>) {
    let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = (12 + body.len()) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&len.to_le_bytes());
    };
    let mut out = Vec::new();
    let mut shb = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    // Linktype 1, snaplen 0, if_tsresol 9, end of options.
    let idb = [1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0];
    block(&mut out, 1, &idb);
    let mut want = Vec::new();
    for i in 0..n {
        let len = 20 + (i as usize * 53) % 1500;
        let data: Vec<u8> = (0..len).map(|b| (b as u32 ^ i) as u8).collect();
        let ts = 1_700_000_000_000_000_000u64 + u64::from(i) * 1_001;
        let orig = len as u32 + i % 3;
        let mut body = Vec::new();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(len as u32).to_le_bytes());
        body.extend_from_slice(&orig.to_le_bytes());
        body.extend_from_slice(&data);
        body.resize(body.len().div_ceil(4) * 4, 0);
        if i % 7 == 0 {
            body.extend_from_slice(&[1, 0, 5, 0, b'h', b'e', b'l', b'l', b'o', 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        block(&mut out, 6, &body);
        want.push((ts, orig, data));
    }
    (out, want)
}

#[test]
fn enhanced_packet_blocks_read_alike_with_and_without_options() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, want) = pcapng(3000);
    let path = dir.path().join("epb.pcapng");
    std::fs::write(&path, &bytes).unwrap();
    for ahead in [false, true] {
        let mut names = Names::default();
        let mut r = CaptureReader::open(0, &path, &mut names).unwrap();
        if ahead {
            r.window.read_ahead();
        }
        let mut got = Vec::new();
        while r.advance(&mut names) {
            let p = r.current().unwrap();
            got.push((p.ts_ns, p.orig_len, p.data.to_vec()));
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want, "ahead: {ahead}");
        assert_eq!((r.stats.skipped, r.stats.problems), (0, 0));
    }
}

#[test]
fn reading_ahead_reads_what_reading_directly_does() {
    let dir = tempfile::tempdir().unwrap();
    for (name, n, damage, gzip) in [
        ("plain.pcap", 3000, None, false),
        ("damaged.pcap", 3000, Some(1500), false),
        ("damaged.pcap.gz", 3000, Some(700), true),
        ("cut.pcap", 2000, None, false),
    ] {
        let mut bytes = capture(n, damage);
        if name == "cut.pcap" {
            bytes.truncate(bytes.len() - 100);
        }
        assert!(bytes.len() > 4 * AHEAD_CHUNK, "{name}: spans chunks");
        let path = dir.path().join(name);
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&path).unwrap(),
                flate2::Compression::fast(),
            );
            gz.write_all(&bytes).unwrap();
            gz.finish().unwrap();
        } else {
            std::fs::write(&path, &bytes).unwrap();
        }
        let direct = read(&path, false);
        let ahead = read(&path, true);
        assert!(direct.1 > 0, "{name}");
        if damage.is_some() || name == "cut.pcap" {
            assert!(!direct.3.is_empty(), "{name}: the damage is reported");
        }
        assert_eq!(direct, ahead, "{name}");
    }
}

#[test]
fn timestamp_units_follow_if_tsresol_and_if_tsoffset() {
    let at = |resol, offset_s, ticks| TsUnit { resol, offset_s }.to_ns(ticks);
    assert_eq!(at(6, 0, 1_500_000), 1_500_000_000);
    assert_eq!(at(9, 0, 7), 7);
    assert_eq!(at(3, 0, 2), 2_000_000);
    // Finer than nanoseconds: truncated.
    assert_eq!(at(12, 0, 5_999), 5);
    // Powers of two: 2^-10 s ticks.
    assert_eq!(at(0x80 | 10, 0, 1024), 1_000_000_000);
    assert_eq!(at(0x80 | 1, 0, 1), 500_000_000);
    // if_tsoffset is added in seconds.
    assert_eq!(at(6, 10, 1), 10_000_001_000);
    // Absurd values saturate instead of wrapping or panicking.
    assert_eq!(at(0, u64::MAX, u64::MAX), u64::MAX);
    assert_eq!(at(0x80 | 0x7f, 0, u64::MAX), 0);
    assert_eq!(at(200 & 0x7f, 0, u64::MAX), 0);
}
