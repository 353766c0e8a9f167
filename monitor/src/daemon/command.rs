//! `portconform run`: load the policy, bind its roles, attach, classify.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;

use crate::{
    daemon::{self, Sinks, SummaryFormat},
    events::{JsonlWriter, PcapngWriter, Rotation},
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
    #[arg(long = "iface", required = true, value_delimiter = ',')]
    pub ifaces: Vec<String>,
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
}

/// `portconform run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    start(RunConfig {
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
    })
}

fn start(config: RunConfig) -> anyhow::Result<()> {
    // A mistyped interface is the likeliest mistake: say so before the
    // policy is compiled and its peers' names resolved.
    crate::loader::resolve_interfaces(&config.ifaces)?;
    let tables = match (&config.selection.policy, &config.selection.profile) {
        (None, None) => {
            if config.inventory.is_some() || config.events.is_some() {
                anyhow::bail!(
                    "--inventory and --events need a policy: give --policy FILE or --profile NAME"
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
    let options = daemon::Options {
        interval: config.interval,
        summary: config.summary,
        refresh: config.refresh,
        handshake_timeout: config.handshake_timeout,
        host: netif::hostname(),
    };
    let rebuild = || build_tables(&config);
    let reload: Option<daemon::Reload> = tables.as_ref().map(|_| &rebuild as daemon::Reload);
    let watch: Vec<PathBuf> = [config.selection.policy.clone(), config.inventory.clone()]
        .into_iter()
        .flatten()
        .collect();
    runtime.block_on(daemon::run(
        &mut monitor,
        reload,
        &watch,
        &mut sinks,
        &options,
    ))?;
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
