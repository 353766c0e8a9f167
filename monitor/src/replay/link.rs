//! Link layers: what sits before the IP header in a capture, per link type,
//! and where the IP header (or an Ethernet-shaped header the kernel's
//! parser reads) starts. Replay reads every link type tcpdump's own test
//! captures use for IP: Ethernet, Linux cooked v1 and v2, raw IP, BSD
//! loopback (NULL, LOOP), PPP with and without HDLC framing, Cisco HDLC,
//! Frame Relay, NFLOG, 802.11 data frames (bare, under radiotap or PPI) and
//! Apple's PKTAP.
//!
//! The link-type field of a pcap header carries flags in its upper bits
//! (an FCS length among them); libpcap masks them away, and so does
//! [`Link::from_linktype`].

use std::fmt;

use monitor_common::packet::{ETH_HLEN, ParseError};

/// How a capture frames its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Linux cooked capture v1 (`tcpdump -i any`): 16-byte header.
    Sll,
    /// Linux cooked capture v2: 20-byte header.
    Sll2,
    /// The packet starts with its IP header.
    RawIp,
    /// BSD loopback: a 4-byte address family in the capturing host's byte
    /// order (NULL) or in network order (LOOP); either is accepted.
    Null,
    /// PPP, with or without HDLC-like framing (PPP and PPP_HDLC).
    Ppp,
    /// Cisco HDLC: address, control, then an ethertype.
    CiscoHdlc,
    /// Frame Relay with RFC 2427 encapsulation (NLPID or SNAP).
    FrameRelay,
    /// Linux NFLOG: a header, then TLVs, one of which is the packet.
    Nflog,
    /// IEEE 802.11 frames; data frames carry LLC/SNAP.
    Ieee80211,
    /// 802.11 under a radiotap header.
    Radiotap,
    /// 802.11 (or another link) under a PPI header.
    Ppi,
    /// Apple's PKTAP: a header naming the inner link type.
    Pktap,
    Unsupported(u32),
}

/// Where a frame's network layer starts, and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// An IP header at this offset.
    Ip(usize),
    /// An Ethernet-shaped header at this offset (the kernel's parser reads
    /// it, VLAN tags included).
    Ethernet(usize),
}

/// libpcap's LINKTYPE_MATCHING_MASK: the upper bits are flags.
const LINKTYPE_MASK: u32 = 0x0000_ffff;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// How deep link headers may nest (PKTAP or PPI around another link).
const MAX_NESTING: u8 = 2;

impl Link {
    /// The link of a pcap/pcapng link-type field, flags masked away.
    pub fn from_linktype(value: u32) -> Link {
        match value & LINKTYPE_MASK {
            1 => Link::Ethernet,
            113 => Link::Sll,
            276 => Link::Sll2,
            // LINKTYPE_RAW, its BSD DLT values, and the IPv4/IPv6-only types.
            101 | 12 | 14 | 228 | 229 => Link::RawIp,
            0 | 108 => Link::Null,
            9 | 50 => Link::Ppp,
            104 => Link::CiscoHdlc,
            107 => Link::FrameRelay,
            239 => Link::Nflog,
            105 => Link::Ieee80211,
            127 => Link::Radiotap,
            192 => Link::Ppi,
            149 | 258 => Link::Pktap,
            n => Link::Unsupported(n),
        }
    }

    /// Bytes of link header a live interface would not have, where that is
    /// fixed (Ethernet's 14 are what the kernel programs count); the
    /// others are known per frame (see [`Link::start`]).
    pub fn header_len(self) -> usize {
        match self {
            Link::Sll => 16,
            Link::Sll2 => 20,
            _ => 0,
        }
    }

    /// Where `frame`'s network layer starts. `Err(NotIp)` for a frame that
    /// carries something else (an ARP, an 802.11 beacon, an encrypted data
    /// frame), `Err(Truncated)` for one cut inside its link header.
    pub fn start(self, frame: &[u8]) -> Result<Start, ParseError> {
        self.start_at(frame, 0)
    }

    fn start_at(self, frame: &[u8], depth: u8) -> Result<Start, ParseError> {
        match self {
            Link::Ethernet => Ok(Start::Ethernet(0)),
            // SLL's protocol field sits 2 bytes further than Ethernet's
            // ethertype: from byte 2 the header is Ethernet-shaped.
            Link::Sll => Ok(Start::Ethernet(2)),
            Link::RawIp => Ok(Start::Ip(0)),
            Link::Null => null(frame),
            Link::Ppp => ppp(frame),
            Link::CiscoHdlc => ethertype_at(frame, 2, 4),
            Link::FrameRelay => frame_relay(frame),
            Link::Nflog => nflog(frame),
            Link::Ieee80211 => ieee80211(frame, 0),
            Link::Radiotap => {
                let len = usize::from(le16(frame, 2)?);
                ieee80211(frame, len)
            }
            Link::Ppi => {
                let len = usize::from(le16(frame, 2)?);
                let inner = Link::from_linktype(le32(frame, 4)?);
                nested(inner, frame, len, depth)
            }
            Link::Pktap => {
                // pth_length, then pth_type_next, then pth_dlt: host byte
                // order, which is little-endian on every Apple machine.
                let len = le32(frame, 0)? as usize;
                let inner = Link::from_linktype(le32(frame, 8)?);
                nested(inner, frame, len, depth)
            }
            // Rebuilt into an Ethernet-shaped header by the caller.
            Link::Sll2 | Link::Unsupported(_) => Err(ParseError::NotIp),
        }
    }
}

/// `inner`'s start within `frame[offset..]`, as an offset into `frame`.
fn nested(inner: Link, frame: &[u8], offset: usize, depth: u8) -> Result<Start, ParseError> {
    if depth >= MAX_NESTING || matches!(inner, Link::Sll2 | Link::Unsupported(_)) {
        return Err(ParseError::NotIp);
    }
    let rest = frame.get(offset..).ok_or(ParseError::Truncated)?;
    Ok(match inner.start_at(rest, depth + 1)? {
        Start::Ip(o) => Start::Ip(offset + o),
        Start::Ethernet(o) => Start::Ethernet(offset + o),
    })
}

fn byte(frame: &[u8], at: usize) -> Result<u8, ParseError> {
    frame.get(at).copied().ok_or(ParseError::Truncated)
}

fn be16(frame: &[u8], at: usize) -> Result<u16, ParseError> {
    Ok(u16::from_be_bytes([byte(frame, at)?, byte(frame, at + 1)?]))
}

fn le16(frame: &[u8], at: usize) -> Result<u16, ParseError> {
    Ok(u16::from_le_bytes([byte(frame, at)?, byte(frame, at + 1)?]))
}

fn le32(frame: &[u8], at: usize) -> Result<u32, ParseError> {
    let b = frame.get(at..at + 4).ok_or(ParseError::Truncated)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// IP at `ip` when the ethertype at `at` is IPv4's or IPv6's.
fn ethertype_at(frame: &[u8], at: usize, ip: usize) -> Result<Start, ParseError> {
    match be16(frame, at)? {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(Start::Ip(ip)),
        _ => Err(ParseError::NotIp),
    }
}

/// BSD address families of IP: AF_INET everywhere; AF_INET6 as NetBSD and
/// OpenBSD (24), FreeBSD (28), Darwin (30) and Linux (10) number it.
fn null(frame: &[u8]) -> Result<Start, ParseError> {
    let b = frame.get(..4).ok_or(ParseError::Truncated)?;
    let family = [
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
    ];
    if family.iter().any(|f| matches!(f, 2 | 10 | 24 | 28 | 30)) {
        Ok(Start::Ip(4))
    } else {
        Err(ParseError::NotIp)
    }
}

/// PPP (RFC 1661), in HDLC-like framing (RFC 1662: FF 03 first) or not,
/// or Cisco's PPP in HDLC framing (0F/8F 00, then an ethertype). The
/// protocol field may be compressed to one byte (an odd first byte).
fn ppp(frame: &[u8]) -> Result<Start, ParseError> {
    let first = byte(frame, 0)?;
    if matches!(first, 0x0f | 0x8f) && byte(frame, 1)? == 0 {
        return ethertype_at(frame, 2, 4);
    }
    let at = if first == 0xff && byte(frame, 1)? == 0x03 {
        2
    } else {
        0
    };
    let (protocol, len) = if byte(frame, at)? & 1 == 1 {
        (u16::from(byte(frame, at)?), 1)
    } else {
        (be16(frame, at)?, 2)
    };
    match protocol {
        0x0021 | 0x0057 => Ok(Start::Ip(at + len)),
        _ => Err(ParseError::NotIp),
    }
}

/// Frame Relay: a Q.922 address (its last byte has the EA bit set), the UI
/// control byte 03, then an NLPID: CC is IPv4, 8E IPv6, 80 SNAP (an OUI and
/// an ethertype follow), 00 a pad before one of those.
fn frame_relay(frame: &[u8]) -> Result<Start, ParseError> {
    let mut at = 0;
    while byte(frame, at)? & 1 == 0 {
        at += 1;
        if at >= 4 {
            return Err(ParseError::Malformed);
        }
    }
    at += 1;
    if byte(frame, at)? != 0x03 {
        return Err(ParseError::NotIp);
    }
    at += 1;
    if byte(frame, at)? == 0x00 {
        at += 1;
    }
    match byte(frame, at)? {
        0xcc | 0x8e => Ok(Start::Ip(at + 1)),
        0x80 => ethertype_at(frame, at + 4, at + 6),
        _ => Err(ParseError::NotIp),
    }
}

/// NFLOG: family, version and resource id (4 bytes), then TLVs of a 16-bit
/// length (header included) and a 16-bit type, each padded to 4 bytes, in
/// the capturing host's byte order. The packet is the payload TLV (9).
fn nflog(frame: &[u8]) -> Result<Start, ParseError> {
    const PAYLOAD: u16 = 9;
    let family = byte(frame, 0)?;
    if !matches!(family, 2 | 10) {
        return Err(ParseError::NotIp);
    }
    // The byte order: the one whose first TLV length fits the frame.
    let first = usize::from(le16(frame, 4)?);
    let little = (4..=frame.len() - 4).contains(&first);
    let read16 = |at: usize| -> Result<u16, ParseError> {
        if little {
            le16(frame, at)
        } else {
            be16(frame, at)
        }
    };
    let mut at = 4;
    while at + 4 <= frame.len() {
        let len = usize::from(read16(at)?);
        if len < 4 {
            return Err(ParseError::Malformed);
        }
        if read16(at + 2)? == PAYLOAD {
            return Ok(Start::Ip(at + 4));
        }
        at += len.div_ceil(4) * 4;
    }
    Err(ParseError::NotIp)
}

/// An 802.11 frame at `at`: a data frame's header (24 bytes, 30 with a
/// fourth address, 2 more with QoS, 4 more with HT control), then LLC/SNAP
/// (AA AA 03 00 00 00) and an ethertype. Protected frames cannot be read.
fn ieee80211(frame: &[u8], at: usize) -> Result<Start, ParseError> {
    let fc = le16(frame, at)?;
    let (kind, subtype, flags) = ((fc >> 2) & 3, (fc >> 4) & 0xf, fc >> 8);
    const DATA: u16 = 2;
    if kind != DATA || subtype & 0x4 != 0 || flags & 0x40 != 0 {
        // Management and control frames, null data, protected data.
        return Err(ParseError::NotIp);
    }
    let mut len = 24;
    if flags & 0x03 == 0x03 {
        len += 6;
    }
    if subtype & 0x8 != 0 {
        len += 2;
        if flags & 0x80 != 0 {
            len += 4;
        }
    }
    let llc = at + len;
    let snap = frame.get(llc..llc + 6).ok_or(ParseError::Truncated)?;
    if snap != [0xaa, 0xaa, 0x03, 0, 0, 0] {
        return Err(ParseError::NotIp);
    }
    ethertype_at(frame, llc + 6, llc + 8)
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Link::Ethernet => "ethernet",
            Link::Sll => "linux-sll",
            Link::Sll2 => "linux-sll2",
            Link::RawIp => "raw-ip",
            Link::Null => "bsd-loopback",
            Link::Ppp => "ppp",
            Link::CiscoHdlc => "cisco-hdlc",
            Link::FrameRelay => "frame-relay",
            Link::Nflog => "nflog",
            Link::Ieee80211 => "802.11",
            Link::Radiotap => "802.11-radiotap",
            Link::Ppi => "ppi",
            Link::Pktap => "pktap",
            Link::Unsupported(n) => return write!(f, "linktype {n}"),
        })
    }
}

/// The length the kernel would have counted for a frame whose network
/// layer starts at `start`: an Ethernet frame's.
pub fn wire_len(orig_len: u32, start: Start) -> u64 {
    match start {
        Start::Ethernet(o) => u64::from(orig_len).saturating_sub(o as u64),
        Start::Ip(o) => (u64::from(orig_len) + ETH_HLEN as u64).saturating_sub(o as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal IPv4 header's first bytes (what follows is not read here).
    const V4: [u8; 4] = [0x45, 0, 0, 20];

    fn with(head: &[u8]) -> Vec<u8> {
        [head, &V4].concat()
    }

    #[test]
    fn the_link_type_field_is_masked_like_libpcap_does() {
        // Ethernet with the FCS-length flag: 0x04000001.
        assert_eq!(Link::from_linktype(67_108_865), Link::Ethernet);
        assert_eq!(
            Link::from_linktype(0x0001_0000 | 147),
            Link::Unsupported(147)
        );
    }

    #[test]
    fn bsd_loopback_in_either_byte_order_and_every_inet6_value() {
        for family in [2u32, 24, 28, 30] {
            for bytes in [family.to_le_bytes(), family.to_be_bytes()] {
                assert_eq!(
                    Link::Null.start(&with(&bytes)),
                    Ok(Start::Ip(4)),
                    "{family}"
                );
            }
        }
        assert_eq!(
            Link::Null.start(&with(&7u32.to_le_bytes())),
            Err(ParseError::NotIp)
        );
        assert_eq!(Link::Null.start(&[2, 0]), Err(ParseError::Truncated));
    }

    #[test]
    fn ppp_framed_unframed_compressed_and_cisco() {
        assert_eq!(
            Link::Ppp.start(&with(&[0xff, 0x03, 0x00, 0x21])),
            Ok(Start::Ip(4))
        );
        assert_eq!(Link::Ppp.start(&with(&[0x00, 0x57])), Ok(Start::Ip(2)));
        assert_eq!(Link::Ppp.start(&with(&[0x21])), Ok(Start::Ip(1)));
        assert_eq!(
            Link::Ppp.start(&with(&[0x8f, 0x00, 0x08, 0x00])),
            Ok(Start::Ip(4))
        );
        // LCP is not IP.
        assert_eq!(
            Link::Ppp.start(&with(&[0xff, 0x03, 0xc0, 0x21])),
            Err(ParseError::NotIp)
        );
    }

    #[test]
    fn cisco_hdlc_and_frame_relay() {
        assert_eq!(
            Link::CiscoHdlc.start(&with(&[0x0f, 0, 0x86, 0xdd])),
            Ok(Start::Ip(4))
        );
        assert_eq!(
            Link::CiscoHdlc.start(&with(&[0x8f, 0, 0x80, 0x35])),
            Err(ParseError::NotIp)
        );
        assert_eq!(
            Link::FrameRelay.start(&with(&[0x18, 0x41, 0x03, 0xcc])),
            Ok(Start::Ip(4))
        );
        assert_eq!(
            Link::FrameRelay.start(&with(&[0x18, 0x41, 0x03, 0x00, 0x80, 0, 0, 0, 0x08, 0x00])),
            Ok(Start::Ip(10))
        );
    }

    #[test]
    fn nflog_finds_the_payload_tlv_in_either_byte_order() {
        let mut le = vec![2, 0, 0, 1];
        le.extend_from_slice(&[8, 0, 1, 0, 0, 0, 0, 0]); // a TLV of type 1
        le.extend_from_slice(&[24, 0, 9, 0]); // the payload
        le.extend_from_slice(&[0x45; 20]);
        assert_eq!(Link::Nflog.start(&le), Ok(Start::Ip(16)));
        let mut be = vec![10, 0, 0, 1];
        be.extend_from_slice(&[0, 8, 0, 1, 0, 0, 0, 0]);
        be.extend_from_slice(&[0, 44, 0, 9]);
        be.extend_from_slice(&[0x60; 40]);
        assert_eq!(Link::Nflog.start(&be), Ok(Start::Ip(16)));
    }

    #[test]
    fn wifi_data_frames_bare_under_radiotap_and_ppi() {
        let mut data = vec![0x08, 0x01]; // data, to DS
        data.extend_from_slice(&[0; 22]);
        data.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        assert_eq!(Link::Ieee80211.start(&with(&data)), Ok(Start::Ip(32)));
        let mut qos = vec![0x88, 0x03]; // QoS data, four addresses
        qos.extend_from_slice(&[0; 30]);
        qos.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x86, 0xdd]);
        assert_eq!(Link::Ieee80211.start(&qos), Ok(Start::Ip(40)));
        let radiotap = [&[0u8, 0, 8, 0, 0, 0, 0, 0][..], &data].concat();
        assert_eq!(Link::Radiotap.start(&with(&radiotap)), Ok(Start::Ip(40)));
        let ppi = [&[0u8, 0, 8, 0, 105, 0, 0, 0][..], &data].concat();
        assert_eq!(Link::Ppi.start(&with(&ppi)), Ok(Start::Ip(40)));
        // A beacon and a protected frame carry no readable IP.
        assert_eq!(
            Link::Ieee80211.start(&[0x80, 0, 0, 0]),
            Err(ParseError::NotIp)
        );
        assert_eq!(
            Link::Ieee80211.start(&[0x08, 0x41, 0, 0]),
            Err(ParseError::NotIp)
        );
    }

    #[test]
    fn pktap_names_its_inner_link() {
        let mut head = vec![0u8; 108];
        head[..4].copy_from_slice(&108u32.to_le_bytes());
        head[8..12].copy_from_slice(&1u32.to_le_bytes()); // Ethernet inside
        assert_eq!(Link::Pktap.start(&head), Ok(Start::Ethernet(108)));
        head[8..12].copy_from_slice(&0u32.to_le_bytes()); // loopback inside
        head.extend_from_slice(&2u32.to_le_bytes());
        assert_eq!(Link::Pktap.start(&with(&head)), Ok(Start::Ip(112)));
        // PKTAP inside PKTAP inside PKTAP: refused, not recursed into.
        head[8..12].copy_from_slice(&149u32.to_le_bytes());
        head[..4].copy_from_slice(&0u32.to_le_bytes());
        assert!(Link::Pktap.start(&head).is_err());
    }
}
