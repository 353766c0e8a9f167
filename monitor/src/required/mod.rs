//! Required flows that are blocked: judging the attempts the kernel (or
//! replay) tracked, grouping them per (rule, peer, port), and the records,
//! console lines and per-rule verdicts that come out of it. Shared by the
//! daemon and replay, which differ only in where attempts and time come from.

pub mod records;
pub mod tracker;

use std::fmt;

use monitor_common::handshake::{
    Handshake, OUTCOME_ADMIN_PROHIBITED, OUTCOME_ICMP_UNREACHABLE, OUTCOME_PENDING, OUTCOME_RESET,
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
}

impl BlockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::NoReply => "no-reply",
            BlockReason::Reset => "reset",
            BlockReason::IcmpUnreachable => "icmp-unreachable",
            BlockReason::AdminProhibited => "admin-prohibited",
        }
    }
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
    fn names_are_the_contract() {
        let names: Vec<_> = [
            BlockReason::NoReply,
            BlockReason::Reset,
            BlockReason::IcmpUnreachable,
            BlockReason::AdminProhibited,
        ]
        .iter()
        .map(|r| r.to_string())
        .collect();
        assert_eq!(
            names,
            ["no-reply", "reset", "icmp-unreachable", "admin-prohibited"]
        );
    }
}
