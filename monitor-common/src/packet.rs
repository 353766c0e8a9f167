//! Bounded, allocation-free header parsing shared by the kernel programs and
//! userspace.
//!
//! Every read goes through [`Packet::load`], so the kernel side has exactly one
//! place that proves to the verifier that an access is in bounds, and userspace
//! gets the same guarantee from slice indexing. Loops are unrolled or bounded
//! by constants so the verifier accepts them.

/// Read access to a packet's bytes. `load` returns `None` instead of reading
/// past the end; implementations must never panic.
pub trait Packet {
    /// Where a checked span starts (see [`Packet::span`]).
    type Span: Copy;

    fn load<T: Copy>(&self, offset: usize) -> Option<T>;

    /// `len` bytes at `offset`, if they are all there: one check for a whole
    /// header, whose fields are then read with [`Packet::field`].
    fn span(&self, offset: usize, len: usize) -> Option<Self::Span>;

    /// The field `k` bytes into a span. Implementations may skip a bounds
    /// check of their own (the kernel's does: the verifier already saw the
    /// span checked); a field outside the span reads as zero, never a panic.
    fn field<T: Copy + Default>(&self, span: Self::Span, k: usize) -> T;
}

impl Packet for [u8] {
    type Span = usize;

    #[inline(always)]
    fn load<T: Copy>(&self, offset: usize) -> Option<T> {
        let end = offset.checked_add(core::mem::size_of::<T>())?;
        let bytes = self.get(offset..end)?;
        // SAFETY: `bytes` holds exactly size_of::<T>() bytes, T is plain data
        // read unaligned.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
    }

    #[inline(always)]
    fn span(&self, offset: usize, len: usize) -> Option<usize> {
        let end = offset.checked_add(len)?;
        (end <= self.len()).then_some(offset)
    }

    #[inline(always)]
    fn field<T: Copy + Default>(&self, span: usize, k: usize) -> T {
        span.checked_add(k)
            .and_then(|offset| self.load(offset))
            .unwrap_or_default()
    }
}

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88A8;
/// Pre-standard QinQ outer tag still emitted by some switches.
pub const ETH_P_QINQ1: u16 = 0x9100;

pub const IPPROTO_HOPOPTS: u8 = 0;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ROUTING: u8 = 43;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_AH: u8 = 51;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_DSTOPTS: u8 = 60;

/// Tags beyond this (QinQ is two) make a frame unparsed rather than costing an
/// unbounded walk.
pub const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers walked before giving up; real traffic uses one or two.
pub const MAX_IPV6_EXT_HEADERS: usize = 6;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Address family of a parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Family {
    V4 = 0,
    V6 = 1,
}

/// Where a packet sits in an IP fragment train: only the first fragment
/// carries the L4 header, so later ones have no ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fragment {
    None = 0,
    First = 1,
    Later = 2,
}

/// Headers of an IP packet, enough to classify it.
///
/// `repr(C, align(8))` with the addresses first: the kernel programs read
/// them as aligned words (the verifier rejects misaligned stack access, and
/// byte-wise reassembly costs dozens of instructions per packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(8))]
pub struct Parsed {
    /// IPv4 addresses sit in the first four bytes, the rest zero.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub family: Family,
    /// The upper-layer protocol after IPv6 extension headers.
    pub proto: u8,
    /// Source/destination port for TCP and UDP; ICMP type/code in `sport`/`dport`.
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub fragment: Fragment,
    pub vlan_tags: u8,
    /// Offset of the L4 header from the start of the frame.
    pub l4_offset: u16,
}

/// Why a frame was not classified. The kernel counts these and passes the
/// frame (fail open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ParseError {
    /// Not IPv4 or IPv6 (ARP, LLDP, ...): not an error, just nothing to check.
    NotIp = 0,
    /// The frame ends inside a header.
    Truncated = 1,
    /// A header field is impossible (IPv4 IHL < 5, wrong version nibble...).
    Malformed = 2,
    /// More VLAN tags or IPv6 extension headers than we walk.
    TooDeep = 3,
}

/// An IPv4 address (as loaded, network byte order in memory) in the first
/// four bytes of a zeroed 16. Built from words on purpose: zeroing a byte
/// array compiles to a `memset` call, a byte loop in BPF, on the hot path.
#[inline(always)]
pub(crate) fn v4_bytes(addr: u32) -> [u8; 16] {
    // SAFETY: [u32; 4] and [u8; 16] have the same size; every bit pattern is valid.
    unsafe { core::mem::transmute::<[u32; 4], [u8; 16]>([addr, 0, 0, 0]) }
}

/// An IPv6 address loaded as two words (two loads instead of sixteen).
#[inline(always)]
pub(crate) fn v6_bytes(words: [u64; 2]) -> [u8; 16] {
    // SAFETY: same size; every bit pattern is valid.
    unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(words) }
}

/// The IPv4 address held in the first four bytes of `addr`, as a host-order
/// number (192.0.2.1 is 0xc0000201). One word load where `addr` is aligned,
/// as `Parsed`'s addresses are.
#[inline(always)]
pub fn v4_addr(addr: &[u8; 16]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&addr[..4]);
    u32::from_be_bytes(word)
}

#[inline(always)]
fn be16(v: u16) -> u16 {
    u16::from_be(v)
}

/// Where an Ethernet frame's IP header starts: its family, offset and how
/// many 802.1Q/802.1ad tags came before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L3 {
    pub family: Family,
    pub offset: usize,
    pub vlan_tags: u8,
}

/// Walks the Ethernet header and up to two VLAN tags.
#[inline(always)]
pub fn locate_ip<P: Packet + ?Sized>(pkt: &P) -> Result<L3, ParseError> {
    let mut ethertype = be16(pkt.load::<u16>(12).ok_or(ParseError::Truncated)?);
    // Untagged IPv4 first: the common frame skips the three tag compares.
    if ethertype == ETH_P_IP {
        return Ok(L3 {
            family: Family::V4,
            offset: ETH_HLEN,
            vlan_tags: 0,
        });
    }
    let mut offset = ETH_HLEN;
    let mut tags = 0u8;
    let mut i = 0;
    while i < MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD && ethertype != ETH_P_QINQ1 {
            break;
        }
        ethertype = be16(pkt.load::<u16>(offset + 2).ok_or(ParseError::Truncated)?);
        offset += 4;
        tags += 1;
        i += 1;
    }
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD || ethertype == ETH_P_QINQ1 {
        return Err(ParseError::TooDeep);
    }
    let family = match ethertype {
        ETH_P_IP => Family::V4,
        ETH_P_IPV6 => Family::V6,
        _ => return Err(ParseError::NotIp),
    };
    Ok(L3 {
        family,
        offset,
        vlan_tags: tags,
    })
}

/// Parses an Ethernet frame (with up to two 802.1Q/802.1ad tags).
#[inline(always)]
pub fn parse_ethernet<P: Packet + ?Sized>(pkt: &P) -> Result<Parsed, ParseError> {
    let l3 = locate_ip(pkt)?;
    let mut parsed = match l3.family {
        Family::V4 => parse_ipv4(pkt, l3.offset)?,
        Family::V6 => parse_ipv6(pkt, l3.offset)?,
    };
    parsed.vlan_tags = l3.vlan_tags;
    Ok(parsed)
}

/// Parses a packet that starts with its IP header (raw IP captures).
#[inline(always)]
pub fn parse_ip<P: Packet + ?Sized>(pkt: &P, offset: usize) -> Result<Parsed, ParseError> {
    let first: u8 = pkt.load(offset).ok_or(ParseError::Truncated)?;
    match first >> 4 {
        4 => parse_ipv4(pkt, offset),
        6 => parse_ipv6(pkt, offset),
        _ => Err(ParseError::Malformed),
    }
}

/// Parses the IPv4 packet at `offset` and its L4 header.
#[inline(always)]
pub fn parse_ipv4<P: Packet + ?Sized>(pkt: &P, offset: usize) -> Result<Parsed, ParseError> {
    // version/IHL, ..., frag (6), ttl, proto (9), csum, src (12), dst (16)
    let ip = pkt.span(offset, 20).ok_or(ParseError::Truncated)?;
    let vihl: u8 = pkt.field(ip, 0);
    if vihl >> 4 != 4 {
        return Err(ParseError::Malformed);
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if ihl < 20 {
        return Err(ParseError::Malformed);
    }
    let frag = be16(pkt.field::<u16>(ip, 6));
    let proto: u8 = pkt.field(ip, 9);
    let src: u32 = pkt.field(ip, 12);
    let dst: u32 = pkt.field(ip, 16);
    // Options must be present too, or the L4 offset would point into nowhere.
    pkt.load::<u8>(offset + ihl - 1)
        .ok_or(ParseError::Truncated)?;
    let more_fragments = frag & 0x2000 != 0;
    let frag_offset = frag & 0x1fff;
    let fragment = if frag_offset != 0 {
        Fragment::Later
    } else if more_fragments {
        Fragment::First
    } else {
        Fragment::None
    };
    let mut parsed = Parsed {
        family: Family::V4,
        proto,
        src: v4_bytes(src),
        dst: v4_bytes(dst),
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        fragment,
        vlan_tags: 0,
        l4_offset: (offset + ihl) as u16,
    };
    if fragment != Fragment::Later {
        parse_l4(pkt, offset + ihl, &mut parsed)?;
    }
    Ok(parsed)
}

/// Parses the IPv6 packet at `offset`, its extension headers and L4 header.
#[inline(always)]
pub fn parse_ipv6<P: Packet + ?Sized>(pkt: &P, offset: usize) -> Result<Parsed, ParseError> {
    let ip = pkt.span(offset, 40).ok_or(ParseError::Truncated)?;
    let vtc: u8 = pkt.field(ip, 0);
    if vtc >> 4 != 6 {
        return Err(ParseError::Malformed);
    }
    let mut next: u8 = pkt.field(ip, 6);
    let src = v6_bytes([pkt.field(ip, 8), pkt.field(ip, 16)]);
    let dst = v6_bytes([pkt.field(ip, 24), pkt.field(ip, 32)]);
    let mut l4 = offset + 40;
    let mut fragment = Fragment::None;
    let mut i = 0;
    while i < MAX_IPV6_EXT_HEADERS {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let hdr: [u8; 2] = pkt.load(l4).ok_or(ParseError::Truncated)?;
                next = hdr[0];
                l4 += (hdr[1] as usize + 1) * 8;
            }
            IPPROTO_AH => {
                let hdr: [u8; 2] = pkt.load(l4).ok_or(ParseError::Truncated)?;
                next = hdr[0];
                l4 += (hdr[1] as usize + 2) * 4;
            }
            IPPROTO_FRAGMENT => {
                let hdr: [u8; 4] = pkt.load(l4).ok_or(ParseError::Truncated)?;
                next = hdr[0];
                let off_flags = u16::from_be_bytes([hdr[2], hdr[3]]);
                fragment = if off_flags & 0xfff8 != 0 {
                    Fragment::Later
                } else if off_flags & 1 != 0 {
                    Fragment::First
                } else {
                    Fragment::None
                };
                l4 += 8;
            }
            _ => break,
        }
        i += 1;
    }
    if matches!(
        next,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH | IPPROTO_FRAGMENT
    ) {
        return Err(ParseError::TooDeep);
    }
    let mut parsed = Parsed {
        family: Family::V6,
        proto: next,
        src,
        dst,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        fragment,
        vlan_tags: 0,
        l4_offset: l4 as u16,
    };
    if fragment != Fragment::Later {
        parse_l4(pkt, l4, &mut parsed)?;
    }
    Ok(parsed)
}

#[inline(always)]
fn parse_l4<P: Packet + ?Sized>(
    pkt: &P,
    offset: usize,
    parsed: &mut Parsed,
) -> Result<(), ParseError> {
    match parsed.proto {
        IPPROTO_TCP => {
            let tcp = pkt.span(offset, 20).ok_or(ParseError::Truncated)?;
            let ports: [u16; 2] = pkt.field(tcp, 0);
            // Data offset (12) and flags (13): a TCP header is at least 20 bytes.
            let hdr: [u8; 2] = pkt.field(tcp, 12);
            let header_len = (hdr[0] >> 4) as usize * 4;
            if header_len < 20 {
                return Err(ParseError::Malformed);
            }
            // The whole header, options included, must be there.
            pkt.load::<u8>(offset + header_len - 1)
                .ok_or(ParseError::Truncated)?;
            parsed.sport = be16(ports[0]);
            parsed.dport = be16(ports[1]);
            parsed.tcp_flags = hdr[1];
        }
        IPPROTO_UDP => {
            let udp = pkt.span(offset, 8).ok_or(ParseError::Truncated)?;
            let ports: [u16; 2] = pkt.field(udp, 0);
            parsed.sport = be16(ports[0]);
            parsed.dport = be16(ports[1]);
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            // Type, code, checksum and the 4-byte rest-of-header.
            let icmp = pkt.span(offset, 8).ok_or(ParseError::Truncated)?;
            let tc: [u8; 2] = pkt.field(icmp, 0);
            parsed.sport = tc[0] as u16;
            parsed.dport = tc[1] as u16;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (no options) + TCP SYN 40000 → 2181, no payload.
    fn v4_tcp() -> [u8; 54] {
        let mut f = [0u8; 54];
        f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = IPPROTO_TCP;
        f[26..30].copy_from_slice(&[192, 0, 2, 1]);
        f[30..34].copy_from_slice(&[192, 0, 2, 2]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&2181u16.to_be_bytes());
        f[46] = 0x50;
        f[47] = TCP_SYN;
        f
    }

    /// Ethernet + 802.1Q + IPv6 + UDP 5353 → 53.
    fn vlan_v6_udp() -> [u8; 66] {
        let mut f = [0u8; 66];
        f[12..14].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
        f[14..16].copy_from_slice(&100u16.to_be_bytes());
        f[16..18].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
        f[18] = 0x60;
        f[22..24].copy_from_slice(&8u16.to_be_bytes());
        f[24] = IPPROTO_UDP;
        f[26..28].copy_from_slice(&[0x20, 0x01]);
        f[42..44].copy_from_slice(&[0x20, 0x01]);
        f[58..60].copy_from_slice(&5353u16.to_be_bytes());
        f[60..62].copy_from_slice(&53u16.to_be_bytes());
        f
    }

    #[test]
    fn parses_ipv4_tcp() {
        let p = parse_ethernet(&v4_tcp()[..]).unwrap();
        assert_eq!(p.family, Family::V4);
        assert_eq!(
            (p.proto, p.sport, p.dport, p.tcp_flags),
            (IPPROTO_TCP, 40000, 2181, TCP_SYN)
        );
        assert_eq!(&p.src[..4], &[192, 0, 2, 1]);
        assert_eq!(&p.dst[..4], &[192, 0, 2, 2]);
        assert_eq!(
            (p.l4_offset, p.fragment, p.vlan_tags),
            (34, Fragment::None, 0)
        );
    }

    #[test]
    fn parses_tagged_ipv6_udp() {
        let p = parse_ethernet(&vlan_v6_udp()[..]).unwrap();
        assert_eq!(
            (p.family, p.proto, p.sport, p.dport),
            (Family::V6, IPPROTO_UDP, 5353, 53)
        );
        assert_eq!((p.vlan_tags, p.l4_offset), (1, 58));
        assert_eq!(&p.src[..2], &[0x20, 0x01]);
    }

    #[test]
    fn raw_ip_entry_point_matches_ethernet() {
        let f = v4_tcp();
        let mut via_eth = parse_ethernet(&f[..]).unwrap();
        let raw = parse_ip(&f[ETH_HLEN..], 0).unwrap();
        via_eth.l4_offset -= ETH_HLEN as u16;
        assert_eq!(raw, via_eth);
        assert_eq!(parse_ip(&[0x10u8][..], 0), Err(ParseError::Malformed));
    }

    /// Every cut of a valid frame inside its headers is `Truncated`, never a
    /// panic or a wrong parse; once the headers are whole, it parses.
    #[test]
    fn every_prefix_is_truncated_or_parsed() {
        for (frame, headers) in [(&v4_tcp()[..], 54), (&vlan_v6_udp()[..], 66)] {
            for len in 0..frame.len() {
                let r = parse_ethernet(&frame[..len]);
                if len < headers {
                    assert_eq!(r, Err(ParseError::Truncated), "prefix {len}");
                } else {
                    assert!(r.is_ok(), "prefix {len}");
                }
            }
        }
    }

    #[test]
    fn load_never_reads_past_the_end() {
        let bytes = [1u8, 2, 3, 4];
        assert_eq!(bytes[..].load::<u32>(0), Some(u32::from_ne_bytes(bytes)));
        assert_eq!(bytes[..].load::<u32>(1), None);
        assert_eq!(bytes[..].load::<u8>(usize::MAX), None);
    }
}
