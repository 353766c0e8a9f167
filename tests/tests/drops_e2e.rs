//! Drops by the monitored host's own nftables ruleset (issue 15, item 2):
//! a required flow whose packets this host's output or input chain drops is
//! `blocked` with reason `local-firewall` and a note naming the kernel's
//! reason, whether or not the packet ever reached the XDP/TC hooks; drops
//! of flows nobody requires are counted, never reported.
//!
//! Lab (documentation ranges only): node1 (monitored) ── node2. Run with
//! the host's default dynamic port range: no `--dynamic-ports`.
//! On a kernel without drop reasons or BTF the monitor says so at start and
//! these tests check only that it carried on.

use std::time::Duration;

use portconform_tests::{
    kernel, lab,
    monitor_proc::MonitorProc,
    pair::{DNS_ANSWER, Pair, connect, records},
    services,
};
use serde_json::Value;

/// The monitor on node1, with the shipped defaults; whether it watches
/// the host's own drops.
fn monitor(lab: &Pair, profile: &str, inventory: &str) -> (MonitorProc, bool) {
    let mut mon = lab.monitor(profile, inventory).expect("start portconform");
    mon.wait_stderr("drops by this host's own", 1, Duration::from_secs(10))
        .expect("a notice about local drops");
    let watching = mon.stderr_contains("watching drops by this host's own stack");
    // Off only where the kernel has no drop reasons: a kernel that has
    // them but refuses the program fails here.
    assert_eq!(
        watching,
        kernel::names_drop_reasons(),
        "drop watch on this kernel: {}",
        mon.stderr_so_far()
    );
    (mon, watching)
}

fn blocked(events: &[Value]) -> Vec<(String, u64, String)> {
    records(events, "blocked")
}

fn assert_local_firewall(e: &Value, direction: &str) {
    assert_eq!(e["reason"], "local-firewall", "{e}");
    assert_eq!(e["direction"], direction, "{e}");
    let note = e["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("NETFILTER_DROP"),
        "the note names the kernel's reason: {e}"
    );
}

#[test]
fn the_hosts_own_chains_dropping_required_tcp_flows_are_local_firewall() {
    let mut lab = Pair::new(157, "drops-tcp").expect("lab");
    lab.servers
        .push(services::tcp_echo(&lab.node1, 5432, 5).expect("listener 5432"));
    lab.servers
        .push(services::tcp_echo(&lab.node2, 2181, 5).expect("listener 2181"));
    lab::settle();
    let inventory = "nodes = [\"192.0.2.0/24\", \"2001:db8:157::/64\"]\n";
    let (mon, watching) = monitor(&lab, "thoughtspot", inventory);
    let (n1, n2) = (lab.n1.clone(), lab.n2.clone());

    // node1's own ruleset: its output chain drops ZooKeeper (2181) to the
    // other node; its input chain drops PostgreSQL (5432) from it, and 6666,
    // which no rule names.
    lab.nft(
        &lab.node1,
        "table inet pc_test {\n  chain output {\n    type filter hook output priority 0;\n    tcp dport 2181 drop\n  }\n  chain input {\n    type filter hook input priority 0;\n    tcp dport { 5432, 6666 } drop\n  }\n}\n",
    )
    .expect("nft -f");
    assert!(!connect(&lab.node1, &n2.v4, 2181));
    assert!(!connect(&lab.node2, &n1.v4, 5432));
    assert!(!connect(&lab.node2, &n1.v6, 5432));
    assert!(!connect(&lab.node2, &n1.v4, 6666));
    if !watching {
        let done = mon.stop().expect("stop");
        assert!(done.status.success(), "{}", done.stderr);
        eprintln!("this kernel has no drop reasons: only the notice was checked");
        return;
    }
    // The outbound SYNs never reached the TC hook: only the drop hook saw them.
    let out = lab.wait_event("blocked", &n1.v4, 2181);
    assert_local_firewall(&out, "outbound");
    assert_eq!(out["rule"], "000-14", "{out}");
    assert!(out["count"].as_u64().unwrap() >= 1, "{out}");
    let in4 = lab.wait_event("blocked", &n2.v4, 5432);
    assert_local_firewall(&in4, "inbound");
    assert_eq!(in4["rule"], "000-42", "{in4}");
    assert_local_firewall(&lab.wait_event("blocked", &n2.v6, 5432), "inbound");

    // The rule goes: the flow works again and is seen recovering.
    lab.nft_delete(&lab.node1, "pc_test").expect("nft delete");
    assert!(connect(&lab.node2, &n1.v4, 5432));
    lab.wait_event("recovered", &n2.v4, 5432);

    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    let events = lab.events();
    let mut got = blocked(&events);
    got.sort();
    let mut want = vec![
        (n1.v4.clone(), 2181, "local-firewall".to_string()),
        (n2.v4.clone(), 5432, "local-firewall".to_string()),
        (n2.v6.clone(), 5432, "local-firewall".to_string()),
    ];
    want.sort();
    // Once each: the pending inbound attempts were answered by the drop,
    // not reported again as timeouts; the unexpected 6666 never is.
    assert_eq!(got, want, "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "unexpected" && e["dport"] == 6666),
        "{events:#?}"
    );
    // The 6666 SYNs the input chain dropped were counted, not reported.
    let counted = done
        .stderr
        .lines()
        .chain(done.stdout.lines())
        .find_map(|l| {
            let (before, _) = l.split_once(" local drops of flows nobody requires")?;
            before.rsplit(' ').next()?.parse::<u64>().ok()
        })
        .unwrap_or_else(|| panic!("no local-drop count: {}\n{}", done.stdout, done.stderr));
    assert!(counted >= 1, "{}", done.stderr);
    assert!(done.stderr.contains("BLOCKED "), "{}", done.stderr);
}

#[test]
fn an_output_chain_dropping_dns_queries_is_local_firewall() {
    let mut lab = Pair::new(158, "drops-dns").expect("lab");
    let inventory = lab.dns_server().expect("dnsmasq");
    lab::settle();
    let (mon, watching) = monitor(&lab, "auth0-psaas", &inventory);
    lab.wait_dns(1);
    lab.nft(
        &lab.node1,
        "table inet pc_test {\n  chain output {\n    type filter hook output priority 0;\n    udp dport 53 drop\n  }\n}\n",
    )
    .expect("nft -f");
    assert_ne!(lab.dig(1, 2), DNS_ANSWER, "the query was answered");
    if !watching {
        let done = mon.stop().expect("stop");
        assert!(done.status.success(), "{}", done.stderr);
        return;
    }
    let e = lab.wait_event("blocked", &lab.n1.v4, 53);
    assert_local_firewall(&e, "outbound");
    assert_eq!(e["proto"], "udp", "{e}");
    assert_eq!(e["rule"], "004-188a", "{e}");
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(blocked(&lab.events()).len(), 1, "{:#?}", lab.events());
}
