//! The IP packets of the corpus, built with etherparse: IPv4 and IPv6;
//! TCP with every flag combination TCP uses and some it should not, with
//! and without options; UDP; ICMP and ICMPv6 echoes, neighbour discovery
//! and errors quoting another packet; IPv4 options; IPv6 extension headers
//! (hop-by-hop, destination options, routing, fragment, AH); fragments;
//! tunnels (IP in IP, 6in4, 4in6, GRE); protocols the kernel reads no
//! further than their number; and, on purpose, malformed ones. Each comes
//! with the number of its bytes the kernel's parser reads whole, which is
//! what decides whether a cut leaves it readable.

use etherparse::{
    Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpAuthHeader, IpFragOffset, IpNumber,
    Ipv4Header, Ipv6FlowLabel, Ipv6Header, Ipv6RawExtHeader, TcpHeader, TcpOptionElement,
    UdpHeader,
};
use monitor_common::packet::MAX_IPV6_EXT_HEADERS;

use crate::expect::{ByDesign, Expect};

/// SplitMix64: a small seeded generator, so the corpus is the same on
/// every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// `min` to `min + spread - 1` random bytes.
    pub fn some_bytes(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let n = min + self.below(spread);
        self.bytes(n)
    }

    pub fn u16(&mut self) -> u16 {
        self.next() as u16
    }
}

/// An IP packet as generated: its bytes, how many of them the kernel's
/// parser reads whole (from the IP header to the end of the headers it
/// needs), what the comparison expects of it, and whether both sides read
/// it (a header both give up on is expected alike too, but a frame built
/// to differ at its link layer needs an IP packet tshark reads).
pub struct IpPacket {
    pub bytes: Vec<u8>,
    pub needed: usize,
    pub expect: Expect,
    pub sound: bool,
}

impl IpPacket {
    pub fn v6(&self) -> bool {
        self.bytes[0] >> 4 == 6
    }
}

/// An IPv4 address: one of the documentation ranges mostly, now and then
/// multicast, broadcast or unspecified.
pub fn v4_addr(rng: &mut Rng) -> [u8; 4] {
    match rng.below(40) {
        0 => [224, 0, 0, 251],
        1 => [255, 255, 255, 255],
        2 => [0, 0, 0, 0],
        _ => {
            let net = rng.pick(&[[192, 0, 2], [198, 51, 100], [203, 0, 113]]);
            [net[0], net[1], net[2], 1 + rng.below(254) as u8]
        }
    }
}

/// An IPv6 address: in 2001:db8::/32 mostly, now and then all-nodes
/// multicast or link-local.
pub fn v6_addr(rng: &mut Rng) -> [u8; 16] {
    let mut a = [0u8; 16];
    match rng.below(30) {
        0 => {
            a[0] = 0xff;
            a[1] = 0x02;
            a[15] = 1;
        }
        1 => {
            a[0] = 0xfe;
            a[1] = 0x80;
            a[8..].copy_from_slice(&rng.bytes(8));
        }
        _ => {
            a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            a[4..6].copy_from_slice(&rng.bytes(2));
            a[14..].copy_from_slice(&rng.bytes(2));
        }
    }
    a
}

/// Source and destination addresses of one version, as checksums want them.
#[derive(Clone, Copy)]
enum Addrs {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

impl Addrs {
    pub fn new(rng: &mut Rng, v6: bool) -> Self {
        if v6 {
            Addrs::V6(v6_addr(rng), v6_addr(rng))
        } else {
            Addrs::V4(v4_addr(rng), v4_addr(rng))
        }
    }
}

/// Service ports of the seed documents and of common protocols, and an
/// ephemeral port on the other side.
pub fn ports(rng: &mut Rng) -> (u16, u16) {
    let service = rng.pick(&[
        22, 25, 53, 80, 123, 389, 443, 587, 636, 2181, 5432, 8080, 8443, 9200, 9300, 11211,
    ]);
    let ephemeral = 32768 + rng.below(28000) as u16;
    if rng.percent(50) {
        (ephemeral, service)
    } else {
        (service, ephemeral)
    }
}

/// A TCP segment: (bytes, header length), with one of the flag
/// combinations TCP uses (and some it should not), options on some.
fn tcp(rng: &mut Rng, addrs: Addrs, bad_offset: bool) -> (Vec<u8>, usize) {
    let (sport, dport) = ports(rng);
    let mut h = TcpHeader::new(sport, dport, rng.next() as u32, rng.u16());
    // SYN, SYN-ACK, ACK, PSH-ACK, FIN-ACK, RST, RST-ACK, and odd ones:
    // Christmas tree, null, SYN-FIN, ECN setup.
    match rng.below(11) {
        0 => h.syn = true,
        1 => (h.syn, h.ack) = (true, true),
        2 => h.ack = true,
        3 => (h.psh, h.ack) = (true, true),
        4 => (h.fin, h.ack) = (true, true),
        5 => h.rst = true,
        6 => (h.rst, h.ack) = (true, true),
        7 => (h.fin, h.psh, h.urg) = (true, true, true),
        8 => {}
        9 => (h.syn, h.fin) = (true, true),
        _ => (h.syn, h.ece, h.cwr) = (true, true, true),
    }
    if h.ack {
        h.acknowledgment_number = rng.next() as u32;
    }
    if h.urg {
        h.urgent_pointer = rng.u16();
    }
    if rng.percent(40) {
        let options: &[TcpOptionElement] = match rng.below(4) {
            0 => &[TcpOptionElement::MaximumSegmentSize(1460)],
            1 => &[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(7, 0),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ],
            2 => &[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(123_456, 654_321),
            ],
            _ => &[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::SelectiveAcknowledgement(
                    (100, 200),
                    [Some((300, 400)), None, None],
                ),
            ],
        };
        h.set_options(options).expect("options fit");
    }
    let payload = if rng.percent(40) {
        rng.some_bytes(0, 160)
    } else {
        Vec::new()
    };
    h.checksum = match addrs {
        Addrs::V4(s, d) => h.calc_checksum_ipv4_raw(s, d, &payload),
        Addrs::V6(s, d) => h.calc_checksum_ipv6_raw(s, d, &payload),
    }
    .expect("small payload");
    let len = h.header_len();
    let mut bytes = h.to_bytes().to_vec();
    if bad_offset {
        // A data offset of 4 or less: 16 bytes of header, or none at all.
        bytes[12] = (rng.below(5) as u8) << 4;
    }
    bytes.extend_from_slice(&payload);
    (bytes, len)
}

/// A UDP datagram with its checksum.
fn udp(rng: &mut Rng, addrs: Addrs) -> Vec<u8> {
    let (sport, dport) = ports(rng);
    let payload = rng.some_bytes(0, 120);
    let h = match addrs {
        Addrs::V4(s, d) => {
            let mut h = UdpHeader::without_ipv4_checksum(sport, dport, payload.len()).unwrap();
            h.checksum = h.calc_checksum_ipv4_raw(s, d, &payload).unwrap();
            h
        }
        Addrs::V6(s, d) => UdpHeader::with_ipv6_checksum(
            sport,
            dport,
            &Ipv6Header {
                source: s,
                destination: d,
                ..Default::default()
            },
            &payload,
        )
        .unwrap(),
    };
    [h.to_bytes().to_vec(), payload].concat()
}

/// The first bytes of another packet, as an ICMP error quotes it.
fn quoted(rng: &mut Rng, v6: bool) -> Vec<u8> {
    let inner = ip_packet(rng, v6, false, 0);
    let keep = if v6 { 48 } else { inner.needed.min(28) };
    inner.bytes[..keep.min(inner.bytes.len())].to_vec()
}

/// An ICMP or ICMPv6 message: echo, neighbour discovery, or an error
/// quoting another packet.
fn icmp(rng: &mut Rng, addrs: Addrs) -> Vec<u8> {
    match addrs {
        Addrs::V4(..) => {
            let (kind, code, payload) = match rng.below(6) {
                0 => (8, 0, rng.bytes(32)),
                1 => (0, 0, rng.bytes(32)),
                2 => (3, rng.below(16) as u8, quoted(rng, false)),
                3 => (11, rng.below(2) as u8, quoted(rng, false)),
                4 => (5, 1, quoted(rng, false)),
                _ => (13, 0, rng.bytes(12)),
            };
            let rest: [u8; 4] = rng.bytes(4).try_into().unwrap();
            let h = Icmpv4Header::with_checksum(
                Icmpv4Type::Unknown {
                    type_u8: kind,
                    code_u8: code,
                    bytes5to8: rest,
                },
                &payload,
            );
            [h.to_bytes().to_vec(), payload].concat()
        }
        Addrs::V6(s, d) => {
            let (kind, code, payload) = match rng.below(7) {
                0 => (128, 0, rng.bytes(24)),
                1 => (129, 0, rng.bytes(24)),
                2 => (135, 0, v6_addr(rng).to_vec()),
                3 => (133, 0, Vec::new()),
                4 => (1, rng.below(7) as u8, quoted(rng, true)),
                5 => (2, 0, quoted(rng, true)),
                _ => (3, rng.below(2) as u8, quoted(rng, true)),
            };
            let rest = if kind == 2 {
                1280u32.to_be_bytes()
            } else {
                [0; 4]
            };
            let h = Icmpv6Header::with_checksum(
                Icmpv6Type::Unknown {
                    type_u8: kind,
                    code_u8: code,
                    bytes5to8: rest,
                },
                s,
                d,
                &payload,
            )
            .unwrap();
            [h.to_bytes().to_vec(), payload].concat()
        }
    }
}

/// IPv4 options: no-ops, router alert, record route, a timestamp.
fn ipv4_options(rng: &mut Rng) -> Vec<u8> {
    let mut o = match rng.below(4) {
        0 => vec![1, 1, 1, 1],
        1 => vec![0x94, 4, 0, 0],
        2 => {
            let mut rr = vec![7, 11, 4];
            rr.extend_from_slice(&[0; 8]);
            rr
        }
        _ => {
            let mut ts = vec![68, 12, 5, 0];
            ts.extend_from_slice(&[0; 8]);
            ts
        }
    };
    while o.len() % 4 != 0 {
        o.push(0);
    }
    o
}

/// One IPv6 extension header before `next`: hop-by-hop or destination
/// options, a routing header (type 2 or segment routing, segments left
/// 0), or AH.
fn ipv6_extension(rng: &mut Rng, next: u8) -> (u8, Vec<u8>) {
    match rng.below(4) {
        0 => {
            // Router alert, then PadN.
            let h = Ipv6RawExtHeader::new_raw(IpNumber(next), &[5, 2, 0, 0, 1, 0]).unwrap();
            (0, h.to_bytes().to_vec())
        }
        1 => {
            let h = Ipv6RawExtHeader::new_raw(IpNumber(next), &[1, 4, 0, 0, 0, 0]).unwrap();
            (60, h.to_bytes().to_vec())
        }
        2 => {
            let mut routing = vec![rng.pick(&[2u8, 4]), 0, 0, 0, 0, 0];
            routing.extend_from_slice(&v6_addr(rng));
            let h = Ipv6RawExtHeader::new_raw(IpNumber(next), &routing).unwrap();
            (43, h.to_bytes().to_vec())
        }
        _ => {
            let icv = rng.bytes(12);
            let h = IpAuthHeader::new(IpNumber(next), rng.next() as u32, 1, &icv).unwrap();
            (51, h.to_bytes().to_vec())
        }
    }
}

/// An IP packet of many kinds. `nested_ok` allows the kinds that hold
/// another packet (ICMP errors quote one, tunnels carry one), which the
/// packets inside them are not; `malformed` is the percentage of packets
/// made malformed on purpose.
pub fn ip_packet(rng: &mut Rng, v6: bool, nested_ok: bool, malformed: usize) -> IpPacket {
    let addrs = Addrs::new(rng, v6);
    let mut expect = Expect::Alike;
    let bad = rng.percent(malformed);
    let bad_kind = rng.below(if v6 { 2 } else { 4 });
    // (protocol, transport bytes, bytes of them the kernel reads whole)
    let (proto, upper, upper_needed) = match rng.below(100) {
        0..=35 => {
            let bad_offset = bad && bad_kind == 0;
            let (bytes, len) = tcp(rng, addrs, bad_offset);
            if bad_offset {
                expect = Expect::ByDesign(ByDesign::TcpHeaderLength);
                (6, bytes, 20)
            } else {
                (6, bytes, len)
            }
        }
        36..=57 => (17, udp(rng, addrs), 8),
        58..=72 if nested_ok => (if v6 { 58 } else { 1 }, icmp(rng, addrs), 8),
        73..=78 if nested_ok => {
            // Tunnels: IP in IP, 6in4 and 4in6, GRE around IPv4.
            let inner_v6 = rng.percent(50);
            let inner = ip_packet(rng, inner_v6, false, 0).bytes;
            if !inner_v6 && rng.percent(33) {
                (47, [vec![0, 0, 0x08, 0], inner].concat(), 0)
            } else {
                (if inner_v6 { 41 } else { 4 }, inner, 0)
            }
        }
        // Protocols the kernel reads no further: SCTP, OSPF, ESP, IGMP, and
        // IPv6's no next header.
        _ => {
            let proto = if v6 {
                rng.pick(&[132, 89, 50, 59])
            } else {
                rng.pick(&[132, 89, 50, 2])
            };
            let len = if proto == 59 { 0 } else { 8 + rng.below(40) };
            (proto, rng.bytes(len), 0)
        }
    };
    // Fragments: a first fragment is read as any packet, a later one has
    // no transport header to read.
    let fragment = if rng.percent(7) { 1 + rng.below(2) } else { 0 };
    let (upper, upper_needed) = if fragment == 2 {
        if expect == Expect::ByDesign(ByDesign::TcpHeaderLength) {
            expect = Expect::Alike;
        }
        (rng.some_bytes(8, 64), 0)
    } else {
        (upper, upper_needed)
    };
    match addrs {
        Addrs::V4(src, dst) => {
            let mut h = Ipv4Header::new(upper.len() as u16, 64, IpNumber(proto), src, dst).unwrap();
            h.identification = rng.u16();
            h.dont_fragment = fragment == 0 && rng.percent(50);
            if fragment > 0 {
                h.more_fragments = fragment == 1 || rng.percent(50);
                let offset = if fragment == 1 {
                    0
                } else {
                    1 + rng.below(1000) as u16
                };
                h.fragment_offset = IpFragOffset::try_new(offset).unwrap();
            }
            if rng.percent(12) {
                h.options = ipv4_options(rng).as_slice().try_into().unwrap();
                h.set_payload_len(upper.len()).unwrap();
            }
            let ihl = h.header_len();
            let mut bytes = Vec::new();
            h.write(&mut bytes).unwrap();
            let mut sound = expect == Expect::Alike;
            if bad && bad_kind != 0 && expect == Expect::Alike {
                sound = false;
                match bad_kind {
                    // IHL below 5: both give up.
                    1 => bytes[0] = 0x40 | rng.below(5) as u8,
                    // A version that is neither 4 nor 6: both give up.
                    2 => bytes[0] = (rng.pick(&[0u8, 5, 7, 15]) << 4) | (bytes[0] & 0x0f),
                    // Total length below the header's.
                    _ => {
                        // Not 0, which Wireshark takes for a length left
                        // to TCP segmentation offload to fill in.
                        let len = 1 + rng.below(ihl - 1) as u16;
                        bytes[2..4].copy_from_slice(&len.to_be_bytes());
                        expect = Expect::ByDesign(ByDesign::IpTotalLength);
                    }
                }
            }
            bytes.extend_from_slice(&upper);
            IpPacket {
                bytes,
                needed: ihl + upper_needed,
                expect,
                sound,
            }
        }
        Addrs::V6(src, dst) => {
            // Extension headers, innermost first; more than the kernel
            // walks when malformed on purpose.
            let count = if bad && bad_kind == 1 {
                expect = Expect::ByDesign(ByDesign::ExtensionDepth);
                MAX_IPV6_EXT_HEADERS + 1 + rng.below(2)
            } else if rng.percent(15) {
                1 + rng.below(3)
            } else {
                0
            };
            let mut next = proto;
            let mut chain = Vec::new();
            // Of each extension header the kernel reads the next header
            // and length (2 bytes), of a fragment header the offset too
            // (4): what of the innermost one it needs.
            let mut innermost: Option<(usize, usize)> = None;
            if fragment > 0 {
                let offset = if fragment == 1 {
                    0
                } else {
                    1 + rng.below(1000) as u16
                };
                let more = fragment == 1 || rng.percent(50);
                // Written by hand: etherparse 0.19 puts the offset and the
                // M flag in the wrong bits (etherparse issue 150, fixed in
                // 0.20); RFC 8200 has the offset in the top 13 bits of
                // bytes 2-3 and M in the lowest.
                let mut h = vec![next, 0];
                h.extend_from_slice(&(offset << 3 | u16::from(more)).to_be_bytes());
                h.extend_from_slice(&(rng.next() as u32).to_be_bytes());
                chain = [h, chain].concat();
                innermost = Some((8, 4));
                next = 44;
            }
            for _ in 0..count.saturating_sub(usize::from(fragment > 0)) {
                let (kind, bytes) = ipv6_extension(rng, next);
                innermost.get_or_insert((bytes.len(), 2));
                chain = [bytes, chain].concat();
                next = kind;
            }
            let needed = match innermost {
                Some((len, read)) if upper_needed == 0 => 40 + chain.len() - len + read,
                _ => 40 + chain.len() + upper_needed,
            };
            let payload = [chain.clone(), upper].concat();
            let h = Ipv6Header {
                traffic_class: rng.below(256) as u8,
                flow_label: Ipv6FlowLabel::try_new(rng.next() as u32 & 0xfffff).unwrap(),
                payload_length: payload.len() as u16,
                next_header: IpNumber(next),
                hop_limit: 64,
                source: src,
                destination: dst,
            };
            let mut bytes = h.to_bytes().to_vec();
            bytes.extend_from_slice(&payload);
            IpPacket {
                bytes,
                needed,
                sound: expect == Expect::Alike,
                expect,
            }
        }
    }
}
