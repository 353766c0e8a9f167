//! The hosts the tests give thoughtspot roles to: the documentation
//! addresses the kernel and replay tests (and the benchmarks) send frames
//! between, the inventory that names them, and the frame builders; and the
//! inventory of an end-to-end lab. One copy, so that a frame's addresses are
//! the ones the inventory names, and TCP flags are spelled with the parser's
//! own constants rather than masks written by hand.

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep};
use monitor::kernel_tables::KernelTables;
use monitor_common::packet::{TCP_ACK, TCP_RST, TCP_SYN};

use crate::{kernel, lab::End};

/// The embedded profile the inventory binds.
pub const PROFILE: &str = "thoughtspot";

/// The roles of [`PROFILE`]: the node network in both families, and one
/// admin workstation. Everything else is a stranger.
pub const INVENTORY: &str = r#"
nodes = ["192.0.2.0/24", "2001:db8:1::/64"]
admin = ["198.51.100.7"]
"#;

/// The node under test (the `--host` of replay), and another node.
pub const NODE1: [u8; 4] = [192, 0, 2, 1];
pub const NODE2: [u8; 4] = [192, 0, 2, 2];
pub const ADMIN: [u8; 4] = [198, 51, 100, 7];
/// In no role.
pub const STRANGER: [u8; 4] = [203, 0, 113, 9];
pub const NODE1_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const NODE2_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Outside the nodes' /64.
pub const STRANGER_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
/// Source and destination MAC of every frame: the programs do not read it.
pub const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// The kernel tables of [`PROFILE`] bound by [`INVENTORY`].
pub fn tables() -> anyhow::Result<KernelTables> {
    kernel::profile_tables(PROFILE, INVENTORY)
}

/// The inventory of an end-to-end lab watched with [`PROFILE`]: `node` (its
/// IPv4 address) the one node, `admin` the admin workstation.
pub fn node_and_admin(node: &End, admin: &End) -> String {
    format!("nodes = [\"{}/32\"]\nadmin = [\"{}\"]\n", node.v4, admin.v4)
}

/// An IPv4 or IPv6 address as the builders take it: the family picks the IP
/// header, and the ICMP version of an echo.
pub trait Addr: Copy {
    const V6: bool;
    /// Ethernet (MAC to MAC) and IP (TTL 64) headers from `src` to `dst`.
    fn headers(src: Self, dst: Self) -> PacketBuilderStep<IpHeaders>;
}

impl Addr for [u8; 4] {
    const V6: bool = false;
    fn headers(src: Self, dst: Self) -> PacketBuilderStep<IpHeaders> {
        PacketBuilder::ethernet2(MAC, MAC).ipv4(src, dst, 64)
    }
}

impl Addr for [u8; 16] {
    const V6: bool = true;
    fn headers(src: Self, dst: Self) -> PacketBuilderStep<IpHeaders> {
        PacketBuilder::ethernet2(MAC, MAC).ipv6(src, dst, 64)
    }
}

/// A TCP segment without payload: sequence 1, window 1024, `flags` a union
/// of `TCP_SYN`, `TCP_ACK` (acknowledging 1) and `TCP_RST`.
pub fn tcp<A: Addr>(src: A, dst: A, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    tcp_carrying(src, dst, sport, dport, flags, &[])
}

/// [`tcp`] with a payload.
pub fn tcp_carrying<A: Addr>(
    src: A,
    dst: A,
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    // A flag the builder does not set would silently go missing.
    assert_eq!(
        flags & !(TCP_SYN | TCP_ACK | TCP_RST),
        0,
        "tcp() sets SYN, ACK and RST only"
    );
    let mut b = A::headers(src, dst).tcp(sport, dport, 1, 1024);
    if flags & TCP_SYN != 0 {
        b = b.syn();
    }
    if flags & TCP_ACK != 0 {
        b = b.ack(1);
    }
    if flags & TCP_RST != 0 {
        b = b.rst();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("builds");
    v
}

pub fn udp<A: Addr>(src: A, dst: A, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    A::headers(src, dst)
        .udp(sport, dport)
        .write(&mut v, payload)
        .expect("builds");
    v
}

/// An ICMP echo request or reply (ICMPv6 between IPv6 addresses): id 7,
/// sequence 1, "ping".
pub fn echo<A: Addr>(src: A, dst: A, reply: bool) -> Vec<u8> {
    let b = A::headers(src, dst);
    let mut v = Vec::new();
    match (A::V6, reply) {
        (false, false) => b.icmpv4_echo_request(7, 1).write(&mut v, b"ping"),
        (false, true) => b.icmpv4_echo_reply(7, 1).write(&mut v, b"ping"),
        (true, false) => b.icmpv6_echo_request(7, 1).write(&mut v, b"ping"),
        (true, true) => b.icmpv6_echo_reply(7, 1).write(&mut v, b"ping"),
    }
    .expect("builds");
    v
}

/// An ICMP port unreachable (an error, not a flow of its own).
pub fn unreachable(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    <[u8; 4]>::headers(src, dst)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut v, &[0u8; 28])
        .expect("builds");
    v
}

/// `frame` with VLAN tags after its MACs, outermost first: 802.1ad outer
/// tags, an 802.1Q innermost one.
pub fn vlan(frame: Vec<u8>, tags: &[u16]) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    for (i, id) in tags.iter().enumerate() {
        let tpid: u16 = if i + 1 < tags.len() { 0x88a8 } else { 0x8100 };
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(&frame[12..]);
    out
}

/// An IPv4 fragment of a UDP datagram 40100 -> 9999: the first carries the
/// ports, a later one does not.
pub fn fragment(src: [u8; 4], dst: [u8; 4], later: bool) -> Vec<u8> {
    let mut f = udp(src, dst, 40100, 9999, b"query");
    if later {
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10;
    } else {
        f[14 + 6] = 0x20; // more fragments
    }
    f
}
