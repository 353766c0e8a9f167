//! The `portconform` binary: parses the command line (`monitor::cli`), runs
//! the subcommand its module's `command.rs` implements, maps exit codes.

use std::process::ExitCode;

use clap::FromArgMatches as _;
use monitor::{
    cli::{self, Cli, Command},
    daemon, learn, loader, policy, probe, replay, report, validate,
};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let matches = cli::command().get_matches();
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cli::command()).exit());
    let result = match cli.command {
        // `run --config` needs to know which options the command line gave.
        Command::Run(args) => daemon::command::run(
            args,
            &matches
                .subcommand_matches("run")
                .cloned()
                .unwrap_or_default(),
        ),
        Command::Policy(args) => policy::command::run(args),
        Command::Replay(args) => replay::command::run(args),
        Command::Report(args) => report::command::run(args),
        Command::Learn(args) => learn::command::run(args),
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
