//! `portconform probe`: on a live staging host, actively tries each
//! required outbound flow towards the inventory's peers (a TCP connect with
//! a timeout; a DNS query for UDP 53; a datagram waiting for an answer for
//! other UDP ports) and says what happened in the monitor's vocabulary.
//! Rate-limited, bounded, and never aimed at an address the inventory does
//! not list.

pub mod command;
pub mod targets;

use std::{
    collections::BTreeSet,
    io::Write as _,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use crate::{
    command::Format,
    netif,
    policy::{self, Inventory, command::Selection},
    reach::{self, L4, Observed, Outcome},
};

/// Most probes in one run.
pub const MAX_PROBES: usize = 256;

pub struct ProbeConfig {
    pub selection: Selection,
    /// The host roles this host plays (`--role`); empty: found from its
    /// addresses in the inventory.
    pub roles: Vec<String>,
    pub inventory: PathBuf,
    pub timeout: Duration,
    /// Attempts started per second.
    pub rate: f64,
    pub cidr_sample: u32,
    pub resolve_names: bool,
    pub format: Format,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub rules: Vec<String>,
    pub sources: Vec<String>,
    pub role: String,
    pub proto: &'static str,
    pub addr: IpAddr,
    pub port: u16,
    pub result: Outcome,
    /// working / refused / filtered / unreachable.
    pub plain: &'static str,
    pub observed: Observed,
}

/// This host's addresses, which are never probed.
fn local_addrs() -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(a) = ifa.address else { continue };
            if let Some(v4) = a.as_sockaddr_in() {
                out.insert(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = a.as_sockaddr_in6() {
                out.insert(IpAddr::V6(v6.ip()));
            }
        }
    }
    out
}

/// Runs the probes; `Ok(true)` when a required flow does not work.
pub fn probe(config: ProbeConfig) -> anyhow::Result<bool> {
    let (policy, options) = policy::command::select(&config.selection)?;
    let inventory = Inventory::load(&config.inventory, &policy)?;
    let local = local_addrs();
    let addrs: Vec<IpAddr> = local.iter().copied().collect();
    let host = policy::roles::host_roles(&policy, &config.roles, Some(&inventory), &addrs)?;
    if policy::roles::has_roles(&policy) || !config.roles.is_empty() {
        eprintln!("portconform: this host plays {host}");
    }
    // The flows this host opens: its own outbound rules, and its peers'
    // inbound rules turned round.
    let policy = policy::roles::view(&policy, &host.roles);
    let resolved = policy::resolve(&policy, &options)?;
    let resolver = netif::Resolver::new(Duration::from_secs(5));
    let resolve = |name: &str| resolver.resolve(name);
    let opts = targets::Options {
        cidr_sample: config.cidr_sample,
        resolve: config.resolve_names.then_some(&resolve as targets::Resolve),
        local: &local,
    };
    let (mut targets, mut notes) = targets::targets(&resolved, &inventory, &opts);
    if targets.len() > MAX_PROBES {
        notes.push(format!(
            "{} probes planned: only the first {MAX_PROBES} are made",
            targets.len()
        ));
        targets.truncate(MAX_PROBES);
    }
    let rate = config.rate.clamp(0.1, 100.0);
    eprintln!(
        "portconform: probing {} flows at most {rate} per second, {} s timeout",
        targets.len(),
        config.timeout.as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let observed = runtime.block_on(probe_all(&targets, rate, config.timeout))?;
    let results: Vec<ProbeResult> = targets
        .iter()
        .zip(observed)
        .map(|(t, o)| ProbeResult {
            rules: t.rules.clone(),
            sources: t.sources.clone(),
            role: t.role.clone(),
            proto: t.l4.as_str(),
            addr: t.addr,
            port: t.port,
            result: o.outcome,
            plain: o.plain(),
            observed: o,
        })
        .collect();
    // A rule whose ports are alternatives works on an address if one does.
    let failing = targets.iter().zip(&results).any(|(t, r)| {
        r.result != Outcome::Working
            && !(t.alternatives
                && targets.iter().zip(&results).any(|(t2, r2)| {
                    t2.addr == t.addr
                        && r2.result == Outcome::Working
                        && t2.rules.iter().any(|id| t.rules.contains(id))
                }))
    });
    let mut out = std::io::stdout().lock();
    match config.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &json!({"results": results, "notes": notes, "exit": i32::from(failing)}),
            )?;
            writeln!(out)?;
        }
        Format::Table => {
            writeln!(
                out,
                "{:<16} {:<14} {:<28} {:<10} {:<16} {:<11}  DETAIL",
                "RULE", "ROLE", "ADDRESS", "PORT", "RESULT", "PLAIN"
            )?;
            for r in &results {
                writeln!(
                    out,
                    "{:<16} {:<14} {:<28} {:<10} {:<16} {:<11}  {}",
                    r.rules.join(","),
                    r.role,
                    r.addr,
                    format!("{}/{}", r.port, r.proto),
                    r.result.as_str(),
                    r.plain,
                    r.observed.detail
                )?;
            }
            for n in &notes {
                writeln!(out, "note: {n}")?;
            }
            let working = results
                .iter()
                .filter(|r| r.result == Outcome::Working)
                .count();
            writeln!(
                out,
                "summary: {} probes, {working} working, {} not",
                results.len(),
                results.len() - working
            )?;
        }
    }
    Ok(failing)
}

/// Starts one probe per 1/rate seconds, at most 16 in flight.
async fn probe_all(
    targets: &[targets::Target],
    rate: f64,
    timeout: Duration,
) -> anyhow::Result<Vec<Observed>> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut set = tokio::task::JoinSet::new();
    let mut results: Vec<Option<Observed>> = vec![None; targets.len()];
    for (i, t) in targets.iter().enumerate() {
        ticker.tick().await;
        let permit = gate.clone().acquire_owned().await?;
        let dst = SocketAddr::new(t.addr, t.port);
        let l4 = t.l4;
        let socket = reach::socket(l4, dst, None).with_context(|| format!("socket for {dst}"))?;
        set.spawn(async move {
            let seen = match l4 {
                L4::Tcp => reach::tcp(socket, dst, timeout).await,
                L4::Udp => {
                    let (request, is_answer) = reach::udp_request(dst.port(), i as u16);
                    reach::udp(socket, dst, &request, is_answer, timeout).await
                }
            };
            drop(permit);
            (i, seen)
        });
    }
    while let Some(done) = set.join_next().await {
        let (i, seen) = done.context("a probe task failed")?;
        results[i] = Some(seen);
    }
    Ok(results.into_iter().flatten().collect())
}
