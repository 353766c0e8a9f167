//! `cargo xtask test`: the whole gate, in the order that fails fastest:
//! formatting, lints (userspace and the eBPF crate), host unit tests, then the
//! tests that need root (kernel test_run, namespace end to end), serially,
//! then the Debian package, installed into a scratch root.
//! With `--kernel`, a subset of the root tests then runs inside each of those
//! kernels too (see `vm`).

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{cmd, package, setup, vm};

#[derive(clap::Args)]
pub struct Args {
    /// Skip fmt and clippy (for a quick rerun of the tests only).
    #[arg(long)]
    no_lint: bool,
    /// Only run root tests whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Then boot this kernel under qemu and run the guest subset of the root
    /// tests in it: an image (/boot/vmlinuz-...) or `debian-12` (installs the
    /// newest Debian 12 kernel package). Repeatable.
    #[arg(long, value_name = "K")]
    kernel: Vec<String>,
    /// Only the guest runs of --kernel, without the host gate.
    #[arg(long, requires = "kernel")]
    kernel_only: bool,
    /// Let qemu use KVM (nested KVM fails on some machines, so guests use
    /// software emulation unless asked).
    #[arg(long, requires = "kernel")]
    kvm: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    setup::ensure()?;
    let guests = vm::prepare(&args.kernel)?;
    let mut totals = Totals::default();
    if !args.kernel_only {
        totals.add(host_gate(args)?);
    }
    let outcomes = match &guests {
        Some(prepared) => vm::run(
            prepared,
            &vm::Options {
                kvm: args.kvm,
                filter: args.filter.as_deref(),
            },
        )?,
        None => Vec::new(),
    };
    summarize(totals, &outcomes, args.kernel_only)
}

/// Lints, unit tests and the root tests, on this machine's kernel.
fn host_gate(args: &Args) -> anyhow::Result<Totals> {
    if !args.no_lint {
        lint()?;
    }
    // Release, as the root tests' build: the dependencies (aws-lc-sys's C
    // among them) are compiled once for both instead of once per profile.
    let mut totals = run_counted(cmd::cargo().args([
        "test",
        "--release",
        "--workspace",
        "--exclude",
        "monitor-ebpf",
        "--exclude",
        "portconform-tests",
    ]))?;
    totals.add(root_tests(args.filter.as_deref())?);
    // The package, from the release build the root tests just made: it
    // installs into a scratch root and runs from there.
    if args.filter.as_deref().is_none_or(|f| "package".contains(f)) {
        let deb = package::build()?;
        package::check(&deb)?;
        totals.add(Totals {
            passed: 1,
            ..Totals::default()
        });
    }
    Ok(totals)
}

/// The closing lines: one per guest kernel, then one for every test of the
/// run, so whoever reads the end of the log sees the whole count, not the
/// last binary's. Fails if a guest did.
fn summarize(
    mut totals: Totals,
    outcomes: &[vm::Outcome],
    guests_only: bool,
) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for o in outcomes {
        println!(
            "xtask: guest {} ({}, {}s): {} passed, {} failed, {} skipped",
            o.name,
            o.spec,
            o.elapsed.as_secs(),
            o.totals.passed,
            o.totals.failed,
            o.totals.ignored
        );
        for problem in &o.problems {
            println!("xtask:   {problem}");
        }
        if !o.problems.is_empty() {
            failed.push(o.name.as_str());
        }
        totals.add(o.totals);
    }
    if failed.is_empty() && guests_only {
        println!("xtask: every guest passed (host gate skipped)");
    } else if failed.is_empty() {
        println!("xtask: every gate passed");
    } else {
        println!("xtask: guest tests failed on {}", failed.join(", "));
    }
    println!(
        "{} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if !failed.is_empty() {
        bail!("guest tests failed on {}", failed.join(", "));
    }
    Ok(())
}

/// Test counts summed over cargo's `test result:` lines.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Totals {
    pub fn add(&mut self, other: Totals) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }
}

/// Reads "test result: ok. 5 passed; 0 failed; 1 ignored; ..." into totals.
pub fn parse_result_line(line: &str) -> Option<Totals> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let mut t = Totals::default();
    for part in rest.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let n = |w: &[&str]| w.iter().rev().nth(1).and_then(|v| v.parse::<u64>().ok());
        match words.last() {
            Some(&"passed") => t.passed = n(&words)?,
            Some(&"failed") => t.failed = n(&words)?,
            Some(&"ignored") => t.ignored = n(&words)?,
            _ => {}
        }
    }
    Some(t)
}

/// Runs a `cargo test`, passing its output through, and counts its tests.
fn run_counted(command: &mut Command) -> anyhow::Result<Totals> {
    use std::io::{BufRead as _, BufReader};
    let line = cmd::describe(command);
    eprintln!("xtask: $ {line}");
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let mut totals = Totals::default();
    let stdout = child.stdout.take().expect("piped");
    for l in BufReader::new(stdout).lines() {
        let l = l.context("reading test output")?;
        println!("{l}");
        if let Some(t) = parse_result_line(&l) {
            totals.add(t);
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{line}`"))?;
    if !status.success() {
        bail!(
            "`{line}` failed ({status}); {} passed, {} failed so far",
            totals.passed,
            totals.failed
        );
    }
    Ok(totals)
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
pub fn root_tests(filter: Option<&str>) -> anyhow::Result<Totals> {
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
    run_counted(&mut test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_result_lines() {
        let t = parse_result_line(
            "test result: ok. 87 passed; 2 failed; 3 ignored; 0 measured; 0 filtered out; finished in 5.07s",
        );
        assert_eq!(
            t,
            Some(Totals {
                passed: 87,
                failed: 2,
                ignored: 3
            })
        );
        assert_eq!(parse_result_line("running 3 tests"), None);
    }
}
