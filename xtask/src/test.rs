//! `cargo xtask test`: the whole gate, in the order that fails fastest:
//! formatting, lints (userspace and the eBPF crate), host unit tests, then the
//! tests that need root (kernel test_run, namespace end to end), serially.

use std::process::Command;

use anyhow::bail;

use crate::{cmd, setup};

#[derive(clap::Args)]
pub struct Args {
    /// Skip fmt and clippy (for a quick rerun of the tests only).
    #[arg(long)]
    no_lint: bool,
    /// Only run root tests whose name contains this.
    #[arg(long)]
    filter: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    setup::ensure()?;
    if !args.no_lint {
        lint()?;
    }
    cmd::run(cmd::cargo().args([
        "test",
        "--workspace",
        "--exclude",
        "monitor-ebpf",
        "--exclude",
        "portconform-tests",
    ]))?;
    root_tests(args.filter.as_deref())
}

pub fn lint() -> anyhow::Result<()> {
    cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))?;
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "monitor-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The eBPF crate only compiles for the BPF target, with the nightly.
    cmd::run(
        Command::new("cargo")
            .current_dir(cmd::root().join("monitor-ebpf"))
            .args([
                "+nightly",
                "clippy",
                "--target",
                "bpfel-unknown-none",
                "-Z",
                "build-std=core",
                "--lib",
                "--bins",
                "--",
                "-D",
                "warnings",
            ]),
    )
}

/// Builds the release binary the end-to-end tests drive, then runs the root
/// tests one at a time: they share the kernel and the network namespaces.
pub fn root_tests(filter: Option<&str>) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the kernel and namespace tests need root (BPF, network namespaces); run as root");
    }
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "monitor"]))?;
    let bin = cmd::root().join("target/release/portconform");
    let mut test = cmd::cargo();
    test.env("PORTCONFORM_BIN", &bin).args([
        "test",
        "--release",
        "-p",
        "portconform-tests",
        "--",
        "--test-threads=1",
    ]);
    if let Some(filter) = filter {
        test.arg(filter);
    }
    cmd::run(&mut test)
}
