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
    stream::{Followed, StreamReader},
    terminal,
};
use crate::{
    export::Target,
    policy::{self, command::Selection},
};

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
    #[arg(required_unless_present = "from", value_name = "EVENTS.jsonl")]
    pub files: Vec<PathBuf>,
    /// Read the fleet's events from the JetStream stream `run --export
    /// nats://` publishes to (stream PORTCONFORM unless named), as well as
    /// from any files given.
    #[arg(long, value_name = "nats://HOST:PORT[/STREAM]", value_parser = Target::parse)]
    pub from: Option<Target>,
    /// With --from: after the stream's current messages, keep reading, and
    /// print the report again (and rewrite --html) every --every while new
    /// events come, until SIGINT or SIGTERM.
    #[arg(long, requires = "from")]
    pub follow: bool,
    /// How often --follow prints the report again.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration, requires = "follow")]
    pub every: std::time::Duration,
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

    fn numbered(&mut self, host: &str, instance: &str, seq: u64) -> bool {
        self.inner.numbered(host, instance, seq)
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
    let mut stream = match &config.from {
        Some(target) => {
            let mut reader = StreamReader::open(target)?;
            let path = PathBuf::from(reader.url());
            let mut sink = Stderr {
                inner: &mut agg,
                path: &path,
                bad: 0,
            };
            reader.catch_up(&mut sink)?;
            sink.done();
            if let Some(why) = &reader.stats.stopped {
                eprintln!("portconform: {}: {why}", reader.url());
            }
            Some(reader)
        }
        None => None,
    };
    if agg.records() == 0 && !config.follow {
        let mut inputs: Vec<String> = config
            .files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        inputs.extend(config.from.iter().map(Target::label));
        bail!("no event could be read from {}", inputs.join(", "));
    }
    let stats_of = |r: &StreamReader| r.stats.clone();
    let Some(reader) = stream.as_mut().filter(|_| config.follow) else {
        if let Some(r) = &stream {
            agg.file_read(stats_of(r));
        }
        write_report(&config, agg, policy.as_ref())?;
        return unopened_error(&unopened);
    };
    {
        let mut now = agg.clone();
        now.file_read(stats_of(reader));
        write_report(&config, now, policy.as_ref())?;
        let path = PathBuf::from(reader.url());
        loop {
            let mut sink = Stderr {
                inner: &mut agg,
                path: &path,
                bad: 0,
            };
            let followed = reader.follow(&mut sink, config.every)?;
            sink.done();
            if followed == Followed::Read(0) {
                continue;
            }
            let mut now = agg.clone();
            now.file_read(stats_of(reader));
            println!(
                "\n== {} at {} ==",
                reader.url(),
                humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            );
            write_report(&config, now, policy.as_ref())?;
            if followed == Followed::Stopped {
                break;
            }
        }
    }
    unopened_error(&unopened)
}

fn unopened_error(unopened: &[String]) -> anyhow::Result<()> {
    if !unopened.is_empty() {
        bail!(
            "could not open {} (the report covers the other files)",
            unopened.join(", ")
        );
    }
    Ok(())
}

/// The report of what `agg` read: the summary on stdout, the page to
/// --html (replaced whole, so a browser never loads half of one).
fn write_report(
    config: &ReportArgs,
    agg: Aggregator,
    policy: Option<&PolicyContext>,
) -> anyhow::Result<()> {
    let report = agg.finish(policy);
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
        let page = html::render(&report, policy, &docs, config.top);
        let tmp = path.with_extension("html.tmp");
        std::fs::write(&tmp, page).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("portconform: wrote {}", path.display());
    }
    Ok(())
}
