//! Link layers: what sits before the IP header in a capture, per link type,
//! and where the IP header (or an Ethernet-shaped header the kernel's
//! parser reads) starts. Replay reads every link type tcpdump's own test
//! captures use for IP: Ethernet, Linux cooked v1 and v2, raw IP, BSD
//! loopback (NULL, LOOP), PPP with and without HDLC framing, Cisco HDLC,
//! Frame Relay, NFLOG, 802.11 data frames (bare, under radiotap or PPI) and
//! Apple's PKTAP.
//!
//! Each reading follows what Wireshark dissects as IP, the oracle the corpus
//! test (`tests/replay_corpus.rs`) holds replay to over thousands of
//! generated frames, with one rule of the kernel's own on top: where a link
//! header names the IP version (an ethertype, an address family, a PPP
//! protocol, an NLPID), a header of the other version is malformed, as the
//! kernel's parser holds an Ethernet frame whose ethertype and version
//! disagree (Wireshark reads an IPv6 header under an IPv4 label anyway).
//!
//! The link-type field of a pcap header carries flags in its upper bits
//! (an FCS length among them); libpcap masks them away, and so does
//! [`Link::from_linktype`].

use std::fmt;

use monitor_common::packet::{ETH_HLEN, Family, ParseError};

/// How a capture frames its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Linux cooked capture v1 (`tcpdump -i any`): 16-byte header.
    Sll,
    /// Linux cooked capture v2: 20-byte header.
    Sll2,
    /// The packet starts with its IP header, of either version
    /// (LINKTYPE_RAW and the BSD DLT_RAW values 12 and 14).
    RawIp,
    /// The packet starts with an IPv4 header (LINKTYPE_IPV4).
    RawIpv4,
    /// The packet starts with an IPv6 header (LINKTYPE_IPV6).
    RawIpv6,
    /// BSD loopback (NULL): a 4-byte address family in the capturing host's
    /// byte order, and the older headers Wireshark also reads there.
    Null,
    /// OpenBSD loopback (LOOP): the address family in network byte order.
    Loop,
    /// PPP, with or without HDLC-like framing (PPP and PPP_HDLC).
    Ppp,
    /// Cisco HDLC: address, control, then an ethertype.
    CiscoHdlc,
    /// Frame Relay: RFC 2427 (NLPID or SNAP) or Cisco's encapsulation.
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
    /// it, VLAN tags included): wherever an ethertype sits 12 or more bytes
    /// into the frame, the frame is read from 12 bytes before it.
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
            101 | 12 | 14 => Link::RawIp,
            228 => Link::RawIpv4,
            229 => Link::RawIpv6,
            0 => Link::Null,
            108 => Link::Loop,
            9 | 50 => Link::Ppp,
            104 => Link::CiscoHdlc,
            107 => Link::FrameRelay,
            239 => Link::Nflog,
            105 => Link::Ieee80211,
            127 => Link::Radiotap,
            192 => Link::Ppi,
            // 258 in files; 149 is DLT_PKTAP on Darwin, which writes it as is.
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
    /// frame), `Err(Truncated)` for one cut inside its link header,
    /// `Err(Malformed)` for an IP header of the version its link header
    /// does not name.
    ///
    /// Inlined with Ethernet's answer, by far the commonest: the general
    /// walk is a call per packet whose prologue costs more than the answer.
    #[inline(always)]
    pub fn start(self, frame: &[u8]) -> Result<Start, ParseError> {
        match self {
            Link::Ethernet => Ok(Start::Ethernet(0)),
            _ => self.start_at(frame, 0),
        }
    }

    fn start_at(self, frame: &[u8], depth: u8) -> Result<Start, ParseError> {
        match self {
            Link::Ethernet => Ok(Start::Ethernet(0)),
            // SLL's protocol field sits 2 bytes further than Ethernet's
            // ethertype: from byte 2 the header is Ethernet-shaped.
            Link::Sll => Ok(Start::Ethernet(2)),
            Link::RawIp => Ok(Start::Ip(0)),
            Link::RawIpv4 => ip(frame, 0, Family::V4),
            Link::RawIpv6 => ip(frame, 0, Family::V6),
            Link::Null => null(frame),
            Link::Loop => {
                let b = frame.get(..4).ok_or(ParseError::Truncated)?;
                family(u32::from_be_bytes([b[0], b[1], b[2], b[3]]), frame)
            }
            Link::Ppp => ppp(frame),
            Link::CiscoHdlc => ethertype_at(frame, 2, 4),
            Link::FrameRelay => frame_relay(frame),
            Link::Nflog => nflog(frame),
            Link::Ieee80211 => ieee80211(frame, 0, false),
            Link::Radiotap => radiotap(frame),
            Link::Ppi => {
                let len = usize::from(le16(frame, 2)?);
                let inner = Link::from_linktype(le32(frame, 4)?);
                nested(inner, frame, len, depth)
            }
            Link::Pktap => {
                // pth_length, pth_type_next, pth_dlt: host byte order, which
                // is little-endian on every Apple machine. Only a record of
                // type 1 (PTH_TYPE_PACKET) carries a packet.
                let len = le32(frame, 0)? as usize;
                if le32(frame, 4)? != 1 {
                    return Err(ParseError::NotIp);
                }
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

/// An IP header of `family`'s version at `at`. The link header named the
/// version, so a header of the other one is malformed: the kernel's parser
/// says so of an Ethernet frame whose ethertype and version disagree, and
/// Linux's IP input drops such a packet.
fn ip(frame: &[u8], at: usize, family: Family) -> Result<Start, ParseError> {
    let version = match family {
        Family::V4 => 4,
        Family::V6 => 6,
    };
    if byte(frame, at)? >> 4 == version {
        Ok(Start::Ip(at))
    } else {
        Err(ParseError::Malformed)
    }
}

/// IP at `ip_at` when the ethertype at `at` is IPv4's or IPv6's.
fn ethertype_at(frame: &[u8], at: usize, ip_at: usize) -> Result<Start, ParseError> {
    match be16(frame, at)? {
        ETHERTYPE_IPV4 => ip(frame, ip_at, Family::V4),
        ETHERTYPE_IPV6 => ip(frame, ip_at, Family::V6),
        _ => Err(ParseError::NotIp),
    }
}

/// The largest IEEE 802.3 length: a larger type field is an ethertype.
const IEEE_802_3_MAX_LEN: u32 = 1500;

/// BSD loopback (NULL). The family is in the capturing host's byte order,
/// either one then, and besides the BSDs' own header three older ones are
/// read, as Wireshark reads them (packet-null.c): PPP in HDLC-like framing
/// (FF 03 first: FreeBSD's ISDN driver), a 2-byte big-endian family and 2
/// zero bytes (IRIX and UNICOS/mp snoop), and 2 zero bytes and an
/// ethertype (libpcap on Linux before it used Ethernet for loopback).
/// Which header it is comes from where the zero bytes are, the test
/// Wireshark runs on the header read as a little-endian number.
fn null(frame: &[u8]) -> Result<Start, ParseError> {
    let b = frame.get(..4).ok_or(ParseError::Truncated)?;
    if b[..2] == [0xff, 0x03] {
        return ppp(frame);
    }
    let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let value = if le >> 16 != 0 {
        if b[3] == 0 && b[2] < 6 {
            le >> 16
        } else {
            le.swap_bytes()
        }
    } else if b[0] == 0 && b[1] < 6 {
        u32::from(b[1])
    } else {
        le
    };
    if value > IEEE_802_3_MAX_LEN {
        // Only the low 16 bits are an ethertype (Wireshark's cast).
        return match (value & 0xffff) as u16 {
            ETHERTYPE_IPV4 => ip(frame, 4, Family::V4),
            ETHERTYPE_IPV6 => ip(frame, 4, Family::V6),
            _ => Err(ParseError::NotIp),
        };
    }
    family(value, frame)
}

/// IP after a 4-byte BSD address family: AF_INET everywhere; AF_INET6 as
/// NetBSD and OpenBSD (24), FreeBSD (28) and Darwin (30) number it. (10 is
/// Linux's AF_INET6 but AF_CCITT on the BSDs, and no loopback header
/// carries Linux's numbering.)
fn family(value: u32, frame: &[u8]) -> Result<Start, ParseError> {
    match value {
        2 => ip(frame, 4, Family::V4),
        24 | 28 | 30 => ip(frame, 4, Family::V6),
        _ => Err(ParseError::NotIp),
    }
}

/// PPP (RFC 1661), in HDLC-like framing (RFC 1662: FF 03 first) or not,
/// or Cisco's PPP in HDLC framing (0F/8F 00, then an ethertype).
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
    ppp_protocol(frame, at)
}

/// A PPP protocol field at `at`, compressed to one byte when its first
/// byte is odd, and IP after it.
fn ppp_protocol(frame: &[u8], at: usize) -> Result<Start, ParseError> {
    let (protocol, len) = if byte(frame, at)? & 1 == 1 {
        (u16::from(byte(frame, at)?), 1)
    } else {
        (be16(frame, at)?, 2)
    };
    match protocol {
        0x0021 => ip(frame, at + len, Family::V4),
        0x0057 => ip(frame, at + len, Family::V6),
        _ => Err(ParseError::NotIp),
    }
}

/// Frame Relay: a Q.922 address (octets up to one with the EA bit set; a
/// lone octet with it is bogus but read past, as Wireshark does), then
/// either the UI control byte 03 and an RFC 2427 NLPID, or Cisco's
/// encapsulation: an ethertype right after the address (not on DLCI 0,
/// which carries signalling, nor in an XID frame).
fn frame_relay(frame: &[u8]) -> Result<Start, ParseError> {
    const UI: u8 = 0x03;
    const XID: u8 = 0xaf;
    let first = byte(frame, 0)?;
    let (dlci, at) = if first & 1 == 1 {
        (0, 1)
    } else {
        let second = byte(frame, 1)?;
        let mut dlci = (u32::from(first) >> 2) << 4 | u32::from(second) >> 4;
        let mut at = 2;
        if second & 1 == 0 {
            let third = byte(frame, 2)?;
            let mut last = third;
            if third & 1 == 0 {
                dlci = dlci << 7 | u32::from(third) >> 1;
                at = 3;
                last = byte(frame, at)?;
                while last & 1 == 0 {
                    at += 1;
                    last = byte(frame, at)?;
                }
            }
            // The last octet holds DLCI bits unless it is DL-CORE control.
            if last & 0x02 == 0 {
                dlci = dlci << 6 | u32::from(last) >> 2;
            }
            at += 1;
        }
        (dlci, at)
    };
    match byte(frame, at)? {
        UI => nlpid(frame, at + 1),
        XID => Err(ParseError::NotIp),
        _ if dlci != 0 => ethertype_at(frame, at, at + 2),
        _ => Err(ParseError::NotIp),
    }
}

/// An RFC 2427 NLPID at `at`, after an optional pad byte: CC is IPv4, 8E
/// IPv6, CF PPP (RFC 1973), 80 SNAP: an OUI and a protocol, which for OUI
/// 00-00-00 is an ethertype and for 00-80-C2 (bridged 802.1) PID 1 or 7 is
/// an Ethernet frame, with or without its FCS.
fn nlpid(frame: &[u8], mut at: usize) -> Result<Start, ParseError> {
    if byte(frame, at)? == 0x00 {
        at += 1;
    }
    match byte(frame, at)? {
        0xcc => ip(frame, at + 1, Family::V4),
        0x8e => ip(frame, at + 1, Family::V6),
        0xcf => ppp_protocol(frame, at + 1),
        0x80 => {
            let oui = frame.get(at + 1..at + 4).ok_or(ParseError::Truncated)?;
            match (oui, be16(frame, at + 4)?) {
                ([0, 0, 0], _) => ethertype_at(frame, at + 4, at + 6),
                ([0x00, 0x80, 0xc2], 0x0001 | 0x0007) => Ok(Start::Ethernet(at + 6)),
                _ => Err(ParseError::NotIp),
            }
        }
        _ => Err(ParseError::NotIp),
    }
}

/// NFLOG: family, version and resource id (4 bytes), then TLVs of a 16-bit
/// length (header included) and a 16-bit type, each padded to 4 bytes, in
/// the capturing host's byte order. The packet is the payload TLV (9); its
/// version is the family's, or for other families (the bridge's, netdev's)
/// the hardware protocol of the packet header TLV (1), an ethertype.
fn nflog(frame: &[u8]) -> Result<Start, ParseError> {
    const PACKET_HDR: u16 = 1;
    const PAYLOAD: u16 = 9;
    let family = byte(frame, 0)?;
    // The byte order: the one in which the first TLV's type is a small
    // number (NFULA types are below 32) and its length fits the frame.
    let fits = |len: u16, kind: u16| kind < 0x100 && (4..=frame.len() - 4).contains(&len.into());
    let little = fits(le16(frame, 4)?, le16(frame, 6)?);
    if !little && !fits(be16(frame, 4)?, be16(frame, 6)?) {
        return Err(ParseError::Malformed);
    }
    let read16 = |at: usize| -> Result<u16, ParseError> {
        if little {
            le16(frame, at)
        } else {
            be16(frame, at)
        }
    };
    let mut hw_protocol = None;
    let mut at = 4;
    while at + 4 <= frame.len() {
        let len = usize::from(read16(at)?);
        if len < 4 {
            return Err(ParseError::Malformed);
        }
        match read16(at + 2)? {
            // nfulnl_msg_packet_hdr: hw_protocol (network order), hook, pad.
            PACKET_HDR if len >= 6 => hw_protocol = Some(be16(frame, at + 4)?),
            PAYLOAD => {
                return match (family, hw_protocol) {
                    (2, _) => ip(frame, at + 4, Family::V4),
                    (10, _) => ip(frame, at + 4, Family::V6),
                    (_, Some(ETHERTYPE_IPV4)) => ip(frame, at + 4, Family::V4),
                    (_, Some(ETHERTYPE_IPV6)) => ip(frame, at + 4, Family::V6),
                    _ => Err(ParseError::NotIp),
                };
            }
            _ => {}
        }
        at += len.div_ceil(4) * 4;
    }
    Err(ParseError::NotIp)
}

/// Radiotap, then 802.11. Its flags field (present bit 1, after TSFT's 8
/// bytes, 8-aligned, when bit 0 is present too) may say the driver padded
/// the 802.11 header to a multiple of 4 bytes (DATAPAD, 0x20).
fn radiotap(frame: &[u8]) -> Result<Start, ParseError> {
    const TSFT: u32 = 1 << 0;
    const FLAGS: u32 = 1 << 1;
    const EXT: u32 = 1 << 31;
    const DATAPAD: u8 = 0x20;
    let len = usize::from(le16(frame, 2)?);
    let present = le32(frame, 4)?;
    // Further present words follow while bit 31 is set.
    let mut at = 4;
    let mut word = present;
    while word & EXT != 0 {
        at += 4;
        if at >= len {
            return Err(ParseError::Malformed);
        }
        word = le32(frame, at)?;
    }
    at += 4;
    let mut datapad = false;
    if present & FLAGS != 0 {
        if present & TSFT != 0 {
            at = at.next_multiple_of(8) + 8;
        }
        datapad = byte(frame, at)? & DATAPAD != 0;
    }
    ieee80211(frame, len, datapad)
}

/// An 802.11 frame at `at`: a data frame's header (24 bytes, 30 with a
/// fourth address, 2 more with QoS, 4 more with HT control; rounded up to
/// a multiple of 4 when the driver padded it), then LLC/SNAP (AA AA 03 and
/// the OUI 00-00-00, or 00-00-F8 of 802.1H bridge tunnelling) and an
/// ethertype, from which on the frame is Ethernet-shaped (VLAN tags
/// included). Protected frames cannot be read.
fn ieee80211(frame: &[u8], at: usize, datapad: bool) -> Result<Start, ParseError> {
    let fc = le16(frame, at)?;
    let (kind, subtype, flags) = ((fc >> 2) & 3, (fc >> 4) & 0xf, fc >> 8);
    const DATA: u16 = 2;
    if kind != DATA || subtype & 0x4 != 0 || flags & 0x40 != 0 {
        // Management and control frames, null data, protected data.
        return Err(ParseError::NotIp);
    }
    let mut len: usize = 24;
    if flags & 0x03 == 0x03 {
        len += 6;
    }
    if subtype & 0x8 != 0 {
        len += 2;
        if flags & 0x80 != 0 {
            len += 4;
        }
    }
    if datapad {
        len = len.next_multiple_of(4);
    }
    let llc = at + len;
    match frame.get(llc..llc + 6).ok_or(ParseError::Truncated)? {
        // The ethertype at llc + 6 is at 12 of an Ethernet-shaped header.
        [0xaa, 0xaa, 0x03, 0, 0, 0 | 0xf8] => Ok(Start::Ethernet(llc + 6 - 12)),
        _ => Err(ParseError::NotIp),
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Link::Ethernet => "ethernet",
            Link::Sll => "linux-sll",
            Link::Sll2 => "linux-sll2",
            Link::RawIp => "raw-ip",
            Link::RawIpv4 => "raw-ipv4",
            Link::RawIpv6 => "raw-ipv6",
            Link::Null => "bsd-loopback",
            Link::Loop => "openbsd-loopback",
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

    /// The first bytes of an IPv4 and an IPv6 header (what follows is not
    /// read here, only the version).
    const V4: [u8; 4] = [0x45, 0, 0, 20];
    const V6: [u8; 4] = [0x60, 0, 0, 0];

    fn with(head: &[u8], ip: [u8; 4]) -> Vec<u8> {
        [head, &ip].concat()
    }

    #[test]
    fn the_link_type_field_is_masked_like_libpcap_does() {
        // Ethernet with the FCS-length flag: 0x04000001.
        assert_eq!(Link::from_linktype(67_108_865), Link::Ethernet);
        assert_eq!(
            Link::from_linktype(0x0001_0000 | 147),
            Link::Unsupported(147)
        );
        assert_eq!(Link::from_linktype(228), Link::RawIpv4);
        assert_eq!(Link::from_linktype(108), Link::Loop);
    }

    #[test]
    fn raw_ipv4_and_ipv6_hold_only_their_version() {
        assert_eq!(Link::RawIpv4.start(&V4), Ok(Start::Ip(0)));
        assert_eq!(Link::RawIpv6.start(&V6), Ok(Start::Ip(0)));
        assert_eq!(Link::RawIpv4.start(&V6), Err(ParseError::Malformed));
        assert_eq!(Link::RawIpv6.start(&V4), Err(ParseError::Malformed));
        assert_eq!(Link::RawIpv6.start(&[]), Err(ParseError::Truncated));
        // LINKTYPE_RAW names no version: the header's decides.
        assert_eq!(Link::RawIp.start(&V6), Ok(Start::Ip(0)));
    }

    #[test]
    fn bsd_loopback_in_either_byte_order_and_every_inet6_value() {
        for (family, ip) in [(2u32, V4), (24, V6), (28, V6), (30, V6)] {
            for bytes in [family.to_le_bytes(), family.to_be_bytes()] {
                assert_eq!(
                    Link::Null.start(&with(&bytes, ip)),
                    Ok(Start::Ip(4)),
                    "{family}"
                );
            }
            // LOOP's family is in network byte order only.
            assert_eq!(
                Link::Loop.start(&with(&family.to_be_bytes(), ip)),
                Ok(Start::Ip(4))
            );
            assert_eq!(
                Link::Loop.start(&with(&family.to_le_bytes(), ip)),
                Err(ParseError::NotIp)
            );
        }
        // 7 is OSI; 10 is AF_CCITT on the BSDs, whatever Linux calls it.
        for family in [7u32, 10] {
            assert_eq!(
                Link::Null.start(&with(&family.to_le_bytes(), V6)),
                Err(ParseError::NotIp)
            );
        }
        // A family that names the other version.
        assert_eq!(
            Link::Null.start(&with(&24u32.to_le_bytes(), V4)),
            Err(ParseError::Malformed)
        );
        assert_eq!(Link::Null.start(&[2, 0]), Err(ParseError::Truncated));
    }

    #[test]
    fn older_loopback_headers_are_read_as_wireshark_reads_them() {
        // PPP in HDLC-like framing (FreeBSD's ISDN driver).
        assert_eq!(
            Link::Null.start(&with(&[0xff, 0x03, 0x00, 0x57], V6)),
            Ok(Start::Ip(4))
        );
        // IRIX: a 2-byte big-endian family, then 2 zero bytes.
        assert_eq!(Link::Null.start(&with(&[0, 2, 0, 0], V4)), Ok(Start::Ip(4)));
        // Old libpcap on Linux: 2 zero bytes, then an ethertype.
        assert_eq!(
            Link::Null.start(&with(&[0, 0, 0x08, 0x00], V4)),
            Ok(Start::Ip(4))
        );
        assert_eq!(
            Link::Null.start(&with(&[0, 0, 0x86, 0xdd], V6)),
            Ok(Start::Ip(4))
        );
        assert_eq!(
            Link::Null.start(&with(&[0, 0, 0x08, 0x06], V4)),
            Err(ParseError::NotIp)
        );
        // None of them under LOOP.
        assert_eq!(
            Link::Loop.start(&with(&[0, 0, 0x08, 0x00], V4)),
            Err(ParseError::NotIp)
        );
    }

    #[test]
    fn ppp_framed_unframed_compressed_and_cisco() {
        assert_eq!(
            Link::Ppp.start(&with(&[0xff, 0x03, 0x00, 0x21], V4)),
            Ok(Start::Ip(4))
        );
        assert_eq!(Link::Ppp.start(&with(&[0x00, 0x57], V6)), Ok(Start::Ip(2)));
        assert_eq!(Link::Ppp.start(&with(&[0x21], V4)), Ok(Start::Ip(1)));
        assert_eq!(
            Link::Ppp.start(&with(&[0x8f, 0x00, 0x08, 0x00], V4)),
            Ok(Start::Ip(4))
        );
        // LCP is not IP; IPv4 under IPv6's protocol number is malformed.
        assert_eq!(
            Link::Ppp.start(&with(&[0xff, 0x03, 0xc0, 0x21], V4)),
            Err(ParseError::NotIp)
        );
        assert_eq!(
            Link::Ppp.start(&with(&[0xff, 0x03, 0x00, 0x57], V4)),
            Err(ParseError::Malformed)
        );
    }

    #[test]
    fn cisco_hdlc() {
        assert_eq!(
            Link::CiscoHdlc.start(&with(&[0x0f, 0, 0x86, 0xdd], V6)),
            Ok(Start::Ip(4))
        );
        assert_eq!(
            Link::CiscoHdlc.start(&with(&[0x8f, 0, 0x80, 0x35], V4)),
            Err(ParseError::NotIp)
        );
    }

    #[test]
    fn frame_relay_rfc_2427() {
        let fr = |head: &[u8], ip| Link::FrameRelay.start(&with(head, ip));
        assert_eq!(fr(&[0x18, 0x41, 0x03, 0xcc], V4), Ok(Start::Ip(4)));
        assert_eq!(fr(&[0x18, 0x41, 0x03, 0x00, 0x8e], V6), Ok(Start::Ip(5)));
        // SNAP with an ethertype, after the pad byte or not.
        let snap = [0x18, 0x41, 0x03, 0x00, 0x80, 0, 0, 0, 0x08, 0x00];
        assert_eq!(fr(&snap, V4), Ok(Start::Ip(10)));
        assert_eq!(
            fr(
                &snap[..3]
                    .iter()
                    .chain(&snap[4..])
                    .copied()
                    .collect::<Vec<_>>(),
                V4
            ),
            Ok(Start::Ip(9))
        );
        // PPP (RFC 1973), and bridged Ethernet (OUI 00-80-C2, PID 7).
        assert_eq!(
            fr(&[0x18, 0x41, 0x03, 0xcf, 0x00, 0x21], V4),
            Ok(Start::Ip(6))
        );
        assert_eq!(
            fr(
                &[0x18, 0x41, 0x03, 0x00, 0x80, 0x00, 0x80, 0xc2, 0x00, 0x07],
                V4
            ),
            Ok(Start::Ethernet(10))
        );
        // Addresses of three and four octets, and a bogus five.
        assert_eq!(fr(&[0x18, 0x40, 0x41, 0x03, 0xcc], V4), Ok(Start::Ip(5)));
        assert_eq!(
            fr(&[0x18, 0x40, 0x40, 0x41, 0x03, 0xcc], V4),
            Ok(Start::Ip(6))
        );
        assert_eq!(
            fr(&[0x18, 0x40, 0x40, 0x40, 0x41, 0x03, 0xcc], V4),
            Ok(Start::Ip(7))
        );
        // Q.933 signalling is not IP; IPv4 under IPv6's NLPID is malformed.
        assert_eq!(
            fr(&[0x00, 0x01, 0x03, 0x08, 0x00, 0x75], V4),
            Err(ParseError::NotIp)
        );
        assert_eq!(
            fr(&[0x18, 0x41, 0x03, 0x8e], V4),
            Err(ParseError::Malformed)
        );
    }

    #[test]
    fn frame_relay_in_ciscos_encapsulation() {
        let fr = |head: &[u8], ip| Link::FrameRelay.start(&with(head, ip));
        // DLCI 100: the ethertype right after the address.
        assert_eq!(fr(&[0x18, 0x41, 0x08, 0x00], V4), Ok(Start::Ip(4)));
        assert_eq!(fr(&[0x18, 0x41, 0x86, 0xdd], V6), Ok(Start::Ip(4)));
        assert_eq!(fr(&[0x18, 0x41, 0x08, 0x06], V4), Err(ParseError::NotIp));
        // Not on DLCI 0 (LAPF signalling), nor in an XID frame.
        assert_eq!(fr(&[0x00, 0x01, 0x08, 0x00], V4), Err(ParseError::NotIp));
        assert_eq!(
            fr(&[0x18, 0x41, 0xaf, 0x08, 0x00], V4),
            Err(ParseError::NotIp)
        );
    }

    /// An NFLOG record of `family`: a packet header TLV naming
    /// `hw_protocol`, a prefix, then `ip` as the payload, in the byte order
    /// `big` says.
    fn nflog(family: u8, hw_protocol: u16, ip: &[u8], big: bool) -> Vec<u8> {
        let tlv = |len: u16, kind: u16| -> Vec<u8> {
            if big {
                [len.to_be_bytes(), kind.to_be_bytes()].concat()
            } else {
                [len.to_le_bytes(), kind.to_le_bytes()].concat()
            }
        };
        let mut f = vec![family, 0, 0, 1];
        f.extend(tlv(8, 1));
        f.extend_from_slice(&hw_protocol.to_be_bytes());
        f.extend_from_slice(&[3, 0]);
        f.extend(tlv(8, 10));
        f.extend_from_slice(b"log\0");
        f.extend(tlv(4 + ip.len() as u16, 9));
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn nflog_finds_the_payload_tlv_in_either_byte_order() {
        for big in [false, true] {
            assert_eq!(
                Link::Nflog.start(&nflog(2, 0x0800, &V4, big)),
                Ok(Start::Ip(24))
            );
            assert_eq!(
                Link::Nflog.start(&nflog(10, 0x86dd, &V6, big)),
                Ok(Start::Ip(24))
            );
        }
        // No payload: logged without the packet.
        let mut bare = nflog(2, 0x0800, &V4, false);
        bare.truncate(20);
        assert_eq!(Link::Nflog.start(&bare), Err(ParseError::NotIp));
    }

    #[test]
    fn nflog_of_the_bridge_family_names_ip_in_its_packet_header() {
        // NFPROTO_BRIDGE (7) and NFPROTO_NETDEV (5): the hardware protocol.
        assert_eq!(
            Link::Nflog.start(&nflog(7, 0x86dd, &V6, false)),
            Ok(Start::Ip(24))
        );
        assert_eq!(
            Link::Nflog.start(&nflog(5, 0x0800, &V4, true)),
            Ok(Start::Ip(24))
        );
        assert_eq!(
            Link::Nflog.start(&nflog(7, 0x0806, &V4, false)),
            Err(ParseError::NotIp)
        );
        // The family decides where it names IP, and the version must match.
        assert_eq!(
            Link::Nflog.start(&nflog(10, 0x86dd, &V4, false)),
            Err(ParseError::Malformed)
        );
    }

    /// A data frame to the AP: header, LLC/SNAP with `oui`, `ethertype`.
    fn wifi(fc: [u8; 2], header_len: usize, oui: u8, ethertype: &[u8]) -> Vec<u8> {
        let mut f = fc.to_vec();
        f.resize(header_len, 0);
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, oui]);
        f.extend_from_slice(ethertype);
        f
    }

    #[test]
    fn wifi_data_frames_bare_under_radiotap_and_ppi() {
        // From the ethertype on, an 802.11 data frame is Ethernet-shaped:
        // the start is 12 bytes before it, and the length the kernel would
        // count is an Ethernet frame's.
        let data = wifi([0x08, 0x01], 24, 0, &[0x08, 0x00]);
        assert_eq!(
            Link::Ieee80211.start(&with(&data, V4)),
            Ok(Start::Ethernet(18))
        );
        assert_eq!(wire_len(32 + 20, Start::Ethernet(18)), 14 + 20);
        // QoS data with four addresses; 802.1H bridge tunnelling; a VLAN tag.
        let qos = wifi([0x88, 0x03], 32, 0, &[0x86, 0xdd]);
        assert_eq!(Link::Ieee80211.start(&qos), Ok(Start::Ethernet(26)));
        let tunnel = wifi([0x08, 0x01], 24, 0xf8, &[0x08, 0x00]);
        assert_eq!(Link::Ieee80211.start(&tunnel), Ok(Start::Ethernet(18)));
        let other = wifi([0x08, 0x01], 24, 0x0c, &[0x08, 0x00]);
        assert_eq!(Link::Ieee80211.start(&other), Err(ParseError::NotIp));
        let radiotap = [&[0u8, 0, 8, 0, 0, 0, 0, 0][..], &data].concat();
        assert_eq!(Link::Radiotap.start(&radiotap), Ok(Start::Ethernet(26)));
        let ppi = [&[0u8, 0, 8, 0, 105, 0, 0, 0][..], &data].concat();
        assert_eq!(Link::Ppi.start(&ppi), Ok(Start::Ethernet(26)));
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
    fn radiotap_datapad_pads_the_80211_header_to_32_bits() {
        // QoS data: a 26-byte header, padded to 28.
        let padded = wifi([0x88, 0x01], 28, 0, &[0x08, 0x00]);
        // Flags present (bit 1) with DATAPAD (0x20).
        let flags = [0u8, 0, 9, 0, 0x02, 0, 0, 0, 0x20];
        let frame = [&flags[..], &padded].concat();
        assert_eq!(
            Link::Radiotap.start(&frame),
            Ok(Start::Ethernet(9 + 28 - 6))
        );
        // The same header with TSFT before the flags (8-aligned, 8 bytes)
        // and a second present word.
        let mut tsft = vec![0u8, 0, 0, 0];
        tsft.extend_from_slice(&(0x8000_0003u32).to_le_bytes());
        tsft.extend_from_slice(&0u32.to_le_bytes());
        tsft.resize(16, 0);
        tsft.extend_from_slice(&[0x11; 8]);
        tsft.push(0x20);
        let len = tsft.len() as u16;
        tsft[2..4].copy_from_slice(&len.to_le_bytes());
        let frame = [&tsft[..], &padded].concat();
        assert_eq!(
            Link::Radiotap.start(&frame),
            Ok(Start::Ethernet(25 + 28 - 6))
        );
        // Without DATAPAD, the LLC is read at 26, where the pad is.
        let mut plain = frame.clone();
        plain[24] = 0;
        assert_eq!(Link::Radiotap.start(&plain), Err(ParseError::NotIp));
    }

    #[test]
    fn pktap_names_its_inner_link() {
        let mut head = vec![0u8; 108];
        head[..4].copy_from_slice(&108u32.to_le_bytes());
        head[4..8].copy_from_slice(&1u32.to_le_bytes()); // a packet
        head[8..12].copy_from_slice(&1u32.to_le_bytes()); // Ethernet inside
        assert_eq!(Link::Pktap.start(&head), Ok(Start::Ethernet(108)));
        // A record of another type (PTH_TYPE_NONE) has no packet.
        head[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Link::Pktap.start(&head), Err(ParseError::NotIp));
        head[4..8].copy_from_slice(&1u32.to_le_bytes());
        head[8..12].copy_from_slice(&0u32.to_le_bytes()); // loopback inside
        head.extend_from_slice(&2u32.to_le_bytes());
        assert_eq!(Link::Pktap.start(&with(&head, V4)), Ok(Start::Ip(112)));
        // PKTAP inside PKTAP inside PKTAP: refused, not recursed into.
        head[8..12].copy_from_slice(&149u32.to_le_bytes());
        head[..4].copy_from_slice(&0u32.to_le_bytes());
        assert!(Link::Pktap.start(&head).is_err());
    }
}
