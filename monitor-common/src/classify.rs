//! The per-packet decision: is this packet part of a connection the policy
//! allows? Pure logic over a [`PolicyLookup`], so the XDP/TC programs and
//! replay call the same function.

use crate::{
    packet::{
        Family, Fragment, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Parsed, TCP_ACK,
        TCP_SYN, v4_addr,
    },
    policy::{ConnDir, L4, NO_RULE, RULE_DYNAMIC, RULE_REQUIRED, RuleSet, port_index},
    stats::PacketDir,
};

/// Read access to the policy maps.
pub trait PolicyLookup {
    /// `PC_PORTCLASS[index]`: rule-set id, 0 for none.
    fn port_class(&self, index: u32) -> u16;
    /// `PC_RULESETS[id]`.
    fn rule_set(&self, id: u16) -> Option<&RuleSet>;
    /// Role mask of an IPv4 peer (host byte order). A word, not the
    /// parser's 16-byte array: every IPv4 structure (the trie, the host
    /// hash, the LPM key) is keyed by the word.
    fn peer_roles_v4(&self, addr: u32) -> u64;
    /// Role mask of an IPv6 peer.
    fn peer_roles_v6(&self, addr: &[u8; 16]) -> u64;
}

/// The unexpected connections being counted (the kernel's `PC_FLOWS`,
/// replay's table). A packet that only a dynamic-range rule allows may
/// belong to one of them: the document's dynamic range covers the client's
/// ephemeral port of a connection to a port no rule names, so without this
/// every packet after its SYN would be counted under the dynamic rule.
pub trait FlowLookup {
    /// Whether the connection `conn` reads this packet as is being counted
    /// (its key is [`FlowKey::new`]`(parsed, conn)`).
    ///
    /// [`FlowKey::new`]: crate::flow::FlowKey::new
    fn tracks(&self, parsed: &Parsed, conn: &Conn) -> bool;
}

/// No connection is being counted: each packet is read on its own (tests,
/// and tools that classify single packets).
pub struct Untracked;

impl FlowLookup for Untracked {
    #[inline(always)]
    fn tracks(&self, _parsed: &Parsed, _conn: &Conn) -> bool {
        false
    }
}

/// Why a packet is unexpected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// No rule covers this port in this direction.
    NoRule = 1,
    /// Rules cover the port, but not for this peer.
    PeerNotAllowed = 2,
}

/// The classifier's answer for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A connection opened in the direction a rule allows (or its reply).
    Allowed {
        rule: u16,
        required: bool,
        reply: bool,
    },
    /// Network plumbing the documents never list (ND, MLD, ICMP errors):
    /// passed without judgement; blocked-flow tracking reads ICMP errors.
    Infrastructure,
    /// Later IP fragments carry no ports; counted, not judged.
    Fragment,
    /// Outside the policy. `conn` is the connection as we understand it.
    Unexpected {
        reason: Reason,
        nearest_rule: u16,
        conn: Conn,
    },
}

/// A connection in its initiator → responder orientation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    /// Opened by the peer (inbound) or by the host (outbound): a
    /// [`ConnDir`] as the word [`FlowKey::direction`] holds. Not the enum:
    /// its spare values are a niche, `Verdict`'s discriminant moved into it,
    /// and each program came out 200 to 300 instructions longer. Carrying
    /// the direction as an enum through the classifier also changed LLVM's
    /// output, so it works on words, with the enum's values as constants.
    ///
    /// [`FlowKey::direction`]: crate::flow::FlowKey::direction
    pub direction: u32,
    /// The responder's port (the service), or the ICMP request type.
    pub service_port: u16,
    /// Whether this packet travels initiator → responder.
    pub forward: bool,
}

/// The side of a packet's addresses that is the peer, given its direction.
#[inline(always)]
pub fn peer_addr(parsed: &Parsed, dir: PacketDir) -> &[u8; 16] {
    match dir {
        PacketDir::Ingress => &parsed.src,
        PacketDir::Egress => &parsed.dst,
    }
}

/// The connection direction of a packet that travels initiator → responder.
#[inline(always)]
const fn forward_conn_dir(dir: PacketDir) -> u32 {
    match dir {
        PacketDir::Ingress => ConnDir::Inbound as u32,
        PacketDir::Egress => ConnDir::Outbound as u32,
    }
}

/// [`ConnDir::reverse`] on the word (see [`Conn::direction`]).
#[inline(always)]
const fn reverse(conn_dir: u32) -> u32 {
    if conn_dir == ConnDir::Inbound as u32 {
        ConnDir::Outbound as u32
    } else {
        ConnDir::Inbound as u32
    }
}

/// Result of looking one (direction, class, port) up for a peer.
///
/// A plain struct rather than an enum with payloads: every field is defined
/// on every path. With payloads, LLVM may assemble a result whose unused
/// field it takes from any stack slot, one that holds a packet pointer, and
/// the verifier then refuses the arithmetic on it.
#[derive(Clone, Copy)]
struct Match {
    kind: MatchKind,
    /// The allowing rule, or for [`MatchKind::Peer`] the nearest one.
    rule: u16,
    required: bool,
    /// The rule (allowing, or nearest) is a dynamic-range rule: another
    /// reading of the packet that a specific rule allows, or a tracked
    /// unexpected connection, beats it, and its port does not say which
    /// end serves.
    dynamic: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MatchKind {
    None,
    Peer,
    Allowed,
}

impl Match {
    const NONE: Match = Match {
        kind: MatchKind::None,
        rule: NO_RULE,
        required: false,
        dynamic: false,
    };

    /// An allowing match that no other reading can beat.
    #[inline(always)]
    fn is_specific(&self) -> bool {
        self.kind == MatchKind::Allowed && !self.dynamic
    }
}

/// The peer's roles, looked up only once a port turns out to have rules:
/// traffic on ports no rule names never pays for the address lookups.
struct Roles<'a> {
    family: Family,
    addr: &'a [u8; 16],
    mask: Option<u64>,
}

impl<'a> Roles<'a> {
    #[inline(always)]
    fn new(parsed: &'a Parsed, dir: PacketDir) -> Self {
        Self {
            family: parsed.family,
            addr: peer_addr(parsed, dir),
            mask: None,
        }
    }

    #[inline(always)]
    fn get<L: PolicyLookup + ?Sized>(&mut self, policy: &L) -> u64 {
        match self.mask {
            Some(m) => m,
            None => {
                let m = match self.family {
                    Family::V4 => policy.peer_roles_v4(v4_addr(self.addr)),
                    Family::V6 => policy.peer_roles_v6(self.addr),
                };
                self.mask = Some(m);
                m
            }
        }
    }
}

#[inline(always)]
fn match_port<L: PolicyLookup + ?Sized>(
    policy: &L,
    conn_dir: u32,
    l4: L4,
    port: u16,
    roles: &mut Roles<'_>,
) -> Match {
    let id = policy.port_class(port_index(conn_dir, l4, port));
    if id == 0 {
        return Match::NONE;
    }
    let Some(set) = policy.rule_set(id) else {
        return Match::NONE;
    };
    let roles = roles.get(policy);
    let mut nearest = NO_RULE;
    let mut nearest_dynamic = false;
    let mut i = 0;
    while i < set.rules.len() {
        if (i as u32) >= set.len {
            break;
        }
        let r = set.rules[i];
        if nearest == NO_RULE {
            nearest = r.rule;
            nearest_dynamic = r.flags & RULE_DYNAMIC != 0;
        }
        if r.peer_roles & roles != 0 {
            return Match {
                kind: MatchKind::Allowed,
                rule: r.rule,
                required: r.flags & RULE_REQUIRED != 0,
                dynamic: r.flags & RULE_DYNAMIC != 0,
            };
        }
        i += 1;
    }
    Match {
        kind: MatchKind::Peer,
        rule: nearest,
        required: false,
        dynamic: nearest_dynamic,
    }
}

/// Classifies one parsed packet seen in `dir`.
#[inline(always)]
pub fn classify<L: PolicyLookup + ?Sized, F: FlowLookup + ?Sized>(
    policy: &L,
    flows: &F,
    parsed: &Parsed,
    dir: PacketDir,
) -> Verdict {
    if parsed.fragment == Fragment::Later {
        return Verdict::Fragment;
    }
    match parsed.proto {
        IPPROTO_TCP | IPPROTO_UDP => classify_ports(policy, flows, parsed, dir),
        IPPROTO_ICMP | IPPROTO_ICMPV6 => classify_icmp(policy, parsed, dir),
        _ => {
            // Other protocols (GRE, ESP, SCTP...) have no rule class yet: any
            // of them is unexpected, keyed by protocol alone.
            let conn = Conn {
                direction: forward_conn_dir(dir),
                service_port: 0,
                forward: true,
            };
            Verdict::Unexpected {
                reason: Reason::NoRule,
                nearest_rule: NO_RULE,
                conn,
            }
        }
    }
}

/// TCP and UDP: a packet is allowed when a rule covers the port it is sent
/// to (the request reading) or the port it comes from (the reply reading).
/// A SYN or SYN-ACK says which reading applies; without one both are
/// tried, request first, and a specific rule's reading beats a
/// dynamic-range rule's: the RST or UDP answer to a required attempt goes
/// back to the client's ephemeral port, which the document's dynamic range
/// may cover, and it must still be read as that attempt's answer. A packet
/// only a dynamic-range rule allows belongs to the unexpected connection
/// the other reading names, when that one is being counted. When nothing
/// allows it, the connection is keyed by the end that serves: the one the
/// SYN names, else the port a rule covers (for another peer), else the
/// lower port.
#[inline(always)]
fn classify_ports<L: PolicyLookup + ?Sized, F: FlowLookup + ?Sized>(
    policy: &L,
    flows: &F,
    parsed: &Parsed,
    dir: PacketDir,
) -> Verdict {
    let fwd_dir = forward_conn_dir(dir);
    let l4 = if parsed.proto == IPPROTO_TCP {
        L4::Tcp
    } else {
        L4::Udp
    };
    let mut roles = Roles::new(parsed, dir);
    let syn = parsed.proto == IPPROTO_TCP && parsed.tcp_flags & TCP_SYN != 0;
    let ack = parsed.tcp_flags & TCP_ACK != 0;
    // A SYN opens a connection to dport; a SYN-ACK answers one on sport;
    // anything else may be either, so try the request reading first.
    let try_forward = !syn || !ack;
    let try_reply = !syn || ack;
    let mut request = Match::NONE;
    if try_forward {
        request = match_port(policy, fwd_dir, l4, parsed.dport, &mut roles);
        if request.is_specific() {
            return Verdict::Allowed {
                rule: request.rule,
                required: request.required,
                reply: false,
            };
        }
    }
    let mut answer = Match::NONE;
    if try_reply {
        answer = match_port(policy, reverse(fwd_dir), l4, parsed.sport, &mut roles);
        if answer.is_specific() {
            return Verdict::Allowed {
                rule: answer.rule,
                required: answer.required,
                reply: true,
            };
        }
    }
    let request_allowed = request.kind == MatchKind::Allowed;
    let answer_allowed = answer.kind == MatchKind::Allowed;
    if request_allowed || answer_allowed {
        // Only a dynamic-range rule allows it. Without a SYN, the reading
        // that rule does not allow may name a connection being counted as
        // unexpected: then the packet is that connection's.
        if !syn && request_allowed != answer_allowed {
            let conn = if request_allowed {
                Conn {
                    direction: reverse(fwd_dir),
                    service_port: parsed.sport,
                    forward: false,
                }
            } else {
                Conn {
                    direction: fwd_dir,
                    service_port: parsed.dport,
                    forward: true,
                }
            };
            if flows.tracks(parsed, &conn) {
                // The flow holds its own reason and nearest rule: these
                // only matter should it be gone by the time it is counted.
                return Verdict::Unexpected {
                    reason: Reason::NoRule,
                    nearest_rule: NO_RULE,
                    conn,
                };
            }
        }
        let m = if request_allowed { request } else { answer };
        return Verdict::Allowed {
            rule: m.rule,
            required: m.required,
            reply: !request_allowed,
        };
    }
    // Set when a rule covers the port but not this peer: the nearest
    // rule, and whether it was the request reading. Plain values, not an
    // Option, for the reason `Match` gives. Without a SYN, a port in the
    // dynamic range says nothing about which end serves (clients' ports
    // come from that range), so only a specific rule's port counts.
    let request_named = request.kind == MatchKind::Peer && (syn || !request.dynamic);
    let answer_named = answer.kind == MatchKind::Peer && (syn || !answer.dynamic);
    let mismatch = request_named || answer_named;
    let mismatch_forward = request_named;
    let mismatch_rule = if mismatch_forward {
        request.rule
    } else {
        answer.rule
    };
    // Which end is the service: the SYN says so; else the port a rule
    // names; else the lower port (services listen low, clients pick
    // high ephemeral ports).
    let forward = if syn {
        !ack
    } else if mismatch {
        mismatch_forward
    } else {
        parsed.dport <= parsed.sport
    };
    let conn = if forward {
        Conn {
            direction: fwd_dir,
            service_port: parsed.dport,
            forward: true,
        }
    } else {
        Conn {
            direction: reverse(fwd_dir),
            service_port: parsed.sport,
            forward: false,
        }
    };
    let (reason, nearest) = if mismatch {
        (Reason::PeerNotAllowed, mismatch_rule)
    } else {
        (Reason::NoRule, NO_RULE)
    };
    Verdict::Unexpected {
        reason,
        nearest_rule: nearest,
        conn,
    }
}

/// ICMP echo requests are judged like connections (the "port" is the
/// request type); replies follow their request; errors and neighbour
/// discovery are infrastructure.
#[inline(always)]
fn classify_icmp<L: PolicyLookup + ?Sized>(policy: &L, parsed: &Parsed, dir: PacketDir) -> Verdict {
    let v6 = parsed.proto == IPPROTO_ICMPV6;
    let l4 = if v6 { L4::Icmpv6 } else { L4::Icmp };
    let icmp_type = parsed.sport as u8;
    // (request type, is this the reply) for request/reply pairs.
    let (request, reply) = match (v6, icmp_type) {
        (false, 8) => (8u8, false),
        (false, 0) => (8, true),
        (false, 13) => (13, false),
        (false, 14) => (13, true),
        (true, 128) => (128, false),
        (true, 129) => (128, true),
        _ => return Verdict::Infrastructure,
    };
    let fwd_dir = forward_conn_dir(dir);
    let conn_dir = if reply { reverse(fwd_dir) } else { fwd_dir };
    let mut roles = Roles::new(parsed, dir);
    let m = match_port(policy, conn_dir, l4, request as u16, &mut roles);
    if m.kind == MatchKind::Allowed {
        return Verdict::Allowed {
            rule: m.rule,
            required: m.required,
            reply,
        };
    }
    let (reason, nearest_rule) = if m.kind == MatchKind::Peer {
        (Reason::PeerNotAllowed, m.rule)
    } else {
        (Reason::NoRule, NO_RULE)
    };
    let conn = Conn {
        direction: conn_dir,
        service_port: request as u16,
        forward: !reply,
    };
    Verdict::Unexpected {
        reason,
        nearest_rule,
        conn,
    }
}
