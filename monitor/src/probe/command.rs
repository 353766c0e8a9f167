//! `portconform probe`: its arguments; the caller maps `true`, a required
//! flow that does not work, to exit code 1.

use std::{path::PathBuf, time::Duration};

use super::{ProbeConfig, probe};
use crate::policy::command::{RoleArgs, Selection};

#[derive(clap::Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub roles: RoleArgs,
    /// Site inventory: the only addresses probed.
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// How long a probe waits for an answer (e.g. 3s).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = crate::command::parse_timeout)]
    pub timeout: Duration,
    /// Probes started per second (0.1 to 100).
    #[arg(long, value_name = "N", default_value_t = 10.0, value_parser = crate::command::parse_rate)]
    pub rate: f64,
    /// Try the first N hosts (at most 16) of each CIDR entry; by default
    /// networks are not probed at all.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub cidr_sample: u32,
    /// Resolve the inventory's DNS names (through this host's resolver) and
    /// probe their addresses.
    #[arg(long)]
    pub resolve_names: bool,
    #[arg(long, value_enum, default_value_t = crate::command::Format::Table)]
    pub format: crate::command::Format,
}

/// `portconform probe`: `Ok(true)` when a required flow does not work.
pub fn run(args: ProbeArgs) -> anyhow::Result<bool> {
    probe(ProbeConfig {
        selection: args.selection,
        roles: args.roles.roles,
        inventory: args.inventory,
        timeout: args.timeout,
        rate: args.rate,
        cidr_sample: args.cidr_sample,
        resolve_names: args.resolve_names,
        format: args.format,
    })
}
