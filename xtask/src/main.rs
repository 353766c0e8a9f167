//! `cargo xtask`: the project's orchestration. Everything a fresh machine
//! needs is installed from here, so CI and a new developer run the same steps.

mod bench;
mod cmd;
mod demo;
mod package;
mod service;
mod setup;
mod test;
mod vm;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "portconform development tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need (idempotent).
    Setup,
    /// Formatting, lints, unit tests, kernel test_run tests and namespace end-to-end tests;
    /// with --kernel, a subset of the root tests inside other kernels too.
    Test(test::Args),
    /// A lab of network namespaces with real traffic and the monitor watching it.
    Demo,
    /// Per-packet cost of the kernel programs as a ratio to bare pass programs.
    Bench(bench::Args),
    /// The Debian package, in target/debian/ (binary, man pages, completions,
    /// systemd unit, example config).
    Package(package::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup => setup::run(),
        Task::Test(args) => test::run(&args),
        Task::Demo => demo::run(),
        Task::Bench(args) => bench::run(&args),
        Task::Package(args) => package::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
