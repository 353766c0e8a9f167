//! The long-running side of `portconform run`: draining the kernel's ring
//! buffer into event records, refreshing the counts of long-lived unexpected
//! flows, periodic summaries, and a clean detach on SIGINT/SIGTERM.

pub mod clock;
pub mod feed;
pub mod summary;
pub mod unexpected;

use std::{collections::HashSet, sync::Arc, time::Duration};

use anyhow::Context as _;
use aya::maps::{MapData, RingBuf};
use monitor_common::flow::FlowEvent;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};

pub use summary::SummaryFormat;

use crate::{
    events::{CapturedPacket, EventRecord, JsonlWriter, PcapngWriter},
    loader::Monitor,
    metrics::Metrics,
    stats::{self, Snapshot},
    tables::KernelTables,
};
use unexpected::{Enricher, Reported, console_line};

#[derive(Clone, Debug)]
pub struct Options {
    pub interval: Duration,
    pub summary: SummaryFormat,
    /// How often counts of long-lived unexpected flows are refreshed.
    pub refresh: Duration,
}

/// Where classified events go.
pub struct Sinks {
    pub events: Option<JsonlWriter>,
    /// Headers of each flow's first packet.
    pub pcap: Option<PcapngWriter>,
    pub metrics: Option<Arc<Metrics>>,
    /// Print one line per new unexpected flow on stderr.
    pub console: bool,
}

/// Events drained per wake-up before timers and signals get a turn, so a
/// flood of new flows cannot starve the rest of the daemon.
const DRAIN_BUDGET: usize = 4096;

/// Runs until SIGINT or SIGTERM, then refreshes flow counts, prints a final
/// summary and returns; the caller drops the monitor, which detaches.
pub async fn run(
    monitor: &mut Monitor,
    tables: Option<&KernelTables>,
    sinks: &mut Sinks,
    options: &Options,
) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    let mut refresh = tokio::time::interval(options.refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    refresh.tick().await;

    let ifaces: Vec<(u32, String)> = monitor
        .interfaces()
        .iter()
        .map(|i| (i.index, i.name.clone()))
        .collect();
    let mut ring = match tables {
        Some(_) => {
            let events = monitor.take_events()?;
            // SAFETY: the AsyncFd owns the ring buffer, hence its fd, for as
            // long as the registration lives.
            let fd = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
                .map_err(std::io::Error::from)
                .context("watching the ring buffer")?;
            Some(fd)
        }
        None => None,
    };
    let empty = KernelTables::default();
    let enricher = Enricher {
        tables: tables.unwrap_or(&empty),
        ifaces: &ifaces,
        clock: clock::Clock::new(),
    };
    let mut reported = Reported::default();
    let mut previous: Option<Snapshot> = None;
    loop {
        tokio::select! {
            ready = async { ring.as_mut().expect("guarded").readable_mut().await }, if ring.is_some() => {
                let mut guard = ready.context("waiting on the ring buffer")?;
                let drained = drain(guard.get_inner_mut(), &enricher, &mut reported, sinks)?;
                if drained < DRAIN_BUDGET {
                    guard.clear_ready();
                }
            }
            _ = ticker.tick() => {
                let snapshot = stats::read(monitor).context("reading the counters")?;
                summary::emit(&snapshot, previous.as_ref(), options.summary, false)?;
                report_kernel(monitor, &snapshot, tables, sinks, options.summary)?;
                previous = Some(snapshot);
            }
            _ = refresh.tick(), if tables.is_some() => {
                refresh_flows(monitor, &enricher, &mut reported, sinks)?;
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    if let Some(ring) = ring.as_mut() {
        drain(ring.get_mut(), &enricher, &mut reported, sinks)?;
    }
    if tables.is_some() {
        refresh_flows(monitor, &enricher, &mut reported, sinks)?;
    }
    if let Some(w) = sinks.events.as_mut() {
        w.flush().context("flushing the events file")?;
    }
    if let Some(p) = sinks.pcap.as_mut() {
        p.flush().context("flushing the pcapng file")?;
    }
    let snapshot = stats::read(monitor).context("reading the counters")?;
    summary::emit(&snapshot, previous.as_ref(), options.summary, true)?;
    report_kernel(monitor, &snapshot, tables, sinks, options.summary)
}

/// Feeds the metrics endpoint and, with a policy, prints what the
/// classifier did and lost (table summaries only: JSON stays one schema).
fn report_kernel(
    monitor: &Monitor,
    traffic: &Snapshot,
    tables: Option<&KernelTables>,
    sinks: &Sinks,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    let kstats = monitor.kstats()?;
    let live = match tables {
        Some(_) => monitor.flows()?.len() as u64,
        None => 0,
    };
    let rules = monitor.rule_stats(tables.map_or(0, |t| t.rules.len()))?;
    if tables.is_some() && format == SummaryFormat::Table {
        let allowed = rules.iter().map(|c| c.packets).sum();
        println!("{}", feed::classifier_line(&kstats, allowed, live));
    }
    if let Some(m) = &sinks.metrics {
        let dropped = sinks.pcap.as_ref().map_or(0, PcapngWriter::packets_dropped);
        m.update(feed::metrics_snapshot(
            traffic, &kstats, &rules, tables, live, dropped,
        ));
    }
    Ok(())
}

/// Decodes up to [`DRAIN_BUDGET`] first sightings; returns how many.
fn drain(
    ring: &mut RingBuf<MapData>,
    enricher: &Enricher,
    reported: &mut Reported,
    sinks: &mut Sinks,
) -> anyhow::Result<usize> {
    let mut n = 0;
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
        let record = enricher.first_sighting(&ev);
        reported.first(&ev, record.sport);
        emit(&record, sinks)?;
        if let Some(pcap) = sinks.pcap.as_mut() {
            let captured = usize::from(ev.captured).min(ev.header.len());
            pcap.write_packet(&CapturedPacket {
                iface: &record.iface,
                ts: record.ts,
                original_len: ev.packet_len,
                data: &ev.header[..captured],
                comment: &console_line(&record),
            })
            .context("writing the pcapng file")?;
        }
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

fn emit(record: &EventRecord, sinks: &mut Sinks) -> anyhow::Result<()> {
    if sinks.console && record.kind == crate::events::EventKind::Unexpected {
        eprintln!("{}", console_line(record));
    }
    if let Some(w) = sinks.events.as_mut() {
        w.write(record).context("writing the events file")?;
    }
    Ok(())
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
        if let Some(initiator_port) = reported.changed(&key, &state) {
            emit(&enricher.update(&key, &state, initiator_port), sinks)?;
        }
    }
    reported.retain(&live);
    if let Some(w) = sinks.events.as_mut() {
        w.flush().context("flushing the events file")?;
    }
    Ok(())
}
