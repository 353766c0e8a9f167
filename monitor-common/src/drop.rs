//! Drops by the host's own stack: packets of required flows that the kernel
//! freed at the `skb:kfree_skb` tracepoint with a reason that says the host
//! itself stood in the way (its netfilter ruleset, no socket, no route...).
//!
//! The kernel's `enum skb_drop_reason` is renumbered between kernels, so
//! nothing here holds a kernel value: [`DropCause`] is the project's own
//! stable numbering, and userspace maps the running kernel's values onto it
//! (read from its BTF at load time) in a table the program indexes by the
//! kernel's value ([`DROP_REASON_SLOTS`]). The sk_buff field offsets the
//! program reads headers through come from the same BTF ([`SkbLayout`]).
//!
//! Which dropped packets make a required flow blocked is decided here
//! ([`drop_attempt`]), so the kernel and the tests read one definition.

use crate::{
    classify::Verdict,
    handshake::{self, HandshakeKey, udp_expects_reply},
    packet::{IPPROTO_TCP, IPPROTO_UDP, Parsed, TCP_ACK, TCP_SYN},
    stats::PacketDir,
};

/// Entries of the reason table: kernel reason values below this can be
/// watched. The core enum has about 120 values in 6.18; subsystem reasons
/// (mac80211, OVS) carry high bits and are never local-firewall causes.
pub const DROP_REASON_SLOTS: u32 = 256;

/// Flows whose local drops the kernel holds at once (`PC_DROPS`).
pub const MAX_DROP_FLOWS: u32 = 4096;

/// Why the host's own stack dropped a packet, in the project's numbering
/// (stable: the kernel table and userspace agree on these, the kernel's
/// own values differ from kernel to kernel). 0 is "not watched".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropCause {
    /// A netfilter (nftables / iptables) verdict: drop or reject.
    NetfilterDrop = 1,
    /// Nothing listens on the port.
    NoSocket = 2,
    /// Reverse-path filter: the peer's address does not route back here.
    IpRpfilter = 3,
    /// No route for an incoming packet.
    IpInNoRoutes = 4,
    /// No route out.
    IpOutNoRoutes = 5,
    /// The neighbour (ARP / ND) never answered.
    NeighFailed = 6,
    /// A cgroup BPF egress program (systemd IPAddressDeny=, ...).
    BpfCgroupEgress = 7,
    /// An IPsec (xfrm) policy.
    XfrmPolicy = 8,
}

impl DropCause {
    /// Every cause, in number order.
    pub const ALL: [DropCause; 8] = [
        DropCause::NetfilterDrop,
        DropCause::NoSocket,
        DropCause::IpRpfilter,
        DropCause::IpInNoRoutes,
        DropCause::IpOutNoRoutes,
        DropCause::NeighFailed,
        DropCause::BpfCgroupEgress,
        DropCause::XfrmPolicy,
    ];

    /// The kernel's name, without the `SKB_DROP_REASON_` prefix: the
    /// enumerator userspace looks up in BTF, and what event notes print.
    pub const fn kernel_name(self) -> &'static str {
        match self {
            DropCause::NetfilterDrop => "NETFILTER_DROP",
            DropCause::NoSocket => "NO_SOCKET",
            DropCause::IpRpfilter => "IP_RPFILTER",
            DropCause::IpInNoRoutes => "IP_INNOROUTES",
            DropCause::IpOutNoRoutes => "IP_OUTNOROUTES",
            DropCause::NeighFailed => "NEIGH_FAILED",
            DropCause::BpfCgroupEgress => "BPF_CGROUP_EGRESS",
            DropCause::XfrmPolicy => "XFRM_POLICY",
        }
    }

    /// The cause a table entry holds; `None` for 0 or a number this build
    /// does not know.
    pub const fn from_u8(v: u8) -> Option<DropCause> {
        match v {
            1 => Some(DropCause::NetfilterDrop),
            2 => Some(DropCause::NoSocket),
            3 => Some(DropCause::IpRpfilter),
            4 => Some(DropCause::IpInNoRoutes),
            5 => Some(DropCause::IpOutNoRoutes),
            6 => Some(DropCause::NeighFailed),
            7 => Some(DropCause::BpfCgroupEgress),
            8 => Some(DropCause::XfrmPolicy),
            _ => None,
        }
    }

    /// The host's firewall, as opposed to its stack having nowhere to put
    /// or send the packet.
    pub const fn is_firewall(self) -> bool {
        matches!(self, DropCause::NetfilterDrop)
    }
}

/// Byte offsets the drop program reads kernel structures at, resolved from
/// the running kernel's BTF by userspace (nested anonymous unions and
/// structs added up), and this daemon's network namespace. `enabled == 0`
/// until userspace fills it: the program then does nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SkbLayout {
    pub enabled: u32,
    /// The daemon's network namespace (`ns_common.inum`, the inode of
    /// /proc/self/ns/net): the tracepoint fires for every namespace.
    pub netns: u32,
    /// `sk_buff.head` (pointer).
    pub skb_head: u32,
    /// `sk_buff.network_header` (u16 offset from head).
    pub skb_network_header: u32,
    /// `sk_buff.tail` (u32 offset from head on 64-bit kernels).
    pub skb_tail: u32,
    /// `sk_buff.skb_iif` (int): the receiving device, 0 for packets this
    /// host made.
    pub skb_iif: u32,
    /// `sk_buff.dev` (pointer).
    pub skb_dev: u32,
    /// `sk_buff._skb_refdst` (dst pointer, bit 0 a no-ref flag).
    pub skb_refdst: u32,
    /// `dst_entry.dev` (pointer).
    pub dst_dev: u32,
    /// `net_device.ifindex` (int).
    pub dev_ifindex: u32,
    /// `net_device.nd_net` (pointer to `struct net`).
    pub dev_net: u32,
    /// `net.ns.inum` (u32).
    pub net_inum: u32,
}

/// One required flow's local drops, aggregated in the kernel
/// (`PC_DROPS`, keyed by [`FlowKey`](crate::flow::FlowKey): one record per flow whatever the
/// initiator's port, so a flood stays one entry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct LocalDrop {
    /// bpf_ktime_get_ns of the first and latest drop.
    pub first_ns: u64,
    pub last_ns: u64,
    /// Packets dropped.
    pub drops: u64,
    pub ifindex: u32,
    /// The initiator's port of the latest dropped packet.
    pub initiator_port: u16,
    /// Rule index in policy set `set`.
    pub rule: u16,
    pub set: u8,
    /// A [`DropCause`], of the latest drop.
    pub cause: u8,
    /// The kernel's reason value (for a note when the cause is unknown).
    pub kernel_reason: u16,
    pub _pad: u32,
}

impl SkbLayout {
    /// Nothing resolved: the drop program stays off.
    pub const OFF: SkbLayout = SkbLayout {
        enabled: 0,
        netns: 0,
        skb_head: 0,
        skb_network_header: 0,
        skb_tail: 0,
        skb_iif: 0,
        skb_dev: 0,
        skb_refdst: 0,
        dst_dev: 0,
        dev_ifindex: 0,
        dev_net: 0,
        net_inum: 0,
    };
}

const _: () = assert!(core::mem::size_of::<LocalDrop>() == 40);
const _: () = assert!(core::mem::size_of::<SkbLayout>() == 48);

/// The attempt a dropped packet belongs to, if its drop blocks a required
/// flow: its [`HandshakeKey`] (the flow plus the initiator's port) and rule.
///
/// - A netfilter drop of an opening packet (TCP SYN, a UDP request) or of
///   its answer (SYN-ACK, a UDP response) blocks the flow, in both
///   directions. Other TCP packets are not judged: a stateful ruleset
///   drops stray packets of finished connections (`ct state invalid`),
///   which says nothing about the flow working.
/// - Other causes (no socket, no route, neighbour failed...) only count
///   for the opening packet itself: a reply that finds no socket is a late
///   answer to a client that gave up, not a block.
///
/// `None` for everything else: packets nobody requires, unexpected flows,
/// optional rules (the caller counts them).
#[inline(always)]
pub fn drop_attempt(
    parsed: &Parsed,
    verdict: &Verdict,
    dir: PacketDir,
    firewall: bool,
) -> Option<(HandshakeKey, u16)> {
    let Verdict::Allowed {
        rule,
        required: true,
        reply,
    } = *verdict
    else {
        return None;
    };
    if reply && !firewall {
        return None;
    }
    let opening = match parsed.proto {
        IPPROTO_TCP => {
            let syn = parsed.tcp_flags & TCP_SYN != 0;
            let ack = parsed.tcp_flags & TCP_ACK != 0;
            syn && ack == reply
        }
        // Every datagram of a required UDP flow: a one-way service (syslog)
        // has no answer to wait for, but a dropped datagram is still lost.
        // Answers only of services that answer.
        IPPROTO_UDP => !reply || udp_expects_reply(parsed.sport),
        _ => false,
    };
    if !opening {
        return None;
    }
    Some((handshake::key_of(parsed, dir, !reply), rule))
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), explicit padding, plain integers.
    unsafe impl aya::Pod for super::LocalDrop {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SkbLayout {}
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::{
        packet::{Family, Fragment, TCP_RST},
        policy::ConnDir,
    };

    fn parsed(proto: u8, sport: u16, dport: u16, flags: u8) -> Parsed {
        Parsed {
            src: [192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            dst: [198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            family: Family::V4,
            proto,
            sport,
            dport,
            tcp_flags: flags,
            fragment: Fragment::None,
            vlan_tags: 0,
            l4_offset: 20,
        }
    }

    fn required(reply: bool) -> Verdict {
        Verdict::Allowed {
            rule: 4,
            required: true,
            reply,
        }
    }

    #[test]
    fn an_outbound_syn_dropped_on_output_names_its_attempt() {
        let p = parsed(IPPROTO_TCP, 61000, 2181, TCP_SYN);
        let (key, rule) =
            drop_attempt(&p, &required(false), PacketDir::Egress, true).expect("attempt");
        assert_eq!(rule, 4);
        assert_eq!(key.initiator_port, 61000);
        assert_eq!(key.flow.service_port, 2181);
        assert_eq!(key.flow.direction, ConnDir::Outbound as u32);
        assert_eq!(&key.flow.initiator[..4], &[192, 0, 2, 1]);
        // Not a firewall: the opening packet still counts.
        assert!(drop_attempt(&p, &required(false), PacketDir::Egress, false).is_some());
    }

    #[test]
    fn a_dropped_syn_ack_blocks_the_attempt_it_answers_only_for_the_firewall() {
        // This host answers an inbound attempt; its output chain drops it.
        let p = parsed(IPPROTO_TCP, 5432, 40000, TCP_SYN | TCP_ACK);
        let (key, _) = drop_attempt(&p, &required(true), PacketDir::Egress, true).expect("answer");
        assert_eq!(key.flow.direction, ConnDir::Inbound as u32);
        assert_eq!((key.initiator_port, key.flow.service_port), (40000, 5432));
        assert_eq!(&key.flow.initiator[..4], &[198, 51, 100, 7]);
        assert_eq!(
            drop_attempt(&p, &required(true), PacketDir::Egress, false),
            None
        );
    }

    #[test]
    fn stray_tcp_packets_optional_rules_and_unexpected_flows_are_not_blocks() {
        for flags in [TCP_ACK, TCP_RST | TCP_ACK, 0x18] {
            let p = parsed(IPPROTO_TCP, 40000, 5432, flags);
            assert_eq!(
                drop_attempt(&p, &required(false), PacketDir::Ingress, true),
                None
            );
        }
        let syn = parsed(IPPROTO_TCP, 40000, 5432, TCP_SYN);
        let optional = Verdict::Allowed {
            rule: 4,
            required: false,
            reply: false,
        };
        assert_eq!(
            drop_attempt(&syn, &optional, PacketDir::Ingress, true),
            None
        );
        assert_eq!(
            drop_attempt(&syn, &Verdict::Fragment, PacketDir::Ingress, true),
            None
        );
    }

    #[test]
    fn udp_requests_count_and_answers_only_of_services_that_answer() {
        let query = parsed(IPPROTO_UDP, 33000, 53, 0);
        assert!(drop_attempt(&query, &required(false), PacketDir::Egress, true).is_some());
        let answer = parsed(IPPROTO_UDP, 53, 33000, 0);
        let (key, _) =
            drop_attempt(&answer, &required(true), PacketDir::Ingress, true).expect("answer");
        assert_eq!(key.flow.direction, ConnDir::Outbound as u32);
        assert_eq!(key.flow.service_port, 53);
        let syslog = parsed(IPPROTO_UDP, 33000, 514, 0);
        assert!(drop_attempt(&syslog, &required(false), PacketDir::Egress, false).is_some());
    }

    #[test]
    fn causes_round_trip_and_only_netfilter_is_the_firewall() {
        for (i, c) in DropCause::ALL.iter().enumerate() {
            assert_eq!(*c as u8, i as u8 + 1);
            assert_eq!(DropCause::from_u8(*c as u8), Some(*c));
            assert_eq!(c.is_firewall(), *c == DropCause::NetfilterDrop);
        }
        assert_eq!(DropCause::from_u8(0), None);
        assert_eq!(DropCause::from_u8(200), None);
    }
}
