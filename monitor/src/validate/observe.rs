//! The monitor watching the lab: the same binary's `portconform run` on the
//! appliance's interface, with the lab's inventory, writing JSON lines that
//! are joined with the attempts afterwards.

use std::{
    ffi::OsString,
    io::{BufRead as _, BufReader},
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::reach::L4;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("starting the lab's monitor ({command}): {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("the lab's monitor did not start: {0}")]
    NotStarted(String),
    #[error("{path}:{line}: the monitor's events: {message}", path = .path.display())]
    Events {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// What the monitor said about one flow.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Seen {
    /// `unexpected`, `blocked`, ... (the first kind seen for the flow).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Packets back from the responder, from the last refresh of the flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_packets: Option<u64>,
}

/// One flow as events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub l4: L4,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: u16,
}

/// A running monitor, stopped (SIGTERM, then SIGKILL) on drop.
pub struct MonitorRun {
    child: Option<Child>,
    events: PathBuf,
    stderr: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl MonitorRun {
    /// Starts `exe run --iface IFACE ARGS...` in namespace `ns` and waits
    /// (at most 30 s) until it says it is attached.
    pub fn start(
        exe: &Path,
        ns: &str,
        iface: &str,
        args: &[OsString],
        events: &Path,
    ) -> Result<MonitorRun, ObserveError> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(exe)
            .args([
                "run",
                "--iface",
                iface,
                "--interval",
                "3600",
                "--refresh",
                "1",
            ])
            .args(args)
            .arg("--events")
            .arg(events)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let command = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .map_err(|source| ObserveError::Spawn { command, source })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut run = MonitorRun {
            child: Some(child),
            events: events.to_path_buf(),
            stderr: rx,
            log: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match run.stderr.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let attached = line.contains("attached to");
                    run.log.push(line);
                    if attached {
                        return Ok(run);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    run.stop();
                    return Err(ObserveError::NotStarted(run.log.join("\n")));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= deadline {
                run.stop();
                return Err(ObserveError::NotStarted(format!(
                    "not attached after 30 s: {}",
                    run.log.join("\n")
                )));
            }
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
            self.log.push(line);
        }
    }

    /// Stops the monitor (its final refresh goes to the file) and reads
    /// what it reported, per flow.
    pub fn finish(mut self) -> Result<Vec<(FlowKey, Seen)>, ObserveError> {
        self.stop();
        read_events(&self.events)
    }
}

impl Drop for MonitorRun {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The flows of an events file, each with what its events said; `update`
/// lines refresh `reply_packets` of the flow they refresh.
pub fn read_events(path: &Path) -> Result<Vec<(FlowKey, Seen)>, ObserveError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ObserveError::Events {
                path: path.to_path_buf(),
                line: 0,
                message: e.to_string(),
            });
        }
    };
    let mut flows: Vec<(FlowKey, Seen)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |message: String| ObserveError::Events {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let Some(kind) = s("kind") else {
            return Err(bad("no `kind`".into()));
        };
        // Status lines (`required`) and summaries carry no flow.
        let l4 = match s("proto").as_deref() {
            Some("tcp") => L4::Tcp,
            Some("udp") => L4::Udp,
            _ => continue,
        };
        let addr = |k: &str| s(k).and_then(|a| a.parse::<IpAddr>().ok());
        let (Some(src), Some(dst), Some(dport)) = (
            addr("src"),
            addr("dst"),
            v.get("dport").and_then(Value::as_u64),
        ) else {
            continue;
        };
        let key = FlowKey {
            l4,
            src,
            dst,
            dport: dport as u16,
        };
        let replies = v.get("reply_packets").and_then(Value::as_u64);
        match flows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, seen)) => {
                if replies.is_some() {
                    seen.reply_packets = replies;
                }
                if kind == "blocked" && seen.kind != "blocked" {
                    seen.kind = kind;
                    seen.reason = s("reason");
                    seen.rule = s("rule");
                } else if kind == "recovered" {
                    // A retried attempt that worked the second time.
                    seen.kind = kind;
                }
            }
            None if kind != "update" => flows.push((
                key,
                Seen {
                    kind,
                    reason: s("reason"),
                    rule: s("rule"),
                    note: s("note"),
                    reply_packets: replies,
                },
            )),
            None => {}
        }
    }
    Ok(flows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fold_into_flows() {
        let dir = std::env::temp_dir().join(format!("pcv-observe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"ts":"2026-11-22T16:55:30Z","kind":"unexpected","iface":"eth0","direction":"inbound","proto":"tcp","src":"198.51.100.10","dst":"192.0.2.1","sport":0,"dport":6379,"count":1,"rule":null,"reason":"no-rule","reply_packets":0,"note":"no rule allows tcp 6379 inbound"}"#,
                "\n",
                r#"{"ts":"2026-11-22T16:55:31Z","kind":"update","update_of":"unexpected","iface":"eth0","direction":"inbound","proto":"tcp","src":"198.51.100.10","dst":"192.0.2.1","sport":0,"dport":6379,"count":3,"reply_packets":2}"#,
                "\n",
                r#"{"ts":"2026-11-22T16:55:32Z","kind":"blocked","iface":"eth0","direction":"inbound","proto":"tcp","src":"192.0.2.2","dst":"192.0.2.1","sport":0,"dport":2181,"count":2,"rule":"000-14","source":"d:14","reason":"no-reply"}"#,
                "\n",
                r#"{"ts":"2026-11-22T16:55:33Z","kind":"required","rule":"000-14","status":"blocked"}"#,
                "\n",
            ),
        )
        .unwrap();
        let flows = read_events(&path).unwrap();
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[0].0.dport, 6379);
        assert_eq!(flows[0].1.kind, "unexpected");
        assert_eq!(flows[0].1.reply_packets, Some(2));
        assert_eq!(flows[1].1.kind, "blocked");
        assert_eq!(flows[1].1.reason.as_deref(), Some("no-reply"));
        std::fs::write(&path, "{\"kind\":\"unexpected\"}\nnot json\n").unwrap();
        let e = read_events(&path).unwrap_err().to_string();
        assert!(e.contains("events.jsonl:2:"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
