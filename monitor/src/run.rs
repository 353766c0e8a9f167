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
    policy::cli::Selection,
    startup,
};

/// Everything `run` was asked to do.
pub struct RunConfig {
    pub ifaces: Vec<String>,
    pub selection: Selection,
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
}

pub fn run(config: RunConfig) -> anyhow::Result<()> {
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
    let mut monitor = Monitor::attach(&config.ifaces, tables.as_ref())?;
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
    drop(monitor);
    eprintln!("portconform: detached, exiting");
    Ok(())
}

fn build_tables(config: &RunConfig) -> anyhow::Result<KernelTables> {
    startup::load_tables(
        &config.selection,
        config.inventory.as_deref(),
        || netif::subnets(&config.ifaces),
        "the monitored interfaces' subnets",
        true,
    )
}
