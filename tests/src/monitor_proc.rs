//! `portconform run` as a child process inside a lab namespace, stopped with
//! SIGTERM the way an operator or systemd would.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{
    lab::{self, Netns},
    portconform_bin,
};

pub struct MonitorProc {
    child: Option<Child>,
    stderr_lines: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
    stdout: Option<thread::JoinHandle<String>>,
}

/// What the monitor printed by the time it exited.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl MonitorProc {
    /// Starts `portconform run --iface <ifaces> <extra>` in `ns` and waits
    /// until it reports every interface attached.
    pub fn start(ns: &Netns, ifaces: &[&str], extra: &[&str]) -> anyhow::Result<Self> {
        let mut args = Vec::new();
        for iface in ifaces {
            args.extend(["--iface", iface]);
        }
        args.extend_from_slice(extra);
        Self::start_attaching(ns, &args, ifaces.len())
    }

    /// Starts `portconform run <args>` in `ns` and waits until it reports
    /// `attached` interfaces attached: for a run whose interfaces come from
    /// elsewhere than `--iface` (a `--config` file).
    pub fn start_attaching(ns: &Netns, args: &[&str], attached: usize) -> anyhow::Result<Self> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name()])
            .arg(portconform_bin())
            .arg("run");
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
        let stderr = child.stderr.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let mut proc = Self {
            child: Some(child),
            stderr_lines: rx,
            stderr_seen: Vec::new(),
            stdout: Some(stdout),
        };
        proc.wait_for_attach(attached, Duration::from_secs(30))?;
        Ok(proc)
    }

    /// [`start`](Self::start) classifying against the embedded `profile`
    /// with the inventory file `inventory`, writing events to `events`: how
    /// the end-to-end tests watch a lab host.
    pub fn classifying(
        ns: &Netns,
        ifaces: &[&str],
        profile: &str,
        inventory: &str,
        events: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "--profile",
            profile,
            "--inventory",
            inventory,
            "--events",
            events,
        ];
        args.extend_from_slice(extra);
        Self::start(ns, ifaces, &args)
    }

    /// The daemon's peak resident memory so far (VmHWM), in KiB: `ip netns
    /// exec` runs it in place, so the child is the daemon itself.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        status_kib(self.pid().context("already stopped")?, "VmHWM")
    }

    /// The daemon's process id while it runs: `ip netns exec` execs it in
    /// place, so the child is the daemon itself.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until the daemon has printed `count` stderr lines containing
    /// `needle` (counting lines seen so far), or fails after `limit`.
    pub fn wait_stderr(
        &mut self,
        needle: &str,
        count: usize,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self
                .stderr_seen
                .iter()
                .filter(|l| l.contains(needle))
                .count()
                >= count
            {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no {needle:?} from portconform within {limit:?}: {}",
                    self.stderr_seen.join("\n")
                );
            }
            if let Ok(line) = self
                .stderr_lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                self.stderr_seen.push(line);
            }
        }
    }

    /// Whether a stderr line seen so far contains `needle`.
    pub fn stderr_contains(&self, needle: &str) -> bool {
        self.stderr_seen.iter().any(|l| l.contains(needle))
    }

    /// The stderr lines seen so far, for failure messages.
    pub fn stderr_so_far(&self) -> String {
        self.stderr_seen.join("\n")
    }

    /// Sends `signal` (e.g. libc::SIGHUP) to the daemon.
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    fn wait_for_attach(&mut self, count: usize, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        let attached = |seen: &[String]| seen.iter().filter(|l| l.contains("attached to")).count();
        while attached(&self.stderr_seen) < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .stderr_lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => self.stderr_seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let done = self.stop_now()?;
                    bail!(
                        "portconform exited before attaching ({}): {}",
                        done.status,
                        done.stderr
                    );
                }
            }
            if Instant::now() >= deadline {
                let done = self.stop_now()?;
                bail!(
                    "portconform did not attach within {limit:?}: {}",
                    done.stderr
                );
            }
        }
        Ok(())
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn stop(mut self) -> anyhow::Result<Finished> {
        self.stop_now()
    }

    fn stop_now(&mut self) -> anyhow::Result<Finished> {
        let mut child = self.child.take().context("already stopped")?;
        let status = lab::stop_child(&mut child, libc::SIGTERM, Duration::from_secs(15))
            .context("portconform")?;
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_millis(500)) {
            self.stderr_seen.push(line);
        }
        Ok(Finished {
            status,
            stdout,
            stderr: self.stderr_seen.join("\n"),
        })
    }
}

impl Drop for MonitorProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A memory figure of process `pid` from `/proc/PID/status`, in KiB:
/// `field` is `VmRSS` (resident now), `VmHWM` (its peak), and so on.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Runs `portconform args...` (outside any lab) to completion, bounded.
pub fn run_portconform(args: &[&str]) -> anyhow::Result<Finished> {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "30"])
        .arg(portconform_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running portconform")?;
    Ok(Finished {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The records of a JSON-lines events file (`portconform run --events FILE`),
/// in file order; every line must be one JSON object.
pub fn read_events(path: impl AsRef<std::path::Path>) -> anyhow::Result<Vec<serde_json::Value>> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not JSON: {line:?}", path.display(), i + 1))?;
            if !v.is_object() {
                bail!("{}:{}: not a JSON object: {line:?}", path.display(), i + 1);
            }
            Ok(v)
        })
        .collect()
}

/// Destination ports of the `unexpected` records in the events file `events`.
pub fn unexpected_ports(events: &str) -> Vec<u64> {
    read_events(events)
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "unexpected")
        .filter_map(|e| e["dport"].as_u64())
        .collect()
}
