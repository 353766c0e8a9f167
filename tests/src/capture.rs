//! tcpdump recording a real capture inside a lab namespace, stopped with
//! SIGINT as a person would, so the file ends on a whole packet.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::lab::{self, Netns};

/// How long tcpdump may take to start listening, and to exit after SIGINT.
const T: Duration = Duration::from_secs(15);

/// A running tcpdump; killed if dropped without [`Tcpdump::stop`].
pub struct Tcpdump {
    child: Option<Child>,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

/// What tcpdump said when it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub packets: u64,
    pub dropped_by_kernel: u64,
}

impl Tcpdump {
    /// `tcpdump -i iface -w path` in `ns`, returned once it is listening.
    /// It keeps root (`-Z root`): the scratch directory is root's own.
    pub fn start(ns: &Netns, iface: &str, path: &str) -> anyhow::Result<Self> {
        Self::start_with(ns, iface, path, &[])
    }

    /// [`Tcpdump::start`] in immediate mode, each packet written as it
    /// comes: none is left in the kernel's buffer when it is stopped, so
    /// the last packets of a test are in the file too. Frames are cut at
    /// 1024 bytes: in immediate mode each slot of the kernel's ring holds a
    /// whole snapshot, and at the default 256 KiB the ring has room for a
    /// handful of packets, so a burst (a port scan and its resets) is
    /// dropped. Replay reads the headers of cut frames.
    pub fn start_immediate(ns: &Netns, iface: &str, path: &str) -> anyhow::Result<Self> {
        Self::start_with(ns, iface, path, &["--immediate-mode", "-U", "-s", "1024"])
    }

    /// [`Tcpdump::start`] in immediate mode with whole frames: each
    /// packet handed over as it comes, so that those of the last buffer
    /// timeout (up to a second) are not left in the kernel's block when
    /// SIGINT ends the capture. For a few large packets (a collector's
    /// stream), not bursts: see [`Tcpdump::start_immediate`].
    pub fn start_immediate_whole(ns: &Netns, iface: &str, path: &str) -> anyhow::Result<Self> {
        Self::start_with(ns, iface, path, &["--immediate-mode"])
    }

    fn start_with(ns: &Netns, iface: &str, path: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "tcpdump", "-n", "-Z", "root"])
            .args(extra)
            .args(["-i", iface, "-w", path])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tcpdump")?;
        let stderr = child.stderr.take().context("tcpdump's stderr")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut dump = Tcpdump {
            child: Some(child),
            stderr: rx,
            seen: Vec::new(),
        };
        let deadline = Instant::now() + T;
        while !dump.seen.iter().any(|l| l.contains("listening on")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match dump.stderr.recv_timeout(left) {
                Ok(line) => dump.seen.push(line),
                Err(_) => bail!(
                    "tcpdump on {iface} in {} did not start listening: {}",
                    ns.name(),
                    dump.seen.join("\n")
                ),
            }
        }
        Ok(dump)
    }

    /// SIGINT, then waits (bounded) for tcpdump to write its last packets
    /// and exit; returns its closing counts.
    pub fn stop(mut self) -> anyhow::Result<Captured> {
        let mut child = self.child.take().context("already stopped")?;
        // ip netns exec execs tcpdump: the signal reaches tcpdump itself.
        let status = lab::stop_child(&mut child, libc::SIGINT, T).context("tcpdump")?;
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        let said = self.seen.join("\n");
        if !status.success() {
            bail!("tcpdump exited with {status}: {said}");
        }
        // "1 packet captured", "12 packets captured".
        let count = |what: &str| -> anyhow::Result<u64> {
            self.seen
                .iter()
                .find_map(|l| {
                    let (n, rest) = l.trim().split_once(' ')?;
                    let rest = rest
                        .strip_prefix("packets ")
                        .or(rest.strip_prefix("packet "))?;
                    (rest == what).then(|| n.parse().ok())?
                })
                .with_context(|| format!("no \"packets {what}\" line from tcpdump: {said}"))
        };
        Ok(Captured {
            packets: count("captured")?,
            dropped_by_kernel: count("dropped by kernel")?,
        })
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
