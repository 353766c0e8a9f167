//! The `portconform` command line as a value: the binary parses it, and the
//! package build renders it into man pages and shell completions
//! (`command()`), so both read the same definition.

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::{daemon, learn, loader, policy, probe, replay, report, validate};

/// Checks live traffic against the ports that vendor documents require.
#[derive(Parser)]
#[command(name = "portconform", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Attach to interfaces, count their traffic and, with a policy, report
    /// flows it does not allow, until SIGINT/SIGTERM.
    Run(daemon::command::RunArgs),
    /// Compile vendor port documents into a policy, show it, explain a port.
    Policy(policy::command::PolicyArgs),
    /// Classify capture files (pcap, pcapng, gzipped) as the live monitor
    /// would, writing its events with capture timestamps.
    Replay(replay::command::ReplayArgs),
    /// Summarize events files (from `run` or `replay`, one host or many):
    /// required flows per host, blocked flows, top unexpected flows.
    Report(report::command::ReportArgs),
    /// Propose the site's additions to the vendor document from events
    /// files: one Markdown row per service seen (with its evidence), scans,
    /// floods and one-offs set aside.
    Learn(learn::LearnArgs),
    /// Try a candidate firewall ruleset (nftables, or iptables-save) in a
    /// throwaway lab of network namespaces: which required flows it blocks,
    /// which ports no rule allows it lets through. Exit 0: none blocked,
    /// 1: one is, 2: an error.
    Validate(validate::command::ValidateArgs),
    /// On a staging host, try each required outbound flow to the
    /// inventory's peers and say whether it works. Exit 0: all work, 1: one
    /// does not, 2: an error.
    Probe(probe::command::ProbeArgs),
    /// Remove what `run --pin` left attached: the programs' links, the
    /// state maps and the pins.
    Detach(loader::command::DetachArgs),
}

/// The whole command line, subcommands and their options included.
pub fn command() -> clap::Command {
    Cli::command()
}
