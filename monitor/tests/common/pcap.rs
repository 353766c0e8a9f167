//! pcap files written with pcap-file's writer, the reference the capture
//! reader is tested against.

use std::{path::Path, time::Duration};

use pcap_file::{
    DataLink, Endianness, TsResolution,
    pcap::{PcapHeader, PcapPacket, PcapWriter},
};

/// A packet as written: (ns since the epoch, bytes, original length).
pub type Written = (u64, Vec<u8>, u32);

pub fn pcap_bytes(
    pkts: &[Written],
    res: TsResolution,
    endianness: Endianness,
    link: DataLink,
    snaplen: u32,
) -> Vec<u8> {
    let header = PcapHeader {
        ts_resolution: res,
        endianness,
        datalink: link,
        snaplen,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (ts, data, orig) in pkts {
        w.write_packet(&PcapPacket::new(Duration::from_nanos(*ts), *orig, data))
            .unwrap();
    }
    w.into_writer()
}

/// Whole `frames` (capture time in ns, bytes) in a nanosecond,
/// little-endian pcap of link type `link`, written to `path`; its bytes, for
/// a test that damages them.
pub fn write_pcap(path: &Path, link: DataLink, frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let pkts: Vec<Written> = frames
        .iter()
        .map(|(ts, f)| (*ts, f.clone(), f.len() as u32))
        .collect();
    let bytes = pcap_bytes(
        &pkts,
        TsResolution::NanoSecond,
        Endianness::Little,
        link,
        65535,
    );
    std::fs::write(path, &bytes).unwrap();
    bytes
}
