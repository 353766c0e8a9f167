//! Required-flow tracking in replay: the kernel's attempt table as a
//! bounded `HashMap`, driven by the same [`handshake`] logic, judged in
//! capture time by the daemon's [`Tracker`].

use std::collections::HashMap;

use monitor_common::{
    Parsed,
    classify::Verdict,
    handshake::{self, Applied, Handshake, HandshakeKey, HandshakeTable, MAX_HANDSHAKES, Track},
    stats::Direction,
};

use crate::{
    daemon::unexpected::Enricher,
    events::{EventKind, EventRecord, RequiredStatus},
    required::{self, Tracker, records, tracker::RuleVerdict},
    tables::KernelTables,
};

/// The attempt table, capped like the kernel's. Keys come from packets:
/// foldhash, seeded at random per process, keeps the per-packet lookups
/// cheap without letting a capture be crafted offline to collide, and the
/// table never holds more than [`MAX_HANDSHAKES`].
#[derive(Default)]
struct Table {
    map: HashMap<HandshakeKey, Handshake, foldhash::fast::RandomState>,
}

impl HandshakeTable for Table {
    fn get_mut(&mut self, key: &HandshakeKey) -> Option<&mut Handshake> {
        self.map.get_mut(key)
    }

    fn insert(&mut self, key: &HandshakeKey, value: &Handshake) -> bool {
        if self.map.len() >= MAX_HANDSHAKES as usize {
            return false;
        }
        self.map.entry(*key).or_insert(*value);
        true
    }

    fn remove(&mut self, key: &HandshakeKey) {
        self.map.remove(key);
    }
}

/// Capture time between sweeps of the table: as often as the daemon's.
const SWEEP_EVERY_NS: u64 = 100_000_000;

pub struct Required {
    table: Table,
    pub tracker: Tracker,
    timeout_ns: u64,
    last_sweep_ns: u64,
    /// Attempts not tracked because the table was full (the kernel counts
    /// the same).
    pub table_full: u64,
}

impl Required {
    pub fn new(tables: &KernelTables, timeout_ns: u64) -> Self {
        Self {
            table: Table::default(),
            tracker: Tracker::new(tables),
            timeout_ns,
            last_sweep_ns: 0,
            table_full: 0,
        }
    }

    /// Whether no attempt is pending: then only required flows' packets
    /// and ICMP errors need to come here.
    pub fn idle(&self) -> bool {
        self.table.map.is_empty()
    }

    /// Whether a packet at `ts_ns` that is neither a required flow's nor an
    /// ICMP error would make [`packet`](Self::packet) do anything: sweep
    /// pending attempts. Any other such packet may skip it.
    #[inline]
    pub fn sweep_due(&self, ts_ns: u64) -> bool {
        !self.idle() && ts_ns.saturating_sub(self.last_sweep_ns) >= SWEEP_EVERY_NS
    }

    /// One classified packet. `view` is the buffer `parsed` was read from.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn packet(
        &mut self,
        view: &[u8],
        parsed: &Parsed,
        verdict: &Verdict,
        dir: Direction,
        ts_ns: u64,
        ifindex: u32,
        enricher: &Enricher,
        out: &mut Vec<EventRecord>,
    ) {
        self.sweep(ts_ns, enricher, out, false);
        if !matches!(
            verdict,
            Verdict::Allowed { required: true, .. } | Verdict::Infrastructure
        ) {
            return;
        }
        let track = handshake::track(view, parsed, verdict, dir);
        if matches!(track, Track::None) {
            return;
        }
        match handshake::apply(&mut self.table, &track, ts_ns, 0, ifindex) {
            Applied::TableFull => self.table_full += 1,
            Applied::Answered { rule, flow } => {
                if let Some(info) = enricher.tables.rule(rule) {
                    self.tracker.working(info, 1);
                }
                if let Some(b) = self.tracker.recovered(&flow) {
                    out.push(records::record(
                        enricher,
                        EventKind::Recovered,
                        &flow,
                        &b,
                        enricher.clock.wall(ts_ns),
                    ));
                }
            }
            _ => {}
        }
    }

    /// Judges the table at capture time `now_ns` (at most every
    /// [`SWEEP_EVERY_NS`] unless `force`).
    #[inline]
    fn sweep(&mut self, now_ns: u64, enricher: &Enricher, out: &mut Vec<EventRecord>, force: bool) {
        if !force && now_ns.saturating_sub(self.last_sweep_ns) < SWEEP_EVERY_NS {
            return;
        }
        self.sweep_now(now_ns, enricher, out);
    }

    #[inline(never)]
    fn sweep_now(&mut self, now_ns: u64, enricher: &Enricher, out: &mut Vec<EventRecord>) {
        self.last_sweep_ns = now_ns;
        if self.table.map.is_empty() {
            return;
        }
        let mut failed: Vec<(HandshakeKey, Handshake, required::BlockReason)> = self
            .table
            .map
            .iter()
            .filter_map(|(k, h)| Some((*k, *h, required::judge(h, now_ns, self.timeout_ns)?)))
            .collect();
        // Deterministic output whatever the hash order.
        failed.sort_by_key(|(k, h, _)| {
            (
                h.first_ns,
                k.flow.initiator,
                k.flow.responder,
                k.initiator_port,
            )
        });
        for (key, h, reason) in failed {
            self.table.map.remove(&key);
            let Some(rule) = enricher.tables.rule(h.rule).filter(|r| r.required) else {
                continue;
            };
            if self.tracker.failed(&key, &h, reason, rule) {
                let b = self.tracker.get(&key.flow).expect("just added");
                out.push(records::record(
                    enricher,
                    EventKind::Blocked,
                    &key.flow,
                    b,
                    enricher.clock.wall(b.last_ns),
                ));
            }
        }
    }

    /// The end of the capture at `last_ns`: attempts that were still
    /// unanswered a timeout before the end are judged, later ones cannot be;
    /// blocked flows get their final counts.
    pub fn finish(&mut self, last_ns: u64, enricher: &Enricher, out: &mut Vec<EventRecord>) {
        self.sweep(last_ns, enricher, out, true);
        for (flow, b) in self.tracker.changed() {
            out.push(records::record(
                enricher,
                EventKind::Update,
                &flow,
                &b,
                enricher.clock.wall(b.last_ns),
            ));
        }
    }

    pub fn verdicts(&self) -> Vec<RuleVerdict> {
        self.tracker.verdicts()
    }

    pub fn statuses(&self, ts: std::time::SystemTime, host: Option<&str>) -> Vec<RequiredStatus> {
        records::statuses(&self.verdicts(), ts, host)
    }
}
