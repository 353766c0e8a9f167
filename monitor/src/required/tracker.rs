//! Failed attempts grouped per flow (rule, initiator, responder, service
//! port), recoveries, and what each required rule amounts to at the end.

use std::collections::{BTreeMap, HashMap};

use monitor_common::{
    flow::FlowKey,
    handshake::{Handshake, HandshakeKey},
};

use super::BlockReason;
use crate::{
    events::RequiredState,
    kernel_tables::{KernelTables, RuleInfo},
};

/// Blocked flows remembered at once; beyond this new ones are counted in
/// [`Tracker::dropped`] instead of growing memory under a flood of spoofed
/// attempts.
pub const MAX_BLOCKED: usize = 4096;

/// A required flow that failed and has not worked since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub rule: RuleInfo,
    /// The latest failure's reason.
    pub reason: BlockReason,
    /// Failed attempts (SYNs / requests, retransmissions included).
    pub attempts: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub ifindex: u32,
    /// The initiator's port of the latest failed attempt.
    pub initiator_port: u16,
    /// Attempts counted in the last record written of this flow.
    pub reported_attempts: u64,
}

/// One required rule over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleTally {
    pub working: u64,
    pub failed_attempts: u64,
    /// Failed attempts by reason.
    pub reasons: BTreeMap<BlockReason, u64>,
    pub recovered: u64,
}

/// What a required rule amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleVerdict {
    pub rule: RuleInfo,
    pub state: RequiredState,
    pub reason: Option<BlockReason>,
    pub tally: RuleTally,
    pub blocked_flows: u64,
}

#[derive(Default)]
pub struct Tracker {
    blocked: HashMap<FlowKey, Blocked>,
    /// When each recovered flow was answered, at most [`MAX_BLOCKED`] of
    /// them: an attempt made before that answer but judged after it (a
    /// retry still waiting out its timeout when the flow worked again) is
    /// a late verdict on the failure already reported, not a new one.
    recovered_at: HashMap<FlowKey, u64>,
    /// Every required rule of every policy in force so far, by id.
    rules: BTreeMap<String, (RuleInfo, RuleTally)>,
    /// Blocked flows not remembered because [`MAX_BLOCKED`] were.
    pub dropped: u64,
}

impl Tracker {
    pub fn new(tables: &KernelTables) -> Self {
        let mut t = Self::default();
        t.register(tables);
        t
    }

    /// Adds the required rules of a (re)loaded policy, so that rules never
    /// exercised still get a "not seen" verdict.
    pub fn register(&mut self, tables: &KernelTables) {
        for rule in tables.rules.iter().filter(|r| r.required) {
            self.rules
                .entry(rule.id.clone())
                .and_modify(|(info, _)| *info = rule.clone())
                .or_insert_with(|| (rule.clone(), RuleTally::default()));
        }
    }

    /// The blocked flows, for a pinned run to hand to the next one.
    pub fn blocked_flows(&self) -> impl Iterator<Item = (&FlowKey, &Blocked)> {
        self.blocked.iter()
    }

    /// Takes over a flow a pinned run before this one reported blocked:
    /// its next failures update it rather than report it anew. `rule` must
    /// be a required rule of the policy in force.
    pub fn restore(&mut self, flow: FlowKey, saved: Blocked) {
        if self.blocked.len() < MAX_BLOCKED {
            self.blocked.insert(flow, saved);
        }
    }

    /// Records a failed attempt; true when its flow is newly blocked (the
    /// caller reports it and watches it for recovery).
    pub fn failed(
        &mut self,
        key: &HandshakeKey,
        h: &Handshake,
        reason: BlockReason,
        rule: &RuleInfo,
    ) -> bool {
        let attempts = u64::from(h.attempts.max(1));
        let (_, tally) = self
            .rules
            .entry(rule.id.clone())
            .or_insert_with(|| (rule.clone(), RuleTally::default()));
        tally.failed_attempts += attempts;
        *tally.reasons.entry(reason).or_default() += attempts;
        if self
            .recovered_at
            .get(&key.flow)
            .is_some_and(|&at| h.first_ns <= at)
        {
            return false;
        }
        if let Some(b) = self.blocked.get_mut(&key.flow) {
            b.attempts += attempts;
            b.reason = reason;
            b.first_ns = b.first_ns.min(h.first_ns);
            b.last_ns = b.last_ns.max(h.last_ns);
            b.initiator_port = key.initiator_port;
            return false;
        }
        if self.blocked.len() >= MAX_BLOCKED {
            self.dropped += 1;
            return false;
        }
        self.blocked.insert(
            key.flow,
            Blocked {
                rule: rule.clone(),
                reason,
                attempts,
                first_ns: h.first_ns,
                last_ns: h.last_ns,
                ifindex: h.ifindex,
                initiator_port: key.initiator_port,
                reported_attempts: attempts,
            },
        );
        true
    }

    pub fn get(&self, flow: &FlowKey) -> Option<&Blocked> {
        self.blocked.get(flow)
    }

    pub fn is_blocked(&self, flow: &FlowKey) -> bool {
        self.blocked.contains_key(flow)
    }

    /// Answered attempts of a rule.
    pub fn working(&mut self, rule: &RuleInfo, n: u64) {
        if n == 0 {
            return;
        }
        self.rules
            .entry(rule.id.clone())
            .or_insert_with(|| (rule.clone(), RuleTally::default()))
            .1
            .working += n;
    }

    /// A blocked flow answered at `answered_ns`: forgets it and returns
    /// what it was.
    pub fn recovered(&mut self, flow: &FlowKey, answered_ns: u64) -> Option<Blocked> {
        let b = self.blocked.remove(flow)?;
        if self.recovered_at.len() >= MAX_BLOCKED
            && !self.recovered_at.contains_key(flow)
            && let Some(oldest) = self
                .recovered_at
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| *k)
        {
            self.recovered_at.remove(&oldest);
        }
        self.recovered_at.insert(*flow, answered_ns);
        if let Some((_, tally)) = self.rules.get_mut(&b.rule.id) {
            tally.recovered += 1;
        }
        Some(b)
    }

    /// Blocked flows with failed attempts not yet reported, marked reported.
    pub fn changed(&mut self) -> Vec<(FlowKey, Blocked)> {
        let mut out = Vec::new();
        for (k, b) in &mut self.blocked {
            if b.attempts != b.reported_attempts {
                b.reported_attempts = b.attempts;
                out.push((*k, b.clone()));
            }
        }
        out.sort_by_key(|(_, b)| b.first_ns);
        out
    }

    /// Currently blocked flows per rule id.
    pub fn blocked_per_rule(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for b in self.blocked.values() {
            *out.entry(b.rule.id.clone()).or_default() += 1;
        }
        out
    }

    /// Every required rule's verdict, in rule-id order. Blocked beats
    /// working: one blocked peer is what an operator must hear about.
    pub fn verdicts(&self) -> Vec<RuleVerdict> {
        let per_rule = self.blocked_per_rule();
        self.rules
            .values()
            .map(|(rule, tally)| {
                let blocked_flows = per_rule.get(&rule.id).copied().unwrap_or(0);
                // The reason of the flows blocked now, else of all failures.
                let mut now: BTreeMap<BlockReason, u64> = BTreeMap::new();
                for b in self.blocked.values().filter(|b| b.rule.id == rule.id) {
                    *now.entry(b.reason).or_default() += b.attempts;
                }
                let pool = if now.is_empty() { &tally.reasons } else { &now };
                let reason = pool.iter().max_by_key(|(_, n)| **n).map(|(r, _)| *r);
                let state = if blocked_flows > 0 {
                    RequiredState::Blocked
                } else if tally.working > 0 {
                    RequiredState::Working
                } else if tally.failed_attempts > 0 {
                    RequiredState::Blocked
                } else {
                    RequiredState::NotSeen
                };
                RuleVerdict {
                    rule: rule.clone(),
                    state,
                    reason: (state == RequiredState::Blocked)
                        .then_some(reason)
                        .flatten(),
                    tally: tally.clone(),
                    blocked_flows,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Direction, Proto};

    fn rule(id: &str, required: bool) -> RuleInfo {
        RuleInfo {
            id: id.into(),
            service: "PostgreSQL".into(),
            source: "doc.md:7".into(),
            proto: Proto::Tcp,
            direction: Direction::Inbound,
            ports: "5432".into(),
            peer_label: "nodes".into(),
            required,
        }
    }

    fn tables() -> KernelTables {
        KernelTables {
            rules: vec![rule("r-pg", true), rule("r-opt", false), rule("r-zk", true)],
            ..Default::default()
        }
    }

    fn key(peer: u8, port: u16) -> HandshakeKey {
        let mut initiator = [0u8; 16];
        initiator[..4].copy_from_slice(&[198, 51, 100, peer]);
        HandshakeKey {
            flow: FlowKey {
                initiator,
                service_port: 5432,
                proto: 6,
                ..Default::default()
            },
            initiator_port: port,
            _pad: 0,
            _pad2: 0,
        }
    }

    fn attempt(attempts: u32, at: u64) -> Handshake {
        Handshake {
            first_ns: at,
            last_ns: at + 1,
            attempts,
            ..Default::default()
        }
    }

    #[test]
    fn only_required_rules_get_verdicts_and_unseen_ones_say_so() {
        let t = Tracker::new(&tables());
        let v = t.verdicts();
        let ids: Vec<_> = v.iter().map(|v| v.rule.id.as_str()).collect();
        assert_eq!(ids, ["r-pg", "r-zk"]);
        assert!(v.iter().all(|v| v.state == RequiredState::NotSeen));
    }

    #[test]
    fn attempts_group_per_flow_whatever_the_client_port() {
        let mut t = Tracker::new(&tables());
        let pg = rule("r-pg", true);
        assert!(t.failed(&key(7, 40000), &attempt(3, 10), BlockReason::NoReply, &pg));
        assert!(!t.failed(&key(7, 40001), &attempt(2, 20), BlockReason::NoReply, &pg));
        assert!(t.failed(&key(8, 40000), &attempt(1, 30), BlockReason::Reset, &pg));
        let b = t.get(&key(7, 0).flow).unwrap();
        assert_eq!((b.attempts, b.first_ns, b.last_ns), (5, 10, 21));
        assert_eq!(b.initiator_port, 40001);
        // A first report is not a change; attempts added later are, once.
        let changed = t.changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].1.attempts, 5);
        assert!(t.changed().is_empty());
        t.failed(&key(7, 40002), &attempt(1, 40), BlockReason::NoReply, &pg);
        let changed = t.changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].1.attempts, 6);
        assert!(t.changed().is_empty());
        let v = &t.verdicts()[0];
        assert_eq!(v.state, RequiredState::Blocked);
        assert_eq!(v.blocked_flows, 2);
        assert_eq!(v.reason, Some(BlockReason::NoReply));
        assert_eq!(v.tally.failed_attempts, 7);
    }

    #[test]
    fn a_recovered_rule_is_working_and_remembers_it_failed() {
        let mut t = Tracker::new(&tables());
        let pg = rule("r-pg", true);
        t.failed(&key(7, 1), &attempt(1, 10), BlockReason::Reset, &pg);
        t.working(&pg, 1);
        let b = t.recovered(&key(7, 1).flow, 20).unwrap();
        assert_eq!(b.reason, BlockReason::Reset);
        assert!(t.recovered(&key(7, 1).flow, 21).is_none());
        let v = &t.verdicts()[0];
        assert_eq!(v.state, RequiredState::Working);
        assert_eq!((v.tally.recovered, v.tally.working), (1, 1));
        assert_eq!(v.reason, None);
    }

    #[test]
    fn a_retry_judged_after_the_recovery_does_not_block_the_flow_again() {
        let mut t = Tracker::new(&tables());
        let pg = rule("r-pg", true);
        // Two attempts 2 s apart; the first times out and is reported, the
        // flow then works (answered at 12 s), and only then does the
        // second attempt's timeout expire.
        assert!(t.failed(&key(7, 1), &attempt(1, 7_000), BlockReason::NoReply, &pg));
        t.working(&pg, 1);
        t.recovered(&key(7, 1).flow, 12_000).unwrap();
        assert!(!t.failed(&key(7, 2), &attempt(1, 9_000), BlockReason::NoReply, &pg));
        assert!(!t.is_blocked(&key(7, 1).flow));
        let v = &t.verdicts()[0];
        assert_eq!(v.state, RequiredState::Working, "{v:?}");
        assert_eq!(v.tally.failed_attempts, 2);
        // An attempt made after the recovery that fails is a new failure.
        assert!(t.failed(&key(7, 3), &attempt(1, 13_000), BlockReason::NoReply, &pg));
    }

    #[test]
    fn blocked_flows_are_bounded_and_the_rest_counted() {
        let mut t = Tracker::new(&tables());
        let pg = rule("r-pg", true);
        for i in 0..(MAX_BLOCKED + 10) {
            let mut k = key(0, 1);
            k.flow.initiator[4..8].copy_from_slice(&(i as u32).to_be_bytes());
            t.failed(&k, &attempt(1, 1), BlockReason::NoReply, &pg);
        }
        assert_eq!(t.blocked_per_rule()["r-pg"], MAX_BLOCKED as u64);
        assert_eq!(t.dropped, 10);
    }
}
