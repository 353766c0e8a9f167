//! The `portconform learn` command: events files in, the site's addendum to
//! the vendor document out (stdout or `-o`). Files are read by the
//! report's loader; a damaged line is named `file:line: what` on stderr and
//! skipped, a file with no usable line at all is an error naming its first
//! bad line, so a wrong path or a non-events file cannot pass for a quiet
//! site.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use super::{
    collect::Collected,
    group::{Grouper, Prefixes},
    noise::{DEFAULT_SCAN_PORTS, Ephemeral},
    propose::{Thresholds, propose},
    render::{Provenance, markdown},
};
use crate::{
    policy::{self, Inventory, PolicySource, PortRange, command::parse_port_range},
    report::load,
};

/// Bad lines printed per file; the rest are counted.
const BAD_LINES_SHOWN: usize = 10;

/// Everything `learn` was asked to do.
#[derive(clap::Args)]
#[command(after_long_help = "\
Thresholds (a group of flows becomes a row when it meets all of them):
  a flow is one peer reaching one service of one monitored host, counted
  once per UTC day it was seen, so a monitoring server scraping one host
  for a week is 7 flows, and one peer seen once is 1: a one-off. The
  defaults (--min-flows 2, --min-hosts 1, --min-days 1) keep what was seen
  from two peers, or from one on two days; on a fleet's week of events
  raise --min-days to keep only what recurs.
Set aside, and listed after the table with the reason: scans (a peer that
  opened --scan-ports distinct ports of one host, default 10), services a
  `flood` record names, ports in the dynamic range (a client's ephemeral
  port is never proposed), ICMP and other port-less protocols, groups of
  which only answers were seen (backscatter), one-offs and groups below a
  threshold.
")]
pub struct LearnArgs {
    /// Events files written by `run` or `replay` (JSON lines; rotated
    /// `FILE.N` too), one host or many.
    #[arg(required_unless_present = "from", value_name = "EVENTS.jsonl")]
    pub files: Vec<PathBuf>,
    /// Also read the fleet's events from the JetStream stream `run
    /// --export nats://` publishes to, up to its last message.
    #[arg(long, value_name = "nats://HOST:PORT[/STREAM]", value_parser = crate::export::Target::parse)]
    pub from: Option<crate::export::Target>,
    /// The compiled policy the events were judged by: names the hosts'
    /// roles (and, with --inventory, the peers'). Without one, every host
    /// is `nodes`.
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    pub policy: Option<PathBuf>,
    /// An embedded profile (thoughtspot, auth0-psaas) instead of --policy.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Where clients pick their ports, never proposed (default: this
    /// host's net.ipv4.ip_local_port_range; IANA's 49152-65535 always).
    #[arg(long, value_name = "LO-HI", value_parser = parse_port_range)]
    pub dynamic_ports: Option<PortRange>,
    /// Site inventory binding the policy's roles to addresses (TOML).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Monitored hosts a group must be seen by.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub min_hosts: u64,
    /// Distinct UTC days a group must be seen on.
    #[arg(long, value_name = "D", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub min_days: u64,
    /// Flows a group must hold: one peer reaching one host, once per day.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub min_flows: u64,
    /// Distinct ports one peer opens on one host that make it a scan.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SCAN_PORTS as u64, value_parser = clap::value_parser!(u64).range(2..=65_536))]
    pub scan_ports: u64,
    /// Prefix length grouping IPv4 peers that have no role.
    #[arg(long, value_name = "BITS", default_value_t = 24, value_parser = clap::value_parser!(u8).range(8..=32))]
    pub v4_prefix: u8,
    /// Prefix length grouping IPv6 peers that have no role.
    #[arg(long, value_name = "BITS", default_value_t = 64, value_parser = clap::value_parser!(u8).range(16..=128))]
    pub v6_prefix: u8,
    /// Write the Markdown here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `portconform learn`.
pub fn run(args: LearnArgs) -> anyhow::Result<()> {
    let (label, source) = match (&args.policy, &args.profile) {
        (Some(path), _) => (
            Some(format!("--policy {}", path.display())),
            Some(PolicySource::File(path)),
        ),
        (None, Some(name)) => (
            Some(format!("--profile {name}")),
            Some(PolicySource::Profile(name)),
        ),
        (None, None) => (None, None),
    };
    let policy = source.map(policy::load).transpose()?;
    if policy.is_none() && args.inventory.is_some() {
        bail!("--inventory binds a policy's roles: give --policy FILE or --profile NAME too");
    }
    let dynamic = args
        .dynamic_ports
        .unwrap_or_else(|| policy::DynamicPorts::from_host().range);
    let inventory = match (&args.inventory, &policy) {
        (Some(path), Some(policy)) => Some(Inventory::load(path, policy)?),
        _ => None,
    };
    let mut collected = read(&args.files)?;
    if let Some(target) = &args.from {
        let mut reader = crate::report::stream::StreamReader::open(target)?;
        let before = collected.bad_lines.len();
        reader.catch_up(&mut collected)?;
        for line in collected.bad_lines[before..].iter().take(BAD_LINES_SHOWN) {
            eprintln!("portconform: warning: {line}");
        }
        if let Some(why) = &reader.stats.stopped {
            eprintln!("portconform: warning: {}: {why}", reader.url());
        }
    }
    let thresholds = Thresholds {
        min_hosts: args.min_hosts as usize,
        min_days: args.min_days as usize,
        min_flows: args.min_flows as usize,
        scan_ports: args.scan_ports as usize,
    };
    let ephemeral = Ephemeral { host: dynamic };
    let prefixes = Prefixes {
        v4: args.v4_prefix,
        v6: args.v6_prefix,
    };
    let mut grouper = Grouper::new(policy.as_ref(), inventory.as_ref(), prefixes);
    let proposal = propose(&collected, &mut grouper, &thresholds, &ephemeral);
    let text = markdown(
        &proposal,
        &Provenance {
            files: args.files.len() + usize::from(args.from.is_some()),
            policy: label.as_deref(),
            thresholds: &thresholds,
            ephemeral: &ephemeral,
        },
    );
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "portconform: {} rows proposed, {} set aside, from {} unexpected flows -> {}",
                proposal.rows.len(),
                proposal.aside.len(),
                proposal.flows,
                path.display()
            );
        }
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Reads every file into one [`Collected`]; see the module's comment for
/// what fails.
pub fn read(files: &[PathBuf]) -> anyhow::Result<Collected> {
    let mut collected = Collected::default();
    for path in files {
        let before = collected.bad_lines.len();
        let stats = load::read_file(path, &mut collected)?;
        let bad = &collected.bad_lines[before..];
        if stats.records == 0
            && let Some(first) = bad.first()
        {
            bail!("{first}: not an events file (no line of it could be read)");
        }
        for line in bad.iter().take(BAD_LINES_SHOWN) {
            eprintln!("portconform: warning: {line}");
        }
        if bad.len() > BAD_LINES_SHOWN {
            eprintln!(
                "portconform: warning: {}: {} more bad lines",
                path.display(),
                bad.len() - BAD_LINES_SHOWN
            );
        }
        if let Some(why) = &stats.stopped {
            bail!("{}: {why}", path.display());
        }
    }
    Ok(collected)
}
