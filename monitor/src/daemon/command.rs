//! `portconform run`: load the policy, bind its roles, attach, classify.

use std::{cell::RefCell, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;

use crate::{
    daemon::{self, Sinks, SummaryFormat, config::ConfigFile},
    events::{JsonlWriter, PcapngWriter, Rotation},
    export::{self, ExportArgs, Exporter},
    kernel_tables::KernelTables,
    loader::{EgressMode, Monitor, XdpAttachMode},
    metrics::{Metrics, serve},
    netif,
    policy::command::{RoleArgs, Selection},
    startup,
};

/// The options of `run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Interface to monitor (XDP on ingress, TC on egress); repeat or comma-separate.
    #[arg(
        long = "iface",
        required_unless_present = "config",
        value_delimiter = ','
    )]
    pub ifaces: Vec<String>,
    /// Read these options from a TOML file whose keys are their long names
    /// (`iface = ["eth0"]`, `profile = "thoughtspot"`, `interval = 30`).
    /// Options given on the command line win over the file's. Re-read on
    /// SIGHUP and when it changes; settings that need a restart are named.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub roles: RoleArgs,
    /// Site inventory binding the policy's roles to addresses (TOML).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Write events as JSON lines to FILE (`-` for stdout), rotated by size.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Rotate the events file when it would pass this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub events_max_mib: u64,
    /// Rotated events files to keep.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub events_keep: usize,
    /// Write the headers of each unexpected flow's first packet to FILE (pcapng).
    #[arg(long, value_name = "FILE.pcapng")]
    pub pcap: Option<PathBuf>,
    /// Stop adding packets to the pcapng file at this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub pcap_max_mib: u64,
    /// Serve Prometheus metrics at ADDR:PORT (a bare PORT means 127.0.0.1:PORT).
    #[arg(long, value_name = "ADDR:PORT", value_parser = crate::command::parse_metrics)]
    pub metrics: Option<SocketAddr>,
    /// Seconds between summaries.
    #[arg(long, default_value_t = 5.0, value_parser = crate::command::parse_interval)]
    pub interval: f64,
    /// Seconds between refreshed counts of long-lived unexpected flows.
    #[arg(long, default_value_t = 30.0, value_parser = crate::command::parse_interval)]
    pub refresh: f64,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub summary: SummaryFormat,
    /// How long a required flow's SYN or request may go unanswered before
    /// it is reported blocked (`no-reply`), e.g. `5s`, `1500ms`.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::command::parse_timeout)]
    pub handshake_timeout: Duration,
    /// Pin the programs, links and state maps in DIR (default
    /// /sys/fs/bpf/portconform/default): they stay attached and counting
    /// when the daemon stops, and the next `run --pin` adopts them.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = crate::pin::DEFAULT_DIR)]
    pub pin: Option<PathBuf>,
    /// The name records and exports give this host (their `host`): the
    /// fleet's reports and stream subjects go by it. Default: the hostname.
    #[arg(long, value_name = "NAME")]
    pub host_name: Option<String>,
    #[command(flatten)]
    pub export: ExportArgs,
}

/// Everything `run` was asked to do.
pub struct RunConfig {
    pub ifaces: Vec<String>,
    pub selection: Selection,
    pub roles: RoleArgs,
    pub inventory: Option<PathBuf>,
    pub events: Option<PathBuf>,
    pub events_rotation: Rotation,
    pub pcap: Option<PathBuf>,
    pub pcap_max_bytes: u64,
    pub metrics: Option<SocketAddr>,
    pub interval: Duration,
    pub refresh: Duration,
    pub summary: SummaryFormat,
    /// How long a required flow's SYN or request may go unanswered.
    pub handshake_timeout: Duration,
    /// `--pin`: the pin directory.
    pub pin: Option<PathBuf>,
    /// `--export` and its spools.
    pub export: ExportArgs,
    /// `--host-name`.
    pub host_name: Option<String>,
}

/// `portconform run`. `matches` are what `args` was parsed from: with
/// `--config`, they tell the options given on the command line, which win
/// over the file's, from defaults.
pub fn run(args: RunArgs, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let file = args
        .config
        .as_deref()
        .map(|path| ConfigFile::new::<RunArgs>(path, matches));
    let args = match &file {
        Some(file) => file.load::<RunArgs>()?,
        None => args,
    };
    start(run_config(args, file.as_ref())?, file)
}

fn run_config(args: RunArgs, file: Option<&ConfigFile>) -> anyhow::Result<RunConfig> {
    if args.ifaces.is_empty() {
        match file {
            Some(f) => anyhow::bail!(
                "no interface to monitor: give --iface IF, or iface = [\"IF\"] in {}",
                f.path().display()
            ),
            None => anyhow::bail!("no interface to monitor: give --iface IF"),
        }
    }
    Ok(RunConfig {
        ifaces: args.ifaces,
        selection: args.selection,
        roles: args.roles,
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
        pin: args.pin,
        export: args.export,
        host_name: args.host_name.filter(|h| !h.trim().is_empty()),
    })
}

/// How long a stopping daemon keeps sending what is spooled; the rest goes
/// with the next start.
const EXPORT_GRACE: Duration = Duration::from_secs(5);

fn start(config: RunConfig, file: Option<ConfigFile>) -> anyhow::Result<()> {
    // A mistyped interface is the likeliest mistake: say so before the
    // policy is compiled and its peers' names resolved.
    crate::loader::resolve_interfaces(&config.ifaces)?;
    let tables = match (&config.selection.policy, &config.selection.profile) {
        (None, None) => {
            if config.inventory.is_some()
                || config.events.is_some()
                || !config.export.export.is_empty()
            {
                anyhow::bail!(
                    "--inventory, --events and --export need a policy: give --policy FILE or --profile NAME"
                );
            }
            eprintln!("portconform: no --policy or --profile: counting traffic only");
            None
        }
        _ => Some(build_tables(&config)?),
    };
    // The output files and the metrics port come before anything is
    // attached: a bad path or a taken port stops the start, not a monitor
    // that was already classifying.
    let events = config
        .events
        .as_ref()
        .map(|p| JsonlWriter::open(p, config.events_rotation))
        .transpose()
        .context("opening the events file")?;
    // Exported lines are the events file's, numbered alike; without a
    // file they are still made, for the sinks alone.
    let events = match Exporter::start(&config.export)? {
        Some(exporter) => Some(
            events
                .unwrap_or_else(JsonlWriter::without_file)
                .with_export(exporter),
        ),
        None => events,
    };
    let pcap = config
        .pcap
        .as_ref()
        .map(|p| PcapngWriter::create(p, config.ifaces.iter().cloned(), config.pcap_max_bytes))
        .transpose()
        .context("creating the pcapng file")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let metrics = config.metrics.map(|_| Arc::new(Metrics::new()));
    // Serves while the daemon runs on this runtime; dropped (and stopped)
    // when `run` returns.
    let server = match (config.metrics, &metrics) {
        (Some(addr), Some(m)) => Some(
            runtime
                .block_on(serve(addr, Arc::clone(m)))
                .context("starting the metrics endpoint")?,
        ),
        _ => None,
    };
    let pin = config
        .pin
        .as_deref()
        .map(|dir| crate::pin::PinDir::open(dir, true))
        .transpose()?;
    let mut monitor = Monitor::attach(&config.ifaces, tables.as_ref(), pin)?;
    if let (Some(a), Some(dir)) = (monitor.adoption(), monitor.pin_dir()) {
        eprintln!("{}", startup::adoption_line(a, dir));
        for line in &a.lost {
            eprintln!("portconform: {line}");
        }
    }
    let events = match events {
        Some(w) => {
            let (stream, note) = startup::events_stream(monitor.adoption());
            if let Some(note) = note {
                eprintln!("portconform: {note}");
            }
            // Saved at once, as not clean: a crash from here on is known
            // for one by the next run.
            monitor
                .save_stream(crate::pin::record::SavedStream {
                    instance: stream.instance().to_string(),
                    next_seq: stream.next_seq(),
                    clean: false,
                })
                .context("leaving the events numbering in the pin record")?;
            Some(w.with_stream(stream))
        }
        None => None,
    };
    for iface in monitor.interfaces() {
        let note = match iface.xdp_mode {
            XdpAttachMode::Native => "",
            XdpAttachMode::Generic => {
                " (the driver has no native XDP: using generic mode, which is slower)"
            }
        };
        eprintln!(
            "portconform: attached to {}: xdp {} ingress, tc {} egress{note}",
            iface.name,
            iface.xdp_mode.name(),
            iface.egress_mode.name()
        );
    }
    if monitor
        .interfaces()
        .iter()
        .any(|i| i.egress_mode == EgressMode::Clsact)
    {
        eprintln!(
            "portconform: this kernel has no tcx (6.6): egress is a clsact filter, removed on exit; after a kill -9 the next start removes it"
        );
    }
    if let Some(watch) = monitor.drop_watch() {
        eprintln!("{}", watch.notice());
    }
    if let Some(t) = &tables {
        eprintln!(
            "portconform: classifying against {} rules ({} ports, {} peer networks)",
            t.rules.len(),
            t.port_classes.len(),
            t.peers.len()
        );
    }
    if let Some(server) = &server {
        eprintln!(
            "portconform: metrics at http://{}/metrics",
            server.local_addr()
        );
    }
    let mut sinks = Sinks {
        events,
        pcap,
        metrics,
        console: Some(daemon::Console::new()),
    };
    let host = config.host_name.clone().or_else(netif::hostname);
    let options = options_of(&config, host.clone());
    let watch = watched(&config, file.as_ref());
    let classifying = tables.is_some();
    // The configuration in force: a reload that reads the config file again
    // replaces it (keeping what needs a restart).
    let running = RefCell::new(config);
    let rebuild = || -> anyhow::Result<daemon::Reloaded> {
        let Some(file) = &file else {
            return Ok(daemon::Reloaded {
                tables: Some(build_tables(&running.borrow())?),
                options: None,
                watch: None,
            });
        };
        let new = run_config(file.load::<RunArgs>()?, Some(file))?;
        let (new, notes) = reconfigure(&running.borrow(), new, classifying);
        let tables = classifying.then(|| build_tables(&new)).transpose()?;
        for note in notes {
            eprintln!("portconform: {note}");
        }
        let reloaded = daemon::Reloaded {
            tables,
            options: Some(options_of(&new, host.clone())),
            watch: Some(watched(&new, Some(file))),
        };
        *running.borrow_mut() = new;
        Ok(reloaded)
    };
    let reload: Option<daemon::Reload> =
        (classifying || file.is_some()).then_some(&rebuild as daemon::Reload);
    runtime.block_on(daemon::run(
        &mut monitor,
        reload,
        &watch,
        &mut sinks,
        &options,
    ))?;
    if let Some(w) = sinks.events.as_mut() {
        for (counts, dir) in w.finish_export(EXPORT_GRACE) {
            eprintln!("portconform: {}", export::summary_line(&counts, &dir));
        }
    }
    drop(server);
    let pinned = monitor.pin_dir().map(|d| d.display().to_string());
    drop(monitor);
    match pinned {
        Some(dir) => eprintln!(
            "portconform: exiting; the programs stay attached and counting, pinned in {dir} (`portconform detach --pin {dir} --all` removes them)"
        ),
        None => eprintln!("portconform: detached, exiting"),
    }
    Ok(())
}

fn options_of(config: &RunConfig, host: Option<String>) -> daemon::Options {
    daemon::Options {
        interval: config.interval,
        summary: config.summary,
        refresh: config.refresh,
        handshake_timeout: config.handshake_timeout,
        host,
    }
}

/// The files whose change reloads: the policy, the inventory, the config file.
fn watched(config: &RunConfig, file: Option<&ConfigFile>) -> Vec<PathBuf> {
    [
        config.selection.policy.clone(),
        config.inventory.clone(),
        file.map(|f| f.path().to_path_buf()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A configuration re-read while running, made into the one to run with:
/// the settings that cannot change without detaching or reopening keep
/// their running values, with one note each naming it. The policy (its
/// file or profile, roles, inventory, release, conditions, dynamic ports),
/// the summaries and the handshake timeout apply as read.
fn reconfigure(running: &RunConfig, new: RunConfig, classifying: bool) -> (RunConfig, Vec<String>) {
    let mut notes = Vec::new();
    let mut keep = |changed: bool, what: &str| {
        if changed {
            notes.push(format!(
                "{what} changed in the config file: a restart applies it, the running value stays"
            ));
        }
    };
    keep(running.ifaces != new.ifaces, "iface");
    keep(running.events != new.events, "events");
    keep(
        running.events_rotation.max_bytes != new.events_rotation.max_bytes,
        "events-max-mib",
    );
    keep(
        running.events_rotation.keep != new.events_rotation.keep,
        "events-keep",
    );
    keep(running.pcap != new.pcap, "pcap");
    keep(running.pcap_max_bytes != new.pcap_max_bytes, "pcap-max-mib");
    keep(running.metrics != new.metrics, "metrics");
    keep(running.pin != new.pin, "pin");
    keep(running.host_name != new.host_name, "host-name");
    keep(running.export.export != new.export.export, "export");
    keep(
        running.export.spool_dir != new.export.spool_dir,
        "spool-dir",
    );
    keep(
        running.export.spool_max_mib != new.export.spool_max_mib,
        "spool-max-mib",
    );
    keep(
        (
            &running.export.export_ca,
            &running.export.export_cert,
            &running.export.export_key,
        ) != (
            &new.export.export_ca,
            &new.export.export_cert,
            &new.export.export_key,
        ),
        "export-ca/export-cert/export-key",
    );
    // Classifying or only counting is decided when the programs load.
    let mut new = new;
    let has_policy = new.selection.policy.is_some() || new.selection.profile.is_some();
    if has_policy != classifying {
        keep(
            true,
            if classifying {
                "policy/profile (removed)"
            } else {
                "policy/profile (added)"
            },
        );
        new.selection.policy = running.selection.policy.clone();
        new.selection.profile = running.selection.profile.clone();
    }
    let new = RunConfig {
        ifaces: running.ifaces.clone(),
        events: running.events.clone(),
        events_rotation: running.events_rotation,
        pcap: running.pcap.clone(),
        pcap_max_bytes: running.pcap_max_bytes,
        metrics: running.metrics,
        pin: running.pin.clone(),
        export: running.export.clone(),
        host_name: running.host_name.clone(),
        ..new
    };
    (new, notes)
}

fn build_tables(config: &RunConfig) -> anyhow::Result<KernelTables> {
    startup::load_tables(
        &config.selection,
        &config.roles.roles,
        config.inventory.as_deref(),
        &netif::addresses(&config.ifaces),
        || netif::subnets(&config.ifaces),
        "the monitored interfaces' subnets",
        true,
    )
}
