//! The `portconform replay` command: policy and host from the command line,
//! packets from the capture set, records to the events file, and a summary
//! of what was read and what could not be, on stderr.

use std::{
    io::IsTerminal as _,
    net::IpAddr,
    path::PathBuf,
    time::{Duration, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ipnet::IpNet;

use super::{
    Counters, Hosts, Replayer,
    capture::CaptureSet,
    carve::{self, CarveOptions, Carver},
    infer_hosts,
};
use crate::{
    events::{EventRecord, JsonlWriter, Rotation, Stream, console, rfc3339},
    kernel_tables::KernelTables,
    policy::{
        self,
        command::{RoleArgs, Selection},
    },
    required::records,
};

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Capture files, merged in time order.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<PathBuf>,
    /// An address of the host the capture was taken on (repeatable); without
    /// it, the address in most packets is taken, and said so.
    #[arg(long = "host", value_name = "ADDR", value_delimiter = ',')]
    pub hosts: Vec<std::net::IpAddr>,
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub roles: RoleArgs,
    /// Site inventory binding the policy's roles to addresses (TOML).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Write events as JSON lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Carve the offending packets into FILE (pcapng): each unexpected
    /// flow's first 8 packets and each blocked attempt's, whole, with the
    /// event's line as the packet comment and the source's interface.
    #[arg(long, value_name = "FILE.pcapng")]
    pub pcap: Option<PathBuf>,
    /// Carve every packet of the unexpected flows, not only their first 8.
    #[arg(long, requires = "pcap")]
    pub pcap_all_packets: bool,
    /// Stop adding packets to the pcapng file at this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 100, requires = "pcap", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub pcap_max_mib: u64,
    #[command(flatten)]
    pub export: crate::export::ExportArgs,
    /// How long a required flow's SYN or request may go unanswered (in
    /// capture time) before it is reported blocked, e.g. `5s`.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::command::parse_timeout)]
    pub handshake_timeout: Duration,
    /// Send no DNS query: names in the policy or inventory bind no address
    /// (an offline workstation; today's answers may not be the capture's).
    #[arg(long)]
    pub no_resolve: bool,
}

/// Everything `replay` was asked to do.
pub struct ReplayConfig {
    pub captures: Vec<PathBuf>,
    pub hosts: Vec<IpAddr>,
    pub selection: Selection,
    pub roles: RoleArgs,
    pub inventory: Option<PathBuf>,
    pub events: Option<PathBuf>,
    /// `--pcap`: the offending packets carved out.
    pub carve: Option<CarveOptions>,
    /// `--export` and its spools.
    pub export: crate::export::ExportArgs,
    /// One stderr line per new unexpected flow, as `run` prints.
    pub console: bool,
    /// How long a required flow's attempt may go unanswered.
    pub handshake_timeout: Duration,
    /// Look up the DNS names the policy and inventory use (today's answers).
    pub resolve_names: bool,
}

/// How long a replay waits at its end for the sinks to take what it
/// spooled; the rest goes with the next run that exports there.
const EXPORT_GRACE: Duration = Duration::from_secs(30);
/// Problems printed per file; the rest are counted.
const PROBLEMS_SHOWN: usize = 10;
/// New-flow lines printed on stderr when events also go to a file.
const CONSOLE_LINES: u64 = 50;
/// Inputs smaller than this replay too fast for a progress bar to help.
const PROGRESS_MIN_BYTES: u64 = 32 * 1024 * 1024;
/// Packets between progress updates: cheap enough to be invisible.
const PROGRESS_EVERY: u64 = 1 << 16;

/// A progress bar over the input bytes, on a terminal and for long inputs
/// only: a pipe or a log file gets no control characters.
fn progress_bar(set: &CaptureSet) -> Option<ProgressBar> {
    let (_, total) = set.progress();
    if total < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
    )
    .ok()?;
    bar.set_style(style);
    Some(bar)
}

/// `portconform replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    replay(ReplayConfig {
        captures: args.captures,
        hosts: args.hosts,
        selection: args.selection,
        roles: args.roles,
        inventory: args.inventory,
        events: args.events,
        carve: args.pcap.map(|path| CarveOptions {
            path,
            all_packets: args.pcap_all_packets,
            max_bytes: args.pcap_max_mib * 1024 * 1024,
        }),
        export: args.export,
        console: true,
        handshake_timeout: args.handshake_timeout,
        resolve_names: !args.no_resolve,
    })
}

pub fn replay(config: ReplayConfig) -> anyhow::Result<()> {
    if config.selection.policy.is_none() && config.selection.profile.is_none() {
        bail!(
            "replay needs a policy: give --policy FILE or --profile NAME (profiles: {})",
            policy::profiles::names()
        );
    }
    let hosts = if config.hosts.is_empty() {
        let mut probe = CaptureSet::open(&config.captures);
        let Some(inf) = infer_hosts(&mut probe) else {
            // What stopped the files is said, with its offset, not only
            // that no packet came out.
            report_failures(&probe);
            bail!(
                "no IP packet could be read from {} to tell which host the capture was taken on",
                describe(&config.captures)
            );
        };
        for (ip, n, total) in &inf.evidence {
            eprintln!(
                "portconform: no --host: taking {ip} as the capture's host (in {n} of the first {total} {} packets); give --host ADDR to choose",
                if ip.is_ipv4() { "IPv4" } else { "IPv6" }
            );
        }
        inf.hosts
    } else {
        config.hosts.clone()
    };
    let tables = build_tables(&config, &hosts)?;
    eprintln!(
        "portconform: replaying {} against {} rules as host {}",
        describe(&config.captures),
        tables.rules.len(),
        hosts
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let events = config
        .events
        .as_ref()
        // A replay's output is one batch: rotating it would split it.
        .map(|p| {
            JsonlWriter::open(
                p,
                Rotation {
                    max_bytes: u64::MAX,
                    keep: 0,
                },
            )
        })
        .transpose()
        .context("opening the events file")?;
    let mut events = match crate::export::Exporter::start(&config.export)? {
        Some(exporter) => Some(
            events
                .unwrap_or_else(JsonlWriter::without_file)
                .with_export(exporter),
        ),
        None => events,
    }
    // A replay is one instance: its lines numbered from 1.
    .map(|w| w.with_stream(Stream::fresh()));
    let carver = config
        .carve
        .as_ref()
        .map(Carver::create)
        .transpose()
        .context("opening the --pcap file")?;
    let mut set = CaptureSet::open(&config.captures);
    let bar = progress_bar(&set);
    let host_label = hosts
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut replayer = Replayer::new(&tables, Hosts::new(&hosts))
        .with_handshake_timeout(config.handshake_timeout)
        .with_host_label(host_label.clone());
    if let Some(carver) = carver {
        replayer = replayer.with_carver(carver);
    }
    let mut out = Vec::new();
    // With an events file the console is a preview: a capture of a scan
    // has a new flow per packet. Without one, it is the only output.
    let console_cap = if events.is_some() {
        CONSOLE_LINES
    } else {
        u64::MAX
    };
    let (mut shown, mut held_back) = (0u64, 0u64);
    let mut emit = |out: &mut Vec<EventRecord>| -> anyhow::Result<()> {
        for r in out.drain(..) {
            let line = config.console.then(|| console::line(&r)).flatten();
            if line.is_some() && shown >= console_cap {
                held_back += 1;
            } else if let Some(line) = line {
                shown += 1;
                match &bar {
                    Some(bar) => bar.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
            if let Some(w) = events.as_mut() {
                w.write(&r).context("writing the events file")?;
            }
        }
        Ok(())
    };
    let progress = |set_progress: u64, packets: u64| {
        if let Some(bar) = &bar {
            bar.set_position(set_progress);
            bar.set_message(format!("{packets} packets"));
        }
    };
    let read_so_far = set.progress_counter();
    set.for_each(|pkt, names| {
        replayer.packet(pkt, names, &mut out);
        let packets = replayer.counters.packets;
        if packets.is_multiple_of(PROGRESS_EVERY) {
            progress(read_so_far(), packets);
        }
        if let Some(e) = replayer.take_carve_error() {
            return Err(anyhow::Error::new(e).context("writing the --pcap file"));
        }
        if out.is_empty() {
            Ok(())
        } else {
            emit(&mut out)
        }
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    replayer.finish(set.interfaces(), &mut out);
    if let Some(e) = replayer.take_carve_error() {
        return Err(anyhow::Error::new(e).context("writing the --pcap file"));
    }
    emit(&mut out)?;
    let end = UNIX_EPOCH + Duration::from_nanos(replayer.counters.last_ts_ns);
    if let Some(w) = events.as_mut() {
        for status in replayer.required.statuses(end, Some(&host_label)) {
            w.write(&status).context("writing the events file")?;
        }
        w.flush().context("flushing the events file")?;
        for (counts, dir) in w.finish_export(EXPORT_GRACE) {
            eprintln!(
                "portconform: {}",
                crate::export::summary_line(&counts, &dir)
            );
        }
    }
    if held_back > 0 {
        eprintln!("portconform: {held_back} more flows not shown here; all are in the events file");
    }
    for line in records::summary_lines(&replayer.required.verdicts()) {
        eprintln!("portconform: {line}");
    }
    if replayer.required.table_full > 0 {
        eprintln!(
            "portconform: {} required-flow attempts not tracked: the attempt table was full (as the kernel's would be)",
            replayer.required.table_full
        );
    }
    if let Some(c) = replayer.carver() {
        eprintln!("portconform: {}", carve_summary(c));
    }
    let problems = report_failures(&set);
    eprintln!(
        "portconform: {}",
        summary(&replayer.counters, replayer.evictions())
    );
    let c = &replayer.counters;
    if c.not_host > 0 && c.not_host == c.packets - c.not_ip - c.truncated - c.malformed - c.too_deep
    {
        eprintln!(
            "portconform: no packet is to or from {}: is --host the address of the host the capture was taken on?",
            hosts
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        );
    }
    if replayer.counters.packets == 0 && problems > 0 {
        bail!("nothing could be read from {}", describe(&config.captures));
    }
    Ok(())
}

/// What `--pcap` wrote, and what it could not, and why.
fn carve_summary(c: &Carver) -> String {
    let n = &c.counts;
    let mut s = format!(
        "wrote {} packets to {}: {} of unexpected flows, {} of blocked attempts",
        n.unexpected + n.blocked,
        c.path().display(),
        n.unexpected,
        n.blocked
    );
    if c.dropped() > 0 {
        s.push_str(&format!(
            "; {} more not written: the file reached --pcap-max-mib",
            c.dropped()
        ));
    }
    if n.not_held > 0 {
        s.push_str(&format!(
            "; {} packets of pending attempts not kept (over {} per attempt or {} MiB in all)",
            n.not_held,
            carve::HOLD_PACKETS,
            carve::HOLD_BYTES >> 20
        ));
    }
    s
}

fn describe(paths: &[PathBuf]) -> String {
    match paths {
        [one] => one.display().to_string(),
        many => format!("{} capture files", many.len()),
    }
}

/// Prints every file's problems; returns how many there were.
fn report_failures(set: &CaptureSet) -> u64 {
    let mut total = 0;
    for s in set.stats() {
        total += s.problems;
        for e in s.errors.iter().take(PROBLEMS_SHOWN) {
            eprintln!("portconform: {e}");
        }
        let shown = s.errors.len().min(PROBLEMS_SHOWN) as u64;
        if s.problems > shown {
            eprintln!(
                "portconform: {}: {} more problems",
                s.path.display(),
                s.problems - shown
            );
        }
        if s.opened && (s.stopped_early || s.skipped > 0) {
            eprintln!(
                "portconform: {}: {} packets read{}{}",
                s.path.display(),
                s.packets,
                if s.skipped > 0 {
                    format!(", {} records skipped", s.skipped)
                } else {
                    String::new()
                },
                if s.stopped_early {
                    ", then reading stopped"
                } else {
                    ""
                }
            );
        }
    }
    total
}

fn summary(c: &Counters, evictions: u64) -> String {
    let span = match c.first_ts_ns {
        Some(first) => format!(
            " from {} to {}",
            rfc3339(UNIX_EPOCH + Duration::from_nanos(first)),
            rfc3339(UNIX_EPOCH + Duration::from_nanos(c.last_ts_ns))
        ),
        None => String::new(),
    };
    let unparsed = c.truncated + c.malformed + c.too_deep;
    let mut s = format!(
        "replayed {} packets{span}: {} allowed, {} unexpected in {} new flows, {} infrastructure, {} later fragments; {} not IP, {} unparsed ({} truncated, {} malformed, {} too deep), {} not to or from the host",
        c.packets,
        c.allowed,
        c.unexpected,
        c.new_flows,
        c.infrastructure,
        c.fragments,
        c.not_ip,
        unparsed,
        c.truncated,
        c.malformed,
        c.too_deep,
        c.not_host
    );
    if c.unsupported_link > 0 {
        s.push_str(&format!(
            ", {} of unsupported link types",
            c.unsupported_link
        ));
    }
    if evictions > 0 {
        s.push_str(&format!(
            "; {evictions} flows evicted from the full flow table (as the kernel would)"
        ));
    }
    s
}

/// The tables `run` would build, with `nodes` defaulting to the host's own
/// addresses: a capture file has no interfaces whose subnets could say.
fn build_tables(config: &ReplayConfig, hosts: &[IpAddr]) -> anyhow::Result<KernelTables> {
    crate::startup::load_tables(
        &config.selection,
        &config.roles.roles,
        config.inventory.as_deref(),
        hosts,
        || hosts.iter().map(|ip| IpNet::from(*ip)).collect(),
        "the capture's host alone",
        config.resolve_names,
    )
}
