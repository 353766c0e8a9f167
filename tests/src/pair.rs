//! Two nodes, one monitored: the lab of the verdict tests (blocked flows,
//! the host's own drops). node1 runs `portconform run` on its veth; node2
//! is its peer. Real nftables rulesets are loaded into either, and the
//! tests wait, bounded, for the records the monitor writes.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    lab::{self, Background, End, Netns, TempDir},
    monitor_proc::{MonitorProc, read_events},
    services,
};

/// The name node2's dnsmasq answers ([`Pair::dns_server`]), and its answer.
pub const DNS_NAME: &str = "appliance.test";
pub const DNS_ANSWER: &str = "192.0.2.99";

/// How long a lab command (nft, a probe) may take.
const T: Duration = Duration::from_secs(20);

/// How long a test waits for a record. The monitor's handshake timeout is
/// its shipped default, 5 s: a no-reply verdict comes after it.
const RECORD_WAIT: Duration = Duration::from_secs(20);

/// node1 (monitored) ── node2, with the servers the test started.
pub struct Pair {
    /// Kept until the lab goes (stopped on drop).
    pub servers: Vec<Background>,
    pub node1: Netns,
    pub node2: Netns,
    pub n1: End,
    pub n2: End,
    pub dir: TempDir,
}

impl Pair {
    /// A fresh pair on the documentation ranges of lab `id`.
    pub fn new(id: u32, label: &str) -> anyhow::Result<Self> {
        let nodes = lab::host_and_peer("node1", "node2", id, lab::TEST_NET_1)?;
        let dir = TempDir::new(label)?;
        lab::settle();
        Ok(Self {
            servers: Vec::new(),
            node1: nodes.host,
            node2: nodes.peer,
            n1: nodes.host_if,
            n2: nodes.peer_if,
            dir,
        })
    }

    /// Where the monitor writes its records.
    pub fn events_path(&self) -> String {
        self.dir.file("events.jsonl")
    }

    /// `portconform run` on node1 with `profile` and this `inventory`
    /// (written to the lab's directory), with the shipped defaults but for
    /// a summary interval long enough not to interleave.
    pub fn monitor(&self, profile: &str, inventory: &str) -> anyhow::Result<MonitorProc> {
        self.monitor_with(profile, inventory, &["--interval", "3600"])
    }

    /// `portconform run` on node1 with `profile`, this `inventory` and
    /// `extra` options.
    pub fn monitor_with(
        &self,
        profile: &str,
        inventory: &str,
        extra: &[&str],
    ) -> anyhow::Result<MonitorProc> {
        let inv = self.dir.file("inventory.toml");
        std::fs::write(&inv, inventory)?;
        MonitorProc::classifying(
            &self.node1,
            &[&self.n1.ifname],
            profile,
            &inv,
            &self.events_path(),
            extra,
        )
    }

    /// Where [`exporting`](Self::exporting) keeps the sink's spool.
    pub fn spool_dir(&self) -> String {
        self.dir.file("spool")
    }

    /// The export tests' monitor: thoughtspot, node2's network as its
    /// nodes, every line exported to `url` through a spool in
    /// [`spool_dir`](Self::spool_dir); then `extra` options.
    pub fn exporting(&self, url: &str, extra: &[&str]) -> anyhow::Result<MonitorProc> {
        let spool = self.spool_dir();
        let mut args = vec!["--export", url, "--spool-dir", &spool];
        args.extend_from_slice(extra);
        self.monitor_with("thoughtspot", "nodes = [\"192.0.2.0/24\"]\n", &args)
    }

    /// Loads `ruleset` into `ns` with real nft.
    pub fn nft(&self, ns: &Netns, ruleset: &str) -> anyhow::Result<()> {
        let path = self.dir.file("ruleset.nft");
        std::fs::write(&path, ruleset)?;
        ns.run(T, "nft", &["-f", &path])?;
        Ok(())
    }

    /// Removes the table `inet NAME` from `ns`.
    pub fn nft_delete(&self, ns: &Netns, table: &str) -> anyhow::Result<()> {
        ns.run(T, "nft", &["delete", "table", "inet", table])?;
        Ok(())
    }

    /// Starts dnsmasq on node2 answering [`DNS_NAME`]; returns the
    /// inventory that makes node1 a node and node2 its `local-dns`.
    pub fn dns_server(&mut self) -> anyhow::Result<String> {
        let address = format!("--address=/{DNS_NAME}/{DNS_ANSWER}");
        let dns = services::dnsmasq(&self.node2, &self.n2.v4, &[&address])?;
        self.servers.push(dns);
        Ok(format!(
            "nodes = [\"{}\"]\nlocal-dns = [\"{}\"]\n",
            self.n1.v4, self.n2.v4
        ))
    }

    /// node1 asks node2 for [`DNS_NAME`] (`+time=time +tries=tries`): the
    /// answer, empty when there was none.
    pub fn dig(&self, time: u32, tries: u32) -> String {
        let out = self
            .node1
            .command(Duration::from_secs(10), "dig")
            .args([&format!("@{}", self.n2.v4), DNS_NAME, "A", "+short"])
            .args([format!("+time={time}"), format!("+tries={tries}")])
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits (bounded) until node2's dnsmasq answers: it may take a moment
    /// to bind, and the first answer proves it serves.
    pub fn wait_dns(&self, time: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.dig(time, 1) != DNS_ANSWER {
            assert!(Instant::now() < deadline, "dnsmasq never answered");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The records written so far.
    pub fn events(&self) -> Vec<Value> {
        read_events(self.events_path()).unwrap_or_default()
    }

    /// Waits (bounded) until a record of `kind` for `dport` from `src` is
    /// written; returns it. Panics with every record so far when none comes.
    pub fn wait_event(&self, kind: &str, src: &str, dport: u16) -> Value {
        let deadline = Instant::now() + RECORD_WAIT;
        loop {
            if let Some(e) = self
                .events()
                .into_iter()
                .find(|e| e["kind"] == kind && e["src"] == src && e["dport"] == u64::from(dport))
            {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event for {src} -> :{dport}: {:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One TCP connection attempt from `ns` (connect, then close), bounded by
/// 3 s; whether it connected.
pub fn connect(ns: &Netns, addr: &str, port: u16) -> bool {
    ns.command(Duration::from_secs(5), "nc")
        .args(["-z", "-w", "3", addr, &port.to_string()])
        .output()
        .expect("nc")
        .status
        .success()
}

/// The (src, dport, reason) of every record of `kind`.
pub fn records(events: &[Value], kind: &str) -> Vec<(String, u64, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| {
            (
                e["src"].as_str().unwrap_or_default().to_string(),
                e["dport"].as_u64().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
