//! Required flows that are blocked: judging the attempts the kernel (or
//! replay) tracked, grouping them per (rule, peer, port), and the records,
//! console lines and per-rule verdicts that come out of it. Shared by the
//! daemon and replay, which differ only in where attempts and time come from.

pub mod records;
pub mod tracker;

use std::fmt;

use monitor_common::{
    drop::{DropCause, LocalDrop},
    flow::FlowKey,
    handshake::{
        Handshake, HandshakeKey, OUTCOME_ADMIN_PROHIBITED, OUTCOME_ICMP_UNREACHABLE,
        OUTCOME_PENDING, OUTCOME_RESET,
    },
};

pub use tracker::{Blocked, Tracker};

/// Why a required flow is blocked; the names are the event contract's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockReason {
    /// No answer within the timeout (Zeek's S0).
    NoReply,
    /// Answered by a TCP RST.
    Reset,
    /// ICMP / ICMPv6 destination unreachable.
    IcmpUnreachable,
    /// ICMP codes 9, 10, 13 or ICMPv6 code 1: a firewall said no.
    AdminProhibited,
    /// This host's own netfilter ruleset dropped the attempt or its answer
    /// (seen at the kernel's kfree_skb tracepoint).
    LocalFirewall,
    /// This host's own stack dropped the attempt for another reason: no
    /// socket, no route, a neighbour that never answered...
    LocalDrop(DropCause),
}

impl BlockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::NoReply => "no-reply",
            BlockReason::Reset => "reset",
            BlockReason::IcmpUnreachable => "icmp-unreachable",
            BlockReason::AdminProhibited => "admin-prohibited",
            BlockReason::LocalFirewall => "local-firewall",
            BlockReason::LocalDrop(_) => "local-drop",
        }
    }

    /// The reason as one number, for the record a pinned run leaves (see
    /// [`from_code`](Self::from_code)): a local drop carries its cause.
    pub fn code(self) -> u16 {
        match self {
            BlockReason::NoReply => 1,
            BlockReason::Reset => 2,
            BlockReason::IcmpUnreachable => 3,
            BlockReason::AdminProhibited => 4,
            BlockReason::LocalFirewall => 5,
            BlockReason::LocalDrop(cause) => 0x100 | u16::from(cause as u8),
        }
    }

    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1 => BlockReason::NoReply,
            2 => BlockReason::Reset,
            3 => BlockReason::IcmpUnreachable,
            4 => BlockReason::AdminProhibited,
            5 => BlockReason::LocalFirewall,
            c if c >> 8 == 1 => BlockReason::LocalDrop(DropCause::from_u8(c as u8)?),
            _ => return None,
        })
    }

    /// The reason for a drop by the host's own stack.
    pub fn local(cause: DropCause) -> Self {
        if cause.is_firewall() {
            BlockReason::LocalFirewall
        } else {
            BlockReason::LocalDrop(cause)
        }
    }

    /// The kernel's drop reason behind a local drop, as the kernel names it
    /// (`NETFILTER_DROP`, `NO_SOCKET`...), for notes.
    pub fn kernel_reason(self) -> Option<&'static str> {
        match self {
            BlockReason::LocalFirewall => Some(DropCause::NetfilterDrop.kernel_name()),
            BlockReason::LocalDrop(cause) => Some(cause.kernel_name()),
            _ => None,
        }
    }
}

/// A flow's local-drop record as the failed attempt the tracker groups:
/// the latest initiator port, the drops as its attempts. `None` for a cause
/// this build does not know.
pub fn local_drop_attempt(
    flow: &FlowKey,
    d: &LocalDrop,
) -> Option<(HandshakeKey, Handshake, BlockReason)> {
    let cause = DropCause::from_u8(d.cause)?;
    let key = HandshakeKey {
        flow: *flow,
        initiator_port: d.initiator_port,
        _pad: 0,
        _pad2: 0,
    };
    let h = Handshake {
        first_ns: d.first_ns,
        last_ns: d.last_ns,
        attempts: u32::try_from(d.drops).unwrap_or(u32::MAX),
        ifindex: d.ifindex,
        rule: d.rule,
        set: d.set,
        ..Handshake::default()
    };
    Some((key, h, BlockReason::local(cause)))
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an attempt is finished and failed at `now_ns`: refused attempts
/// are reported at once, unanswered ones once `timeout_ns` has passed since
/// the first SYN or request. `None`: still waiting.
pub fn judge(h: &Handshake, now_ns: u64, timeout_ns: u64) -> Option<BlockReason> {
    match h.outcome {
        OUTCOME_RESET => Some(BlockReason::Reset),
        OUTCOME_ICMP_UNREACHABLE => Some(BlockReason::IcmpUnreachable),
        OUTCOME_ADMIN_PROHIBITED => Some(BlockReason::AdminProhibited),
        OUTCOME_PENDING if now_ns.saturating_sub(h.first_ns) >= timeout_ns => {
            Some(BlockReason::NoReply)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(first_ns: u64) -> Handshake {
        Handshake {
            first_ns,
            last_ns: first_ns,
            attempts: 1,
            ..Default::default()
        }
    }

    #[test]
    fn unanswered_attempts_fail_only_after_the_timeout() {
        let h = pending(1_000);
        assert_eq!(judge(&h, 1_000 + 4_999, 5_000), None);
        assert_eq!(judge(&h, 1_000 + 5_000, 5_000), Some(BlockReason::NoReply));
        // A clock that went backwards (replay of unordered files) is not a timeout.
        assert_eq!(judge(&h, 10, 5_000), None);
    }

    #[test]
    fn refusals_are_reported_at_once() {
        for (outcome, reason) in [
            (OUTCOME_RESET, BlockReason::Reset),
            (OUTCOME_ICMP_UNREACHABLE, BlockReason::IcmpUnreachable),
            (OUTCOME_ADMIN_PROHIBITED, BlockReason::AdminProhibited),
        ] {
            let h = Handshake {
                outcome,
                ..pending(1_000)
            };
            assert_eq!(judge(&h, 1_000, 5_000), Some(reason));
        }
    }

    #[test]
    fn a_local_drop_record_is_one_failed_attempt_per_drop_with_its_cause() {
        let d = LocalDrop {
            first_ns: 5,
            last_ns: 9,
            drops: 3,
            ifindex: 2,
            initiator_port: 61000,
            rule: 7,
            set: 1,
            cause: DropCause::NetfilterDrop as u8,
            kernel_reason: 6,
            _pad: 0,
        };
        let flow = FlowKey::default();
        let (key, h, reason) = local_drop_attempt(&flow, &d).unwrap();
        assert_eq!(key.initiator_port, 61000);
        assert_eq!((h.first_ns, h.last_ns, h.attempts), (5, 9, 3));
        assert_eq!((h.rule, h.set, h.ifindex), (7, 1, 2));
        assert_eq!(reason, BlockReason::LocalFirewall);
        assert_eq!(reason.kernel_reason(), Some("NETFILTER_DROP"));
        let other = LocalDrop {
            cause: DropCause::NoSocket as u8,
            ..d
        };
        let (_, _, reason) = local_drop_attempt(&flow, &other).unwrap();
        assert_eq!(reason.to_string(), "local-drop");
        assert_eq!(reason.kernel_reason(), Some("NO_SOCKET"));
        let unknown = LocalDrop { cause: 0, ..d };
        assert!(local_drop_attempt(&flow, &unknown).is_none());
    }

    #[test]
    fn names_are_the_contract() {
        let names: Vec<_> = [
            BlockReason::NoReply,
            BlockReason::Reset,
            BlockReason::IcmpUnreachable,
            BlockReason::AdminProhibited,
            BlockReason::LocalFirewall,
            BlockReason::LocalDrop(DropCause::NoSocket),
        ]
        .iter()
        .map(|r| r.to_string())
        .collect();
        assert_eq!(
            names,
            [
                "no-reply",
                "reset",
                "icmp-unreachable",
                "admin-prohibited",
                "local-firewall",
                "local-drop"
            ]
        );
    }
}
