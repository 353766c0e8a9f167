//! The long-running side of `portconform run`: periodic summaries, and a clean
//! detach on SIGINT/SIGTERM.

use std::{
    io::Write as _,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    loader::Monitor,
    stats::{self, Snapshot},
};

/// How the periodic summary is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// A table per interface on stdout.
    Table,
    /// One JSON object per non-zero counter on stdout.
    Json,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub interval: Duration,
    pub summary: SummaryFormat,
}

/// Runs until SIGINT or SIGTERM, then prints a final summary and returns;
/// the caller drops the monitor, which detaches the programs.
pub async fn run(monitor: &Monitor, options: &Options) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    let mut previous: Option<Snapshot> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let snapshot = stats::read(monitor).context("reading the counters")?;
                emit(&snapshot, previous.as_ref(), options, false)?;
                previous = Some(snapshot);
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    let snapshot = stats::read(monitor).context("reading the counters")?;
    emit(&snapshot, previous.as_ref(), options, true)
}

fn emit(
    snapshot: &Snapshot,
    previous: Option<&Snapshot>,
    options: &Options,
    last: bool,
) -> anyhow::Result<()> {
    let ts = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    let text = match options.summary {
        SummaryFormat::Json => stats::render_json(snapshot, &ts, last),
        SummaryFormat::Table => {
            let title = if last {
                format!("{ts} final counters")
            } else {
                format!("{ts} counters")
            };
            stats::render_table(snapshot, previous, &title)
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("writing the summary")?;
    stdout.flush().context("writing the summary")
}
