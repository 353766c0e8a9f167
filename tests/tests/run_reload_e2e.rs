//! Reloading the policy while running: an inventory edit is picked up
//! without detaching (a peer that becomes a node may then use node-only
//! ports), a broken inventory is refused with its file and line while the
//! policy in force keeps classifying, and SIGHUP reloads on demand.

use std::time::Duration;

use portconform_tests::{
    fixtures::node_and_admin,
    lab::{self, TEST_NET_3, TempDir, syn, xdp_attached},
    monitor_proc::{MonitorProc, unexpected_ports},
};

const RELOAD: Duration = Duration::from_secs(15);

#[test]
fn inventory_changes_and_sighup_reload_without_detaching() {
    let dir = TempDir::new("reload").expect("dir");
    let lab = lab::host_and_peer("rlhost", "rlpeer", 71, TEST_NET_3)
        .expect("lab")
        .settled();
    let inventory = dir.file("inventory.toml");
    std::fs::write(&inventory, node_and_admin(&lab.host_if, &lab.peer_if)).unwrap();
    let events = dir.file("events.jsonl");
    let mut mon = MonitorProc::classifying(
        &lab.host,
        &[lab.host_if.ifname.as_str()],
        "thoughtspot",
        &inventory,
        &events,
        &["--interval", "30"],
    )
    .expect("start");

    // The admin host may not use ZooKeeper's peer port 2888 (nodes only).
    syn(&lab.peer, &lab.host_if.v4, 2888, 41000);
    // The admin host becomes a node: the daemon notices the file change.
    std::fs::write(
        &inventory,
        format!(
            "nodes = [\"{}/32\", \"{}/32\"]\nadmin = []\n",
            lab.host_if.v4, lab.peer_if.v4
        ),
    )
    .unwrap();
    mon.wait_stderr("policy reloaded", 1, RELOAD)
        .expect("reload after the edit");
    assert!(
        xdp_attached(&lab.host, &lab.host_if.ifname).unwrap(),
        "a reload must not detach"
    );
    syn(&lab.peer, &lab.host_if.v4, 3888, 41001); // now allowed: nodes only, and it is a node
    syn(&lab.peer, &lab.host_if.v4, 6666, 41002); // still undocumented: classification goes on

    // A broken inventory is refused with its line; the policy stays.
    std::fs::write(
        &inventory,
        format!(
            "nodes = [\"{}/32\"]\nadmin = [\"not-an-address!\"]\n",
            lab.host_if.v4
        ),
    )
    .unwrap();
    mon.wait_stderr("the current policy stays in force", 1, RELOAD)
        .expect("refused reload");
    syn(&lab.peer, &lab.host_if.v4, 3889, 41003); // still judged by the last good policy
    syn(&lab.peer, &lab.host_if.v4, 6667, 41004);

    // Fixed, and reloaded on demand.
    std::fs::write(&inventory, node_and_admin(&lab.host_if, &lab.peer_if)).unwrap();
    mon.signal(libc::SIGHUP);
    mon.wait_stderr("policy reloaded", 2, RELOAD)
        .expect("reload after SIGHUP or the edit");
    syn(&lab.peer, &lab.host_if.v4, 3888, 41005); // a node port again off limits for the admin host
    std::thread::sleep(Duration::from_millis(300));

    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains("inventory.toml:2"),
        "the refusal names file and line: {}",
        done.stderr
    );
    // 3889 is not a thoughtspot port at all, so it is unexpected under any policy.
    assert_eq!(
        unexpected_ports(&events),
        vec![2888, 6666, 3889, 6667, 3888],
        "{}",
        done.stderr
    );
}
