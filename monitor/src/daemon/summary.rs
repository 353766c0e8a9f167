//! Periodic traffic summaries on stdout.

use std::{io::Write as _, time::SystemTime};

use anyhow::Context as _;

use crate::stats::{self, Snapshot};

/// How the periodic summary is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// A table per interface on stdout.
    Table,
    /// One JSON object per non-zero counter on stdout.
    Json,
}

pub fn emit(
    snapshot: &Snapshot,
    previous: Option<&Snapshot>,
    format: SummaryFormat,
    last: bool,
) -> anyhow::Result<()> {
    let ts = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    let text = match format {
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
