//! `portconform validate`: tries a candidate firewall ruleset before it
//! ships. A throwaway lab of network namespaces plays the appliance (with
//! the ruleset loaded by the real `nft -f`) and a peer for each role; one
//! real connection is made per required flow and to a sample of ports no
//! rule allows, while the monitor itself watches the appliance's interface
//! and nftables tracing names the rule that dropped each packet. The lab is
//! removed afterwards, also on an error or Ctrl-C.
//!
//! Exit codes: 0 no required flow blocked, 1 one is (with `--baseline`:
//! one that the baseline let through), 2 an error (a ruleset nft rejects,
//! with nft's message and line).

mod attempts;
pub mod command;
pub mod hosts;
pub mod lab;
pub mod observe;
pub mod plan;
pub mod report;
pub mod ruleset;
pub mod trace;

use std::{
    collections::BTreeSet,
    ffi::OsString,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::{
    command::Format,
    policy::{self, Inventory, command::Selection},
};

use self::{
    hosts::Hosts, lab::Lab, observe::MonitorRun, plan::Plan, report::Report, ruleset::Ruleset,
    trace::Tracer,
};

pub struct ValidateConfig {
    pub ruleset: PathBuf,
    pub baseline: Option<PathBuf>,
    pub selection: Selection,
    /// The host roles the appliance plays (`--role`).
    pub roles: Vec<String>,
    pub inventory: Option<PathBuf>,
    pub format: Format,
    /// How long an attempt waits for an answer.
    pub timeout: Duration,
    /// The appliance's interface name in the lab (a ruleset may name it).
    pub iface: String,
}

/// What the run found, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No required flow blocked (or, with a baseline, none newly blocked).
    Pass,
    Blocked,
}

/// A scratch directory for translated rulesets, trace output and events,
/// removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let path =
            std::env::temp_dir().join(format!("portconform-validate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `run` arguments that make the lab's monitor judge as this plan does.
fn monitor_args(
    config: &ValidateConfig,
    dynamic: policy::PortRange,
    inventory: &Path,
) -> Vec<OsString> {
    let s = &config.selection;
    let mut args: Vec<OsString> = Vec::new();
    if let Some(p) = &s.policy {
        args.extend(["--policy".into(), p.clone().into_os_string()]);
    }
    if let Some(p) = &s.profile {
        args.extend(["--profile".into(), p.into()]);
    }
    if let Some(r) = &s.release {
        args.extend(["--release".into(), r.to_string().into()]);
    }
    for c in &s.enable_condition {
        args.extend(["--enable-condition".into(), c.into()]);
    }
    for r in &config.roles {
        args.extend(["--role".into(), r.into()]);
    }
    args.extend([
        "--dynamic-ports".into(),
        format!("{}-{}", dynamic.lo, dynamic.hi).into(),
        "--inventory".into(),
        inventory.as_os_str().to_owned(),
    ]);
    // The monitor flags a required flow `blocked` after the same wait as
    // the attempts give it.
    args.extend([
        "--handshake-timeout".into(),
        format!("{}ms", config.timeout.as_millis().max(100)).into(),
    ]);
    args
}

pub fn try_ruleset(config: ValidateConfig) -> anyhow::Result<Verdict> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "validate builds a lab of network namespaces and loads nftables rulesets: run it as root"
        );
    }
    let started = Instant::now();
    let (policy, options) = policy::command::select(&config.selection)?;
    let inventory = config
        .inventory
        .as_ref()
        .map(|path| Inventory::load(path, &policy))
        .transpose()?;
    let product = policy::roles::product_roles(&policy);
    if product.len() > 1 && config.roles.is_empty() {
        bail!(
            "the policy has several host roles ({}): say which the appliance plays with --role NAME",
            product.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let host = policy::roles::host_roles(&policy, &config.roles, None, &[])?;
    if policy::roles::has_roles(&policy) || !config.roles.is_empty() {
        eprintln!("portconform: the lab's appliance plays {host}");
    }
    // What the appliance enforces: its own rules, and its peers' turned
    // round; the lab's monitor is given the same roles.
    let policy = policy::roles::view(&policy, &host.roles);
    let resolved = policy::resolve(&policy, &options)?;
    let roles = policy.roles();
    let appliance_role = host
        .roles
        .first()
        .map_or(policy::model::NODES, String::as_str);
    let hosts = match &inventory {
        Some(inventory) => Hosts::from_inventory(&roles, inventory, appliance_role),
        None => Hosts::documentation(&roles, appliance_role),
    };
    let scratch = Scratch::new()?;
    let candidate = ruleset::read(&config.ruleset, &scratch.0, "candidate")?;
    let baseline = config
        .baseline
        .as_ref()
        .map(|p| ruleset::read(p, &scratch.0, "baseline"))
        .transpose()?;
    let mentioned: BTreeSet<u16> = candidate
        .mentioned
        .iter()
        .chain(baseline.iter().flat_map(|b| b.mentioned.iter()))
        .copied()
        .collect();
    let plan = plan::plan(&resolved, &hosts, &mentioned);
    let lab_inventory = scratch.file("lab-inventory.toml");
    std::fs::write(&lab_inventory, hosts.inventory_toml())
        .with_context(|| format!("writing {}", lab_inventory.display()))?;
    let mut notes = hosts.notes.clone();
    if plan.unexpected_left_out > 0 {
        notes.push(format!(
            "{} more ports that no rule allows were not tried (at most {} are)",
            plan.unexpected_left_out,
            plan::MAX_UNEXPECTED
        ));
    }
    for r in [Some(&candidate), baseline.as_ref()].into_iter().flatten() {
        for line in &r.untranslated {
            notes.push(format!(
                "{}: iptables-restore-translate could not translate `{line}`: the lab runs without it",
                r.origin.display()
            ));
        }
    }
    eprintln!(
        "portconform: lab of {} hosts ({}); {} attempts per ruleset, {} s timeout",
        hosts.members.len(),
        hosts
            .members
            .iter()
            .map(|m| format!(
                "{} {}",
                m.label,
                m.addrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
            .collect::<Vec<_>>()
            .join(", "),
        plan.attempts.len(),
        config.timeout.as_secs_f64()
    );
    let exe = std::env::current_exe().context("locating the portconform binary")?;
    let margs = monitor_args(&config, options.dynamic_ports.range, &lab_inventory);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rulesets: Vec<&Ruleset> = baseline.iter().chain([&candidate]).collect();
    let reports = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let work = in_lab(
            &config, &hosts, &plan, &rulesets, &scratch, &exe, &margs, &mut notes,
        );
        tokio::select! {
            r = work => r,
            _ = int.recv() => bail!("interrupted (SIGINT): the lab is removed"),
            _ = term.recv() => bail!("terminated (SIGTERM): the lab is removed"),
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    output(&config, &reports, &hosts, &notes, seconds)
}

/// Builds the lab, then for each ruleset: loads it, watches and attempts.
#[allow(clippy::too_many_arguments)]
async fn in_lab(
    config: &ValidateConfig,
    hosts: &Hosts,
    plan: &Plan,
    rulesets: &[&Ruleset],
    scratch: &Scratch,
    exe: &Path,
    monitor_args: &[OsString],
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<Report>> {
    let lab = Lab::build(hosts, &config.iface, plan.ephemeral)?;
    let app = lab.ns(hosts::APPLIANCE).to_string();
    // Every ruleset must load before any traffic flows.
    for r in rulesets {
        r.apply(&app, true)?;
    }
    let listeners = attempts::Listeners::open(&lab, &plan.attempts)?;
    notes.extend(listeners.failures.iter().cloned());
    let trace_file = scratch.file("trace-table.nft");
    std::fs::write(&trace_file, trace::trace_table())
        .with_context(|| format!("writing {}", trace_file.display()))?;
    let mut reports = Vec::new();
    for (n, r) in rulesets.iter().enumerate() {
        flush(&app)?;
        r.apply(&app, false)?;
        apply_file(&app, &trace_file)?;
        let tracer = Tracer::start(&app, &scratch.file(&format!("trace-{n}.txt")))
            .context("starting `nft monitor trace` in the lab")?;
        let monitor = MonitorRun::start(
            exe,
            &app,
            &lab.iface,
            monitor_args,
            &scratch.file(&format!("events-{n}.jsonl")),
        )?;
        // The monitor's XDP and tc attachment may briefly disturb the
        // veth it attaches to.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut observed = attempts::run(&lab, &plan.attempts, config.timeout).await;
        // An attempt that failed without nftables ever seeing it (no traced
        // drop of it or of its answer) met the lab, not the ruleset: once
        // more, so that a slow link does not pass for a blocked flow.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let so_far = tracer.snapshot().context("reading the nftables trace")?;
        let again: Vec<usize> = plan
            .attempts
            .iter()
            .zip(&observed)
            .enumerate()
            .filter(|(_, (a, o))| {
                o.outcome != crate::reach::Outcome::Working
                    && trace::stopper(&so_far, a.l4, a.src, a.dst, a.port).is_none()
            })
            .map(|(i, _)| i)
            .collect();
        if !again.is_empty() {
            let retry: Vec<plan::Attempt> =
                again.iter().map(|&i| plan.attempts[i].clone()).collect();
            let second = attempts::run(&lab, &retry, config.timeout).await;
            for (&i, o) in again.iter().zip(second) {
                observed[i] = o;
            }
            notes.push(format!(
                "{}: {} attempts got no answer before nftables saw them and were tried once more",
                r.origin.display(),
                again.len()
            ));
        }
        // Let the monitor's sweep of unanswered handshakes catch up with
        // the last attempts.
        tokio::time::sleep(config.timeout + Duration::from_millis(1500)).await;
        let seen = monitor.finish()?;
        let drops = tracer.finish().context("reading the nftables trace")?;
        reports.push(report::build(
            &r.origin.display().to_string(),
            plan,
            hosts,
            &observed,
            &drops,
            &seen,
        ));
    }
    drop(listeners);
    drop(lab);
    Ok(reports)
}

fn nft(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .output()
        .context("running nft (is nftables installed?)")?;
    if !out.status.success() {
        bail!(
            "nft {} in the lab: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn flush(ns: &str) -> anyhow::Result<()> {
    nft(ns, &["flush", "ruleset"])
}

fn apply_file(ns: &str, file: &Path) -> anyhow::Result<()> {
    nft(ns, &["-f", &file.display().to_string()])
}

fn output(
    config: &ValidateConfig,
    reports: &[Report],
    hosts: &Hosts,
    notes: &[String],
    seconds: f64,
) -> anyhow::Result<Verdict> {
    use std::io::Write as _;
    let after = reports.last().context("no report")?;
    let diff = (reports.len() == 2).then(|| report::diff(&reports[0], after));
    let verdict = match &diff {
        Some(d) if d.newly_blocked > 0 => Verdict::Blocked,
        Some(_) => Verdict::Pass,
        None if after.blocked > 0 => Verdict::Blocked,
        None => Verdict::Pass,
    };
    let mut out = std::io::stdout().lock();
    match config.format {
        Format::Json => {
            let lab: Vec<_> = hosts
                .members
                .iter()
                .map(|m| json!({"host": m.label, "role": m.role, "addrs": m.addrs}))
                .collect();
            let mut value = json!({
                "ruleset": after.ruleset,
                "lab": lab,
                "notes": notes,
                "seconds": (seconds * 10.0).round() / 10.0,
                "exit": if verdict == Verdict::Blocked { 1 } else { 0 },
            });
            match &diff {
                Some(d) => {
                    value["baseline"] = json!(d.baseline);
                    value["diff"] = serde_json::to_value(d)?;
                }
                None => value["report"] = serde_json::to_value(after)?,
            }
            serde_json::to_writer_pretty(&mut out, &value)?;
            writeln!(out)?;
        }
        Format::Table => {
            match &diff {
                Some(d) => {
                    report::diff_table(&mut out, d, after)?;
                    for n in notes {
                        writeln!(out, "note: {n}")?;
                    }
                }
                None => report::table(&mut out, after, notes)?,
            }
            writeln!(out, "lab removed; {seconds:.1} s")?;
        }
    }
    Ok(verdict)
}
