//! `cargo xtask test --kernel K`: a subset of the root tests run inside
//! another kernel, booted under qemu with virtme-ng. Appliances run older
//! kernels (Debian 12: 6.1) than the machines we develop on, and programs
//! and attach modes the newest kernel accepts can be refused there; this
//! proves in CI that they load and work on the kernels we ship to.

mod deps;
mod guest;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{cmd, test::Totals};

/// Tests of one binary of `portconform-tests` to run in the guest.
struct GuestTests {
    /// The integration test target (`tests/tests/<binary>.rs`).
    binary: &'static str,
    /// Exact test names; empty means every test of the binary.
    tests: &'static [&'static str],
}

/// The subset run in each guest: what proves the programs load, attach and
/// work on that kernel, small enough for software emulation: about 3
/// minutes with 2 vCPUs, boot included (under 1 minute of it booting).
const GUEST_TESTS: &[GuestTests] = &[
    // Every program through the verifier and BPF_PROG_TEST_RUN, counting
    // each frame of the corpus in its slot: the first thing an older
    // verifier refuses.
    GuestTests {
        binary: "kernel_test_run",
        tests: &[],
    },
    // The classifier's maps and global data on that kernel: policy swaps,
    // flow dedup, the seen-slot cache, kernel and host agreeing.
    GuestTests {
        binary: "kernel_classify",
        tests: &[],
    },
    // `run` end to end: XDP and TC egress attached on veths in a namespace
    // (tcx or its fallback), exact counts, everything detached on SIGTERM;
    // and a daemon killed with SIGKILL, whose clsact filter (no tcx before
    // 6.6) the next start must remove.
    GuestTests {
        binary: "run_e2e",
        tests: &[
            "counts_real_traffic_exactly_on_two_interfaces_and_detaches_on_sigterm",
            "a_killed_daemon_leaves_nothing_once_the_next_one_exits",
        ],
    },
    // `run --pin` where egress is a clsact filter (no tcx before 6.6): the
    // filter's program replaced in place with no packet missed, and a
    // killed pinned run removed whole by `detach --all`.
    GuestTests {
        binary: "pinned_e2e",
        tests: &[
            "an_upgrade_replaces_the_programs_without_a_gap",
            "a_killed_pinned_run_is_removed_whole_by_detach_all",
        ],
    },
    // Required-flow tracking with a real nftables firewall: blocked with
    // each reason, then recovered.
    GuestTests {
        binary: "blocked_e2e",
        tests: &["nftables_blocks_are_flagged_with_their_reason_and_recover"],
    },
    // `validate`'s lab: nft trace naming the dropping rule next to the
    // monitor's own `blocked` event.
    GuestTests {
        binary: "validate_e2e",
        tests: &["dropping_2181_is_reported_with_the_rule"],
    },
];

/// The whole guest run (boot, tests, power off) is bounded by this.
const GUEST_TIME_LIMIT: Duration = Duration::from_secs(20 * 60);

/// A kernel to boot: as the user named it, and its image.
pub struct Kernel {
    spec: String,
    image: PathBuf,
}

/// What booting the kernels needs: the venv's `bin` and the images.
pub struct Prepared {
    venv_bin: PathBuf,
    kernels: Vec<Kernel>,
}

/// Installs what guests need and resolves each `--kernel` to an image,
/// before the host gate so that a setup problem fails fast. Nothing is
/// installed when `specs` is empty.
pub fn prepare(specs: &[String]) -> anyhow::Result<Option<Prepared>> {
    if specs.is_empty() {
        return Ok(None);
    }
    if !cmd::is_root() {
        bail!("--kernel installs packages and runs the root tests in a guest: run it as root");
    }
    let venv_bin = deps::ensure()?;
    let mut kernels: Vec<Kernel> = Vec::new();
    for spec in specs {
        let image = deps::kernel_image(spec)?;
        if !kernels.iter().any(|k| k.image == image) {
            kernels.push(Kernel {
                spec: spec.clone(),
                image,
            });
        }
    }
    Ok(Some(Prepared { venv_bin, kernels }))
}

/// Options of the guest runs.
pub struct Options<'a> {
    pub kvm: bool,
    /// Only tests whose name contains this (as the host's `--filter`).
    pub filter: Option<&'a str>,
}

/// How one kernel did.
pub struct Outcome {
    /// The kernel's `uname -r` in the guest, else its image.
    pub name: String,
    pub spec: String,
    pub elapsed: Duration,
    pub totals: Totals,
    /// Failed tests, a guest that did not finish, a binary that crashed.
    pub problems: Vec<String>,
}

/// Builds what the guests run, then boots each kernel in turn.
pub fn run(prepared: &Prepared, options: &Options) -> anyhow::Result<Vec<Outcome>> {
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "monitor"]))?;
    let exes = test_executables()?;
    // The guest reads the host's files live: a rebuild in another terminal
    // while it runs would swap binaries under it, so it runs copies.
    let snapshot = cmd::root().join("target/vm/bin");
    if snapshot.exists() {
        std::fs::remove_dir_all(&snapshot)
            .with_context(|| format!("emptying {}", snapshot.display()))?;
    }
    let portconform = snapshot_of(&cmd::root().join("target/release/portconform"), &snapshot)?;
    let mut steps = steps(&exes, options.filter)?;
    for step in &mut steps {
        step.exe = snapshot_of(&step.exe, &snapshot)?;
    }
    let mut outcomes = Vec::new();
    for kernel in &prepared.kernels {
        let machine = guest::Machine {
            venv_bin: &prepared.venv_bin,
            image: &kernel.image,
            kvm: options.kvm,
            limit: GUEST_TIME_LIMIT,
        };
        outcomes.push(run_one(kernel, &machine, &steps, &portconform)?);
    }
    Ok(outcomes)
}

fn run_one(
    kernel: &Kernel,
    machine: &guest::Machine,
    steps: &[guest::Step],
    portconform: &Path,
) -> anyhow::Result<Outcome> {
    let label = kernel
        .image
        .file_name()
        .map_or_else(|| kernel.spec.clone(), |n| n.to_string_lossy().into_owned());
    let out = cmd::root().join("target/vm").join(&label);
    let script = guest::write_script(&out, steps, portconform, &cmd::root().join("tests"))?;
    eprintln!(
        "xtask: booting {} ({}) for {} test binaries",
        kernel.image.display(),
        kernel.spec,
        steps.len()
    );
    let start = Instant::now();
    let booted = guest::boot(machine, &script, &out);
    let elapsed = start.elapsed();
    let results = guest::read_results(&out, steps);
    let mut problems = Vec::new();
    if let Err(err) = booted {
        problems.push(format!("{err:#}"));
    }
    problems.extend(results.problems);
    Ok(Outcome {
        name: results.release.unwrap_or(label),
        spec: kernel.spec.clone(),
        elapsed,
        totals: results.totals,
        problems,
    })
}

/// Copies `file` into `dir` (same name) and returns the copy.
fn snapshot_of(file: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let copy = dir.join(file.file_name().context("a binary without a file name")?);
    std::fs::copy(file, &copy)
        .with_context(|| format!("copying {} to {}", file.display(), copy.display()))?;
    Ok(copy)
}

/// What each binary of [`GUEST_TESTS`] is run with in the guest.
fn steps(
    exes: &HashMap<String, PathBuf>,
    filter: Option<&str>,
) -> anyhow::Result<Vec<guest::Step>> {
    let mut steps = Vec::new();
    for g in GUEST_TESTS {
        let exe = exes
            .get(g.binary)
            .with_context(|| format!("cargo built no test binary `{}`", g.binary))?;
        let mut args = vec!["--test-threads=1".to_string()];
        let named = if g.tests.is_empty() {
            args.extend(filter.map(String::from));
            None
        } else {
            let names: Vec<String> = g
                .tests
                .iter()
                .filter(|t| filter.is_none_or(|f| t.contains(f)))
                .map(|t| t.to_string())
                .collect();
            if names.is_empty() {
                continue;
            }
            args.push("--exact".into());
            args.extend(names.iter().cloned());
            Some(names.len())
        };
        steps.push(guest::Step {
            name: g.binary.to_string(),
            exe: exe.clone(),
            args,
            named,
        });
    }
    Ok(steps)
}

/// Builds the test binaries of `portconform-tests` (release, as the host's
/// root tests) and returns each integration test target's executable.
fn test_executables() -> anyhow::Result<HashMap<String, PathBuf>> {
    let mut build = cmd::cargo();
    build
        .args([
            "test",
            "--release",
            "-p",
            "portconform-tests",
            "--no-run",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit());
    let line = cmd::describe(&build);
    eprintln!("xtask: $ {line}");
    let out = build
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed ({})", out.status);
    }
    Ok(executables(&String::from_utf8_lossy(&out.stdout)))
}

/// Test target name → executable, from cargo's JSON messages.
fn executables(messages: &str) -> HashMap<String, PathBuf> {
    let mut exes = HashMap::new();
    for line in messages.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test_target = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "test"));
        if msg["reason"] != "compiler-artifact" || !is_test_target {
            continue;
        }
        if let (Some(name), Some(exe)) =
            (msg["target"]["name"].as_str(), msg["executable"].as_str())
        {
            exes.insert(name.to_string(), PathBuf::from(exe));
        }
    }
    exes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guest_test_exists() {
        for g in GUEST_TESTS {
            let path = cmd::root().join(format!("tests/tests/{}.rs", g.binary));
            let source = std::fs::read_to_string(&path).expect("test source");
            for name in g.tests {
                assert!(
                    source.contains(&format!("fn {name}()")),
                    "{} has no test {name}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn reads_test_executables_from_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"portconform_tests"},"executable":"/t/deps/portconform_tests-1"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"run_e2e"},"executable":"/t/deps/run_e2e-2"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        let exes = executables(messages);
        assert_eq!(exes.len(), 1);
        assert_eq!(exes["run_e2e"], PathBuf::from("/t/deps/run_e2e-2"));
    }
}
