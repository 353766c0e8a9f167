//! Host roles as a user meets them: a policy with servers and agents, one
//! capture replayed as each host, roles found from the host's address in the
//! inventory or given with `--role`, and clear errors when a host plays none.

mod common;

use std::path::Path;

use common::{
    frames::{T0, tcp},
    pcap::write_pcap,
};
use monitor::events::{EventKind, EventRecord};
use monitor_common::packet::TCP_SYN;
use pcap_file::DataLink;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/roles");
const SERVER1: [u8; 4] = [192, 0, 2, 1];
const SERVER2: [u8; 4] = [192, 0, 2, 2];
const AGENT: [u8; 4] = [192, 0, 2, 20];
const MIRROR: [u8; 4] = [198, 51, 100, 10];

fn syn(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    tcp(src, dst, sport, dport, TCP_SYN)
}

/// Connections opened among the cluster's hosts, each a lone SYN.
fn capture(path: &Path) {
    let frames = [
        // agent → server: the agent channel.
        syn(AGENT, SERVER1, 40001, 9440),
        // server → server: replication.
        syn(SERVER1, SERVER2, 40002, 7000),
        // agent → server on the replication port: servers only.
        syn(AGENT, SERVER1, 40003, 7000),
        // server → agent on the agent port: agents do not listen on it.
        syn(SERVER1, AGENT, 40004, 9440),
        // agent → update mirror.
        syn(AGENT, MIRROR, 40005, 443),
    ];
    let timed: Vec<(u64, Vec<u8>)> = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| (T0 + i as u64 * 1_000_000, f))
        .collect();
    write_pcap(path, DataLink::ETHERNET, &timed);
}

struct Replayed {
    ok: bool,
    stderr: String,
    /// (source port, destination port) of each unexpected flow.
    unexpected: Vec<(u16, u16)>,
}

fn replay(host: &str, extra: &[&str]) -> Replayed {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("cluster.pcap");
    capture(&cap);
    let mut cmd = common::command(&["replay"]);
    cmd.arg(&cap)
        .args(["--host", host, "--events", "-", "--no-resolve"])
        .arg("--policy")
        .arg(format!("{FIXTURES}/cluster.toml"))
        .args(extra);
    let (ok, stdout, stderr) = common::run(&mut cmd);
    let mut unexpected: Vec<(u16, u16)> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<EventRecord>(l).ok())
        .filter(|r| r.kind == EventKind::Unexpected)
        .map(|r| (r.sport, r.dport))
        .collect();
    unexpected.sort_unstable();
    Replayed {
        ok,
        stderr,
        unexpected,
    }
}

fn inventory() -> String {
    format!("{FIXTURES}/inventory.toml")
}

#[test]
fn an_agent_enforces_its_rules_and_the_servers_rules_seen_from_its_end() {
    let r = replay("192.0.2.20", &["--inventory", &inventory()]);
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("this host plays agent (its address 192.0.2.20 in the inventory)"),
        "{}",
        r.stderr
    );
    // Its own outbound 443 and the servers' inbound 9440 (outbound from
    // here) pass; the replication port and an inbound 9440 do not. The
    // server ↔ server flow does not cross this host.
    assert_eq!(r.unexpected, [(40003, 7000), (40004, 9440)], "{}", r.stderr);
}

#[test]
fn a_server_enforces_its_own_rules() {
    let r = replay("192.0.2.1", &["--inventory", &inventory()]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains("this host plays server"), "{}", r.stderr);
    // Agents may open 9440 and servers 7000 to it; it may not open 9440 to
    // an agent, and an agent may not use the replication port.
    assert_eq!(r.unexpected, [(40003, 7000), (40004, 9440)], "{}", r.stderr);
}

#[test]
fn role_flags_override_the_inventory() {
    let r = replay(
        "192.0.2.1",
        &["--inventory", &inventory(), "--role", "agent"],
    );
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr.contains("this host plays agent (--role)"),
        "{}",
        r.stderr
    );
    // Seen as an agent, 192.0.2.1's inbound replication is unexpected, its
    // outbound 9440 to an agent too.
    assert!(r.unexpected.contains(&(40002, 7000)), "{:?}", r.unexpected);
}

#[test]
fn a_host_that_plays_no_role_is_an_error_naming_the_roles() {
    let r = replay("203.0.113.9", &["--inventory", &inventory()]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains(
            "this host (203.0.113.9) plays none of the policy's host roles (agent, server)"
        ),
        "{}",
        r.stderr
    );
    let r = replay("192.0.2.20", &[]);
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("the policy has several host roles (agent, server): say which this host plays with --role NAME"),
        "{}",
        r.stderr
    );
    let r = replay("192.0.2.20", &["--role", "worker"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains(
            "--role worker: the policy has no host role of that name (its roles: agent, server)"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn show_prints_one_hosts_view() {
    let mut cmd = common::command(&["policy", "show", "--role", "agent", "--format", "json"]);
    cmd.arg(format!("{FIXTURES}/cluster.toml"));
    let (ok, stdout, stderr) = common::run(&mut cmd);
    assert!(ok, "{}", stderr);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rules: Vec<(String, String, String, String)> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("id"), s("direction"), s("local_role"), s("peer_role"))
        })
        .collect();
    assert_eq!(
        rules,
        [
            (
                "c-5".into(),
                "outbound".into(),
                "agent".into(),
                "server".into()
            ),
            (
                "c-12".into(),
                "outbound".into(),
                "agent".into(),
                "mirror".into()
            ),
        ]
    );
    assert_eq!(v["host_roles"], serde_json::json!(["agent"]));
}
