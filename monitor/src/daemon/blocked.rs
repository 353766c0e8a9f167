//! The daemon's half of required-flow tracking: each sweep collects the
//! attempts the kernel saw refused or left unanswered past the timeout,
//! reports newly blocked flows, notices recoveries the kernel marked in
//! `PC_WATCH`, and adds up answered attempts per rule. Required flows
//! whose packets the host's own stack dropped (`PC_DROPS`) are reported
//! the same way, with their local reason.

use std::time::Duration;

use anyhow::Context as _;
use monitor_common::flow::FlowKey;

use super::{Console, Sinks, emit_record};
use crate::{
    enrich::{Enricher, monotonic_ns},
    events::{EventKind, required_line},
    kernel_tables::KernelTables,
    loader::Monitor,
    pin::record::SavedBlocked,
    required::{self, BlockReason, Tracker, records},
};

/// Required-flow state across sweeps and reloads.
pub struct Blocked {
    pub tracker: Tracker,
    pub timeout: Duration,
    /// `PC_RULEWORK` of the live set at the last sweep, by rule index.
    last_work: Vec<u64>,
    /// BLOCKED / RECOVERED lines, rate-limited apart from unexpected flows
    /// so that neither can crowd the other out.
    console: Console,
    /// Blocked flows the kernel could not watch (table full): they will not
    /// be seen recovering.
    pub unwatched: u64,
}

impl Blocked {
    pub fn new(tracker: Tracker, timeout: Duration) -> Self {
        Self {
            tracker,
            timeout,
            last_work: Vec::new(),
            console: Console::with_label("blocked or recovered required flows"),
            unwatched: 0,
        }
    }

    /// The blocked flows, as a pinned run leaves them for the next.
    pub fn save(&self) -> Vec<SavedBlocked> {
        self.tracker
            .blocked_flows()
            .map(|(flow, b)| SavedBlocked {
                flow: key_hex(flow),
                rule: b.rule.id.clone(),
                reason: b.reason.code(),
                attempts: b.attempts,
                reported_attempts: b.reported_attempts,
                first_ns: b.first_ns,
                last_ns: b.last_ns,
                ifindex: b.ifindex,
                initiator_port: b.initiator_port,
            })
            .collect()
    }

    /// Takes over the blocked flows a pinned run left, those whose rule is
    /// still a required rule of `tables`; returns how many.
    pub fn restore(&mut self, saved: &[SavedBlocked], tables: &KernelTables) -> usize {
        let mut n = 0;
        for s in saved {
            let rule = tables.rules.iter().find(|r| r.id == s.rule && r.required);
            let (Some(rule), Some(flow), Some(reason)) = (
                rule,
                key_from_hex(&s.flow),
                BlockReason::from_code(s.reason),
            ) else {
                continue;
            };
            self.tracker.restore(
                flow,
                required::Blocked {
                    rule: rule.clone(),
                    reason,
                    attempts: s.attempts,
                    first_ns: s.first_ns,
                    last_ns: s.last_ns,
                    ifindex: s.ifindex,
                    initiator_port: s.initiator_port,
                    reported_attempts: s.reported_attempts,
                },
            );
            n += 1;
        }
        n
    }

    /// After a policy swap: the new set's counters start from zero.
    pub fn reloaded(&mut self, monitor: &Monitor) {
        if let Some(t) = monitor.tables() {
            self.tracker.register(t);
        }
        self.last_work.clear();
    }

    /// One sweep; see the module doc. `enricher` holds the live policy's
    /// tables.
    pub fn sweep(
        &mut self,
        monitor: &mut Monitor,
        enricher: &Enricher,
        sinks: &mut Sinks,
    ) -> anyhow::Result<()> {
        let now = monotonic_ns();
        let timeout = self.timeout.as_nanos() as u64;
        let live = monitor.live_set();
        let mut failed = Vec::new();
        for (key, h) in monitor.handshakes()? {
            if let Some(reason) = required::judge(&h, now, timeout) {
                monitor.forget_handshake(&key)?;
                failed.push((key, h, reason));
            }
        }
        // Drops by the host's own stack: one record per flow, collected
        // whole, judged like refused attempts.
        for (flow, d) in monitor.local_drops()? {
            monitor.forget_local_drop(&flow)?;
            failed.extend(required::local_drop_attempt(&flow, &d));
        }
        let mut answered = Vec::new();
        for (flow, answered_ns) in monitor.watched()? {
            if answered_ns != 0 {
                monitor.unwatch(&flow)?;
                answered.push((flow, answered_ns));
            }
        }
        let mut newly: Vec<FlowKey> = Vec::new();
        {
            let tables = &enricher.tables;
            let clock = enricher.clock;
            for (key, h, reason) in failed {
                // An attempt from before a reload names a rule of the old set.
                let rule = (h.set == live).then(|| tables.rule(h.rule)).flatten();
                let Some(rule) = rule.filter(|r| r.required) else {
                    continue;
                };
                if self.tracker.failed(&key, &h, reason, rule) {
                    newly.push(key.flow);
                    let b = self.tracker.get(&key.flow).expect("just added");
                    let record = records::record(
                        enricher,
                        EventKind::Blocked,
                        &key.flow,
                        b,
                        clock.wall(b.last_ns),
                    );
                    self.console.line(|| required_line(&record));
                    emit_record(&record, sinks)?;
                }
            }
            for (flow, answered_ns) in answered {
                if let Some(b) = self.tracker.recovered(&flow, answered_ns) {
                    let record = records::record(
                        enricher,
                        EventKind::Recovered,
                        &flow,
                        &b,
                        clock.wall(answered_ns),
                    );
                    self.console.line(|| required_line(&record));
                    emit_record(&record, sinks)?;
                }
            }
            let work = monitor.rule_work(tables.rules.len())?;
            self.last_work.resize(work.len(), 0);
            for ((rule, now), last) in tables.rules.iter().zip(&work).zip(&mut self.last_work) {
                self.tracker.working(rule, now.saturating_sub(*last));
                *last = *now;
            }
        }
        for flow in newly {
            if !monitor.watch(&flow)? {
                self.unwatched += 1;
            }
        }
        if let Some(w) = sinks.events.as_mut() {
            w.flush().context("flushing the events file")?;
        }
        Ok(())
    }

    /// `update` records for blocked flows with more failed attempts.
    pub fn refresh(&mut self, enricher: &Enricher, sinks: &mut Sinks) -> anyhow::Result<()> {
        for (flow, b) in self.tracker.changed() {
            let record = records::record(
                enricher,
                EventKind::Update,
                &flow,
                &b,
                enricher.clock.wall(b.last_ns),
            );
            emit_record(&record, sinks)?;
        }
        Ok(())
    }

    /// How often to sweep: often enough that a refusal is reported within
    /// a second, and a timeout within a fraction of itself.
    pub fn period(&self) -> Duration {
        (self.timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    pub fn flush_console(&mut self) {
        self.console.flush();
    }
}

fn key_hex(key: &FlowKey) -> String {
    // SAFETY: FlowKey is plain integers and byte arrays (repr(C), Pod).
    let bytes = unsafe {
        std::slice::from_raw_parts((key as *const FlowKey).cast::<u8>(), size_of::<FlowKey>())
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_from_hex(hex: &str) -> Option<FlowKey> {
    if hex.len() != 2 * size_of::<FlowKey>() || !hex.is_ascii() {
        return None;
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<_>>()?;
    // SAFETY: as many bytes as a FlowKey, any bit pattern of which is valid.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<FlowKey>()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_keys_survive_the_record() {
        // SAFETY: FlowKey is plain integers and byte arrays.
        let mut key: FlowKey = unsafe { std::mem::zeroed() };
        key.initiator[..4].copy_from_slice(&[192, 0, 2, 7]);
        key.service_port = 2888;
        key.proto = 6;
        let back = key_from_hex(&key_hex(&key)).expect("round trip");
        assert_eq!(back, key);
        assert_eq!(key_from_hex("00ff"), None, "a key of another size");
        assert_eq!(key_from_hex(&"zz".repeat(size_of::<FlowKey>())), None);
    }
}
