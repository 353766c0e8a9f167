//! The long-running side of `portconform run`: draining the kernel's ring
//! buffer into event records, refreshing the counts of long-lived unexpected
//! flows, periodic summaries, and a clean detach on SIGINT/SIGTERM.

mod blocked;
pub mod command;
pub mod config;
pub mod feed;
mod floods;
pub mod summary;

use std::{
    collections::{BTreeMap, HashSet},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use std::io::Write as _;

use anyhow::Context as _;
use aya::maps::{MapData, RingBuf};
use monitor_common::{
    flow::{FlowEvent, MAX_FLOWS},
    maps::Counter,
};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};

pub use summary::SummaryFormat;

use crate::required::{Tracker, records};
use crate::{
    enrich::{Clock, Enricher, Explanations, Reported},
    events::{
        CapturedPacket, EventRecord, JsonlWriter, LINKTYPE_ETHERNET, PcapngWriter, RecordRef,
        unexpected_line,
    },
    kernel_tables::KernelTables,
    loader::Monitor,
    metrics::Metrics,
    stats::{self, Snapshot},
};

#[derive(Clone, Debug)]
pub struct Options {
    pub interval: Duration,
    pub summary: SummaryFormat,
    /// How often counts of long-lived unexpected flows are refreshed.
    pub refresh: Duration,
    /// How long a required flow's attempt may go unanswered.
    pub handshake_timeout: Duration,
    /// The host named in every record (its hostname).
    pub host: Option<String>,
}

/// Where classified events go.
pub struct Sinks {
    pub events: Option<JsonlWriter>,
    /// Headers of each flow's first packet.
    pub pcap: Option<PcapngWriter>,
    pub metrics: Option<Arc<Metrics>>,
    /// One stderr line per new unexpected flow, rate-limited.
    pub console: Option<Console>,
}

/// Console lines for new flows, at most `BURST` at once and `PER_SEC` per
/// second after that: a flood of spoofed sources must not flood the log.
/// What is held back is counted and said, and is in the events file.
pub struct Console {
    tokens: f64,
    last: std::time::Instant,
    held_back: u64,
    /// What the lines are about, for the "held back" notice.
    label: &'static str,
    /// Standard error, except where a benchmark times the daemon's drain
    /// and wants its own output readable.
    out: Box<dyn std::io::Write + Send>,
}

impl Console {
    const BURST: f64 = 50.0;
    const PER_SEC: f64 = 10.0;

    pub fn new() -> Self {
        Self::with_label("new unexpected flows")
    }

    pub fn with_label(label: &'static str) -> Self {
        Self::to(label, Box::new(std::io::stderr()))
    }

    pub fn to(label: &'static str, out: Box<dyn std::io::Write + Send>) -> Self {
        Self {
            tokens: Self::BURST,
            last: std::time::Instant::now(),
            held_back: 0,
            label,
            out,
        }
    }

    /// Whether a line may be shown at `now`; when it may, how many lines
    /// were held back before it (to be said first).
    fn admit(&mut self, now: std::time::Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * Self::PER_SEC).min(Self::BURST);
        self.last = now;
        if self.tokens < 1.0 {
            self.held_back += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.held_back))
    }

    /// Shows the line `text` makes, if the rate allows. The line is only
    /// formatted when it is shown: in a flood, nearly every one is held
    /// back, and formatting them all cost the drain a share of its time.
    fn line(&mut self, text: impl FnOnce() -> String) {
        if let Some(held_back) = self.admit(std::time::Instant::now()) {
            // Like eprintln!, but a closed stderr is no reason to stop.
            if held_back > 0 {
                let _ = writeln!(
                    self.out,
                    "portconform: {held_back} more {} not shown (rate limit; all are in the events file)",
                    self.label
                );
            }
            let _ = writeln!(self.out, "{}", text());
        }
    }

    /// Says how many lines were held back since the last one shown.
    fn flush(&mut self) {
        if self.held_back > 0 {
            let _ = writeln!(
                self.out,
                "portconform: {} more {} not shown (rate limit; all are in the events file)",
                self.held_back, self.label
            );
            self.held_back = 0;
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

/// Events drained per wake-up before timers and signals get a turn, so a
/// flood of new flows cannot starve the rest of the daemon.
const DRAIN_BUDGET: usize = 4096;

/// Rebuilds the policy tables from the files they came from and, when
/// `run` reads a config file, re-reads it.
pub type Reload<'a> = &'a dyn Fn() -> anyhow::Result<Reloaded>;

/// What a reload brings.
pub struct Reloaded {
    /// The policy's new tables (`None` when counting only).
    pub tables: Option<KernelTables>,
    /// Settings re-read from a config file: the ones that apply without a
    /// restart (interval, refresh, summary format, handshake timeout) are
    /// applied.
    pub options: Option<Options>,
    /// The files to watch from now on, when they changed.
    pub watch: Option<Vec<PathBuf>>,
}

/// How often watched policy/inventory files are checked for changes.
const WATCH_PERIOD: Duration = Duration::from_secs(2);

/// Runs until SIGINT or SIGTERM, then refreshes flow counts, prints a final
/// summary and returns; the caller drops the monitor, which detaches. With a
/// policy, SIGHUP or a change of a `watch`ed file rebuilds it with `reload`
/// and swaps it in without detaching; a reload that fails keeps the policy
/// in force and says why.
pub async fn run(
    monitor: &mut Monitor,
    reload: Option<Reload<'_>>,
    watch: &[PathBuf],
    sinks: &mut Sinks,
    options: &Options,
) -> anyhow::Result<()> {
    let mut ring = match monitor.tables() {
        Some(_) => Some(watch_ring(monitor)?),
        None => None,
    };
    // Built once: a reload swaps its tables (see `swap_policy`).
    let mut enricher = Enricher {
        tables: monitor.shared_tables().unwrap_or_default(),
        ifaces: monitor
            .interfaces()
            .iter()
            .map(|i| (i.index, i.name.clone()))
            .collect(),
        clock: Clock::new(),
        host: options.host.clone(),
    };
    let mut state = State {
        reported: Reported::with_capacity(MAX_FLOWS as usize),
        floods: floods::Floods::new(),
        retired: BTreeMap::new(),
        blocked: monitor
            .tables()
            .map(|t| blocked::Blocked::new(Tracker::new(t), options.handshake_timeout)),
    };
    // Taking over a pinned run: the flows it reported are not new, and the
    // per-rule counts of a policy it ran that this start replaced still
    // count under their rule ids.
    if let Some(a) = monitor.adoption() {
        for (id, c) in &a.retired {
            let total = state.retired.entry(id.clone()).or_default();
            total.packets += c.packets;
            total.bytes += c.bytes;
        }
        if a.adopted && monitor.tables().is_some() {
            for (key, flow) in monitor.flows()? {
                state.reported.adopt(&key, &flow);
            }
        }
        if let (Some(b), Some(t)) = (state.blocked.as_mut(), monitor.tables()) {
            b.restore(&a.blocked, t);
        }
    }
    let mut daemon = Daemon {
        monitor,
        sinks,
        options: options.clone(),
        enricher: &mut enricher,
        state: &mut state,
    };
    let previous = daemon.serve(&mut ring, reload, watch).await?;
    daemon.finish(ring.as_mut(), previous)
}

/// The ring buffer of first sightings, registered with the runtime.
fn watch_ring(monitor: &mut Monitor) -> anyhow::Result<AsyncFd<RingBuf<MapData>>> {
    let events = monitor.take_events()?;
    // SAFETY: the AsyncFd owns the ring buffer, hence its fd, for as long as
    // the registration lives.
    let fd = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(std::io::Error::from)
        .context("watching the ring buffer")?;
    Ok(fd)
}

/// What one run of the daemon works with.
struct Daemon<'a> {
    monitor: &'a mut Monitor,
    sinks: &'a mut Sinks,
    /// A reload may change them.
    options: Options,
    enricher: &'a mut Enricher,
    state: &'a mut State,
}

impl Daemon<'_> {
    /// The event loop, until SIGINT or SIGTERM; returns the last counters
    /// summarized, for the final summary's deltas.
    async fn serve(
        &mut self,
        ring: &mut Option<AsyncFd<RingBuf<MapData>>>,
        reload: Option<Reload<'_>>,
        watch: &[PathBuf],
    ) -> anyhow::Result<Option<Snapshot>> {
        let mut sigint =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut sigterm =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let mut ticker = interval(self.options.interval).await;
        let mut refresh = interval(self.options.refresh).await;
        let mut watcher = interval(WATCH_PERIOD).await;
        let mut sweep = interval(
            self.state
                .blocked
                .as_ref()
                .map_or(Duration::from_secs(1), blocked::Blocked::period),
        )
        .await;
        let mut watch = watch.to_vec();
        let mut stamps = file_stamps(&watch);
        let classifying = ring.is_some();
        let mut previous: Option<Snapshot> = None;
        let Self {
            monitor,
            sinks,
            options,
            enricher,
            state,
        } = self;
        let mut why: Option<&str> = None;
        loop {
            tokio::select! {
                ready = async { ring.as_mut().expect("guarded").readable_mut().await }, if ring.is_some() => {
                    let mut guard = ready.context("waiting on the ring buffer")?;
                    let drained = drain(guard.get_inner_mut(), enricher, &mut state.reported, sinks)?;
                    if drained < DRAIN_BUDGET {
                        guard.clear_ready();
                    }
                    prune_reported(monitor, &mut state.reported)?;
                }
                _ = ticker.tick() => {
                    let snapshot = stats::read(monitor).context("reading the counters")?;
                    summary::emit(&snapshot, previous.as_ref(), options.summary, false)?;
                    report_kernel(monitor, &snapshot, state, sinks, options.summary)?;
                    previous = Some(snapshot);
                    save_stream(monitor, sinks, false)?;
                }
                _ = refresh.tick(), if classifying => {
                    refresh_flows(monitor, enricher, &mut state.reported, sinks)?;
                    state.floods.report(monitor, enricher, sinks)?;
                    if let Some(b) = state.blocked.as_mut() {
                        b.refresh(enricher, sinks)?;
                    }
                }
                _ = sweep.tick(), if state.blocked.is_some() => {
                    sweep_blocked(monitor, enricher, state, sinks)?;
                }
                _ = sighup.recv(), if reload.is_some() => why = Some("SIGHUP"),
                _ = watcher.tick(), if reload.is_some() && !watch.is_empty() => {
                    let now = file_stamps(&watch);
                    if now != stamps {
                        stamps = now;
                        why = Some("a change of a watched file");
                    }
                }
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
            }
            if let Some(why) = why.take() {
                sweep_blocked(monitor, enricher, state, sinks)?;
                let Some((new, files)) = swap_policy(monitor, reload, state, enricher, why) else {
                    continue;
                };
                if let Some(new) = new {
                    if new.interval != options.interval {
                        ticker = interval(new.interval).await;
                    }
                    if new.refresh != options.refresh {
                        refresh = interval(new.refresh).await;
                    }
                    if let Some(b) = state.blocked.as_mut()
                        && b.timeout != new.handshake_timeout
                    {
                        b.timeout = new.handshake_timeout;
                        sweep = interval(b.period()).await;
                    }
                    *options = new;
                }
                if let Some(files) = files {
                    stamps = file_stamps(&files);
                    watch = files;
                }
            }
        }
        Ok(previous)
    }

    /// After the signal: the last events and counts, the required flows'
    /// verdicts, flushed sinks and the final summary.
    fn finish(
        &mut self,
        ring: Option<&mut AsyncFd<RingBuf<MapData>>>,
        previous: Option<Snapshot>,
    ) -> anyhow::Result<()> {
        let Self {
            monitor,
            sinks,
            options,
            enricher,
            state,
        } = self;
        if let Some(ring) = ring {
            drain(ring.get_mut(), enricher, &mut state.reported, sinks)?;
            refresh_flows(monitor, enricher, &mut state.reported, sinks)?;
            state.floods.report(monitor, enricher, sinks)?;
            state.floods.flush_console();
        }
        sweep_blocked(monitor, enricher, state, sinks)?;
        if let Some(b) = state.blocked.as_mut() {
            b.refresh(enricher, sinks)?;
            b.flush_console();
            // A pinned run's successor takes these over (nothing is saved
            // without --pin).
            monitor
                .save_blocked(b.save())
                .context("leaving the blocked flows for the next run")?;
            let verdicts = b.tracker.verdicts();
            if let Some(w) = sinks.events.as_mut() {
                let now = std::time::SystemTime::now();
                for status in records::statuses(&verdicts, now, enricher.host.as_deref()) {
                    w.write(&status).context("writing the events file")?;
                }
            }
            if options.summary == SummaryFormat::Table {
                for line in records::summary_lines(&verdicts) {
                    println!("{line}");
                }
            }
        }
        if let Some(w) = sinks.events.as_mut() {
            w.flush().context("flushing the events file")?;
        }
        if let Some(p) = sinks.pcap.as_mut() {
            p.flush().context("flushing the pcapng file")?;
        }
        if let Some(c) = sinks.console.as_mut() {
            c.flush();
        }
        let snapshot = stats::read(monitor).context("reading the counters")?;
        summary::emit(&snapshot, previous.as_ref(), options.summary, true)?;
        report_kernel(monitor, &snapshot, state, sinks, options.summary)?;
        // Last: every line of this run is written and flushed, so the next
        // pinned run's numbering follows on exactly.
        save_stream(monitor, sinks, true)
    }
}

/// With `run --pin`: leaves where the events' numbering stands in the pin
/// record; `clean` once the last line is written, else a lower bound for
/// the message a successor prints after a crash.
fn save_stream(monitor: &mut Monitor, sinks: &Sinks, clean: bool) -> anyhow::Result<()> {
    let Some(stream) = sinks.events.as_ref().and_then(JsonlWriter::stream) else {
        return Ok(());
    };
    monitor
        .save_stream(crate::pin::record::SavedStream {
            instance: stream.instance().to_string(),
            next_seq: stream.next_seq(),
            clean,
        })
        .context("leaving the events numbering for the next run")
}

/// A timer that skips ticks it missed rather than bursting, already past
/// its first (immediate) tick.
async fn interval(period: Duration) -> tokio::time::Interval {
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer.tick().await;
    timer
}

/// Rules listed by name in the table summary, busiest first.
const TOP_RULES: usize = 5;

/// What the daemon remembers across events and reloads.
struct State {
    reported: Reported,
    /// Strangers' floods past the new-flow budget, reported per refresh.
    floods: floods::Floods,
    /// Per-rule counters of policies swapped out, by rule id, so totals
    /// survive reloads.
    retired: BTreeMap<String, Counter>,
    /// Required-flow tracking, with a policy.
    blocked: Option<blocked::Blocked>,
}

/// Sweeps required-flow attempts, when there is a policy.
fn sweep_blocked(
    monitor: &mut Monitor,
    enricher: &Enricher,
    state: &mut State,
    sinks: &mut Sinks,
) -> anyhow::Result<()> {
    let Some(b) = state.blocked.as_mut() else {
        return Ok(());
    };
    b.sweep(monitor, enricher, sinks)
}

/// Modification time and size of each watched file (`None` if unreadable).
fn file_stamps(paths: &[PathBuf]) -> Vec<Option<(std::time::SystemTime, u64)>> {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// Reloads and swaps the new policy in; on success, the settings and the
/// files to watch that the reload brought. A failed reload changes nothing.
fn swap_policy(
    monitor: &mut Monitor,
    reload: Option<Reload<'_>>,
    state: &mut State,
    enricher: &mut Enricher,
    why: &str,
) -> Option<(Option<Options>, Option<Vec<PathBuf>>)> {
    let reload = reload?;
    let result = reload().and_then(|reloaded| {
        let Some(tables) = reloaded.tables else {
            return Ok((None, reloaded.options, reloaded.watch));
        };
        let rules = tables.rules.len();
        let old: Vec<String> = monitor
            .tables()
            .map(|t| t.rules.iter().map(|r| r.id.clone()).collect())
            .unwrap_or_default();
        let retired = monitor.replace_policy(tables)?;
        if let Some(live) = monitor.shared_tables() {
            enricher.tables = live;
        }
        if let Some(b) = state.blocked.as_mut() {
            b.reloaded(monitor);
        }
        for (id, c) in old.iter().zip(retired) {
            let total = state.retired.entry(id.clone()).or_default();
            total.packets += c.packets;
            total.bytes += c.bytes;
        }
        Ok((Some(rules), reloaded.options, reloaded.watch))
    });
    match result {
        Ok((rules, options, watch)) => {
            match rules {
                Some(rules) => eprintln!(
                    "portconform: policy reloaded after {why}: classifying against {rules} rules"
                ),
                None => eprintln!("portconform: configuration reloaded after {why}"),
            }
            Some((options, watch))
        }
        Err(err) => {
            eprintln!(
                "portconform: reload after {why} failed, the current policy stays in force, as do the running settings: {err:#}"
            );
            None
        }
    }
}

/// Feeds the metrics endpoint and, with a policy, prints what the
/// classifier did and lost (table summaries only: JSON stays one schema).
fn report_kernel(
    monitor: &Monitor,
    traffic: &Snapshot,
    state: &State,
    sinks: &Sinks,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    let kstats = monitor.kstats()?;
    let tables = monitor.tables();
    let live = match tables {
        Some(_) => monitor.flows()?.len() as u64,
        None => 0,
    };
    let live_rules = monitor.rule_stats(tables.map_or(0, |t| t.rules.len()))?;
    // Live counters plus what swapped-out policies counted for the same ids.
    let mut rules: BTreeMap<String, (String, Counter)> = state
        .retired
        .iter()
        .map(|(id, c)| (id.clone(), (String::new(), *c)))
        .collect();
    if let Some(t) = tables {
        for (info, c) in t.rules.iter().zip(&live_rules) {
            let entry = rules.entry(info.id.clone()).or_default();
            entry.0 = info.service.clone();
            entry.1.packets += c.packets;
            entry.1.bytes += c.bytes;
        }
    }
    if tables.is_some() && format == SummaryFormat::Table {
        let allowed = rules.values().map(|(_, c)| c.packets).sum();
        println!("{}", feed::classifier_line(&kstats, allowed, live));
        if let Some(line) = feed::top_rules_line(&rules, tables, TOP_RULES) {
            println!("{line}");
        }
        if let Some(b) = &state.blocked {
            let now: u64 = b.tracker.blocked_per_rule().values().sum();
            println!(
                "{}",
                feed::required_line(&kstats, now, b.tracker.dropped, b.unwatched)
            );
        }
    }
    if let Some(m) = &sinks.metrics {
        let dropped = sinks.pcap.as_ref().map_or(0, PcapngWriter::packets_dropped);
        let mut snapshot = feed::metrics_snapshot(traffic, &kstats, &rules, live, dropped);
        snapshot.exports = sinks
            .events
            .as_ref()
            .map(JsonlWriter::export_counts)
            .unwrap_or_default();
        if let (Some(b), Some(t)) = (&state.blocked, tables) {
            snapshot.blocked_required = b
                .tracker
                .blocked_per_rule()
                .into_iter()
                .map(|(rule, flows)| crate::metrics::BlockedRequired {
                    service: t
                        .rules
                        .iter()
                        .find(|r| r.id == rule)
                        .map(|r| r.service.clone())
                        .unwrap_or_default(),
                    rule,
                    flows,
                })
                .collect();
        }
        m.update(snapshot);
    }
    Ok(())
}

/// Decodes up to [`DRAIN_BUDGET`] first sightings into the sinks, then
/// flushes them; returns how many. Public so that the benchmark times this
/// very path.
pub fn drain<T>(
    ring: &mut RingBuf<T>,
    enricher: &Enricher,
    reported: &mut Reported,
    sinks: &mut Sinks,
) -> anyhow::Result<usize> {
    let mut n = 0;
    let mut explanations = Explanations::default();
    while n < DRAIN_BUDGET {
        let Some(item) = ring.next() else { break };
        n += 1;
        if item.len() < size_of::<FlowEvent>() {
            log::warn!(
                "ring buffer record of {} bytes is too short for an event; skipped",
                item.len()
            );
            continue;
        }
        // SAFETY: the kernel writes FlowEvent records; length checked above.
        let ev: FlowEvent = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
        drop(item);
        let why = enricher.explain_first(&ev, &mut explanations);
        let record = enricher.first_sighting_ref(&ev, &why);
        emit(&record, sinks)?;
        if let Some(pcap) = sinks.pcap.as_mut() {
            let captured = usize::from(ev.captured).min(ev.header.len());
            pcap.write_packet(&CapturedPacket {
                iface: &record.iface,
                linktype: LINKTYPE_ETHERNET,
                ts: record.ts,
                original_len: ev.packet_len,
                data: &ev.header[..captured],
                comment: &unexpected_line(&record),
            })
            .context("writing the pcapng file")?;
        }
        let initiator_port = record.sport;
        drop(record);
        reported.first_explained(&ev, initiator_port, why);
    }
    if n > 0 {
        if let Some(w) = sinks.events.as_mut() {
            w.flush().context("flushing the events file")?;
        }
        if let Some(p) = sinks.pcap.as_mut() {
            p.flush().context("flushing the pcapng file")?;
        }
    }
    Ok(n)
}

/// Writes a record of an unexpected flow to the events file, and its
/// console line if the rate allows.
fn emit(record: &RecordRef, sinks: &mut Sinks) -> anyhow::Result<()> {
    if let Some(console) = sinks.console.as_mut()
        && record.kind == crate::events::EventKind::Unexpected
    {
        console.line(|| unexpected_line(record));
    }
    if let Some(w) = sinks.events.as_mut() {
        w.write(record).context("writing the events file")?;
    }
    Ok(())
}

/// Writes a record to the events file, without a console line.
fn emit_record(record: &EventRecord, sinks: &mut Sinks) -> anyhow::Result<()> {
    if let Some(w) = sinks.events.as_mut() {
        w.write(record).context("writing the events file")?;
    }
    Ok(())
}

/// Flows remembered for refreshes, beyond which the ones the kernel has
/// evicted are dropped at once rather than at the next refresh: a flood of
/// new flows (random sources) would otherwise grow the table by every
/// event until then.
const REPORTED_LIMIT: usize = 4 * MAX_FLOWS as usize;

fn prune_reported(monitor: &Monitor, reported: &mut Reported) -> anyhow::Result<()> {
    reported.prune_over(REPORTED_LIMIT, || {
        Ok(monitor.flows()?.into_iter().map(|(k, _)| k).collect())
    })
}

/// Writes an `update` record for every tracked flow whose counts changed.
fn refresh_flows(
    monitor: &Monitor,
    enricher: &Enricher,
    reported: &mut Reported,
    sinks: &mut Sinks,
) -> anyhow::Result<()> {
    let mut live = HashSet::new();
    for (key, state) in monitor.flows()? {
        live.insert(key);
        if let Some(record) = reported.update(enricher, &key, &state) {
            emit(&record.borrowed(), sinks)?;
        }
    }
    reported.retain(&live);
    if let Some(w) = sinks.events.as_mut() {
        w.flush().context("flushing the events file")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Console;

    #[test]
    fn console_lines_are_rate_limited_and_the_rest_is_counted() {
        let mut c = Console::new();
        let t0 = Instant::now();
        let shown = (0..1000).filter(|_| c.admit(t0).is_some()).count();
        assert_eq!(shown, 50, "a burst of 50, then nothing at the same instant");
        // One second later: ten more, the first of which reports the 950 held back.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(c.admit(t1), Some(950));
        let more = (0..100).filter(|_| c.admit(t1).is_some()).count();
        assert_eq!(more, 9);
    }
}
