//! `learn` over hand-written events lines: [`grouping`] (rows, roles,
//! determinism, the output read back by the policy compiler) and
//! [`noise`] (ephemeral ports, scans, floods, one-offs, thresholds, bad
//! files). The helpers here write the lines and run the pipeline.

mod grouping;
mod noise;

use std::{io::Write as _, path::PathBuf};

use super::{
    command::read,
    group::{Grouper, Prefixes},
    noise::Ephemeral,
    propose::{Proposal, Reason, Thresholds, propose},
    render::{Provenance, markdown},
};
use crate::policy::{self, Direction, Inventory, Peer, PortRange, Proto, profiles};

pub(super) const DAY1: &str = "2026-11-22T10:00:00.000000000Z";
pub(super) const DAY2: &str = "2026-11-23T10:00:00.000000000Z";

/// One `unexpected` line.
#[allow(clippy::too_many_arguments)]
pub(super) fn line(
    host: &str,
    dir: &str,
    proto: &str,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    ts: &str,
) -> String {
    format!(
        r#"{{"ts":"{ts}","kind":"unexpected","iface":"eth0","direction":"{dir}","proto":"{proto}","src":"{src}","dst":"{dst}","sport":{sport},"dport":{dport},"count":5,"first_seen":"{ts}","last_seen":"{ts}","reply_packets":4,"host":"{host}"}}"#
    )
}

pub(super) fn inbound(src: &str, dport: u16, ts: &str) -> String {
    line(
        "node-a",
        "inbound",
        "tcp",
        src,
        40000,
        "192.0.2.1",
        dport,
        ts,
    )
}

pub(super) struct Files(pub(super) Vec<PathBuf>, PathBuf);

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

pub(super) fn files(contents: &[&[String]]) -> Files {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pc-learn-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for (i, lines) in contents.iter().enumerate() {
        let path = dir.join(format!("events-{i}.jsonl"));
        let mut f = std::fs::File::create(&path).unwrap();
        for l in lines.iter() {
            writeln!(f, "{l}").unwrap();
        }
        paths.push(path);
    }
    Files(paths, dir)
}

pub(super) const EPHEMERAL: Ephemeral = Ephemeral {
    host: PortRange {
        lo: 32768,
        hi: 60999,
    },
};

pub(super) fn learn_with(
    contents: &[&[String]],
    policy: Option<&policy::Policy>,
    inventory: Option<&Inventory>,
) -> (Proposal, String) {
    let f = files(contents);
    let collected = read(&f.0).unwrap();
    let mut grouper = Grouper::new(policy, inventory, Prefixes::default());
    let t = Thresholds::default();
    let p = propose(&collected, &mut grouper, &t, &EPHEMERAL);
    let text = markdown(
        &p,
        &Provenance {
            files: f.0.len(),
            policy: None,
            thresholds: &t,
            ephemeral: &EPHEMERAL,
        },
    );
    (p, text)
}

pub(super) fn learn(contents: &[&[String]]) -> (Proposal, String) {
    learn_with(contents, None, None)
}

pub(super) fn rows(p: &Proposal) -> Vec<String> {
    p.rows.iter().map(|r| r.key.to_string()).collect()
}
