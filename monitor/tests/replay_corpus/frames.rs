//! The frames of the corpus: every link type replay reads, each in the
//! variants real captures hold (framings, byte orders, optional fields,
//! padding), around the packets of [`crate::packets`], and frames of the
//! same links that carry no IP.

use crate::{
    common::links::*,
    expect::{ByDesign, Expect},
    packets::{IpPacket, Rng, ip_packet},
};

/// A frame as generated.
#[derive(Clone)]
pub struct Made {
    pub data: Vec<u8>,
    pub orig_len: u32,
    pub expect: Expect,
    /// Bytes from the frame's start the kernel's parser needs whole; 0 for
    /// a frame without IP.
    pub needed: usize,
    /// Where the IP packet ends, from the frame's start; 0 without IP.
    pub ip_end: usize,
    pub kind: Kind,
}

impl Made {
    /// A frame without IP (or not to be compared as IP: `text2pcap`'s
    /// payloads), whole.
    pub fn not_ip(kind: Kind, data: Vec<u8>) -> Self {
        Made {
            orig_len: data.len() as u32,
            data,
            expect: Expect::Alike,
            needed: 0,
            ip_end: 0,
            kind,
        }
    }

    /// `ip` after `head` (and before `tail`), expecting what `ip` expects
    /// unless `expect` says otherwise.
    pub fn ip(kind: Kind, head: &[u8], ip: &IpPacket, tail: &[u8], expect: Option<Expect>) -> Self {
        let data = [head, &ip.bytes, tail].concat();
        Made {
            orig_len: data.len() as u32,
            data,
            expect: expect.unwrap_or(ip.expect),
            needed: head.len() + ip.needed,
            ip_end: head.len() + ip.bytes.len(),
            kind,
        }
    }

    /// Cut to `snaplen` bytes, as a capture with that snapshot length
    /// holds it: a cut inside the headers changes what is expected.
    pub fn snapped(&self, snaplen: usize) -> Made {
        let mut m = self.clone();
        if m.data.len() > snaplen {
            m.data.truncate(snaplen);
        }
        if m.data.len() < m.needed {
            m.expect = Expect::ByDesign(ByDesign::Cut);
        } else if m.kind == Kind::Nflog && m.data.len() < m.ip_end {
            m.expect = Expect::ByDesign(ByDesign::NflogCut);
        }
        m
    }
}

/// The link types of the corpus, each in the variants its files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Ethernet,
    /// Ethernet with flag bits in the link-type field: the FCS length
    /// (in 16-bit words) and the bit saying it is there.
    EthernetFcs(u32),
    Sll,
    Sll2,
    /// LINKTYPE_RAW (101) and the BSD DLT_RAW values (12, 14).
    Raw(u32),
    RawIpv4,
    RawIpv6,
    Null,
    Loop,
    /// PPP (9) and PPP_HDLC (50).
    Ppp(u32),
    CiscoHdlc,
    FrameRelay,
    Nflog,
    Wifi,
    Radiotap,
    Ppi,
    /// 258 as libpcap writes it, 149 as Darwin's tcpdump does.
    Pktap(u32),
}

impl Kind {
    /// Every link type and variant, each with files of its own.
    pub const ALL: [Kind; 22] = [
        Kind::Ethernet,
        Kind::EthernetFcs(0),
        Kind::EthernetFcs(2),
        Kind::Sll,
        Kind::Sll2,
        Kind::Raw(101),
        Kind::Raw(12),
        Kind::Raw(14),
        Kind::RawIpv4,
        Kind::RawIpv6,
        Kind::Null,
        Kind::Loop,
        Kind::Ppp(9),
        Kind::Ppp(50),
        Kind::CiscoHdlc,
        Kind::FrameRelay,
        Kind::Nflog,
        Kind::Wifi,
        Kind::Radiotap,
        Kind::Ppi,
        Kind::Pktap(149),
        Kind::Pktap(258),
    ];

    /// The link-type field of the link's files.
    pub fn linktype(self) -> u32 {
        match self {
            Kind::Ethernet => 1,
            // Bit 26: the FCS length is given, in bits 28-31.
            Kind::EthernetFcs(words) => 0x0400_0000 | words << 28 | 1,
            Kind::Sll => 113,
            Kind::Sll2 => 276,
            Kind::Raw(n) | Kind::Ppp(n) | Kind::Pktap(n) => n,
            Kind::RawIpv4 => 228,
            Kind::RawIpv6 => 229,
            Kind::Null => 0,
            Kind::Loop => 108,
            Kind::CiscoHdlc => 104,
            Kind::FrameRelay => 107,
            Kind::Nflog => 239,
            Kind::Wifi => 105,
            Kind::Radiotap => 127,
            Kind::Ppi => 192,
        }
    }

    /// The link type's name and number, as the summary prints them.
    pub fn name(self) -> String {
        let base = match self {
            Kind::Ethernet => "ETHERNET",
            Kind::EthernetFcs(_) => "ETHERNET+flags",
            Kind::Sll => "LINUX_SLL",
            Kind::Sll2 => "LINUX_SLL2",
            Kind::Raw(_) => "RAW",
            Kind::RawIpv4 => "IPV4",
            Kind::RawIpv6 => "IPV6",
            Kind::Null => "NULL",
            Kind::Loop => "LOOP",
            Kind::Ppp(9) => "PPP",
            Kind::Ppp(_) => "PPP_HDLC",
            Kind::CiscoHdlc => "C_HDLC",
            Kind::FrameRelay => "FRELAY",
            Kind::Nflog => "NFLOG",
            Kind::Wifi => "IEEE802_11",
            Kind::Radiotap => "IEEE802_11_RADIOTAP",
            Kind::Ppi => "PPI",
            Kind::Pktap(_) => "PKTAP",
        };
        match self {
            Kind::EthernetFcs(_) => format!("{base} ({:#010x})", self.linktype()),
            _ => format!("{base} ({})", self.linktype()),
        }
    }

    /// IP versions the link carries (IPv4 = false).
    pub fn carries(self, v6: bool) -> bool {
        match self {
            Kind::RawIpv4 => !v6,
            Kind::RawIpv6 => v6,
            _ => true,
        }
    }

    /// Frames of this link with an FCS at their end, which a cut would
    /// make tshark take for payload: these are not cut.
    pub fn fcs(self) -> bool {
        matches!(self, Kind::EthernetFcs(w) if w > 0)
    }
}

/// How a file's frames are written: the capturing host's byte order (a
/// big-endian file comes from a big-endian host, whose loopback and
/// NFLOG headers are big-endian too), and whether frames made different
/// on purpose at the link layer (too many tags, a wrong label) may be.
#[derive(Clone, Copy)]
pub struct Host {
    pub big_endian: bool,
    pub specials: bool,
}

/// A VLAN id.
fn vid(rng: &mut Rng) -> u16 {
    1 + rng.below(4094) as u16
}

/// VLAN tags for an Ethernet-shaped header: none mostly, one, QinQ (both
/// outer TPIDs), or, on purpose, three.
fn tags(rng: &mut Rng, host: Host) -> (Vec<(u16, u16)>, Option<Expect>) {
    match rng.below(100) {
        0..=69 => (vec![], None),
        70..=84 => (vec![(ETHERTYPE_VLAN, vid(rng))], None),
        85..=91 => (
            vec![(ETHERTYPE_QINQ, vid(rng)), (ETHERTYPE_VLAN, vid(rng))],
            None,
        ),
        92..=96 => (
            vec![(ETHERTYPE_QINQ_OLD, vid(rng)), (ETHERTYPE_VLAN, vid(rng))],
            None,
        ),
        _ if host.specials => (
            vec![
                (ETHERTYPE_QINQ, vid(rng)),
                (ETHERTYPE_VLAN, vid(rng)),
                (ETHERTYPE_VLAN, vid(rng)),
            ],
            Some(Expect::ByDesign(ByDesign::VlanDepth)),
        ),
        _ => (vec![(ETHERTYPE_VLAN, vid(rng))], None),
    }
}

/// The version label a link header gives `ip`: its own mostly; on
/// purpose, sometimes the other one. An IPv6 packet labelled IPv4 is a
/// difference by design; an IPv4 packet labelled IPv6 is unread by both.
fn label(rng: &mut Rng, ip: &IpPacket, host: Host) -> (bool, Option<Expect>) {
    if host.specials && ip.sound && rng.percent(2) {
        let expect = if ip.v6() {
            Expect::ByDesign(ByDesign::V6UnderV4Label)
        } else {
            Expect::Alike
        };
        (!ip.v6(), Some(expect))
    } else {
        (ip.v6(), None)
    }
}

/// The ethertype of an IP version.
fn ethertype(v6: bool) -> u16 {
    if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 }
}

/// An Ethernet header (tags, label) for `ip`, and what it makes expected.
fn ethernet_head(rng: &mut Rng, ip: &IpPacket, host: Host) -> (Vec<u8>, Option<Expect>) {
    let (tags, tag_expect) = if ip.sound {
        tags(rng, host)
    } else {
        (vec![], None)
    };
    let (v6, label_expect) = if tag_expect.is_none() {
        label(rng, ip, host)
    } else {
        (ip.v6(), None)
    };
    (
        ethernet(&tags, ethertype(v6), &[]),
        tag_expect.or(label_expect),
    )
}

/// The 4-byte loopback header of a BSD address family for `v6`.
fn bsd_af(rng: &mut Rng, v6: bool) -> u32 {
    if v6 { rng.pick(&[24, 28, 30]) } else { 2 }
}

/// PPP framing and protocol field for `v6`: HDLC-like framing or none,
/// the protocol field whole or compressed to a byte, or Cisco's framing.
fn ppp_head(rng: &mut Rng, v6: bool) -> Vec<u8> {
    let protocol: u8 = if v6 { 0x57 } else { 0x21 };
    match rng.below(10) {
        0..=4 => vec![0xff, 0x03, 0x00, protocol],
        5 => vec![0xff, 0x03, protocol],
        6 | 7 => vec![0x00, protocol],
        8 => vec![protocol],
        _ => {
            let mut h = vec![rng.pick(&[0x0f, 0x8f]), 0x00];
            h.extend_from_slice(&ethertype(v6).to_be_bytes());
            h
        }
    }
}

/// A Q.922 address of 2, 3 or 4 octets for a DLCI that is not 0.
fn q922(rng: &mut Rng) -> Vec<u8> {
    let dlci = 16 + rng.below(990) as u32;
    match rng.below(10) {
        0 => vec![((dlci >> 4) << 2) as u8, ((dlci & 0xf) << 4) as u8, 0x01],
        1 => vec![
            ((dlci >> 4) << 2) as u8,
            ((dlci & 0xf) << 4) as u8,
            0x00,
            0x01,
        ],
        _ => vec![((dlci >> 4) << 2) as u8, ((dlci & 0xf) << 4) as u8 | 0x01],
    }
}

/// An NFLOG record in the order the kernel writes its TLVs: the packet
/// header first, then some of the attributes it adds (the prefix, input
/// interface, mark, timestamp, socket owner), the payload last. Returns
/// the record and where the payload starts.
fn nflog_frame(
    rng: &mut Rng,
    family: u8,
    hw_protocol: u16,
    payload: Option<&[u8]>,
    host: Host,
) -> (Vec<u8>, usize) {
    let hdr = nflog_packet_hdr(hw_protocol, rng.below(5) as u8);
    let mut tlvs: Vec<(u16, Vec<u8>)> = vec![(NFULA_PACKET_HDR, hdr)];
    if rng.percent(50) {
        let mut prefix: Vec<u8> = (0..1 + rng.below(40))
            .map(|_| b'a' + rng.below(26) as u8)
            .collect();
        prefix.push(0);
        tlvs.push((NFULA_PREFIX, prefix));
    }
    if rng.percent(50) {
        tlvs.push((NFULA_IFINDEX_INDEV, 2u32.to_be_bytes().to_vec()));
    }
    if rng.percent(50) {
        tlvs.push((NFULA_MARK, rng.bytes(4)));
    }
    if rng.percent(40) {
        tlvs.push((NFULA_TIMESTAMP, rng.bytes(16)));
    }
    if rng.percent(20) {
        tlvs.push((NFULA_UID, 1000u32.to_be_bytes().to_vec()));
    }
    let head_len = nflog(family, &tlvs_of(&tlvs), host.big_endian).len();
    if let Some(payload) = payload {
        tlvs.push((NFULA_PAYLOAD, payload.to_vec()));
    }
    (
        nflog(family, &tlvs_of(&tlvs), host.big_endian),
        head_len + 4,
    )
}

/// TLVs as [`nflog`] takes them.
fn tlvs_of(tlvs: &[(u16, Vec<u8>)]) -> Vec<(u16, &[u8])> {
    tlvs.iter().map(|(k, v)| (*k, v.as_slice())).collect()
}

/// A radiotap header for an 802.11 frame: some fields, maybe an extended
/// present bitmap, maybe the FCS and DATAPAD flags. Returns the header
/// (the 802.11 frame is added by the caller), the padding the 802.11
/// header needs, and whether an FCS ends the frame.
fn radiotap_head(rng: &mut Rng, wifi_header_len: usize) -> (Vec<u8>, usize, bool) {
    let mut fields = Vec::new();
    if rng.percent(50) {
        fields.push(RADIOTAP_TSFT);
    }
    let with_flags = rng.percent(70);
    if with_flags {
        fields.push(RADIOTAP_FLAGS);
    }
    for f in [
        RADIOTAP_RATE,
        RADIOTAP_CHANNEL,
        RADIOTAP_DBM_SIGNAL,
        RADIOTAP_ANTENNA,
    ] {
        if rng.percent(50) {
            fields.push(f);
        }
    }
    let fcs = with_flags && rng.percent(15);
    let datapad = with_flags && rng.percent(40);
    let mut flags = 0;
    if fcs {
        flags |= RADIOTAP_F_FCS;
    }
    if datapad {
        flags |= RADIOTAP_F_DATAPAD;
    }
    let pad = if datapad {
        wifi_header_len.next_multiple_of(4) - wifi_header_len
    } else {
        0
    };
    let extra = usize::from(rng.percent(20));
    (radiotap(&fields, flags, extra, &[]), pad, fcs)
}

/// A random 802.11 data frame kind.
fn wifi_kind(rng: &mut Rng) -> WifiData {
    let qos = rng.percent(50);
    WifiData {
        qos,
        four_addresses: rng.percent(10),
        ht_control: qos && rng.percent(20),
        pad: 0,
        oui: if rng.percent(5) {
            [0, 0, 0xf8]
        } else {
            [0, 0, 0]
        },
        retry: rng.percent(10),
    }
}

/// The length of the 802.11 header [`wifi_data`] writes for `k`.
fn wifi_header_len(k: &WifiData) -> usize {
    24 + if k.four_addresses { 6 } else { 0 }
        + if k.qos { 2 } else { 0 }
        + if k.ht_control { 4 } else { 0 }
}

/// An 802.11 data frame's bytes before `ip` (LLC/SNAP, a VLAN tag now and
/// then), and what the label makes expected.
fn wifi_head(rng: &mut Rng, k: &WifiData, ip: &IpPacket, host: Host) -> (Vec<u8>, Option<Expect>) {
    let (v6, expect) = label(rng, ip, host);
    if rng.percent(5) {
        let mut tag = vid(rng).to_be_bytes().to_vec();
        tag.extend_from_slice(&ethertype(v6).to_be_bytes());
        return (wifi_data(k, ETHERTYPE_VLAN, &tag), expect);
    }
    (wifi_data(k, ethertype(v6), &[]), expect)
}

/// A frame of `kind` around an IP packet.
pub fn wrap(kind: Kind, rng: &mut Rng, ip: &IpPacket, host: Host) -> Made {
    match kind {
        Kind::Ethernet | Kind::EthernetFcs(_) => {
            let (head, expect) = ethernet_head(rng, ip, host);
            let mut m = Made::ip(kind, &head, ip, &[], expect);
            // NICs pad short frames to 60 bytes.
            if m.data.len() < 60 {
                m.data.resize(60, 0);
            }
            if let Kind::EthernetFcs(words) = kind {
                let fcs = ethernet_fcs(&m.data);
                m.data.extend_from_slice(&fcs[..2 * words as usize]);
            }
            m.orig_len = m.data.len() as u32;
            m
        }
        Kind::Sll | Kind::Sll2 => {
            let arphrd = rng.pick(&[1, 1, 1, 772, 776, 778, 512, 65534]);
            let (eth, expect) = if arphrd == 1 {
                ethernet_head(rng, ip, host)
            } else {
                let (v6, expect) = label(rng, ip, host);
                (ethernet(&[], ethertype(v6), &[]), expect)
            };
            // The Ethernet header's last bytes (tags and type) are what
            // the cooked header carries.
            let (protocol, tags) = (u16::from_be_bytes([eth[12], eth[13]]), &eth[14..]);
            let head = if kind == Kind::Sll {
                sll(rng.below(5) as u16, arphrd, protocol, tags)
            } else {
                sll2(
                    rng.below(5) as u8,
                    arphrd,
                    1 + rng.below(20) as u32,
                    protocol,
                    tags,
                )
            };
            Made::ip(kind, &head, ip, &[], expect)
        }
        Kind::Raw(_) => Made::ip(kind, &[], ip, &[], None),
        Kind::RawIpv4 | Kind::RawIpv6 => {
            // A packet of the other version under this label.
            let expect = match (kind, ip.v6()) {
                (Kind::RawIpv4, true) => Some(Expect::ByDesign(ByDesign::V6UnderV4Label)),
                (Kind::RawIpv6, false) => Some(Expect::Alike),
                _ => None,
            };
            Made::ip(kind, &[], ip, &[], expect)
        }
        Kind::Null => {
            let (v6, expect) = label(rng, ip, host);
            let head = match rng.below(20) {
                // Wireshark's other loopback headers: PPP in HDLC framing,
                // IRIX's 2-byte family, old Linux's ethertype.
                0 => {
                    let mut h = vec![0xff, 0x03];
                    h.extend_from_slice(&[0x00, if v6 { 0x57 } else { 0x21 }]);
                    h
                }
                1 if !v6 => vec![0, 2, 0, 0],
                2 => [vec![0, 0], ethertype(v6).to_be_bytes().to_vec()].concat(),
                // Mostly the host's byte order, sometimes the other one.
                n => bsd_family(bsd_af(rng, v6), host.big_endian != (n == 3)).to_vec(),
            };
            Made::ip(kind, &head, ip, &[], expect)
        }
        Kind::Loop => {
            let (v6, expect) = label(rng, ip, host);
            Made::ip(kind, &bsd_family(bsd_af(rng, v6), true), ip, &[], expect)
        }
        Kind::Ppp(_) => {
            let (v6, expect) = label(rng, ip, host);
            Made::ip(kind, &ppp_head(rng, v6), ip, &[], expect)
        }
        Kind::CiscoHdlc => {
            let (v6, expect) = label(rng, ip, host);
            let mut head = vec![rng.pick(&[0x0f, 0x8f]), 0];
            head.extend_from_slice(&ethertype(v6).to_be_bytes());
            Made::ip(kind, &head, ip, &[], expect)
        }
        Kind::FrameRelay => {
            let (v6, expect) = label(rng, ip, host);
            let mut head = q922(rng);
            match rng.below(20) {
                // RFC 2427: UI, an NLPID (a pad byte before it sometimes).
                0..=7 => head.extend_from_slice(&[0x03, if v6 { 0x8e } else { 0xcc }]),
                8 => head.extend_from_slice(&[0x03, 0x00, if v6 { 0x8e } else { 0xcc }]),
                // SNAP with an ethertype, with and without the pad.
                9 | 10 => {
                    head.extend_from_slice(&[0x03, 0x00, 0x80, 0, 0, 0]);
                    head.extend_from_slice(&ethertype(v6).to_be_bytes());
                }
                11 => {
                    head.extend_from_slice(&[0x03, 0x80, 0, 0, 0]);
                    head.extend_from_slice(&ethertype(v6).to_be_bytes());
                }
                // PPP over Frame Relay (RFC 1973).
                12 => head.extend_from_slice(&[0x03, 0xcf, 0x00, if v6 { 0x57 } else { 0x21 }]),
                // Bridged Ethernet (SNAP, OUI 00-80-C2, PID 7: no FCS).
                13 => {
                    head.extend_from_slice(&[0x03, 0x00, 0x80, 0x00, 0x80, 0xc2, 0x00, 0x07]);
                    head.extend_from_slice(&ethernet(&[], ethertype(v6), &[]));
                }
                // Cisco's encapsulation: the ethertype after the address.
                _ => head.extend_from_slice(&ethertype(v6).to_be_bytes()),
            }
            Made::ip(kind, &head, ip, &[], expect)
        }
        Kind::Nflog => {
            let (v6, expect) = label(rng, ip, host);
            // The bridge's and netdev's families name no IP version: the
            // packet header's hardware protocol does.
            let family = if rng.percent(10) {
                rng.pick(&[7, 5])
            } else if v6 {
                10
            } else {
                2
            };
            let (frame, at) = nflog_frame(rng, family, ethertype(v6), Some(&ip.bytes), host);
            Made {
                orig_len: frame.len() as u32,
                data: frame,
                expect: expect.unwrap_or(ip.expect),
                needed: at + ip.needed,
                ip_end: at + ip.bytes.len(),
                kind,
            }
        }
        Kind::Wifi => {
            let k = wifi_kind(rng);
            let (head, expect) = wifi_head(rng, &k, ip, host);
            Made::ip(kind, &head, ip, &[], expect)
        }
        Kind::Radiotap => {
            let mut k = wifi_kind(rng);
            let (rt, pad, fcs) = radiotap_head(rng, wifi_header_len(&k));
            k.pad = pad;
            let (wifi, expect) = wifi_head(rng, &k, ip, host);
            let fcs = if fcs { rng.bytes(4) } else { vec![] };
            Made::ip(kind, &[rt, wifi].concat(), ip, &fcs, expect)
        }
        Kind::Ppi => match rng.below(20) {
            0..=15 => {
                let fcs = rng.percent(10);
                let fields = if rng.percent(85) {
                    ppi_80211_common(fcs)
                } else {
                    vec![]
                };
                let fcs = if fcs && !fields.is_empty() {
                    rng.bytes(4)
                } else {
                    vec![]
                };
                let k = wifi_kind(rng);
                let (wifi, expect) = wifi_head(rng, &k, ip, host);
                Made::ip(kind, &ppi(105, &fields, &wifi), ip, &fcs, expect)
            }
            16 | 17 => {
                let (eth, expect) = ethernet_head(rng, ip, host);
                Made::ip(kind, &ppi(1, &[], &eth), ip, &[], expect)
            }
            18 => Made::ip(kind, &ppi(101, &[], &[]), ip, &[], None),
            _ => {
                let (v6, expect) = label(rng, ip, host);
                let af = bsd_family(bsd_af(rng, v6), false);
                Made::ip(kind, &ppi(0, &[], &af), ip, &[], expect)
            }
        },
        Kind::Pktap(_) => match rng.below(10) {
            0..=7 => {
                let (eth, expect) = ethernet_head(rng, ip, host);
                Made::ip(kind, &pktap(1, 1, &eth), ip, &[], expect)
            }
            8 => {
                let (v6, expect) = label(rng, ip, host);
                let af = bsd_family(bsd_af(rng, v6), false);
                Made::ip(kind, &pktap(0, 1, &af), ip, &[], expect)
            }
            _ => Made::ip(kind, &pktap(12, 1, &[]), ip, &[], None),
        },
    }
}

/// Ethernet's FCS (CRC-32 of the frame, least significant byte first).
fn ethernet_fcs(frame: &[u8]) -> [u8; 4] {
    let mut crc = flate2::Crc::new();
    crc.update(frame);
    crc.sum().to_le_bytes()
}

/// A frame of `kind` that carries no IP (or an IP packet under a header
/// that does not say IP, which neither side may read).
fn not_ip(kind: Kind, rng: &mut Rng, host: Host) -> Vec<u8> {
    let v4 = || -> Vec<u8> {
        let mut r = Rng(0x1234);
        ip_packet(&mut r, false, true, 0).bytes
    };
    let v6 = || -> Vec<u8> {
        let mut r = Rng(0x5678);
        ip_packet(&mut r, true, true, 0).bytes
    };
    let ethernet_not_ip = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(4) {
            0 => ethernet(&[], ETHERTYPE_ARP, &arp()),
            1 => ethernet(&[(ETHERTYPE_VLAN, vid(rng))], ETHERTYPE_ARP, &arp()),
            2 => ethernet(&[], ETHERTYPE_LLDP, &rng.bytes(30)),
            // 802.3 with a length, and LLC (spanning tree).
            _ => ethernet(
                &[],
                38,
                &[[0x42, 0x42, 0x03].to_vec(), rng.bytes(35)].concat(),
            ),
        }
    };
    match kind {
        Kind::Ethernet | Kind::EthernetFcs(_) => {
            let mut f = ethernet_not_ip(rng);
            f.resize(f.len().max(60), 0);
            if let Kind::EthernetFcs(words) = kind {
                let fcs = ethernet_fcs(&f);
                f.extend_from_slice(&fcs[..2 * words as usize]);
            }
            f
        }
        Kind::Sll | Kind::Sll2 => {
            let (protocol, payload) = if rng.percent(50) {
                (ETHERTYPE_ARP, arp())
            } else {
                // 802.2 LLC (LINUX_SLL_P_802_2): spanning tree.
                (
                    0x0004,
                    [[0x42, 0x42, 0x03].to_vec(), rng.bytes(35)].concat(),
                )
            };
            if kind == Kind::Sll {
                sll(0, 1, protocol, &payload)
            } else {
                sll2(0, 1, 2, protocol, &payload)
            }
        }
        // A raw link has nothing but IP: garbage is what it has besides.
        Kind::Raw(_) | Kind::RawIpv4 | Kind::RawIpv6 => {
            let mut g = rng.some_bytes(20, 40);
            g[0] = rng.pick(&[0x00, 0x10, 0x85, 0xf0]);
            g
        }
        Kind::Null => match rng.below(5) {
            // OSI, AppleTalk, IPX: other families.
            0 => cat(&bsd_family(7, host.big_endian), &rng.bytes(30)),
            1 => cat(&bsd_family(16, host.big_endian), &rng.bytes(30)),
            2 => cat(&bsd_family(23, host.big_endian), &rng.bytes(30)),
            // 10 is AF_CCITT on the BSDs, not Linux's AF_INET6.
            3 => cat(&bsd_family(10, host.big_endian), &v6()),
            _ => cat(&[0, 0x18, 0, 0], &v6()),
        },
        Kind::Loop => match rng.below(3) {
            // LOOP's family is in network order: a little-endian one is
            // no family at all.
            0 => cat(&bsd_family(2, false), &v4()),
            1 => cat(&bsd_family(10, true), &v6()),
            _ => cat(&bsd_family(16, true), &rng.bytes(30)),
        },
        Kind::Ppp(_) => {
            // LCP, IPCP, IPV6CP, CCP, PAP, CHAP.
            let protocol: u16 = rng.pick(&[0xc021, 0x8021, 0x8057, 0x80fd, 0xc023, 0xc223]);
            let mut f = if rng.percent(70) {
                vec![0xff, 0x03]
            } else {
                vec![]
            };
            f.extend_from_slice(&protocol.to_be_bytes());
            f.extend_from_slice(&[1, 1, 0, 8, 1, 4, 5, 0xdc]);
            f
        }
        Kind::CiscoHdlc => match rng.below(2) {
            // SLARP keepalive, CDP.
            0 => cat(
                &[0x8f, 0x00, 0x80, 0x35],
                &[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff],
            ),
            _ => cat(&[0x8f, 0x00, 0x20, 0x00], &rng.bytes(40)),
        },
        Kind::FrameRelay => match rng.below(5) {
            // Q.933 annex A status enquiry on DLCI 0; Cisco LMI on 1023.
            0 => vec![
                0x00, 0x01, 0x03, 0x08, 0x00, 0x75, 0x95, 0x01, 0x01, 0x01, 0x03, 0x02, 0x01, 0x00,
            ],
            1 => vec![
                0xfc, 0xf1, 0x03, 0x09, 0x00, 0x75, 0x01, 0x01, 0x01, 0x03, 0x02, 0x01, 0x00,
            ],
            // ARP over SNAP, and in Cisco's encapsulation.
            2 => [
                q922(rng),
                vec![0x03, 0x00, 0x80, 0, 0, 0, 0x08, 0x06],
                arp(),
            ]
            .concat(),
            3 => [q922(rng), vec![0x08, 0x06], arp()].concat(),
            // An XID frame: Cisco-looking, but not data.
            _ => [q922(rng), vec![0xaf, 0x08, 0x00], v4()].concat(),
        },
        Kind::Nflog => match rng.below(3) {
            // Logged without the packet (`--nflog-size 0`-like rules).
            0 => nflog_frame(rng, 2, ETHERTYPE_IPV4, None, host).0,
            // ARP's family, and the bridge's with an ARP inside.
            1 => nflog_frame(rng, 3, ETHERTYPE_ARP, Some(&arp()), host).0,
            _ => nflog_frame(rng, 7, ETHERTYPE_ARP, Some(&arp()), host).0,
        },
        Kind::Wifi => wifi_not_ip(rng.below(8)),
        Kind::Radiotap => {
            let fields = [
                RADIOTAP_TSFT,
                RADIOTAP_FLAGS,
                RADIOTAP_RATE,
                RADIOTAP_CHANNEL,
            ];
            let count = rng.below(fields.len() + 1);
            radiotap(
                &fields[..count],
                0,
                rng.below(2),
                &wifi_not_ip(rng.below(8)),
            )
        }
        Kind::Ppi => ppi(105, &ppi_80211_common(false), &wifi_not_ip(rng.below(8))),
        Kind::Pktap(_) => match rng.below(2) {
            // A record that is not a packet (PTH_TYPE_NONE), and ARP.
            0 => pktap(1, 0, &ethernet_ip(&v4())),
            _ => pktap(1, 1, &ethernet(&[], ETHERTYPE_ARP, &arp())),
        },
    }
}

/// `count` frames of `kind`: IP packets mostly, frames without IP, and
/// (when `host.specials`) malformed ones and runts.
pub fn frames(kind: Kind, rng: &mut Rng, count: usize, host: Host) -> Vec<Made> {
    (0..count)
        .map(|_| {
            if rng.percent(15) {
                return Made::not_ip(kind, not_ip(kind, rng, host));
            }
            // A version the link does not carry only now and then, on
            // purpose.
            let mut v6 = rng.percent(45);
            let mislabel = host.specials && rng.percent(10);
            if !kind.carries(v6) && !mislabel {
                v6 = !v6;
            }
            let malformed = if host.specials { 4 } else { 0 };
            let ip = ip_packet(rng, v6, true, malformed);
            let m = wrap(kind, rng, &ip, host);
            // A runt: cut inside its headers, on the wire rather than by
            // the capture.
            if host.specials && m.expect == Expect::Alike && !kind.fcs() && rng.percent(2) {
                let mut r = m.snapped(1 + rng.below(m.needed - 1));
                r.orig_len = r.data.len() as u32;
                return r;
            }
            m
        })
        .collect()
}
