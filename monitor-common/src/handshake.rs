//! Required flows: is each connection attempt answered?
//!
//! A required rule's flow "works" when its opening is answered: a TCP SYN by
//! a SYN-ACK, a UDP request (for request/response services) by a response.
//! It is blocked when the answer is a RST, an ICMP destination unreachable
//! quoting the attempt, or nothing within a timeout. The kernel and replay
//! keep the attempts in a table keyed per connection (with the initiator's
//! port, so a retransmitted SYN is one attempt retried and a reset of an
//! established connection is never mistaken for a refused one) and decide
//! with [`track`] and [`apply`], the same code on both sides. Judging
//! timeouts and grouping attempts per (rule, peer, port) is userspace's job.

use crate::{
    Packet,
    classify::Verdict,
    flow::FlowKey,
    packet::{
        Family, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Parsed, TCP_ACK, TCP_RST,
        TCP_SYN, v4_bytes, v6_bytes,
    },
    policy::ConnDir,
    stats::PacketDir,
};

/// Pending attempts the table holds. It is a plain hash, not an LRU: an LRU
/// would silently evict the oldest pending attempts, exactly the ones about
/// to be reported; a full table refuses new ones and counts them instead.
pub const MAX_HANDSHAKES: u32 = 16384;
/// Blocked flows userspace watches for recovery (`PC_WATCH`).
pub const MAX_WATCHED: u32 = 4096;

/// One connection attempt: the flow plus the initiator's port. The padding
/// is explicit (map keys are hashed byte for byte) and rounds the key to
/// FlowKey's 8-byte alignment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HandshakeKey {
    pub flow: FlowKey,
    pub initiator_port: u16,
    pub _pad: u16,
    pub _pad2: u32,
}

impl core::hash::Hash for HandshakeKey {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.flow.hash(state);
        state.write_u64(
            u64::from(self.initiator_port)
                | u64::from(self._pad) << 16
                | u64::from(self._pad2) << 32,
        );
    }
}

/// What became of an attempt so far.
pub const OUTCOME_PENDING: u8 = 0;
pub const OUTCOME_RESET: u8 = 1;
pub const OUTCOME_ICMP_UNREACHABLE: u8 = 2;
pub const OUTCOME_ADMIN_PROHIBITED: u8 = 3;

/// A pending (or refused, not yet reported) attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Handshake {
    /// bpf_ktime_get_ns (or capture time in replay) of the first SYN/request.
    pub first_ns: u64,
    /// Of the latest retransmission.
    pub last_ns: u64,
    /// SYNs or requests sent: retransmissions included.
    pub attempts: u32,
    pub ifindex: u32,
    /// Rule index in the policy set `set`.
    pub rule: u16,
    pub outcome: u8,
    pub set: u8,
    /// The ICMP error that refused it, when one did.
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<HandshakeKey>() == 48);
const _: () = assert!(core::mem::size_of::<Handshake>() == 32);

/// UDP services that answer every request, so a request without an answer
/// means something is in the way: DNS, Kerberos, NTP, SNMP, LDAP (CLDAP),
/// kpasswd, IKE, RADIUS. One-way protocols (syslog, NetFlow, SNMP traps)
/// are absent on purpose: silence is their normal.
#[inline(always)]
pub const fn udp_expects_reply(port: u16) -> bool {
    matches!(port, 53 | 88 | 123 | 161 | 389 | 464 | 500 | 1812 | 1813)
}

/// What one packet means for required-flow tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    None,
    /// A SYN or request of a required flow.
    Attempt {
        key: HandshakeKey,
        rule: u16,
    },
    /// Its SYN-ACK or response.
    Answered {
        key: HandshakeKey,
        rule: u16,
    },
    /// A RST or ICMP error answering the attempt `key`.
    Refused {
        key: HandshakeKey,
        outcome: u8,
        icmp_type: u8,
        icmp_code: u8,
    },
}

#[inline(always)]
const fn conn_dir(dir: PacketDir, forward: bool) -> ConnDir {
    let inbound = matches!(dir, PacketDir::Ingress) == forward;
    if inbound {
        ConnDir::Inbound
    } else {
        ConnDir::Outbound
    }
}

/// The attempt a packet belongs to; `forward` when it travels initiator →
/// responder.
#[inline(always)]
pub(crate) fn key_of(parsed: &Parsed, dir: PacketDir, forward: bool) -> HandshakeKey {
    let (initiator, responder, initiator_port, service_port) = if forward {
        (parsed.src, parsed.dst, parsed.sport, parsed.dport)
    } else {
        (parsed.dst, parsed.src, parsed.dport, parsed.sport)
    };
    HandshakeKey {
        flow: FlowKey {
            initiator,
            responder,
            service_port,
            proto: parsed.proto,
            family: parsed.family as u8,
            direction: conn_dir(dir, forward) as u32,
        },
        initiator_port,
        _pad: 0,
        _pad2: 0,
    }
}

/// Reads a packet's meaning for tracking from its verdict. ICMP errors need
/// the quoted header, hence the packet itself.
#[inline(always)]
pub fn track<P: Packet + ?Sized>(
    pkt: &P,
    parsed: &Parsed,
    verdict: &Verdict,
    dir: PacketDir,
) -> Track {
    match *verdict {
        Verdict::Allowed {
            rule,
            required: true,
            reply,
        } => match parsed.proto {
            IPPROTO_TCP => {
                let flags = parsed.tcp_flags;
                if flags & TCP_SYN != 0 {
                    let is_ack = flags & TCP_ACK != 0;
                    if reply && is_ack {
                        Track::Answered {
                            key: key_of(parsed, dir, false),
                            rule,
                        }
                    } else if !reply && !is_ack {
                        Track::Attempt {
                            key: key_of(parsed, dir, true),
                            rule,
                        }
                    } else {
                        Track::None
                    }
                } else if reply && flags & TCP_RST != 0 {
                    Track::Refused {
                        key: key_of(parsed, dir, false),
                        outcome: OUTCOME_RESET,
                        icmp_type: 0,
                        icmp_code: 0,
                    }
                } else {
                    Track::None
                }
            }
            IPPROTO_UDP => {
                let service = if reply { parsed.sport } else { parsed.dport };
                if !udp_expects_reply(service) {
                    Track::None
                } else if reply {
                    Track::Answered {
                        key: key_of(parsed, dir, false),
                        rule,
                    }
                } else {
                    Track::Attempt {
                        key: key_of(parsed, dir, true),
                        rule,
                    }
                }
            }
            _ => Track::None,
        },
        Verdict::Infrastructure => icmp_error(pkt, parsed, dir),
        _ => Track::None,
    }
}

/// An ICMP destination unreachable refuses the attempt it quotes. The quoted
/// packet was sent by the initiator, so the error travels the other way:
/// sent by this host (egress) it answers an inbound attempt.
#[inline(always)]
fn icmp_error<P: Packet + ?Sized>(pkt: &P, parsed: &Parsed, dir: PacketDir) -> Track {
    let (icmp_type, icmp_code) = (parsed.sport as u8, parsed.dport as u8);
    let outcome = match (parsed.proto, icmp_type, icmp_code) {
        // Fragmentation needed is path MTU discovery, not a block.
        (IPPROTO_ICMP, 3, 4) => return Track::None,
        (IPPROTO_ICMP, 3, 9 | 10 | 13) => OUTCOME_ADMIN_PROHIBITED,
        (IPPROTO_ICMP, 3, _) => OUTCOME_ICMP_UNREACHABLE,
        (IPPROTO_ICMPV6, 1, 1) => OUTCOME_ADMIN_PROHIBITED,
        (IPPROTO_ICMPV6, 1, _) => OUTCOME_ICMP_UNREACHABLE,
        _ => return Track::None,
    };
    let Some(q) = parse_quoted(pkt, parsed.l4_offset as usize + 8) else {
        return Track::None;
    };
    if q.family != parsed.family as u8 {
        return Track::None;
    }
    HandshakeKey {
        flow: FlowKey {
            initiator: q.src,
            responder: q.dst,
            service_port: q.dport,
            proto: q.proto,
            family: q.family,
            // The error travels responder → initiator, as a reply does.
            direction: conn_dir(dir, false) as u32,
        },
        initiator_port: q.sport,
        _pad: 0,
        _pad2: 0,
    }
    .into_refused(outcome, icmp_type, icmp_code)
}

impl HandshakeKey {
    #[inline(always)]
    fn into_refused(self, outcome: u8, icmp_type: u8, icmp_code: u8) -> Track {
        Track::Refused {
            key: self,
            outcome,
            icmp_type,
            icmp_code,
        }
    }
}

/// The addresses and ports of the packet an ICMP error quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    pub family: u8,
    pub proto: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
}

/// Reads the quoted header tolerantly: an error may quote as little as the
/// IP header and 8 bytes of TCP or UDP (RFC 792), so only the ports are
/// needed, not a whole TCP header. Only TCP and UDP attempts are tracked.
#[inline(always)]
pub fn parse_quoted<P: Packet + ?Sized>(pkt: &P, offset: usize) -> Option<Quoted> {
    let first: u8 = pkt.load(offset)?;
    let (family, proto, src, dst, l4) = match first >> 4 {
        4 => {
            let ihl = ((first & 0x0f) as usize) * 4;
            if ihl < 20 {
                return None;
            }
            let proto: u8 = pkt.load(offset + 9)?;
            let src: u32 = pkt.load(offset + 12)?;
            let dst: u32 = pkt.load(offset + 16)?;
            (
                Family::V4 as u8,
                proto,
                v4_bytes(src),
                v4_bytes(dst),
                offset + ihl,
            )
        }
        6 => {
            let proto: u8 = pkt.load(offset + 6)?;
            let src = v6_bytes(pkt.load(offset + 8)?);
            let dst = v6_bytes(pkt.load(offset + 24)?);
            (Family::V6 as u8, proto, src, dst, offset + 40)
        }
        _ => return None,
    };
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return None;
    }
    let ports: [u16; 2] = pkt.load(l4)?;
    Some(Quoted {
        family,
        proto,
        src,
        dst,
        sport: u16::from_be(ports[0]),
        dport: u16::from_be(ports[1]),
    })
}

/// The attempt table, as a BPF hash map in the kernel and a `HashMap` in
/// replay.
pub trait HandshakeTable {
    fn get_mut(&mut self, key: &HandshakeKey) -> Option<&mut Handshake>;
    /// Inserts if absent; false when the table is full.
    fn insert(&mut self, key: &HandshakeKey, value: &Handshake) -> bool;
    fn remove(&mut self, key: &HandshakeKey);
}

/// What [`apply`] did, for the caller's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Nothing,
    /// A new attempt is pending.
    Started,
    /// A retransmission of a pending attempt.
    Retried,
    /// No room: the attempt is not tracked (counted by the caller).
    TableFull,
    /// The answer of a required flow; `flow` is what recovery watches.
    Answered {
        rule: u16,
        flow: FlowKey,
    },
    /// A pending attempt was refused; userspace reports it.
    Refused,
}

/// Updates the table for one packet's [`Track`].
#[inline(always)]
pub fn apply<T: HandshakeTable + ?Sized>(
    table: &mut T,
    track: &Track,
    now: u64,
    set: u8,
    ifindex: u32,
) -> Applied {
    match *track {
        Track::None => Applied::Nothing,
        Track::Attempt { key, rule } => {
            if let Some(h) = table.get_mut(&key) {
                h.attempts = h.attempts.saturating_add(1);
                h.last_ns = now;
                return Applied::Retried;
            }
            let h = Handshake {
                first_ns: now,
                last_ns: now,
                attempts: 1,
                ifindex,
                rule,
                outcome: OUTCOME_PENDING,
                set,
                icmp_type: 0,
                icmp_code: 0,
                _pad: [0; 2],
            };
            if table.insert(&key, &h) {
                Applied::Started
            } else if let Some(h) = table.get_mut(&key) {
                // Another CPU started it in the meantime.
                h.attempts = h.attempts.saturating_add(1);
                Applied::Retried
            } else {
                Applied::TableFull
            }
        }
        Track::Answered { key, rule } => {
            table.remove(&key);
            Applied::Answered {
                rule,
                flow: key.flow,
            }
        }
        Track::Refused {
            key,
            outcome,
            icmp_type,
            icmp_code,
        } => match table.get_mut(&key) {
            Some(h) if h.outcome == OUTCOME_PENDING => {
                h.outcome = outcome;
                h.icmp_type = icmp_type;
                h.icmp_code = icmp_code;
                Applied::Refused
            }
            _ => Applied::Nothing,
        },
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), explicit padding, plain integers and byte arrays.
    unsafe impl aya::Pod for super::HandshakeKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Handshake {}
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{collections::HashMap, vec::Vec};

    use super::*;
    use crate::packet::{ETH_P_IP, ETH_P_IPV6, parse_ethernet};

    const PEER: [u8; 4] = [198, 51, 100, 7];
    const HOST: [u8; 4] = [192, 0, 2, 1];

    fn eth(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = std::vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut ip = std::vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let len = (20 + l4.len()) as u16;
        ip[2..4].copy_from_slice(&len.to_be_bytes());
        ip.extend_from_slice(l4);
        ip
    }

    fn ipv6(proto: u8, src: [u8; 16], dst: [u8; 16], l4: &[u8]) -> Vec<u8> {
        let mut ip = std::vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[proto, 64]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        ip.extend_from_slice(l4);
        ip
    }

    fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut t = std::vec![0u8; 20];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = 0x50;
        t[13] = flags;
        t
    }

    fn icmp_error(icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
        let mut m = std::vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(quoted);
        m
    }

    fn v6(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = last;
        a
    }

    const PG: u16 = 5432;
    const RULE: u16 = 3;

    fn allowed(reply: bool) -> Verdict {
        Verdict::Allowed {
            rule: RULE,
            required: true,
            reply,
        }
    }

    fn track_frame(frame: &[u8], verdict: Verdict, dir: PacketDir) -> Track {
        let parsed = parse_ethernet(frame).unwrap();
        track(frame, &parsed, &verdict, dir)
    }

    #[derive(Default)]
    struct Table(HashMap<HandshakeKey, Handshake>, usize);

    impl HandshakeTable for Table {
        fn get_mut(&mut self, key: &HandshakeKey) -> Option<&mut Handshake> {
            self.0.get_mut(key)
        }
        fn insert(&mut self, key: &HandshakeKey, value: &Handshake) -> bool {
            if self.1 != 0 && self.0.len() >= self.1 {
                return false;
            }
            self.0.entry(*key).or_insert(*value);
            true
        }
        fn remove(&mut self, key: &HandshakeKey) {
            self.0.remove(key);
        }
    }

    fn syn_in() -> Vec<u8> {
        eth(
            ETH_P_IP,
            &ipv4(IPPROTO_TCP, PEER, HOST, &tcp(40000, PG, TCP_SYN)),
        )
    }

    #[test]
    fn a_syn_starts_an_attempt_its_retransmission_retries_and_the_syn_ack_answers() {
        let mut t = Table::default();
        let syn = track_frame(&syn_in(), allowed(false), PacketDir::Ingress);
        let Track::Attempt { key, rule } = syn else {
            panic!("{syn:?}")
        };
        assert_eq!(rule, RULE);
        assert_eq!(&key.flow.initiator[..4], &PEER);
        assert_eq!(&key.flow.responder[..4], &HOST);
        assert_eq!((key.initiator_port, key.flow.service_port), (40000, PG));
        assert_eq!(key.flow.direction, ConnDir::Inbound as u32);
        assert_eq!(apply(&mut t, &syn, 10, 0, 2), Applied::Started);
        assert_eq!(apply(&mut t, &syn, 20, 0, 2), Applied::Retried);
        let h = t.0[&key];
        assert_eq!(
            (h.first_ns, h.last_ns, h.attempts, h.ifindex),
            (10, 20, 2, 2)
        );

        let syn_ack = eth(
            ETH_P_IP,
            &ipv4(IPPROTO_TCP, HOST, PEER, &tcp(PG, 40000, TCP_SYN | TCP_ACK)),
        );
        let ans = track_frame(&syn_ack, allowed(true), PacketDir::Egress);
        assert_eq!(ans, Track::Answered { key, rule: RULE });
        assert_eq!(
            apply(&mut t, &ans, 30, 0, 2),
            Applied::Answered {
                rule: RULE,
                flow: key.flow
            }
        );
        assert!(t.0.is_empty());
    }

    #[test]
    fn a_reset_refuses_only_a_pending_attempt() {
        let mut t = Table::default();
        let rst = eth(
            ETH_P_IP,
            &ipv4(IPPROTO_TCP, HOST, PEER, &tcp(PG, 40000, TCP_RST | TCP_ACK)),
        );
        let refused = track_frame(&rst, allowed(true), PacketDir::Egress);
        // A reset of an established connection: nothing pending, nothing said.
        assert_eq!(apply(&mut t, &refused, 5, 0, 2), Applied::Nothing);
        let syn = track_frame(&syn_in(), allowed(false), PacketDir::Ingress);
        apply(&mut t, &syn, 10, 0, 2);
        assert_eq!(apply(&mut t, &refused, 11, 0, 2), Applied::Refused);
        let h = t.0.values().next().unwrap();
        assert_eq!(h.outcome, OUTCOME_RESET);
        // The first refusal stands.
        assert_eq!(apply(&mut t, &refused, 12, 0, 2), Applied::Nothing);
    }

    #[test]
    fn icmp_errors_find_the_attempt_they_quote() {
        let quoted = ipv4(IPPROTO_TCP, PEER, HOST, &tcp(40000, PG, TCP_SYN));
        for (code, outcome) in [
            (13, OUTCOME_ADMIN_PROHIBITED),
            (10, OUTCOME_ADMIN_PROHIBITED),
            (3, OUTCOME_ICMP_UNREACHABLE),
            (1, OUTCOME_ICMP_UNREACHABLE),
        ] {
            let mut t = Table::default();
            let syn = track_frame(&syn_in(), allowed(false), PacketDir::Ingress);
            apply(&mut t, &syn, 10, 0, 2);
            // Only 8 bytes of TCP quoted, as RFC 792 allows.
            let err = eth(
                ETH_P_IP,
                &ipv4(
                    IPPROTO_ICMP,
                    HOST,
                    PEER,
                    &icmp_error(3, code, &quoted[..28]),
                ),
            );
            let tr = track_frame(&err, Verdict::Infrastructure, PacketDir::Egress);
            assert_eq!(
                apply(&mut t, &tr, 11, 0, 2),
                Applied::Refused,
                "code {code}"
            );
            assert_eq!(t.0.values().next().unwrap().outcome, outcome);
            assert_eq!(t.0.values().next().unwrap().icmp_code, code);
        }
        // Fragmentation needed is not a refusal.
        let err = eth(
            ETH_P_IP,
            &ipv4(IPPROTO_ICMP, HOST, PEER, &icmp_error(3, 4, &quoted)),
        );
        assert_eq!(
            track_frame(&err, Verdict::Infrastructure, PacketDir::Egress),
            Track::None
        );
    }

    #[test]
    fn icmpv6_admin_prohibited_answers_an_outbound_attempt() {
        let quoted = ipv6(IPPROTO_TCP, v6(1), v6(7), &tcp(50000, 2181, TCP_SYN));
        let syn = eth(ETH_P_IPV6, &quoted);
        let mut t = Table::default();
        let attempt = track_frame(&syn, allowed(false), PacketDir::Egress);
        assert_eq!(apply(&mut t, &attempt, 1, 0, 2), Applied::Started);
        let err = eth(
            ETH_P_IPV6,
            &ipv6(IPPROTO_ICMPV6, v6(7), v6(1), &icmp_error(1, 1, &quoted)),
        );
        let tr = track_frame(&err, Verdict::Infrastructure, PacketDir::Ingress);
        let Track::Refused { key, outcome, .. } = tr else {
            panic!("{tr:?}")
        };
        assert_eq!(outcome, OUTCOME_ADMIN_PROHIBITED);
        assert_eq!(key.flow.direction, ConnDir::Outbound as u32);
        assert_eq!(apply(&mut t, &tr, 2, 0, 2), Applied::Refused);
    }

    #[test]
    fn udp_requests_are_tracked_only_for_services_that_answer() {
        let mut udp = std::vec![0u8; 8];
        udp[0..2].copy_from_slice(&5353u16.to_be_bytes());
        udp[2..4].copy_from_slice(&53u16.to_be_bytes());
        let q = eth(ETH_P_IP, &ipv4(IPPROTO_UDP, HOST, PEER, &udp));
        assert!(matches!(
            track_frame(&q, allowed(false), PacketDir::Egress),
            Track::Attempt { .. }
        ));
        udp[2..4].copy_from_slice(&514u16.to_be_bytes());
        let syslog = eth(ETH_P_IP, &ipv4(IPPROTO_UDP, HOST, PEER, &udp));
        assert_eq!(
            track_frame(&syslog, allowed(false), PacketDir::Egress),
            Track::None
        );
    }

    #[test]
    fn optional_rules_and_unexpected_flows_are_not_tracked() {
        let optional = Verdict::Allowed {
            rule: RULE,
            required: false,
            reply: false,
        };
        assert_eq!(
            track_frame(&syn_in(), optional, PacketDir::Ingress),
            Track::None
        );
    }

    #[test]
    fn a_full_table_refuses_and_says_so() {
        let mut t = Table(HashMap::new(), 1);
        let a = track_frame(&syn_in(), allowed(false), PacketDir::Ingress);
        assert_eq!(apply(&mut t, &a, 1, 0, 2), Applied::Started);
        let other = eth(
            ETH_P_IP,
            &ipv4(IPPROTO_TCP, PEER, HOST, &tcp(40001, PG, TCP_SYN)),
        );
        let b = track_frame(&other, allowed(false), PacketDir::Ingress);
        assert_eq!(apply(&mut t, &b, 2, 0, 2), Applied::TableFull);
    }
}
