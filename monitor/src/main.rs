//! The `portconform` command line.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use monitor::{
    daemon::SummaryFormat,
    events::Rotation,
    policy::cli::{PolicyArgs, Selection},
    run::RunConfig,
};

/// Checks live traffic against the ports that vendor documents require.
#[derive(Parser)]
#[command(name = "portconform", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach to interfaces, count their traffic and, with a policy, report
    /// flows it does not allow, until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Compile vendor port documents into a policy, show it, explain a port.
    Policy(PolicyArgs),
    /// Classify capture files (pcap, pcapng, gzipped) as the live monitor
    /// would, writing its events with capture timestamps.
    Replay(ReplayArgs),
    /// Summarize events files (from `run` or `replay`, one host or many):
    /// required flows per host, blocked flows, top unexpected flows.
    Report(ReportArgs),
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Events files (JSON lines; rotated `FILE.N` too), one host or many.
    #[arg(required = true, value_name = "EVENTS.jsonl")]
    files: Vec<PathBuf>,
    /// Also write the report as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = monitor::report::Format::Text)]
    format: monitor::report::Format,
    /// Rows in each list of unexpected flows (by port, by peer, by packets).
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// The policy the events were judged by: lists its required rules even
    /// when no host mentioned them, and describes each cited rule.
    #[command(flatten)]
    selection: Selection,
    /// Directory with the vendor documents, to quote cited lines in the HTML
    /// page (repeatable; default: the --policy file's directory).
    #[arg(long, value_name = "DIR")]
    docs: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture files, merged in time order.
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
    /// An address of the host the capture was taken on (repeatable); without
    /// it, the address in most packets is taken, and said so.
    #[arg(long = "host", value_name = "ADDR", value_delimiter = ',')]
    hosts: Vec<std::net::IpAddr>,
    #[command(flatten)]
    selection: Selection,
    /// Site inventory binding the policy's roles to addresses (TOML).
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// Write events as JSON lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// How long a required flow's SYN or request may go unanswered (in
    /// capture time) before it is reported blocked, e.g. `5s`.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    handshake_timeout: Duration,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Interface to monitor (XDP on ingress, TC on egress); repeat or comma-separate.
    #[arg(long = "iface", required = true, value_delimiter = ',')]
    ifaces: Vec<String>,
    #[command(flatten)]
    selection: Selection,
    /// Site inventory binding the policy's roles to addresses (TOML).
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// Write events as JSON lines to FILE (`-` for stdout), rotated by size.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Rotate the events file when it would pass this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    events_max_mib: u64,
    /// Rotated events files to keep.
    #[arg(long, value_name = "N", default_value_t = 5)]
    events_keep: usize,
    /// Write the headers of each unexpected flow's first packet to FILE (pcapng).
    #[arg(long, value_name = "FILE.pcapng")]
    pcap: Option<PathBuf>,
    /// Stop adding packets to the pcapng file at this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pcap_max_mib: u64,
    /// Serve Prometheus metrics at ADDR:PORT (a bare PORT means 127.0.0.1:PORT).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_metrics)]
    metrics: Option<SocketAddr>,
    /// Seconds between summaries.
    #[arg(long, default_value_t = 5.0, value_parser = parse_interval)]
    interval: f64,
    /// Seconds between refreshed counts of long-lived unexpected flows.
    #[arg(long, default_value_t = 30.0, value_parser = parse_interval)]
    refresh: f64,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    summary: SummaryFormat,
    /// How long a required flow's SYN or request may go unanswered before
    /// it is reported blocked (`no-reply`), e.g. `5s`, `1500ms`.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    handshake_timeout: Duration,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        _ => humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 5s, 1500ms)"))?,
    };
    if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&d) {
        return Err(format!("{s:?} is outside 100ms to 10min"));
    }
    Ok(d)
}

fn parse_metrics(s: &str) -> Result<SocketAddr, String> {
    monitor::metrics::parse_metrics_addr(s).map_err(|e| e.to_string())
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0.1 and 86400"
        )),
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Policy(args) => monitor::policy::cli::run(args),
        Command::Replay(args) => replay(args),
        Command::Report(args) => monitor::report::command::run(monitor::report::ReportConfig {
            files: args.files,
            html: args.html,
            format: args.format,
            top: args.top,
            selection: args.selection,
            docs: args.docs,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portconform: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    monitor::replay::command::run(monitor::replay::command::ReplayConfig {
        captures: args.captures,
        hosts: args.hosts,
        selection: args.selection,
        inventory: args.inventory,
        events: args.events,
        console: true,
        handshake_timeout: args.handshake_timeout,
    })
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    monitor::run::run(RunConfig {
        ifaces: args.ifaces,
        selection: args.selection,
        inventory: args.inventory,
        events: args.events,
        pcap: args.pcap,
        pcap_max_bytes: args.pcap_max_mib * 1024 * 1024,
        metrics: args.metrics,
        events_rotation: Rotation {
            max_bytes: args.events_max_mib * 1024 * 1024,
            keep: args.events_keep,
        },
        interval: Duration::from_secs_f64(args.interval),
        refresh: Duration::from_secs_f64(args.refresh),
        summary: args.summary,
        handshake_timeout: args.handshake_timeout,
    })
}
