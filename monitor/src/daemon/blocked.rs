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
    loader::Monitor,
    required::{self, Tracker, records},
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
