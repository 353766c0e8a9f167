//! `cargo xtask bench`: runs the benchmark program of the tests crate, which
//! times the kernel programs with BPF_PROG_TEST_RUN against bare pass programs
//! loaded in the same run, the daemon's event pipeline, and replay against
//! tcpdump and tshark on the same capture.

use anyhow::bail;

use crate::{cmd, setup};

#[derive(clap::Args)]
pub struct Args {
    /// test_run repetitions per packet and program.
    #[arg(long, default_value_t = 2_000_000)]
    repeat: u32,
    /// Run one section only: live, counting, classifier, drops, daemon, export or replay.
    #[arg(long, value_name = "SECTION")]
    only: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    setup::ensure()?;
    if !cmd::is_root() {
        bail!("BPF_PROG_TEST_RUN needs root");
    }
    // The replay benchmark runs the release binary.
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "monitor"]))?;
    let bin = cmd::root().join("target/release/portconform");
    let mut bench = cmd::cargo();
    bench.env("PORTCONFORM_BIN", &bin).args([
        "run",
        "--release",
        "-q",
        "-p",
        "portconform-tests",
        "--bin",
        "bench",
        "--",
        "--repeat",
        &args.repeat.to_string(),
    ]);
    if let Some(only) = &args.only {
        bench.args(["--only", only]);
    }
    cmd::run(&mut bench)
}
