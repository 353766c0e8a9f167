//! A corpus of crafted frames with the counter slot each must land in: the
//! table the kernel test_run tests and the host parser tests agree on.

use etherparse::{PacketBuilder, VlanId};
use monitor_common::stats::{SLOT_MALFORMED, SLOT_NOT_IP, SLOT_TOO_DEEP, SLOT_TRUNCATED};

pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
pub const V4_A: [u8; 4] = [192, 0, 2, 1];
pub const V4_B: [u8; 4] = [192, 0, 2, 2];
pub const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

pub const V4_TCP: u32 = 0;
pub const V4_UDP: u32 = 1;
pub const V4_ICMP: u32 = 2;
pub const V4_OTHER: u32 = 4;
pub const V6_TCP: u32 = 5;
pub const V6_UDP: u32 = 6;
pub const V6_ICMPV6: u32 = 8;

pub struct Case {
    pub name: &'static str,
    pub frame: Vec<u8>,
    /// Counter slot the frame must be counted in.
    pub slot: u32,
    /// Ports (or ICMP type/code) the parser must find, for parsed frames.
    pub ports: Option<(u16, u16)>,
}

fn vlan(id: u16) -> VlanId {
    VlanId::try_new(id).expect("valid VLAN id")
}

fn build(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

pub fn v4_tcp_syn(sport: u16, dport: u16) -> Vec<u8> {
    build(|v| {
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(V4_A, V4_B, 64)
            .tcp(sport, dport, 1, 64240)
            .syn()
            .write(v, &[])
            .expect("builds")
    })
}

pub fn v4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    build(|v| {
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(V4_A, V4_B, 64)
            .udp(sport, dport)
            .write(v, payload)
            .expect("builds")
    })
}

pub fn v6_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    build(|v| {
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(V6_A, V6_B, 64)
            .udp(sport, dport)
            .write(v, payload)
            .expect("builds")
    })
}

/// Inserts IPv6 extension headers (each 8 bytes: next header, length 0) in
/// front of the upper-layer header of an untagged IPv6 frame.
fn with_ipv6_ext(mut frame: Vec<u8>, exts: &[u8]) -> Vec<u8> {
    let upper = frame[14 + 6];
    let mut inserted = Vec::new();
    for (i, kind) in exts.iter().enumerate() {
        let next = exts.get(i + 1).copied().unwrap_or(upper);
        match *kind {
            44 => inserted.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 1]), // first fragment, M=1
            _ => inserted.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]),  // PadN options
        }
    }
    frame[14 + 6] = exts[0];
    let plen = u16::from_be_bytes([frame[18], frame[19]]) + inserted.len() as u16;
    frame[18..20].copy_from_slice(&plen.to_be_bytes());
    frame.splice(54..54, inserted);
    frame
}

pub fn corpus() -> Vec<Case> {
    let mut cases = vec![
        Case {
            name: "ipv4 tcp syn",
            frame: v4_tcp_syn(40000, 2181),
            slot: V4_TCP,
            ports: Some((40000, 2181)),
        },
        Case {
            name: "ipv4 udp",
            frame: v4_udp(5353, 53, b"query"),
            slot: V4_UDP,
            ports: Some((5353, 53)),
        },
        Case {
            name: "ipv4 icmp echo",
            frame: build(|v| {
                PacketBuilder::ethernet2(MAC_A, MAC_B)
                    .ipv4(V4_A, V4_B, 64)
                    .icmpv4_echo_request(7, 1)
                    .write(v, b"ping")
                    .expect("builds")
            }),
            slot: V4_ICMP,
            ports: Some((8, 0)),
        },
        Case {
            name: "ipv6 tcp syn",
            frame: build(|v| {
                PacketBuilder::ethernet2(MAC_A, MAC_B)
                    .ipv6(V6_A, V6_B, 64)
                    .tcp(40001, 5432, 1, 64240)
                    .syn()
                    .write(v, &[])
                    .expect("builds")
            }),
            slot: V6_TCP,
            ports: Some((40001, 5432)),
        },
        Case {
            name: "ipv6 udp",
            frame: v6_udp(40002, 53, b"q"),
            slot: V6_UDP,
            ports: Some((40002, 53)),
        },
        Case {
            name: "icmpv6 echo",
            frame: build(|v| {
                PacketBuilder::ethernet2(MAC_A, MAC_B)
                    .ipv6(V6_A, V6_B, 64)
                    .icmpv6_echo_request(7, 1)
                    .write(v, b"ping")
                    .expect("builds")
            }),
            slot: V6_ICMPV6,
            ports: Some((128, 0)),
        },
        Case {
            name: "802.1Q ipv4 tcp",
            frame: build(|v| {
                PacketBuilder::ethernet2(MAC_A, MAC_B)
                    .single_vlan(vlan(100))
                    .ipv4(V4_A, V4_B, 64)
                    .tcp(40003, 443, 1, 64240)
                    .syn()
                    .write(v, &[])
                    .expect("builds")
            }),
            slot: V4_TCP,
            ports: Some((40003, 443)),
        },
        Case {
            name: "802.1ad QinQ ipv6 udp",
            frame: build(|v| {
                PacketBuilder::ethernet2(MAC_A, MAC_B)
                    .double_vlan(vlan(200), vlan(300))
                    .ipv6(V6_A, V6_B, 64)
                    .udp(40004, 123)
                    .write(v, b"ntp")
                    .expect("builds")
            }),
            slot: V6_UDP,
            ports: Some((40004, 123)),
        },
        Case {
            name: "ipv6 hop-by-hop + fragment header, udp",
            frame: with_ipv6_ext(v6_udp(40005, 53, b"q"), &[0, 44]),
            slot: V6_UDP,
            ports: Some((40005, 53)),
        },
        Case {
            name: "ipv6 seven extension headers",
            frame: with_ipv6_ext(v6_udp(40006, 53, b"q"), &[0, 60, 60, 60, 60, 60, 60]),
            slot: SLOT_TOO_DEEP,
            ports: None,
        },
        Case {
            name: "arp",
            frame: arp(),
            slot: SLOT_NOT_IP,
            ports: None,
        },
        Case {
            name: "runt frame (10 bytes)",
            frame: vec![0xff; 10],
            slot: SLOT_TRUNCATED,
            ports: None,
        },
        Case {
            name: "ipv4 header cut short",
            frame: v4_tcp_syn(1, 2)[..14 + 12].to_vec(),
            slot: SLOT_TRUNCATED,
            ports: None,
        },
        Case {
            name: "tcp header cut short",
            frame: v4_tcp_syn(1, 2)[..14 + 20 + 8].to_vec(),
            slot: SLOT_TRUNCATED,
            ports: None,
        },
        Case {
            name: "ipv4 ihl 3",
            frame: patch(v4_tcp_syn(1, 2), 14, 0x43),
            slot: SLOT_MALFORMED,
            ports: None,
        },
        Case {
            name: "ipv4 version 5 in an ipv4 ethertype",
            frame: patch(v4_tcp_syn(1, 2), 14, 0x55),
            slot: SLOT_MALFORMED,
            ports: None,
        },
        Case {
            name: "tcp data offset 4",
            frame: patch(v4_tcp_syn(1, 2), 14 + 20 + 12, 0x40),
            slot: SLOT_MALFORMED,
            ports: None,
        },
        Case {
            name: "ipv4 gre",
            frame: patch(v4_tcp_syn(1, 2), 14 + 9, 47),
            slot: V4_OTHER,
            ports: Some((0, 0)),
        },
    ];
    // Three stacked VLAN tags: more than the parser walks.
    let mut triple = cases[7].frame.clone();
    triple.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    cases.push(Case {
        name: "three vlan tags",
        frame: triple,
        slot: SLOT_TOO_DEEP,
        ports: None,
    });
    // A later IPv4 fragment has no L4 header: counted by protocol, no ports.
    let mut later = v4_udp(1, 2, &[0u8; 32]);
    later[14 + 6] = 0x00;
    later[14 + 7] = 0x04; // fragment offset 4 × 8 bytes
    cases.push(Case {
        name: "ipv4 later fragment",
        frame: later,
        slot: V4_UDP,
        ports: Some((0, 0)),
    });
    // IPv4 with 4 bytes of options.
    let mut opts = v4_tcp_syn(40007, 22);
    opts[14] = 0x46;
    opts.splice(34..34, [1, 1, 1, 0]);
    cases.push(Case {
        name: "ipv4 with options",
        frame: opts,
        slot: V4_TCP,
        ports: Some((40007, 22)),
    });
    cases
}

fn patch(mut frame: Vec<u8>, offset: usize, byte: u8) -> Vec<u8> {
    frame[offset] = byte;
    frame
}

fn arp() -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&V4_A);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&V4_B);
    f
}
