//! The hosts of the replay tests, the inventory that gives them their
//! thoughtspot roles, and the TCP frames between them, with flags spelled
//! with the parser's own constants. (The root tests have their own copy in
//! portconform-tests' fixtures: that crate depends on this one, so these
//! tests cannot use it.)

use etherparse::PacketBuilder;
use monitor_common::packet::{TCP_ACK, TCP_RST, TCP_SYN};

/// `nodes` is the node network, `admin` one workstation.
pub const INVENTORY: &str = "nodes = [\"192.0.2.0/24\"]\nadmin = [\"198.51.100.7\"]\n";
/// The capture's host, and another node.
pub const NODE1: [u8; 4] = [192, 0, 2, 1];
pub const NODE2: [u8; 4] = [192, 0, 2, 2];
pub const ADMIN: [u8; 4] = [198, 51, 100, 7];
/// In no role.
pub const STRANGER: [u8; 4] = [203, 0, 113, 9];
/// Source and destination MAC of every frame: replay does not read it.
pub const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// 2026-11-22T16:42:38Z, in ns: the first packet's capture time.
pub const T0: u64 = 1_795_365_758_000_000_000;

/// An IPv4 TCP segment without payload: sequence 1, window 1024, `flags` a
/// union of `TCP_SYN`, `TCP_ACK` (acknowledging 1) and `TCP_RST`.
pub fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    // A flag the builder does not set would silently go missing.
    assert_eq!(
        flags & !(TCP_SYN | TCP_ACK | TCP_RST),
        0,
        "tcp() sets SYN, ACK and RST only"
    );
    let mut b = PacketBuilder::ethernet2(MAC, MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 1024);
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
    b.write(&mut v, &[]).expect("builds");
    v
}
