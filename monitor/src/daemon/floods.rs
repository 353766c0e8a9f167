//! `flood` records from the kernel's aggregates of strangers' new flows
//! past the budget: one per service per refresh in which its aggregate
//! grew, and one console line each, rate-limited like new flows.

use std::collections::HashMap;

use anyhow::Context as _;
use monitor_common::flood::{FloodKey, FloodStats};

use super::{Console, Sinks};
use crate::{
    enrich::{Enricher, addr},
    events::flood::{FloodRecord, merge},
    loader::Monitor,
};

/// Packets each aggregate had when last reported.
pub struct Floods {
    reported: HashMap<FloodKey, u64>,
    console: Console,
}

impl Floods {
    pub fn new() -> Self {
        Self {
            reported: HashMap::new(),
            console: Console::with_label("flood lines"),
        }
    }

    /// Writes a record for every aggregate that grew since the last call.
    pub fn report(
        &mut self,
        monitor: &Monitor,
        enricher: &Enricher,
        sinks: &mut Sinks,
    ) -> anyhow::Result<()> {
        let mut grown: Vec<(FloodKey, FloodStats, u64)> = monitor
            .floods()
            .context("reading the flood aggregates")?
            .into_iter()
            .filter_map(|(key, per_cpu)| {
                let t = merge(&per_cpu);
                let before = self.reported.get(&key).copied().unwrap_or(0);
                (t.packets > before).then_some((key, t, before))
            })
            .collect();
        grown.sort_by_key(|(k, _, _)| *k);
        for (key, t, before) in grown {
            self.reported.insert(key, t.packets);
            let first = addr(t.family, &t.first_source);
            let last = addr(t.family, &t.last_source);
            let sample = if first == last {
                vec![first]
            } else {
                vec![first, last]
            };
            let clock = &enricher.clock;
            let record = FloodRecord::new(
                &key,
                &t,
                before,
                (clock.wall(t.first_ns), clock.wall(t.last_ns)),
                sample,
                enricher.host.as_deref(),
            );
            self.console.line(|| record.line());
            if let Some(w) = sinks.events.as_mut() {
                w.write(&record).context("writing the events file")?;
            }
        }
        Ok(())
    }

    /// Says how many lines the rate limit held back.
    pub fn flush_console(&mut self) {
        self.console.flush();
    }
}
