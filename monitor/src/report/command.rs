//! The `portconform report` command: files in, summary out (text or JSON on
//! stdout, the HTML page to `--html`), bad lines on stderr as they are met.
//! It fails only when a file cannot be opened (after reporting the others)
//! or when nothing at all could be read.

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use clap::ValueEnum;

use super::{
    aggregate::Aggregator,
    context::PolicyContext,
    documents::Documents,
    html,
    load::{self, BadLine, Record, Sink},
    terminal,
};
use crate::policy::{self, command::Selection};

/// Bad lines printed per file; the rest are counted.
const BAD_LINES_SHOWN: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Tables for a person.
    Text,
    /// The aggregated report as one JSON object, every flow included.
    Json,
}

/// Everything `report` was asked to do.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// Events files (JSON lines; rotated `FILE.N` too), one host or many.
    #[arg(required = true, value_name = "EVENTS.jsonl")]
    pub files: Vec<PathBuf>,
    /// Also write the report as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Rows in each list of unexpected flows (by port, by peer, by packets).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// The policy the events were judged by: lists its required rules even
    /// when no host mentioned them, and describes each cited rule.
    #[command(flatten)]
    pub selection: Selection,
    /// Directory with the vendor documents, to quote cited lines in the HTML
    /// page (repeatable; default: the --policy file's directory).
    #[arg(long, value_name = "DIR")]
    pub docs: Vec<PathBuf>,
}

/// Prints a file's first bad lines on stderr as they come, then hands every
/// line on to the aggregator.
struct Stderr<'a> {
    inner: &'a mut Aggregator,
    path: &'a Path,
    bad: u64,
}

impl Sink for Stderr<'_> {
    fn record(&mut self, host: &str, record: Record) {
        self.inner.record(host, record);
    }

    fn bad_line(&mut self, bad: BadLine) {
        self.bad += 1;
        if self.bad <= BAD_LINES_SHOWN {
            eprintln!("portconform: {}", terminal::terminal_safe(&bad.to_string()));
        }
        self.inner.bad_line(bad);
    }

    fn unknown_kind(&mut self, kind: &str) {
        self.inner.unknown_kind(kind);
    }

    fn numbered(&mut self, host: &str, instance: &str, seq: u64) {
        self.inner.numbered(host, instance, seq);
    }
}

impl Stderr<'_> {
    fn done(&self) {
        if self.bad > BAD_LINES_SHOWN {
            eprintln!(
                "portconform: {}: {} more bad lines",
                self.path.display(),
                self.bad - BAD_LINES_SHOWN
            );
        }
    }
}

fn policy_context(selection: &Selection) -> anyhow::Result<Option<PolicyContext>> {
    let label = match (&selection.policy, &selection.profile) {
        (Some(path), _) => format!("--policy {}", path.display()),
        (None, Some(name)) => format!("--profile {name}"),
        (None, None) => {
            if selection.release.is_some()
                || !selection.enable_condition.is_empty()
                || selection.dynamic_ports.is_some()
            {
                bail!(
                    "--release, --enable-condition and --dynamic-ports choose among a policy's rules: give --policy FILE or --profile NAME too"
                );
            }
            return Ok(None);
        }
    };
    let (policy, options) = policy::command::select(selection)?;
    let resolved = policy::resolve(&policy, &options)?;
    Ok(Some(PolicyContext::new(label, &resolved)))
}

/// `portconform report`.
pub fn run(config: ReportArgs) -> anyhow::Result<()> {
    match report(config) {
        // `report | head` closes the pipe early: not an error.
        Err(e) if broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

fn report(config: ReportArgs) -> anyhow::Result<()> {
    let policy = policy_context(&config.selection)?;
    let mut agg = Aggregator::new();
    let mut unopened = Vec::new();
    for path in &config.files {
        let mut sink = Stderr {
            inner: &mut agg,
            path,
            bad: 0,
        };
        match load::read_file(path, &mut sink) {
            Ok(stats) => {
                sink.done();
                if let Some(why) = &stats.stopped {
                    eprintln!("portconform: {}: {why}", path.display());
                }
                agg.file_read(stats);
            }
            Err(e) => {
                eprintln!("portconform: {:#}", anyhow::Error::new(e));
                unopened.push(path.display().to_string());
            }
        }
    }
    if agg.records() == 0 {
        bail!(
            "no event could be read from {}",
            config
                .files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let report = agg.finish(policy.as_ref());
    let mut out = io::stdout().lock();
    match config.format {
        ReportFormat::Text => terminal::write(&mut out, &report, config.top)?,
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    if let Some(path) = &config.html {
        let citations = html::citations(&report);
        let mut dirs = config.docs.clone();
        // A compiled policy usually sits beside the documents it came from.
        if let Some(dir) = config
            .selection
            .policy
            .as_deref()
            .and_then(Path::parent)
            .filter(|_| config.docs.is_empty())
        {
            dirs.push(if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir.to_path_buf()
            });
        }
        let docs = Documents::load(citations.documents(), &dirs);
        let page = html::render(&report, policy.as_ref(), &docs, config.top);
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("portconform: wrote {}", path.display());
    }
    if !unopened.is_empty() {
        bail!(
            "could not open {} (the report covers the other files)",
            unopened.join(", ")
        );
    }
    Ok(())
}
