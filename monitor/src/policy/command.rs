//! The `portconform policy ...` subcommands. Argument parsing and printing
//! only; the work is done by the library modules.

use std::{
    io::{self, Write},
    path::PathBuf,
};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use crate::command::Format;

use super::{
    compile_paths, explain, firewall,
    inventory::Inventory,
    load,
    model::{Policy, PortRange, Release},
    profiles,
    resolve::{self, Conditions, DynamicPorts, ResolveOptions},
    roles, show,
};

#[derive(Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Compile vendor port documents (Markdown/HTML) into a policy file.
    Compile(CompileArgs),
    /// List every rule, role and skipped row of a policy.
    Show(ShowArgs),
    /// Which rules allow a port (PORT, PORT/tcp, PORT/udp or icmp), and why.
    Explain(ExplainArgs),
    /// Write the host's share of the policy as a firewall ruleset (nft or
    /// iptables-save), each rule commented with its id and doc:line.
    Export(ExportArgs),
}

#[derive(Args)]
pub struct CompileArgs {
    /// Vendor documents, compiled in the order given.
    #[arg(required = true, value_name = "DOC")]
    pub docs: Vec<PathBuf>,
    /// Write the policy here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Which host roles of the policy this host plays.
#[derive(Args, Clone, Debug, Default)]
pub struct RoleArgs {
    /// A host role of the policy that this host plays (repeatable). By
    /// default its roles are found from its addresses in --inventory; a
    /// policy with one host role (the seeds' `nodes`) needs neither.
    #[arg(long = "role", value_name = "NAME")]
    pub roles: Vec<String>,
}

/// Which policy to use, and how to resolve it on this host.
#[derive(Args)]
pub struct Selection {
    /// A compiled policy file.
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    pub policy: Option<PathBuf>,
    /// An embedded profile (thoughtspot, auth0-psaas).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// The installed product release: picks among release-dependent rules.
    #[arg(long, value_name = "X.Y.Z", value_parser = parse_release)]
    pub release: Option<Release>,
    /// Declare a condition true (part of its text, a rule id, or `all`);
    /// conditional rules apply only when enabled. Repeatable.
    #[arg(long = "enable-condition", value_name = "TEXT")]
    pub enable_condition: Vec<String>,
    /// Range for the dynamic-port rules (default: this host's
    /// net.ipv4.ip_local_port_range).
    #[arg(long, value_name = "LO-HI", value_parser = parse_port_range)]
    pub dynamic_ports: Option<PortRange>,
}

#[derive(Args)]
pub struct ShowArgs {
    /// A compiled policy file: the same as --policy FILE, as `compile -o`
    /// just wrote it.
    #[arg(value_name = "POLICY", conflicts_with_all = ["policy", "profile"])]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub selection: Selection,
    /// Show one host's view: the rules a host playing NAME enforces (its
    /// own, and its peers' turned round). Repeatable.
    #[arg(long = "role", value_name = "NAME")]
    pub roles: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also show how an inventory binds the policy's roles (and check it).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Also list the compiler's warnings and decisions, with doc:line.
    #[arg(long)]
    pub notes: bool,
    /// Only the rules the compiler had to guess at (marked `?`), each with
    /// what to check against its document line.
    #[arg(long)]
    pub review: bool,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// PORT, PORT/tcp, PORT/udp or icmp.
    #[arg(value_name = "PORT[/PROTO]", value_parser = parse_target)]
    pub target: explain::Target,
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Site inventory: binds the peers' roles to addresses (v4 and v6).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// The host role of the policy this host plays (repeatable); a policy
    /// with one host role (the seeds' `nodes`) needs none.
    #[arg(long = "role", value_name = "NAME")]
    pub roles: Vec<String>,
    /// nft: one file for both families; iptables / ip6tables: an
    /// iptables-save file for IPv4 / IPv6.
    #[arg(long, value_enum)]
    pub format: firewall::Syntax,
    /// Also allow the optional rules (required = no). Conditional rules
    /// are allowed when their condition is enabled (--enable-condition).
    #[arg(long)]
    pub include_optional: bool,
    /// Write the ruleset here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_release(s: &str) -> Result<Release, String> {
    s.parse()
}

/// `--dynamic-ports LO-HI`, for every command that takes it.
pub fn parse_port_range(s: &str) -> Result<PortRange, String> {
    resolve::parse_range(s).ok_or_else(|| format!("{s:?} is not a port range LO-HI"))
}

fn parse_target(s: &str) -> Result<explain::Target, String> {
    s.parse()
}

pub fn run(args: PolicyArgs) -> anyhow::Result<()> {
    let result = match args.command {
        PolicyCommand::Compile(a) => compile(a),
        PolicyCommand::Show(a) => show(a),
        PolicyCommand::Explain(a) => explain(a),
        PolicyCommand::Export(a) => export(a),
    };
    // `policy show | head` closes the pipe early: not an error.
    match result {
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn compile(args: CompileArgs) -> anyhow::Result<()> {
    let policy = compile_paths(&args.docs)?;
    let mut stderr = io::stderr().lock();
    for w in &policy.warnings {
        writeln!(stderr, "warning: {w}")?;
    }
    let text = policy.to_toml();
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?
        }
        None => io::stdout().lock().write_all(text.as_bytes())?,
    }
    writeln!(
        stderr,
        "compiled {} document{}: {} rules ({} to review), {} skipped, {} warnings{}",
        policy.documents.len(),
        if policy.documents.len() == 1 { "" } else { "s" },
        policy.rules.len(),
        policy.rules.iter().filter(|r| !r.review.is_empty()).count(),
        policy.skipped.len(),
        policy.warnings.len(),
        args.output
            .as_ref()
            .map(|p| format!(" -> {}", p.display()))
            .unwrap_or_default(),
    )?;
    Ok(())
}

pub fn select(selection: &Selection) -> anyhow::Result<(Policy, ResolveOptions)> {
    let policy = match (&selection.policy, &selection.profile) {
        (Some(path), _) => load::from_file(path)?,
        (None, Some(name)) => profiles::load(name)?,
        (None, None) => bail!(
            "give --policy FILE or --profile NAME (profiles: {})",
            profiles::names()
        ),
    };
    let all = selection.enable_condition.iter().any(|c| c == "all");
    let options = ResolveOptions {
        release: selection.release.clone(),
        conditions: Conditions {
            all,
            enabled: selection
                .enable_condition
                .iter()
                .filter(|c| *c != "all")
                .cloned()
                .collect(),
        },
        dynamic_ports: selection
            .dynamic_ports
            .map(DynamicPorts::configured)
            .unwrap_or_else(DynamicPorts::from_host),
    };
    Ok((policy, options))
}

fn show(mut args: ShowArgs) -> anyhow::Result<()> {
    if let Some(file) = args.file.take() {
        args.selection.policy = Some(file);
    }
    let (mut policy, options) = select(&args.selection)?;
    let inventory = args
        .inventory
        .as_ref()
        .map(|path| Inventory::load(path, &policy))
        .transpose()?;
    if !args.roles.is_empty() {
        let host = roles::host_roles(&policy, &args.roles, None, &[])?;
        policy = roles::view(&policy, &host.roles);
    }
    let mut resolved = resolve::resolve(&policy, &options)?;
    let all = resolved.len();
    if args.review {
        resolved.retain(|r| !r.rule.review.is_empty());
    }
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => {
            let mut value = show::json(&policy, &resolved, &options);
            if !args.roles.is_empty() {
                value["host_roles"] = serde_json::json!(args.roles);
            }
            if let Some(inv) = &inventory {
                value["inventory"] = inv.bindings_json(&policy);
            }
            serde_json::to_writer_pretty(&mut out, &value)?;
            writeln!(out)?;
        }
        Format::Table => {
            if !args.roles.is_empty() {
                writeln!(
                    out,
                    "as enforced by a host playing {}: its own rules, and its peers' turned round",
                    args.roles.join(", ")
                )?;
            }
            if args.review {
                writeln!(
                    out,
                    "only the {} of {all} rules the compiler had to guess at: check each \
                     against its line",
                    resolved.len()
                )?;
            }
            show::table(&mut out, &policy, &resolved, &options)?;
            if args.notes {
                show::notes(&mut out, &policy)?;
            }
            if let Some(inv) = &inventory {
                inv.write_bindings(&mut out, &policy)?;
            }
        }
    }
    Ok(())
}

fn explain(args: ExplainArgs) -> anyhow::Result<()> {
    let (policy, options) = select(&args.selection)?;
    let resolved = resolve::resolve(&policy, &options)?;
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &explain::json(&args.target, &resolved))?;
            writeln!(out)?;
        }
        Format::Table => explain::text(&mut out, &args.target, &resolved, &options)?,
    }
    Ok(())
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let (policy, options) = select(&args.selection)?;
    let inventory = args
        .inventory
        .as_ref()
        .map(|path| Inventory::load(path, &policy))
        .transpose()?;
    let product = roles::product_roles(&policy);
    if product.len() > 1 && args.roles.is_empty() {
        bail!(
            "the policy has several host roles ({}): say which this host plays with --role NAME",
            product.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let host = roles::host_roles(&policy, &args.roles, None, &[])?;
    let origin = match (&args.selection.policy, &args.selection.profile) {
        (Some(path), _) => format!("policy {}", path.display()),
        (None, Some(name)) => format!("profile {name}"),
        (None, None) => "the policy".to_string(),
    };
    let fw = firewall::build(
        &policy,
        &options,
        &firewall::ExportOptions {
            origin,
            host,
            inventory: inventory.as_ref(),
            include_optional: args.include_optional,
        },
    )?;
    let text = firewall::render(&fw, args.format);
    let mut stderr = io::stderr().lock();
    for note in firewall::header::set_notes(&fw.sets, &fw.allows) {
        writeln!(stderr, "warning: {note}")?;
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?
        }
        None => io::stdout().lock().write_all(text.as_bytes())?,
    }
    let mut ids: Vec<&str> = fw.allows.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    writeln!(
        stderr,
        "exported {} rules of the policy as {} ({} lines){}",
        ids.len(),
        match args.format {
            firewall::Syntax::Nft => "an nft ruleset",
            firewall::Syntax::Iptables => "an iptables-save ruleset (IPv4)",
            firewall::Syntax::Ip6tables => "an ip6tables-save ruleset (IPv6)",
        },
        text.lines().count(),
        args.output
            .as_ref()
            .map(|p| format!(" -> {}", p.display()))
            .unwrap_or_default(),
    )?;
    Ok(())
}
