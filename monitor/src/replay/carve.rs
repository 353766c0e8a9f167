//! `replay --pcap`: the offending packets carved out of the captures into
//! one pcapng file a reviewer opens in Wireshark next to the events.
//!
//! What is written, each packet whole, with the link type and interface
//! name it had in its source capture:
//! - each unexpected flow's first [`FIRST_PACKETS`] packets (both ways), or
//!   all of its packets with `--pcap-all-packets`; the first carries the
//!   event's console line as its comment, the others say which packet of
//!   which flow they are;
//! - each blocked attempt of a required flow: its SYNs or requests and the
//!   reset or ICMP error that refused it, commented with the attempt's
//!   BLOCKED line. An attempt is only known to have failed once it is
//!   judged (a handshake timeout later in capture time), so its packets are
//!   held until then, and dropped if it is answered.
//!
//! Memory stays bounded whatever the capture: held attempts are a subset of
//! the attempt table (itself capped), each holds at most
//! [`HOLD_PACKETS`] packets of at most [`HOLD_SNAP`] bytes, and all held
//! bytes together at most [`HOLD_BYTES`]; what does not fit is counted and
//! said, never silently lost. The file stops growing at `--pcap-max-mib`,
//! as `run --pcap`'s does, and the packets it could not take are counted.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, UNIX_EPOCH},
};

use monitor_common::{handshake::HandshakeKey, packet::Parsed, stats::PacketDir};

use super::{capture::Names, capture::Packet, ip_of};
use crate::events::{CapturedPacket, IpProto, PcapngError, PcapngWriter};

/// Packets of each unexpected flow carved without `--pcap-all-packets`:
/// a TCP handshake and the first exchanges, or the first datagrams both
/// ways; enough to see what the flow was, few enough that a scan of a
/// whole network stays a small file.
pub const FIRST_PACKETS: u64 = 8;
/// Packets held per pending attempt: the first SYN or request, two
/// retransmissions and the refusal. Later retransmissions are counted.
pub const HOLD_PACKETS: usize = 4;
/// Bytes kept of each held packet: SYNs, resets and ICMP errors are far
/// smaller; a large request is cut, with its length on the wire kept.
pub const HOLD_SNAP: usize = 2048;
/// All held packets together, so a capture full of unanswered attempts
/// cannot hold the table's 16384 attempts at full size each.
pub const HOLD_BYTES: usize = 16 << 20;
/// The snapshot length of the carved file: libpcap's largest, since the
/// packets are copied as the source captured them.
const SNAPLEN: u32 = super::capture::MAX_PACKET as u32;

type Hasher = foldhash::fast::RandomState;

/// What `replay --pcap` was asked for.
#[derive(Debug, Clone)]
pub struct CarveOptions {
    pub path: PathBuf,
    /// Every packet of the flagged flows, not only their first.
    pub all_packets: bool,
    pub max_bytes: u64,
}

/// A packet of a pending attempt, copied out of the capture's buffer.
struct Held {
    ts_ns: u64,
    orig_len: u32,
    linktype: u32,
    iface: usize,
    data: Box<[u8]>,
}

/// What was carved, for the closing summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarveCounts {
    /// Packets of unexpected flows written.
    pub unexpected: u64,
    /// Packets of blocked attempts written.
    pub blocked: u64,
    /// Packets of pending attempts not held: past [`HOLD_PACKETS`] for
    /// their attempt, or past [`HOLD_BYTES`] in all.
    pub not_held: u64,
}

/// The carved file and the attempts whose packets wait for a verdict.
pub struct Carver {
    writer: PcapngWriter,
    all_packets: bool,
    held: HashMap<HandshakeKey, Vec<Held>, Hasher>,
    held_bytes: usize,
    pub counts: CarveCounts,
}

impl Carver {
    pub fn create(options: &CarveOptions) -> Result<Self, PcapngError> {
        Ok(Self {
            writer: PcapngWriter::create_with(
                &options.path,
                Vec::new(),
                SNAPLEN,
                options.max_bytes,
            )?,
            all_packets: options.all_packets,
            held: HashMap::default(),
            held_bytes: 0,
            counts: CarveCounts::default(),
        })
    }

    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// Packets the size limit kept out of the file.
    pub fn dropped(&self) -> u64 {
        self.writer.packets_dropped()
    }

    /// Whether the `nth` packet of an unexpected flow is carved.
    #[inline]
    pub fn wants(&self, nth: u64) -> bool {
        self.all_packets || nth <= FIRST_PACKETS
    }

    /// Writes a packet of an unexpected flow (one [`wants`](Self::wants)).
    pub fn unexpected(
        &mut self,
        pkt: &Packet,
        names: &Names,
        comment: &str,
    ) -> Result<(), PcapngError> {
        self.counts.unexpected += u64::from(self.write(pkt, names, comment)?);
        Ok(())
    }

    /// Keeps a packet of the pending attempt `key` until it is judged.
    pub fn hold(&mut self, key: &HandshakeKey, pkt: &Packet) {
        let size = pkt.data.len().min(HOLD_SNAP);
        let held = self.held.entry(*key).or_default();
        if held.len() >= HOLD_PACKETS || self.held_bytes + size > HOLD_BYTES {
            self.counts.not_held += 1;
            if held.is_empty() {
                self.held.remove(key);
            }
            return;
        }
        self.held_bytes += size;
        held.push(Held {
            ts_ns: pkt.ts_ns,
            orig_len: pkt.orig_len,
            linktype: pkt.linktype,
            iface: pkt.iface,
            data: pkt.data[..size].into(),
        });
    }

    /// The attempt `key` was answered, or left the table unjudged: its
    /// packets are not offending.
    pub fn release(&mut self, key: &HandshakeKey) {
        if let Some(held) = self.held.remove(key) {
            self.held_bytes -= held.iter().map(|h| h.data.len()).sum::<usize>();
        }
    }

    /// The attempt `key` failed: its held packets go to the file.
    pub fn blocked(
        &mut self,
        key: &HandshakeKey,
        names: &Names,
        comment: &str,
    ) -> Result<(), PcapngError> {
        let Some(held) = self.held.remove(key) else {
            return Ok(());
        };
        for h in &held {
            self.held_bytes -= h.data.len();
            let pkt = Packet {
                ts_ns: h.ts_ns,
                orig_len: h.orig_len,
                link: super::Link::from_linktype(h.linktype),
                linktype: h.linktype,
                iface: h.iface,
                data: &h.data,
                file: 0,
            };
            self.counts.blocked += u64::from(self.write(&pkt, names, comment)?);
        }
        Ok(())
    }

    /// The end of the replay: attempts still pending were never judged,
    /// so nothing of theirs is written.
    pub fn finish(&mut self) -> Result<(), PcapngError> {
        self.held.clear();
        self.held_bytes = 0;
        self.writer.flush()
    }

    fn write(&mut self, pkt: &Packet, names: &Names, comment: &str) -> Result<bool, PcapngError> {
        self.writer.write_packet(&CapturedPacket {
            iface: names.get(pkt.iface),
            linktype: pkt.linktype,
            ts: UNIX_EPOCH + Duration::from_nanos(pkt.ts_ns),
            original_len: pkt.orig_len,
            data: pkt.data,
            comment,
        })
    }
}

/// The comment of an unexpected flow's later packet: which flow (as the
/// packet shows it) and which of its packets, so that a packet taken out
/// of the file on its own still says why it is there.
pub fn later_packet_comment(p: &Parsed, dir: PacketDir, iface: &str, nth: u64) -> String {
    let addr = |a: &[u8; 16], port: u16| match ip_of(p.family, a) {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    };
    format!(
        "UNEXPECTED flow, its packet {nth}: {} {} -> {} {} on {iface}",
        IpProto::from_number(p.proto),
        addr(&p.src, p.sport),
        addr(&p.dst, p.dport),
        match dir {
            PacketDir::Ingress => "in",
            PacketDir::Egress => "out",
        },
    )
}

#[cfg(test)]
mod tests {
    use monitor_common::flow::FlowKey;

    use super::*;

    fn key(port: u16) -> HandshakeKey {
        HandshakeKey {
            flow: FlowKey::default(),
            initiator_port: port,
            _pad: 0,
            _pad2: 0,
        }
    }

    fn packet(data: &[u8]) -> Packet<'_> {
        Packet {
            ts_ns: 1,
            orig_len: data.len() as u32,
            link: super::super::Link::Ethernet,
            linktype: 1,
            iface: 0,
            data,
            file: 0,
        }
    }

    fn carver(dir: &Path) -> Carver {
        Carver::create(&CarveOptions {
            path: dir.join("c.pcapng"),
            all_packets: false,
            max_bytes: 1 << 30,
        })
        .unwrap()
    }

    #[test]
    fn held_packets_are_bounded_per_attempt_and_in_all_and_accounted() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = carver(dir.path());
        let big = vec![0u8; 9000];
        for _ in 0..HOLD_PACKETS + 2 {
            c.hold(&key(1), &packet(&big));
        }
        assert_eq!(c.counts.not_held, 2);
        // Each held packet is cut at HOLD_SNAP.
        assert_eq!(c.held_bytes, HOLD_PACKETS * HOLD_SNAP);
        c.release(&key(1));
        assert_eq!((c.held_bytes, c.held.len()), (0, 0));
        // Attempts together stop at HOLD_BYTES; a refused one leaves no entry.
        let mut port = 0;
        while c.counts.not_held == 2 {
            port += 1;
            c.hold(&key(port), &packet(&big));
        }
        assert!(c.held_bytes <= HOLD_BYTES);
        assert_eq!(c.held.len(), HOLD_BYTES / HOLD_SNAP);
        assert_eq!(port as usize, HOLD_BYTES / HOLD_SNAP + 1);
        // A judged attempt's packets leave memory for the file.
        let names = Names::default();
        c.blocked(&key(u16::MAX), &names, "none held").unwrap();
        assert_eq!(c.counts.blocked, 0);
        c.blocked(&key(2), &names, "BLOCKED ...").unwrap();
        assert_eq!(c.counts.blocked, 1);
        assert_eq!(c.held_bytes, (HOLD_BYTES / HOLD_SNAP - 1) * HOLD_SNAP);
        c.finish().unwrap();
        assert_eq!((c.held_bytes, c.held.len()), (0, 0));
    }

    #[test]
    fn later_packets_say_which_flow_and_which_packet() {
        let p = Parsed {
            src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
            dst: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            family: monitor_common::packet::Family::V6,
            proto: 17,
            sport: 5353,
            dport: 9999,
            tcp_flags: 0,
            fragment: monitor_common::packet::Fragment::None,
            vlan_tags: 0,
            l4_offset: 0,
        };
        assert_eq!(
            later_packet_comment(&p, PacketDir::Ingress, "eth0", 3),
            "UNEXPECTED flow, its packet 3: udp [2001:db8::7]:5353 -> [2001:db8::1]:9999 in on eth0"
        );
    }
}
