//! Traffic counter layout. The kernel bumps one per-CPU array slot per packet
//! (no hash lookups on the fast path); userspace sums the CPUs.

use crate::packet::{
    Family, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, ParseError, Parsed,
};

/// Which way a packet crosses the monitored interface. Not the connection's
/// direction (who opened it): that is `ConnDir` in the policy layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum PacketDir {
    Ingress = 0,
    Egress = 1,
}

impl PacketDir {
    pub const ALL: [PacketDir; 2] = [PacketDir::Ingress, PacketDir::Egress];

    /// The word the event contract uses.
    pub const fn name(self) -> &'static str {
        match self {
            PacketDir::Ingress => "inbound",
            PacketDir::Egress => "outbound",
        }
    }
}

/// L4 protocol classes that get their own counters.
pub const PROTO_CLASSES: [&str; 5] = ["tcp", "udp", "icmp", "icmpv6", "other"];
pub const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];

/// Slots per (interface, direction): family × protocol class, then the
/// packets that were not classified.
pub const SLOT_NOT_IP: u32 = 10;
pub const SLOT_TRUNCATED: u32 = 11;
pub const SLOT_MALFORMED: u32 = 12;
pub const SLOT_TOO_DEEP: u32 = 13;
pub const SLOTS: u32 = 14;

/// Interfaces the counters distinguish. Slot 0 collects packets from an
/// interface userspace did not register, so nothing goes uncounted.
pub const MAX_IFACES: u32 = 32;
/// Interface indexes the ifindex → slot array covers; larger ones count in slot 0.
pub const IFINDEX_LIMIT: u32 = 65536;
pub const STATS_ENTRIES: u32 = MAX_IFACES * 2 * SLOTS;

/// Counter slot of a successfully parsed packet.
#[inline(always)]
pub const fn slot_of(parsed: &Parsed) -> u32 {
    let class = match parsed.proto {
        IPPROTO_TCP => 0,
        IPPROTO_UDP => 1,
        IPPROTO_ICMP => 2,
        IPPROTO_ICMPV6 => 3,
        _ => 4,
    };
    let family = match parsed.family {
        Family::V4 => 0,
        Family::V6 => 1,
    };
    family * 5 + class
}

/// Counter slot of a packet the parser gave up on.
#[inline(always)]
pub const fn slot_of_error(err: ParseError) -> u32 {
    match err {
        ParseError::NotIp => SLOT_NOT_IP,
        ParseError::Truncated => SLOT_TRUNCATED,
        ParseError::Malformed => SLOT_MALFORMED,
        ParseError::TooDeep => SLOT_TOO_DEEP,
    }
}

/// Index into the stats array.
#[inline(always)]
pub const fn stats_index(iface_slot: u32, dir: PacketDir, slot: u32) -> u32 {
    (iface_slot * 2 + dir as u32) * SLOTS + slot
}

/// Human name of a slot, for summaries and metrics: (family, class).
pub const fn slot_name(slot: u32) -> (&'static str, &'static str) {
    match slot {
        SLOT_NOT_IP => ("non-ip", "-"),
        SLOT_TRUNCATED => ("unparsed", "truncated"),
        SLOT_MALFORMED => ("unparsed", "malformed"),
        SLOT_TOO_DEEP => ("unparsed", "too-deep"),
        s if s < 10 => (FAMILIES[(s / 5) as usize], PROTO_CLASSES[(s % 5) as usize]),
        _ => ("?", "?"),
    }
}
