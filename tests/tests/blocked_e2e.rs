//! Required flows blocked by real nftables rulesets are flagged with the
//! right reason, recover when the rule goes, and nothing else is flagged
//! (issue 5, item 4).
//!
//! Lab (documentation ranges only): node2 ── node1 (monitored, thoughtspot
//! or auth0-psaas profile). node1 runs a real PostgreSQL on 5432 and socat
//! listeners; node2 runs the clients, and dnsmasq for the DNS case.

use std::{collections::BTreeSet, time::Duration};

use portconform_tests::{
    kernel,
    lab::{Background, Netns},
    monitor_proc::read_events,
    pair::{DNS_ANSWER, Pair, connect, records},
    services, tshark,
};

// Nothing here lowers a default: the monitor takes the dynamic range from
// the host's ip_local_port_range, the range the clients' ephemeral ports
// come from, which the thoughtspot document allows both ways between
// nodes, and the resets and answers below go back to those ports; a
// no-reply verdict comes after the shipped 5 s handshake timeout.

/// A TCP listener on `port` in `ns` (IPv4 and IPv6) that accepts and closes.
fn listener(ns: &Netns, port: u16) -> Background {
    services::tcp_echo(ns, port, 5).expect("listener")
}

#[test]
fn nftables_blocks_are_flagged_with_their_reason_and_recover() {
    let mut lab = Pair::new(61, "blocked").expect("lab");
    let pg = services::postgres(&lab.node1, &lab.dir).expect("postgres");
    lab.servers.push(pg);
    lab.servers.push(listener(&lab.node1, 2181));
    lab.servers.push(listener(&lab.node1, 3888));
    let inventory = "nodes = [\"192.0.2.0/24\", \"2001:db8:61::/64\"]\n";
    // A capture of the same traffic, for replay to judge afterwards.
    // Immediate mode: packets still buffered in the kernel when tcpdump is
    // stopped are lost, and under a slow (emulated) CPU those are the last
    // attempts of the test.
    let capture = lab.dir.file("node1.pcap");
    let tcpdump = lab
        .node1
        .spawn_graceful(
            "tcpdump",
            &[
                "-i",
                &lab.n1.ifname,
                "--immediate-mode",
                "-U",
                "-w",
                &capture,
            ],
            libc::SIGINT,
            Duration::from_secs(5),
        )
        .expect("tcpdump");
    std::thread::sleep(Duration::from_secs(1));
    let mon = lab
        .monitor("thoughtspot", inventory)
        .expect("start portconform");
    let (host4, host6) = (lab.n1.v4.clone(), lab.n1.v6.clone());
    let (peer4, peer6) = (lab.n2.v4.clone(), lab.n2.v6.clone());

    // Working: sessions that open and close normally flag nothing.
    assert_eq!(
        services::psql(&lab.node2, &host4, "select 1").expect("psql"),
        "1"
    );
    assert!(connect(&lab.node2, &host4, 2181));
    assert!(connect(&lab.node2, &host6, 3888));
    // Unexpected, refused by the kernel: an unexpected flow, never blocked.
    assert!(!connect(&lab.node2, &host4, 6666));

    // 5432 dropped by node1's own input chain: local-firewall where the
    // kernel reports the drop (no-reply without drop reasons, and in the
    // replay of the capture, which cannot see it), then recovery when the
    // rule goes.
    let dropped = if kernel::names_drop_reasons() {
        "local-firewall"
    } else {
        "no-reply"
    };
    lab.nft(
        &lab.node1,
        "table inet pc_test {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 5432 drop\n  }\n}\n",
    )
    .expect("nft -f");
    assert!(services::psql(&lab.node2, &host4, "select 1").is_err());
    let e = lab.wait_event("blocked", &peer4, 5432);
    assert_eq!(e["reason"], dropped, "{e}");
    assert_eq!(e["rule"], "000-42", "{e}");
    assert!(e["source"].as_str().unwrap().contains(':'), "doc:line: {e}");
    assert_eq!(e["direction"], "inbound");
    // A drop is reported at once, a timeout after the retransmissions.
    let least = if dropped == "no-reply" { 2 } else { 1 };
    assert!(
        e["count"].as_u64().unwrap() >= least,
        "retransmissions: {e}"
    );
    lab.nft_delete(&lab.node1, "pc_test").expect("nft delete");
    assert_eq!(
        services::psql(&lab.node2, &host4, "select 2").expect("psql"),
        "2"
    );
    let r = lab.wait_event("recovered", &peer4, 5432);
    assert_eq!(r["rule"], "000-42", "{r}");

    // reject with tcp reset on a listening required port: reset.
    lab.nft(
        &lab.node1,
        "table inet pc_test {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 2181 reject with tcp reset\n    tcp dport 3888 reject with icmpx type admin-prohibited\n  }\n}\n",
    )
    .expect("nft -f");
    assert!(!connect(&lab.node2, &host4, 2181));
    assert_eq!(lab.wait_event("blocked", &peer4, 2181)["reason"], "reset");
    // A required port with nothing listening: the kernel's own reset.
    assert!(!connect(&lab.node2, &host4, 2888));
    assert_eq!(lab.wait_event("blocked", &peer4, 2888)["reason"], "reset");
    // ICMP and ICMPv6 administratively prohibited.
    assert!(!connect(&lab.node2, &host4, 3888));
    assert!(!connect(&lab.node2, &host6, 3888));
    assert_eq!(
        lab.wait_event("blocked", &peer4, 3888)["reason"],
        "admin-prohibited"
    );
    assert_eq!(
        lab.wait_event("blocked", &peer6, 3888)["reason"],
        "admin-prohibited"
    );

    // The same matrix the other way: node1 opens node2's ports (the
    // document's rules between nodes hold both ways), and the answers come
    // back to node1's ephemeral ports, which the dynamic range covers.
    lab.nft(
        &lab.node2,
        "table inet pc_test {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 4000 drop\n    tcp dport 4500 reject with tcp reset\n    tcp dport 8080 reject with icmpx type admin-prohibited\n  }\n}\n",
    )
    .expect("nft -f");
    assert!(!connect(&lab.node1, &peer4, 4000));
    assert_eq!(
        lab.wait_event("blocked", &host4, 4000)["reason"],
        "no-reply"
    );
    assert!(!connect(&lab.node1, &peer4, 4500));
    assert_eq!(lab.wait_event("blocked", &host4, 4500)["reason"], "reset");
    // Nothing listens on node2's 8020: its kernel resets.
    assert!(!connect(&lab.node1, &peer4, 8020));
    let e = lab.wait_event("blocked", &host4, 8020);
    assert_eq!(
        (&e["reason"], &e["direction"]),
        (&"reset".into(), &"outbound".into())
    );
    assert!(!connect(&lab.node1, &peer4, 8080));
    assert!(!connect(&lab.node1, &peer6, 8080));
    assert_eq!(
        lab.wait_event("blocked", &host4, 8080)["reason"],
        "admin-prohibited"
    );
    assert_eq!(
        lab.wait_event("blocked", &host6, 8080)["reason"],
        "admin-prohibited"
    );

    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    let events = lab.events();
    // Exactly these blocked flows: nothing for normal closes, for the
    // unexpected port, or twice for one flow.
    let blocked: BTreeSet<_> = records(&events, "blocked").into_iter().collect();
    let want: BTreeSet<(String, u64, String)> = [
        (peer4.clone(), 5432, dropped),
        (peer4.clone(), 2181, "reset"),
        (peer4.clone(), 2888, "reset"),
        (peer4.clone(), 3888, "admin-prohibited"),
        (peer6.clone(), 3888, "admin-prohibited"),
        (host4.clone(), 4000, "no-reply"),
        (host4.clone(), 4500, "reset"),
        (host4.clone(), 8020, "reset"),
        (host4.clone(), 8080, "admin-prohibited"),
        (host6.clone(), 8080, "admin-prohibited"),
    ]
    .into_iter()
    .map(|(a, p, r)| (a, p, r.to_string()))
    .collect();
    assert_eq!(blocked, want, "{events:#?}");
    assert_eq!(records(&events, "blocked").len(), want.len(), "{events:#?}");
    assert_eq!(records(&events, "recovered").len(), 1, "{events:#?}");
    assert!(
        records(&events, "unexpected")
            .iter()
            .any(|(_, p, _)| *p == 6666),
        "{events:#?}"
    );
    // Loud on the console too.
    let loud = done
        .stderr
        .lines()
        .filter(|l| l.starts_with("BLOCKED "))
        .count();
    assert_eq!(loud, want.len(), "{}", done.stderr);
    assert!(done.stderr.contains("RECOVERED "), "{}", done.stderr);

    // Per required rule, on exit: working, blocked with reason, not seen.
    let status = |rule: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "required" && e["rule"] == rule)
            .unwrap_or_else(|| panic!("no required line for {rule}: {events:#?}"))
            .clone()
    };
    assert_eq!(status("000-42")["status"], "working");
    assert_eq!(status("000-14")["status"], "blocked");
    assert_eq!(status("000-14")["reason"], "reset");
    assert_eq!(status("000-22")["reason"], "reset");
    assert_eq!(status("000-23")["reason"], "admin-prohibited");
    assert_eq!(status("000-24")["reason"], "no-reply");
    assert_eq!(status("000-36")["reason"], "reset");
    assert_eq!(status("000-43")["reason"], "reset");
    assert_eq!(status("000-44")["reason"], "admin-prohibited");
    assert_eq!(status("000-10")["status"], "not-seen");
    assert!(done.stdout.contains("required flows:"), "{}", done.stdout);

    // Replay of the capture finds the same blocked flows and the recovery.
    drop(tcpdump);
    let replayed = lab.dir.file("replayed.jsonl");
    let carved = lab.dir.file("carved.pcapng");
    let out = std::process::Command::new(portconform_tests::portconform_bin())
        .args(["replay", "--no-resolve", &capture])
        .args(["--host", &host4, "--host", &host6])
        .args(["--profile", "thoughtspot", "--inventory"])
        .arg(lab.dir.file("inventory.toml"))
        .args(["--events", &replayed, "--pcap", &carved])
        .output()
        .expect("replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events = read_events(&replayed).expect("replayed events");
    let blocked: BTreeSet<_> = records(&events, "blocked").into_iter().collect();
    let replay_want: BTreeSet<_> = want
        .iter()
        .map(|(a, p, r)| {
            let r = if r == "local-firewall" { "no-reply" } else { r };
            (a.clone(), *p, r.to_string())
        })
        .collect();
    assert_eq!(blocked, replay_want, "replay: {events:#?}\n{stderr}");
    assert_eq!(records(&events, "recovered").len(), 1, "{events:#?}");
    assert!(stderr.contains("BLOCKED "), "{stderr}");

    // The offending packets carved out of the capture, as tshark reads
    // them: each blocked flow's attempt under its BLOCKED line, with the
    // reset or ICMP error that refused it, and the unexpected flow.
    let comments = tshark::comments(std::path::Path::new(&carved)).expect("tshark");
    for (initiator, port, reason) in &replay_want {
        let carved_for = comments
            .iter()
            .filter(|c| {
                c.starts_with("BLOCKED ")
                    && c.contains(&format!(" {initiator}:"))
                    && c.contains(&format!(":{port} on node1.pcap "))
                    && c.contains(&format!("[{reason}]"))
            })
            .count();
        let least = if reason == "no-reply" { 1 } else { 2 };
        assert!(
            carved_for >= least,
            "{initiator} -> {port} ({reason}): {carved_for} packets carved\n{comments:#?}"
        );
    }
    assert!(
        comments
            .iter()
            .any(|c| c.starts_with("UNEXPECTED inbound tcp") && c.contains(":6666 on node1.pcap")),
        "{comments:#?}"
    );
    assert!(
        comments.iter().all(|c| !c.is_empty()),
        "every carved packet says why: {comments:#?}"
    );
}

#[test]
fn an_unanswered_dns_query_is_a_udp_no_reply() {
    let mut lab = Pair::new(63, "blocked-dns").expect("lab");
    let inventory = lab.dns_server().expect("dnsmasq");
    let mon = lab
        .monitor("auth0-psaas", &inventory)
        .expect("start portconform");
    lab.wait_dns(2);
    lab.nft(
        &lab.node2,
        "table inet pc_test {\n  chain input {\n    type filter hook input priority 0;\n    udp dport 53 drop\n  }\n}\n",
    )
    .expect("nft -f");
    assert!(lab.dig(2, 2) != DNS_ANSWER, "the query was answered");
    let e = lab.wait_event("blocked", &lab.n1.v4, 53);
    assert_eq!(e["reason"], "no-reply", "{e}");
    assert_eq!(e["proto"], "udp", "{e}");
    assert_eq!(e["direction"], "outbound", "{e}");
    assert_eq!(e["rule"], "004-188a", "{e}");
    lab.nft_delete(&lab.node2, "pc_test").expect("nft delete");
    assert_eq!(lab.dig(2, 1), DNS_ANSWER);
    lab.wait_event("recovered", &lab.n1.v4, 53);
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    let events = lab.events();
    assert_eq!(records(&events, "blocked").len(), 1, "{events:#?}");
}
