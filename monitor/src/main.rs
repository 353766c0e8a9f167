//! The `portconform` command line: the subcommands, each parsed and run by
//! its module's `command.rs`, and the exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use monitor::{daemon, loader, policy, probe, replay, report, validate};

/// Checks live traffic against the ports that vendor documents require.
#[derive(Parser)]
#[command(name = "portconform", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => daemon::command::run(args),
        Command::Policy(args) => policy::command::run(args),
        Command::Replay(args) => replay::command::run(args),
        Command::Report(args) => report::command::run(args),
        Command::Detach(args) => loader::command::run(args),
        // Their own exit codes: 0 pass, 1 a required flow blocked, 2 error.
        Command::Validate(args) => return verdict(validate::command::run(args)),
        Command::Probe(args) => return verdict(probe::command::run(args)),
    };

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portconform: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn verdict(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        Err(err) => {
            eprintln!("portconform: {err:#}");
            ExitCode::from(2)
        }
    }
}
