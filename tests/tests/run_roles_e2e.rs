//! `run` on one host of a product with two host roles: the host finds its
//! role from its interface's address in the inventory, enforces its own
//! rules and its peers' rules turned round, and reports the rest.

use std::time::Duration;

use portconform_tests::{
    lab::{self, Netns, TEST_NET_2, TempDir},
    monitor_proc::{MonitorProc, read_events},
    services,
};

const T: Duration = Duration::from_secs(20);
const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../monitor/tests/fixtures/roles/cluster.toml"
);

/// A line from `ns` to `addr`:`port`, echoed back.
fn talk(ns: &Netns, addr: &str, port: u16) {
    let out = ns
        .run(
            T,
            "sh",
            &[
                "-c",
                &format!("echo hello-{port} | nc -N -w 5 {addr} {port}"),
            ],
        )
        .unwrap_or_else(|e| panic!("nc {addr} {port}: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("hello-{port}"),
        "no echo from {addr}:{port}"
    );
}

#[test]
fn an_agent_finds_its_role_by_address_and_enforces_its_view() {
    let dir = TempDir::new("roles").expect("dir");
    let lab = lab::host_and_peer("roleagent", "roleserver", 81, TEST_NET_2).expect("lab");
    let (agent, server) = (&lab.host_if, &lab.peer_if);
    let _servers = [9440, 7000].map(|p| services::tcp_echo(&lab.peer, p, 2).expect("echo"));
    let _agent = services::tcp_echo(&lab.host, 9440, 2).expect("echo");
    lab::settle();
    let inventory = dir.file("inventory.toml");
    std::fs::write(
        &inventory,
        format!(
            "agent = [\"{}\", \"{}\"]\nserver = [\"{}\", \"{}\"]\n",
            agent.v4, agent.v6, server.v4, server.v6
        ),
    )
    .unwrap();
    let events = dir.file("events.jsonl");
    let mon = MonitorProc::start(
        &lab.host,
        &[agent.ifname.as_str()],
        &[
            "--policy",
            POLICY,
            "--inventory",
            &inventory,
            "--events",
            &events,
        ],
    )
    .expect("start");

    // The servers' agent channel, opened from here: allowed (their inbound
    // rule, turned round). Their replication port, and the agent port
    // opened towards this agent: not this host's to use.
    talk(&lab.host, &server.v4, 9440);
    talk(&lab.host, &server.v4, 7000);
    talk(&lab.peer, &agent.v4, 9440);
    std::thread::sleep(Duration::from_millis(500));
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains(&format!(
            "this host plays agent (its addresses {}, {} in the inventory)",
            agent.v4, agent.v6
        )),
        "{}",
        done.stderr
    );
    let mut unexpected: Vec<(String, String, u64)> = read_events(&events)
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "unexpected")
        .map(|e| {
            (
                e["src"].as_str().unwrap().to_string(),
                e["dst"].as_str().unwrap().to_string(),
                e["dport"].as_u64().unwrap(),
            )
        })
        .collect();
    unexpected.sort();
    let mut want = vec![
        (agent.v4.clone(), server.v4.clone(), 7000),
        (server.v4.clone(), agent.v4.clone(), 9440),
    ];
    want.sort();
    assert_eq!(unexpected, want, "{}", done.stderr);
    // The allowed, required channel worked: nothing is blocked.
    assert!(!done.stderr.contains("BLOCKED"), "{}", done.stderr);
}
