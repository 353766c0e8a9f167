//! The `portconform` command line.

use std::{process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use monitor::{
    daemon::{self, SummaryFormat},
    loader::{Monitor, XdpAttachMode},
    policy::cli::PolicyArgs,
};

/// Checks live traffic against the ports that vendor documents require.
#[derive(Parser)]
#[command(name = "portconform", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach to interfaces and count their traffic until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Compile vendor port documents into a policy, show it, explain a port.
    Policy(PolicyArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Interface to monitor (XDP on ingress, TC on egress); repeat or comma-separate.
    #[arg(long = "iface", required = true, value_delimiter = ',')]
    ifaces: Vec<String>,
    /// Seconds between summaries.
    #[arg(long, default_value_t = 5.0, value_parser = parse_interval)]
    interval: f64,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    summary: SummaryFormat,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0.1 and 86400"
        )),
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Policy(args) => monitor::policy::cli::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portconform: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let monitor = Monitor::attach(&args.ifaces)?;
    for iface in monitor.interfaces() {
        let note = match iface.xdp_mode {
            XdpAttachMode::Native => "",
            XdpAttachMode::Generic => {
                " (the driver has no native XDP: using generic mode, which is slower)"
            }
        };
        eprintln!(
            "portconform: attached to {}: xdp {} ingress, tc egress{note}",
            iface.name,
            iface.xdp_mode.name()
        );
    }
    let options = daemon::Options {
        interval: Duration::from_secs_f64(args.interval),
        summary: args.summary,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(daemon::run(&monitor, &options))?;
    drop(monitor);
    eprintln!("portconform: detached, exiting");
    Ok(())
}
