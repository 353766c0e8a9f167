//! pcap and pcapng files written with pcap-file's writers, the reference
//! the capture reader is tested against.

use std::{borrow::Cow, path::Path, time::Duration};

use pcap_file::{
    DataLink, Endianness, TsResolution,
    pcap::{PcapHeader, PcapPacket, PcapWriter},
    pcapng::{
        PcapNgWriter,
        blocks::{
            enhanced_packet::EnhancedPacketBlock,
            interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
        },
    },
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

/// A packet of a pcapng file: its interface, then as [`Written`].
pub type NgWritten = (u32, u64, Vec<u8>, u32);

/// pcapng bytes in one section of `endianness`: an interface per
/// (link type, snapshot length) of `interfaces`, then the packets.
/// pcap-file's writer stores nanoseconds whatever the interface says, so
/// every interface declares them (if_tsresol 9).
pub fn pcapng_bytes(
    interfaces: &[(u32, u32)],
    pkts: &[NgWritten],
    endianness: Endianness,
) -> Vec<u8> {
    let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
    for &(linktype, snaplen) in interfaces {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::from(linktype),
            snaplen,
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        })
        .unwrap();
    }
    for (iface, ts, data, orig) in pkts {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: *iface,
            timestamp: Duration::from_nanos(*ts),
            original_len: *orig,
            data: Cow::Borrowed(data),
            options: vec![],
        })
        .unwrap();
    }
    w.into_inner()
}
