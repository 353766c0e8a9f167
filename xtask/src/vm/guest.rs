//! One guest boot: the script the guest runs, booting it with virtme-ng under
//! a time bound, and reading back what the script wrote to the shared
//! directory. Results travel in files because the console mixes the kernel's
//! own messages into the tests' output.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{cmd, test::Totals};

/// One test binary run in the guest: `exe args...`, output kept as `<name>.log`.
pub struct Step {
    pub name: String,
    pub exe: PathBuf,
    pub args: Vec<String>,
    /// How many tests the arguments name exactly, to catch a renamed test
    /// that `--exact` would silently skip; `None` when they filter.
    pub named: Option<usize>,
}

/// File the script writes last: its absence means the guest did not finish.
const DONE: &str = "done";
/// The guest's `uname -r`.
const RELEASE: &str = "uname-r";

/// How the guest machine is booted.
pub struct Machine<'a> {
    /// The venv's `bin`: `vng` and the `virtme-run` it starts.
    pub venv_bin: &'a Path,
    pub image: &'a Path,
    pub kvm: bool,
    pub limit: Duration,
}

/// Writes the guest script into `out` (emptied first) and returns its path.
/// The guest sees the host's files read-only, with `out` shared writable.
pub fn write_script(
    out: &Path,
    steps: &[Step],
    portconform: &Path,
    package_dir: &Path,
) -> anyhow::Result<PathBuf> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut s = String::from(
        "#!/bin/bash\n\
         # Written by `cargo xtask test --kernel`; runs inside the guest as root.\n\
         set -u\n",
    );
    s += &format!("out={}\n", quote(&out.display().to_string()));
    s += &format!("uname -r > \"$out/{RELEASE}\"\n");
    s += "mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf\n";
    s += "mkdir -p /run/netns\n";
    s += &format!(
        "export PORTCONFORM_BIN={}\n",
        quote(&portconform.display().to_string())
    );
    // cargo runs integration tests in the package's directory, with this set.
    let dir = quote(&package_dir.display().to_string());
    s += &format!("export CARGO_MANIFEST_DIR={dir}\ncd {dir}\n");
    s += "export RUST_BACKTRACE=1\n";
    s += "run() { name=$1; shift; \"$@\" 2>&1 | tee \"$out/$name.log\"; \
          echo \"${PIPESTATUS[0]}\" > \"$out/$name.status\"; }\n";
    for step in steps {
        s += &format!(
            "run {} {}",
            quote(&step.name),
            quote(&step.exe.display().to_string())
        );
        for arg in &step.args {
            s += " ";
            s += &quote(arg);
        }
        s += "\n";
    }
    s += &format!("echo ok > \"$out/{DONE}\"\n");
    let path = out.join("guest.sh");
    std::fs::write(&path, s).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Single-quoted for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Boots `machine` running `script`, with `out` shared writable, until the
/// guest powers off or `machine.limit` passes. The console goes to our stdout.
pub fn boot(machine: &Machine, script: &Path, out: &Path) -> anyhow::Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![machine.venv_bin.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    let mut vng = Command::new(machine.venv_bin.join("vng"));
    vng.env("PATH", std::env::join_paths(paths)?)
        .current_dir(cmd::root())
        .arg("--run")
        .arg(machine.image)
        .args(["--memory", "2G", "--cpus", "2"])
        .arg(format!("--rwdir={}", out.display()))
        .arg("--exec")
        .arg(format!("bash {}", script.display()))
        .stdin(Stdio::null())
        // qemu opens /proc/self/fd/1 and 2 anew for the guest's console,
        // which truncates a log file our output is redirected to: it gets a
        // pipe, copied through.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !machine.kvm {
        // Nested KVM fails on the machines this runs on ("KVM internal error").
        vng.arg("--disable-kvm");
    }
    let line = cmd::describe(&vng);
    eprintln!("xtask: $ {line}");
    let mut child = vng
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let copies = [
        copy_through(child.stdout.take(), std::io::stdout),
        copy_through(child.stderr.take(), std::io::stderr),
    ];
    // After a timeout the copies are left alone: a process that escaped the
    // kill could hold the pipes open for ever.
    let status = wait_bounded(&mut child, machine.limit)?;
    for copy in copies {
        let _ = copy.join();
    }
    // The guest's exit status is the script's; results are in `out`.
    eprintln!("xtask: guest exited ({status})");
    Ok(())
}

/// Copies `from` to `to()` on a thread, until `from` closes.
fn copy_through<R, W>(from: Option<R>, to: fn() -> W) -> std::thread::JoinHandle<()>
where
    R: std::io::Read + Send + 'static,
    W: std::io::Write + 'static,
{
    std::thread::spawn(move || {
        if let Some(mut from) = from {
            let _ = std::io::copy(&mut from, &mut to());
        }
    })
}

/// Waits for `child`, killing it and everything it started after `limit`.
fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> anyhow::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            kill_tree(child.id());
            let _ = child.wait();
            bail!("the guest did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// SIGKILLs `pid` and every process below it (vng's python, qemu).
fn kill_tree(pid: u32) {
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        tree.extend(children(tree[i]));
        i += 1;
    }
    for pid in tree {
        // SAFETY: kill(2) on processes we started; a gone one is ESRCH.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// Processes whose parent is `parent`, from /proc/*/stat.
fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        (parent_of(&stat)? == parent).then_some(pid)
    })
    .collect()
}

/// The ppid field of a /proc/PID/stat line (after the parenthesised name,
/// which may itself hold spaces and parentheses).
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// What one guest left in `out`.
pub struct Results {
    /// `uname -r` in the guest, `None` if it never got that far.
    pub release: Option<String>,
    pub totals: Totals,
    /// Whatever went wrong besides failed tests counted in `totals`.
    pub problems: Vec<String>,
}

pub fn read_results(out: &Path, steps: &[Step]) -> Results {
    let release = std::fs::read_to_string(out.join(RELEASE))
        .ok()
        .map(|s| s.trim().to_string());
    let mut totals = Totals::default();
    let mut problems = Vec::new();
    if !out.join(DONE).exists() {
        problems.push(format!(
            "the guest script did not finish (no {}); see the console above",
            out.join(DONE).display()
        ));
    }
    for step in steps {
        let log = out.join(format!("{}.log", step.name));
        let Ok(text) = std::fs::read_to_string(&log) else {
            problems.push(format!("{}: not run", step.name));
            continue;
        };
        let t = count(&text);
        totals.add(t);
        let status = std::fs::read_to_string(out.join(format!("{}.status", step.name)));
        let ran = t.passed + t.failed + t.ignored;
        if t.failed > 0 {
            problems.push(format!(
                "{}: {} failed; see {}",
                step.name,
                t.failed,
                log.display()
            ));
        } else if let Ok(status) = status
            && status.trim() != "0"
        {
            problems.push(format!(
                "{}: exited with status {} and no failed test; see {}",
                step.name,
                status.trim(),
                log.display()
            ));
        } else if step.named.is_some_and(|n| ran < n as u64) {
            problems.push(format!(
                "{}: ran {ran} of the {} tests named (one was renamed?)",
                step.name,
                step.named.unwrap_or_default()
            ));
        }
    }
    Results {
        release,
        totals,
        problems,
    }
}

/// The totals of one test binary's output.
fn count(output: &str) -> Totals {
    let mut totals = Totals::default();
    for line in output.lines() {
        if let Some(t) = crate::test::parse_result_line(line) {
            totals.add(t);
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(quote("/a b/c"), "'/a b/c'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn reads_the_parent_from_proc_stat() {
        assert_eq!(parent_of("42 (a) b) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of("garbage"), None);
    }
}
