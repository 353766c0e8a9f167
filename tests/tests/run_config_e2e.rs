//! `run --config FILE`: the daemon takes its interface, profile, inventory
//! and events file from the config file alone; an edited file and a SIGHUP
//! change the policy without detaching (here: the inventory it names, so a
//! peer becomes a node) and the summary interval, a setting that needs a
//! restart is named and kept,
//! and a file that no longer reads keeps the policy in force and names its
//! line.

use std::{process::Command, time::Duration};

use portconform_tests::{
    fixtures::node_and_admin,
    lab::{self, TEST_NET_3, TempDir, syn, xdp_attached},
    monitor_proc::{MonitorProc, unexpected_ports},
    portconform_bin,
};

const RELOAD: Duration = Duration::from_secs(15);

fn config(iface: &str, inventory: &str, events: &str, interval: u32, extra: &str) -> String {
    format!(
        "# written by run_config_e2e\niface = [\"{iface}\"]\nprofile = \"thoughtspot\"\n\
         inventory = \"{inventory}\"\nevents = \"{events}\"\ninterval = {interval}\n{extra}"
    )
}

/// Periodic (not final) summaries the daemon printed.
fn summaries(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.ends_with(" counters") && !l.ends_with("final counters"))
        .count()
}

#[test]
fn a_config_file_alone_runs_the_monitor_and_sighup_rereads_it() {
    let dir = TempDir::new("config").expect("dir");
    let lab = lab::host_and_peer("cfhost", "cfpeer", 73, TEST_NET_3)
        .expect("lab")
        .settled();
    let events = dir.file("events.jsonl");
    // The peer is the admin host in the first inventory, a node in the second.
    let admin_inventory = dir.file("admin.toml");
    std::fs::write(&admin_inventory, node_and_admin(&lab.host_if, &lab.peer_if)).unwrap();
    let node_inventory = dir.file("nodes.toml");
    std::fs::write(
        &node_inventory,
        format!(
            "nodes = [\"{}/32\", \"{}/32\"]\nadmin = []\n",
            lab.host_if.v4, lab.peer_if.v4
        ),
    )
    .unwrap();
    let path = dir.file("portconform.toml");

    // Without an interface anywhere, run says where to give one.
    std::fs::write(&path, "profile = \"thoughtspot\"\n").unwrap();
    let out = Command::new(portconform_bin())
        .args(["run", "--config", &path])
        .output()
        .expect("portconform");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no interface to monitor") && stderr.contains("portconform.toml"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        config(&lab.host_if.ifname, &admin_inventory, &events, 60, ""),
    )
    .unwrap();
    let mut mon = MonitorProc::start_attaching(&lab.host, &["--config", &path], 1).expect("start");
    // The admin host may not use ZooKeeper's peer port 2888 (nodes only).
    syn(&lab.peer, &lab.host_if.v4, 2888, 42000);

    // The file now names the inventory where the peer is a node, a summary
    // every second, and a different rotation, which only a restart applies.
    std::fs::write(
        &path,
        config(
            &lab.host_if.ifname,
            &node_inventory,
            &events,
            1,
            "events-keep = 2\nhandshake-timeout = \"2s\"\n",
        ),
    )
    .unwrap();
    mon.signal(libc::SIGHUP);
    mon.wait_stderr("policy reloaded after SIGHUP", 1, RELOAD)
        .expect("reload after SIGHUP");
    assert!(
        mon.stderr_contains("events-keep changed in the config file: a restart applies it"),
        "{}",
        mon.stderr_so_far()
    );
    assert!(
        !mon.stderr_contains("handshake-timeout changed"),
        "the handshake timeout applies live: {}",
        mon.stderr_so_far()
    );
    assert!(
        xdp_attached(&lab.host, &lab.host_if.ifname).unwrap(),
        "a reload must not detach"
    );
    syn(&lab.peer, &lab.host_if.v4, 3888, 42001); // now allowed: nodes only, and it is a node
    syn(&lab.peer, &lab.host_if.v4, 6666, 42002); // still undocumented
    std::thread::sleep(Duration::from_millis(2500)); // two summaries at the new interval

    // A bad value on line 7 (and the admin inventory again): refused with
    // the file and line, the policy in force stays.
    let broken = config(
        &lab.host_if.ifname,
        &admin_inventory,
        &events,
        60,
        "events-max-mib = 0\n",
    );
    assert_eq!(
        broken.lines().position(|l| l == "events-max-mib = 0"),
        Some(6)
    );
    std::fs::write(&path, broken).unwrap();
    mon.signal(libc::SIGHUP);
    mon.wait_stderr("the current policy stays in force", 1, RELOAD)
        .expect("refused reload");
    assert!(
        mon.stderr_contains("portconform.toml:7: events-max-mib: invalid value \"0\""),
        "the refusal names file and line: {}",
        mon.stderr_so_far()
    );
    syn(&lab.peer, &lab.host_if.v4, 3888, 42003); // still a node: the nodes inventory stays
    syn(&lab.peer, &lab.host_if.v4, 3889, 42004); // not a thoughtspot port: unexpected
    std::thread::sleep(Duration::from_millis(300));

    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        summaries(&done.stdout) >= 2,
        "the new interval applies live: {}",
        done.stdout
    );
    assert_eq!(
        unexpected_ports(&events),
        vec![2888, 6666, 3889],
        "{}",
        done.stderr
    );
}
