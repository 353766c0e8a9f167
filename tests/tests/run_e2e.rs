//! `portconform run` end to end: a monitored host in its own namespace with
//! two peers behind veth pairs, real tools sending a known number of packets,
//! and the counters checked exactly. Then SIGTERM must leave nothing behind.

use std::{collections::HashMap, time::Duration};

use portconform_tests::{
    lab::{self, End, Netns, TEST_NET_1, TEST_NET_2, xdp_attached},
    monitor_proc::{MonitorProc, run_portconform},
};

const T: Duration = Duration::from_secs(20);

/// (iface, direction, family, proto) → (packets, bytes), from the final JSON summary.
type Totals = HashMap<(String, String, String, String), (u64, u64)>;

fn final_totals(stdout: &str) -> Totals {
    let mut totals = Totals::new();
    for line in stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        if v["final"] != serde_json::Value::Bool(true) {
            continue;
        }
        let key = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        totals.insert(
            (key("iface"), key("direction"), key("family"), key("proto")),
            (
                v["packets"].as_u64().unwrap_or(0),
                v["bytes"].as_u64().unwrap_or(0),
            ),
        );
    }
    totals
}

fn packets(t: &Totals, iface: &str, dir: &str, family: &str, proto: &str) -> u64 {
    t.get(&(iface.into(), dir.into(), family.into(), proto.into()))
        .map_or(0, |v| v.0)
}

fn bytes(t: &Totals, iface: &str, dir: &str, family: &str, proto: &str) -> u64 {
    t.get(&(iface.into(), dir.into(), family.into(), proto.into()))
        .map_or(0, |v| v.1)
}

struct Lab {
    host: Netns,
    peer1: Netns,
    peer2: Netns,
    h1: End,
    p1: End,
    h2: End,
}

fn lab() -> Lab {
    let one = lab::host_and_peer("host", "peer1", 1, TEST_NET_1).expect("link 1");
    let two = one.add_peer("peer2", 2, TEST_NET_2).expect("link 2");
    lab::settle();
    Lab {
        host: one.host,
        peer1: one.peer,
        peer2: two.ns,
        h1: one.host_if,
        p1: one.peer_if,
        h2: two.host_if,
    }
}

#[test]
fn counts_real_traffic_exactly_on_two_interfaces_and_detaches_on_sigterm() {
    let lab = lab();
    let (i1, i2) = (lab.h1.ifname.as_str(), lab.h2.ifname.as_str());
    let before = our_program_ids();
    let mon = MonitorProc::start(
        &lab.host,
        &[i1, i2],
        &["--summary", "json", "--interval", "0.5"],
    )
    .expect("start");
    assert!(xdp_attached(&lab.host, i1).unwrap() && xdp_attached(&lab.host, i2).unwrap());

    // Inbound TCP: 20 SYNs to a closed port, each answered by one RST.
    lab.peer1
        .run(
            T,
            "hping3",
            &[
                "-q", "-S", "-p", "9", "-c", "20", "-i", "u10000", &lab.h1.v4,
            ],
        )
        .ok(); // hping3 exits 1 when every probe is answered by RST... the counts below decide
    // Inbound UDP: 15 datagrams to a closed port, each answered by ICMP port unreachable.
    lab.peer1
        .run(
            T,
            "hping3",
            &[
                "-q", "--udp", "-p", "5300", "-c", "15", "-i", "u10000", &lab.h1.v4,
            ],
        )
        .ok();
    // ICMP both ways: 10 echo requests in, 5 out.
    lab.peer1
        .run(T, "ping", &["-q", "-c", "10", "-i", "0.01", &lab.h1.v4])
        .expect("ping in");
    lab.host
        .run(T, "ping", &["-q", "-c", "5", "-i", "0.01", &lab.p1.v4])
        .expect("ping out");
    // IPv6: 7 echo requests in, 4 TCP connects and 5 UDP datagrams to closed ports.
    lab.peer1
        .run(
            T,
            "ping",
            &["-6", "-q", "-c", "7", "-i", "0.01", &lab.h1.v6],
        )
        .expect("ping6");
    for _ in 0..4 {
        let _ = lab
            .peer1
            .run(T, "nc", &["-6", "-z", "-w", "2", &lab.h1.v6, "9"]);
    }
    for _ in 0..5 {
        // socat sends exactly one datagram; `nc -u -w 0` sometimes sends none.
        let send = format!("printf x | socat -u - UDP6-SENDTO:[{}]:5300", lab.h1.v6);
        lab.peer1
            .run(T, "sh", &["-c", &send])
            .expect("udp datagram");
    }
    // Second interface: 3 pings from peer 2.
    lab.peer2
        .run(T, "ping", &["-q", "-c", "3", "-i", "0.01", &lab.h2.v4])
        .expect("ping on link 2");
    std::thread::sleep(Duration::from_millis(300));

    let done = mon.stop().expect("stop");
    assert!(
        done.status.success(),
        "exit status {} stderr: {}",
        done.status,
        done.stderr
    );
    let t = final_totals(&done.stdout);
    let expect = [
        (i1, "inbound", "ipv4", "tcp", 20),
        (i1, "outbound", "ipv4", "tcp", 20),
        (i1, "inbound", "ipv4", "udp", 15),
        (i1, "outbound", "ipv4", "udp", 0),
        (i1, "inbound", "ipv4", "icmp", 10 + 5),
        (i1, "outbound", "ipv4", "icmp", 10 + 15 + 5),
        (i1, "inbound", "ipv6", "icmpv6", 7),
        (i1, "outbound", "ipv6", "icmpv6", 7 + 5),
        (i1, "inbound", "ipv6", "tcp", 4),
        (i1, "outbound", "ipv6", "tcp", 4),
        (i1, "inbound", "ipv6", "udp", 5),
        (i1, "outbound", "ipv6", "udp", 0),
        (i2, "inbound", "ipv4", "icmp", 3),
        (i2, "outbound", "ipv4", "icmp", 3),
        (i2, "inbound", "ipv4", "tcp", 0),
        (i1, "inbound", "unparsed", "truncated", 0),
        (i1, "inbound", "unparsed", "malformed", 0),
    ];
    for (iface, dir, family, proto, want) in expect {
        assert_eq!(
            packets(&t, iface, dir, family, proto),
            want,
            "{iface} {dir} {family}/{proto}\nall counters: {t:#?}"
        );
    }
    // hping3's SYNs and the RSTs carry no options or payload: 14 + 20 + 20 bytes.
    assert_eq!(bytes(&t, i1, "inbound", "ipv4", "tcp"), 20 * 54);
    // ping's default echo: 14 + 20 + 8 + 56 bytes.
    assert_eq!(bytes(&t, i2, "outbound", "ipv4", "icmp"), 3 * 98);

    for iface in [i1, i2] {
        assert!(
            !xdp_attached(&lab.host, iface).unwrap(),
            "XDP still attached to {iface} after SIGTERM"
        );
    }
    assert_no_programs_left(&before);
    assert!(done.stderr.contains("detached"), "{}", done.stderr);
}

/// A daemon killed with SIGKILL runs no cleanup. XDP and tcx links die with
/// it; a clsact filter (kernels before 6.6) does not, so the next start on
/// the interface must remove it and the qdisc, and its own exit must leave
/// the interface as it found it.
#[test]
fn a_killed_daemon_leaves_nothing_once_the_next_one_exits() {
    let lab = lab();
    let i1 = lab.h1.ifname.as_str();
    let before = our_program_ids();
    let qdiscs_before = tc(&lab.host, &["qdisc", "show", "dev", i1]);

    let first = MonitorProc::start(&lab.host, &[i1], &["--interval", "60"]).expect("start");
    first.signal(libc::SIGKILL);
    let killed = first.stop().expect("reap");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed.status),
        Some(libc::SIGKILL)
    );

    let second = MonitorProc::start(&lab.host, &[i1], &["--summary", "json", "--interval", "60"])
        .expect("restart");
    // One egress program of ours on the interface: the new one.
    let filters = tc(&lab.host, &["filter", "show", "dev", i1, "egress"]);
    assert!(
        filters.lines().filter(|l| l.contains("pc_egress")).count() <= 1,
        "a dead instance's filter is still attached: {filters}"
    );
    lab.host
        .run(T, "ping", &["-q", "-c", "3", "-i", "0.01", &lab.p1.v4])
        .expect("ping out");
    std::thread::sleep(Duration::from_millis(300));
    let done = second.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    if done.stderr.contains("tc clsact egress") {
        assert!(
            done.stderr
                .contains("removed the egress filter a stopped portconform left"),
            "{}",
            done.stderr
        );
    }
    // The restarted daemon's egress program sees the host's packets.
    let t = final_totals(&done.stdout);
    assert_eq!(packets(&t, i1, "outbound", "ipv4", "icmp"), 3, "{t:#?}");

    assert!(!xdp_attached(&lab.host, i1).unwrap());
    assert_eq!(
        tc(&lab.host, &["qdisc", "show", "dev", i1]),
        qdiscs_before,
        "the interface's qdiscs changed"
    );
    assert_eq!(tc(&lab.host, &["filter", "show", "dev", i1, "egress"]), "");
    assert_no_programs_left(&before);
}

/// `tc ARGS` in `ns`: its stdout.
fn tc(ns: &Netns, args: &[&str]) -> String {
    let out = ns.run(T, "tc", args).expect("tc");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Ids of the portconform programs loaded right now, by any process.
fn our_program_ids() -> std::collections::BTreeSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| matches!(p.name_as_str(), Some("pc_ingress" | "pc_egress")))
        .map(|p| p.id())
        .collect()
}

/// Both attachments are bpf links: once the daemon exits, none of the
/// programs it loaded may remain (tcx links do not show in `ip link`).
/// Programs other processes loaded (`before`) are not ours to judge.
fn assert_no_programs_left(before: &std::collections::BTreeSet<u32>) {
    let left: Vec<u32> = our_program_ids().difference(before).copied().collect();
    assert!(
        left.is_empty(),
        "programs still loaded after SIGTERM: ids {left:?}"
    );
}

#[test]
fn unknown_interface_is_a_clear_error() {
    let done = run_portconform(&["run", "--iface", "no-such-if0"]).expect("run");
    assert_eq!(done.status.code(), Some(1));
    assert!(
        done.stderr
            .contains("no network interface named \"no-such-if0\""),
        "{}",
        done.stderr
    );
}

/// With a policy, the interface is still checked first: the error is the
/// only line, not the last after the policy's warnings.
#[test]
fn unknown_interface_is_reported_before_the_policy_is_compiled() {
    let done = run_portconform(&["run", "--iface", "no-such-if0", "--profile", "thoughtspot"])
        .expect("run");
    assert_eq!(done.status.code(), Some(1));
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(
        lines,
        ["portconform: no network interface named \"no-such-if0\" (list them with `ip link`)"],
        "{}",
        done.stderr
    );
}

/// A bad output path or a taken metrics port stops the start before
/// anything is attached: the error is said, no "attached" line precedes it,
/// and no program is left behind.
#[test]
fn bad_outputs_stop_the_start_before_anything_is_attached() {
    let ns = Netns::new("lo").expect("ns");
    let _taken = ns
        .spawn(
            "socat",
            &["TCP-LISTEN:9464,bind=127.0.0.1,reuseaddr", "PIPE"],
        )
        .expect("socat");
    ns.wait_tcp_listening(9464, T).expect("port 9464 taken");
    let cases = [
        (
            "--events",
            "/nonexistent-portconform-dir/e.jsonl",
            "opening the events file: cannot open events file /nonexistent-portconform-dir/e.jsonl",
        ),
        (
            "--metrics",
            "127.0.0.1:9464",
            "starting the metrics endpoint: cannot listen for metrics on 127.0.0.1:9464",
        ),
    ];
    let before = our_program_ids();
    let bin = portconform_tests::portconform_bin();
    for (flag, value, expected) in cases {
        let out = ns
            .command(T, bin.to_str().expect("utf-8 path"))
            .args([
                "run",
                "--iface",
                "lo",
                "--profile",
                "thoughtspot",
                flag,
                value,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("attached to"), "{stderr}");
    }
    assert_no_programs_left(&before);
}

#[test]
fn interface_without_native_xdp_falls_back_to_generic_mode() {
    let ns = Netns::new("lo").expect("ns");
    // Loopback has no driver XDP support.
    let mon = MonitorProc::start(&ns, &["lo"], &["--interval", "60"]).expect("start");
    ns.run(T, "ping", &["-q", "-c", "2", "-i", "0.01", "127.0.0.1"])
        .expect("ping lo");
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains("xdp generic ingress"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("no native XDP"), "{}", done.stderr);
    // On lo every packet is both sent and received: 4 echo messages each way.
    assert!(done.stdout.contains("final counters"), "{}", done.stdout);
}

#[test]
fn missing_privileges_are_a_clear_error() {
    // The unprivileged user must be able to execute the binary: the build
    // tree may sit in a private directory (a 0700 temporary clone in CI).
    let dir = portconform_tests::lab::TempDir::new("nopriv").expect("dir");
    let bin = dir.path().join("portconform");
    std::fs::copy(portconform_tests::portconform_bin(), &bin).expect("copy binary");
    for path in [dir.path(), bin.as_path()] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    let done = portconform_tests::lab::sh(
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--",
            ])
            .arg("sh")
            .arg("-c")
            .arg(format!("{} run --iface lo; echo exit=$?", bin.display())),
    )
    .expect("setpriv");
    let out =
        String::from_utf8_lossy(&done.stdout).into_owned() + &String::from_utf8_lossy(&done.stderr);
    assert!(out.contains("exit=1"), "{out}");
    assert!(out.contains("needs root"), "{out}");
}
