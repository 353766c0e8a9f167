//! `portconform probe` on a staging node (issue 7, item 4): the required
//! outbound flows to a peer whose firewall drops one port and rejects
//! another, with nothing listening on a third, a real dnsmasq on UDP 53 and
//! an SSH-like listener that works; only inventory addresses are probed.
//!
//! Lab (documentation ranges only): node 192.0.2.1 ── peer 192.0.2.2.

use std::{process::Stdio, time::Duration};

use portconform_tests::{
    lab::{self, TEST_NET_1, TempDir},
    portconform_bin, services,
};
use serde_json::Value;

const T: Duration = Duration::from_secs(20);

/// A policy as `policy compile` writes it: outbound flows from the node to
/// the `db` and `dns` roles, and one to a `web` network.
const POLICY: &str = r#"format = 1
[[documents]]
name = "site.md"
id_prefix = "s"
lines = 20

[[rules]]
id = "s-3"
service = "ssh"
proto = "tcp"
ports = [[22, 22]]
direction = "outbound"
local_role = "nodes"
peer_role = "db"
required = "yes"
source = "site.md:3"

[[rules]]
id = "s-4"
service = "zookeeper"
proto = "tcp"
ports = [[2181, 2181]]
direction = "outbound"
local_role = "nodes"
peer_role = "db"
required = "yes"
source = "site.md:4"

[[rules]]
id = "s-5"
service = "postgres"
proto = "tcp"
ports = [[5432, 5432]]
direction = "outbound"
local_role = "nodes"
peer_role = "db"
required = "yes"
source = "site.md:5"

[[rules]]
id = "s-6"
service = "ldap"
proto = "tcp"
ports = [[389, 389]]
direction = "outbound"
local_role = "nodes"
peer_role = "db"
required = "yes"
source = "site.md:6"

[[rules]]
id = "s-7"
service = "dns"
proto = "udp"
ports = [[53, 53]]
direction = "outbound"
local_role = "nodes"
peer_role = "dns"
required = "yes"
source = "site.md:7"

[[rules]]
id = "s-8"
service = "web"
proto = "tcp"
ports = [[80, 80]]
direction = "outbound"
local_role = "nodes"
peer_role = "web"
required = "yes"
source = "site.md:8"
"#;

#[test]
fn probe_tells_working_refused_filtered_and_unreachable_apart() {
    let lab = lab::host_and_peer("pnode", "ppeer", 71, TEST_NET_1).expect("lab");
    let dir = TempDir::new("probe").expect("scratch");
    // The peer's firewall: 2181 dropped (filtered), 389 refused with an
    // administratively-prohibited ICMP (unreachable); 5432 has no listener
    // (refused by the kernel's RST).
    let rules = dir.file("peer.nft");
    std::fs::write(
        &rules,
        "table inet peer {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 2181 drop\n    tcp dport 389 reject with icmpx type admin-prohibited\n  }\n}\n",
    )
    .unwrap();
    lab.peer.run(T, "nft", &["-f", &rules]).expect("nft");
    let _ssh = lab
        .peer
        .spawn("socat", &["TCP-LISTEN:22,reuseaddr,fork", "EXEC:/bin/true"])
        .expect("listener");
    lab.peer.wait_tcp_listening(22, T).expect("listener up");
    let _dns = services::dnsmasq(&lab.peer, &lab.peer_if.v4, &[]).expect("dnsmasq");
    lab::settle();
    let policy = dir.file("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let inventory = dir.file("inventory.toml");
    std::fs::write(
        &inventory,
        format!(
            "nodes = [\"{}\"]\ndb = [\"{}\"]\ndns = [\"{}\"]\nweb = [\"198.51.100.0/24\"]\n",
            lab.host_if.v4, lab.peer_if.v4, lab.peer_if.v4
        ),
    )
    .unwrap();
    let bin = portconform_bin().display().to_string();
    let out = lab
        .host
        .command(Duration::from_secs(60), &bin)
        .args(["probe", "--policy", &policy, "--inventory", &inventory])
        .args(["--timeout", "1s", "--rate", "20", "--format", "json"])
        .stdin(Stdio::null())
        .output()
        .expect("probe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let results = v["results"].as_array().unwrap();
    let by_port = |port: u64| {
        results
            .iter()
            .find(|r| r["port"] == port)
            .unwrap_or_else(|| panic!("no probe of {port}: {v}"))
    };
    let expect = [
        (22, "working", "working"),
        (53, "working", "working"),
        (5432, "reset", "refused"),
        (2181, "no-reply", "filtered"),
        (389, "admin-prohibited", "unreachable"),
    ];
    for (port, result, plain) in expect {
        let r = by_port(port);
        assert_eq!(r["result"], result, "{r}");
        assert_eq!(r["plain"], plain, "{r}");
        assert_eq!(r["addr"], lab.peer_if.v4, "{r}");
    }
    assert_eq!(by_port(53)["proto"], "udp");
    assert_eq!(by_port(389)["observed"]["icmp"]["code"], 13);
    // Only the inventory's single hosts were probed: no network scan, not
    // the node itself.
    assert_eq!(results.len(), expect.len(), "{v}");
    let notes = v["notes"].to_string();
    assert!(notes.contains("198.51.100.0/24 is not scanned"), "{notes}");
}
