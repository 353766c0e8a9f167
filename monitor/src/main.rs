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
    /// Try a candidate firewall ruleset (nftables, or iptables-save) in a
    /// throwaway lab of network namespaces: which required flows it blocks,
    /// which ports no rule allows it lets through. Exit 0: none blocked,
    /// 1: one is, 2: an error.
    Validate(ValidateArgs),
    /// On a staging host, try each required outbound flow to the
    /// inventory's peers and say whether it works. Exit 0: all work, 1: one
    /// does not, 2: an error.
    Probe(ProbeArgs),
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
struct ValidateArgs {
    /// The candidate ruleset: an nft file, or an iptables-save file.
    #[arg(long, value_name = "FILE")]
    ruleset: PathBuf,
    /// The ruleset in force: report only what the candidate changes.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    #[command(flatten)]
    selection: Selection,
    /// Site inventory: the lab's hosts take its addresses (first host of
    /// each entry), so that a ruleset written for the site matches.
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = monitor::validate::Format::Table)]
    format: monitor::validate::Format,
    /// How long an attempt waits for an answer (e.g. 2s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_timeout)]
    timeout: Duration,
    /// The appliance's interface name in the lab, as the ruleset names it.
    #[arg(long, value_name = "NAME", default_value = "eth0", value_parser = parse_ifname)]
    lab_iface: String,
}

#[derive(clap::Args)]
struct ProbeArgs {
    #[command(flatten)]
    selection: Selection,
    /// Site inventory: the only addresses probed.
    #[arg(long, value_name = "FILE")]
    inventory: PathBuf,
    /// How long a probe waits for an answer (e.g. 3s).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_timeout)]
    timeout: Duration,
    /// Probes started per second (0.1 to 100).
    #[arg(long, value_name = "N", default_value_t = 10.0, value_parser = parse_rate)]
    rate: f64,
    /// Try the first N hosts (at most 16) of each CIDR entry; by default
    /// networks are not probed at all.
    #[arg(long, value_name = "N", default_value_t = 0)]
    cidr_sample: u32,
    /// Resolve the inventory's DNS names (through this host's resolver) and
    /// probe their addresses.
    #[arg(long)]
    resolve_names: bool,
    #[arg(long, value_enum, default_value_t = monitor::validate::Format::Table)]
    format: monitor::validate::Format,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=100.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a rate between 0.1 and 100 per second"
        )),
    }
}

fn parse_ifname(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not an interface name (at most 15 letters, digits, - _ .)"
        ))
    }
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
    /// Send no DNS query: names in the policy or inventory bind no address
    /// (an offline workstation; today's answers may not be the capture's).
    #[arg(long)]
    no_resolve: bool,
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
        // Their own exit codes: 0 pass, 1 a required flow blocked, 2 error.
        Command::Validate(args) => return verdict(validate(args)),
        Command::Probe(args) => return verdict(probe(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portconform: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn verdict(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        Err(err) => {
            eprintln!("portconform: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn validate(args: ValidateArgs) -> anyhow::Result<bool> {
    let verdict = monitor::validate::run(monitor::validate::ValidateConfig {
        ruleset: args.ruleset,
        baseline: args.baseline,
        selection: args.selection,
        inventory: args.inventory,
        format: args.format,
        timeout: args.timeout,
        iface: args.lab_iface,
    })?;
    Ok(verdict == monitor::validate::Verdict::Blocked)
}

fn probe(args: ProbeArgs) -> anyhow::Result<bool> {
    monitor::probe::run(monitor::probe::ProbeConfig {
        selection: args.selection,
        inventory: args.inventory,
        timeout: args.timeout,
        rate: args.rate,
        cidr_sample: args.cidr_sample,
        resolve_names: args.resolve_names,
        format: args.format,
    })
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
        resolve_names: !args.no_resolve,
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
