//! `portconform validate`: its arguments, and the exit verdict (the caller
//! maps `true`, a required flow blocked, to exit code 1).

use std::{path::PathBuf, time::Duration};

use super::{ValidateConfig, Verdict, try_ruleset};
use crate::policy::command::Selection;

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The candidate ruleset: an nft file, or an iptables-save file.
    #[arg(long, value_name = "FILE")]
    pub ruleset: PathBuf,
    /// The ruleset in force: report only what the candidate changes.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub selection: Selection,
    /// The host role of the policy the appliance plays (repeatable); a
    /// policy with one host role (the seeds' `nodes`) needs none.
    #[arg(long = "role", value_name = "NAME")]
    pub roles: Vec<String>,
    /// Site inventory: the lab's hosts take its addresses (first host of
    /// each entry), so that a ruleset written for the site matches.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = crate::command::Format::Table)]
    pub format: crate::command::Format,
    /// How long an attempt waits for an answer (e.g. 2s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::command::parse_timeout)]
    pub timeout: Duration,
    /// The appliance's interface name in the lab, as the ruleset names it.
    #[arg(long, value_name = "NAME", default_value = "eth0", value_parser = crate::command::parse_ifname)]
    pub lab_iface: String,
}

/// `portconform validate`: `Ok(true)` when the candidate blocks a required
/// flow.
pub fn run(args: ValidateArgs) -> anyhow::Result<bool> {
    let verdict = try_ruleset(ValidateConfig {
        ruleset: args.ruleset,
        baseline: args.baseline,
        selection: args.selection,
        roles: args.roles,
        inventory: args.inventory,
        format: args.format,
        timeout: args.timeout,
        iface: args.lab_iface,
    })?;
    Ok(verdict == Verdict::Blocked)
}
