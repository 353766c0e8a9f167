//! `run --pin` (issue 17): the programs stay attached and counting while
//! the daemon is down, the next start adopts them, reports what happened in
//! the gap and nothing it reported before, replaces the programs with no
//! moment unmonitored, refuses to trust pins that do not match, and
//! `detach --all` leaves nothing behind, even after a kill -9.
//!
//! Lab (documentation ranges only): node2 ── node1 (monitored). Each test
//! pins into a BPF file system of its own (see `bpffs`).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use aya::maps::{Map, MapData, PerCpuArray};
use monitor_common::{
    maps::CpuCounters,
    stats::{PacketDir, slot_name, stats_index},
};
use portconform_tests::{
    bpffs::BpfFs,
    lab::{Netns, xdp_attached},
    monitor_proc::{MonitorProc, read_events, run_portconform},
    pair::{Pair, connect},
};

const INVENTORY: &str = "nodes = [\"192.0.2.0/24\"]\n";

/// The XDP program id on `ifname`, as `ip link` shows it.
fn xdp_prog_id(ns: &Netns, ifname: &str) -> Option<u64> {
    let out = ns.ip(&["-d", "link", "show", "dev", ifname]).ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rest = text.split("prog/xdp id ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn pinned(pins: &Path) -> Vec<&str> {
    vec!["--pin", pins.to_str().expect("utf-8 path")]
}

/// `portconform detach ...` inside `ns`.
fn detach(ns: &Netns, args: &[&str]) -> std::process::Output {
    ns.command(
        Duration::from_secs(20),
        portconform_tests::portconform_bin().to_str().unwrap(),
    )
    .arg("detach")
    .args(args)
    .output()
    .expect("detach")
}

fn unexpected_to(events: &[serde_json::Value], port: u16) -> Vec<&serde_json::Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "unexpected" && e["dport"] == u64::from(port))
        .collect()
}

/// Each instance in `events` with its seqs, which must be 1, 2, 3, ... in
/// file order: nothing missing, nothing twice.
fn numbering(events: &[serde_json::Value]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for e in events {
        let instance = e["instance"]
            .as_str()
            .unwrap_or_else(|| panic!("no instance: {e}"));
        let seq = e["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {e}"));
        match out.last_mut() {
            Some((i, last)) if i == instance => {
                assert_eq!(seq, *last + 1, "{e}");
                *last = seq;
            }
            _ => {
                assert_eq!(seq, 1, "a new instance starts at 1: {e}");
                assert!(
                    out.iter().all(|(i, _)| i != instance),
                    "instance {instance} comes back: {e}"
                );
                out.push((instance.to_string(), seq));
            }
        }
    }
    out
}

fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ok()
}

#[test]
fn a_restart_reports_the_gap_and_nothing_it_reported_before() {
    let lab = Pair::new(81, "pinned").expect("lab");
    let fs = BpfFs::mount("pinned").expect("bpffs");
    let pins = fs.pins("pc");
    let (host, peer) = (lab.n1.v4.clone(), lab.n2.v4.clone());
    let inv = lab.dir.file("inventory.toml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let events = lab.events_path();
    let args = [&["--interval", "3600"][..], &pinned(&pins)].concat();
    let start = || {
        MonitorProc::classifying(
            &lab.node1,
            &[&lab.n1.ifname],
            "thoughtspot",
            &inv,
            &events,
            &args,
        )
        .expect("start portconform")
    };

    let first = start();
    assert!(!connect(&lab.node2, &host, 6666));
    lab.wait_event("unexpected", &peer, 6666);
    // A required port with nothing listening: refused by the kernel's reset.
    assert!(!connect(&lab.node2, &host, 2888));
    lab.wait_event("blocked", &peer, 2888);
    let done = first.stop().expect("stop");
    assert!(
        done.stderr.contains("stay attached"),
        "a pinned run says the programs stay: {}",
        done.stderr
    );
    assert!(
        xdp_attached(&lab.node1, &lab.n1.ifname).unwrap(),
        "XDP still attached after SIGTERM"
    );

    // The gap: a new unexpected flow and a newly blocked required flow,
    // and both known ones again.
    let gap = std::time::SystemTime::now();
    assert!(!connect(&lab.node2, &host, 6667));
    assert!(!connect(&lab.node2, &host, 2181));
    assert!(!connect(&lab.node2, &host, 6666));
    assert!(!connect(&lab.node2, &host, 2888));
    std::thread::sleep(Duration::from_millis(500));
    let restarted = std::time::SystemTime::now();

    let second = start();
    assert!(
        second.stderr_contains("adopted the pinned monitor"),
        "{}",
        second.stderr_so_far()
    );
    assert!(
        second.stderr_contains("events go on as instance"),
        "{}",
        second.stderr_so_far()
    );
    let e = lab.wait_event("unexpected", &peer, 6667);
    let ts = humantime::parse_rfc3339(e["ts"].as_str().unwrap()).expect("ts");
    assert!(
        ts >= gap - Duration::from_secs(1) && ts < restarted,
        "the gap's flow keeps its own time: {e}"
    );
    let b = lab.wait_event("blocked", &peer, 2181);
    assert_eq!(b["reason"], "reset", "{b}");
    // Past the handshake timeout, so that the gap's 2888 attempt is judged.
    std::thread::sleep(Duration::from_secs(6));
    let done = second.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);

    let all = read_events(&events).expect("events");
    assert_eq!(
        unexpected_to(&all, 6666).len(),
        1,
        "the flow known before the restart is not reported again: {all:#?}"
    );
    assert_eq!(unexpected_to(&all, 6667).len(), 1, "{all:#?}");
    let blocked_2888 = all
        .iter()
        .filter(|e| e["kind"] == "blocked" && e["dport"] == 2888)
        .count();
    assert_eq!(
        blocked_2888, 1,
        "a flow reported blocked before the restart is not reported again: {all:#?}"
    );
    // One numbering across the restart: one instance, seq 1, 2, 3, ...
    assert_eq!(numbering(&all).len(), 1, "{all:#?}");

    let out = detach(&lab.node1, &["--all", "--pin", pins.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!xdp_attached(&lab.node1, &lab.n1.ifname).unwrap());
    assert!(!pins.exists(), "detach --all removes the pin directory");
}

/// Ingress IPv4 ICMP packets counted on counter slot `slot`, from the
/// pinned counters.
fn icmp_in(pins: &Path, slot: u32) -> u64 {
    let data = MapData::from_pin(pins.join("maps/PC_COUNTERS")).expect("pinned counters");
    let map: PerCpuArray<_, CpuCounters> =
        PerCpuArray::try_from(Map::PerCpuArray(data)).expect("per-CPU array");
    // ICMP over IPv4: family 0, class 2 (see `slot_of`).
    let icmp = 2;
    assert_eq!(slot_name(icmp), ("ipv4", "icmp"));
    let i = stats_index(slot, PacketDir::Ingress, icmp) as usize;
    map.get(&0, 0)
        .expect("set 0")
        .iter()
        .chain(map.get(&1, 0).expect("set 1").iter())
        .map(|c| c.traffic[i].packets)
        .sum()
}

#[test]
fn an_upgrade_replaces_the_programs_without_a_gap() {
    let lab = Pair::new(82, "upgrade").expect("lab");
    let fs = BpfFs::mount("upgrade").expect("bpffs");
    let pins = fs.pins("pc");
    let host = lab.n1.v4.clone();
    let args = pinned(&pins);

    let first = MonitorProc::start(&lab.node1, &[&lab.n1.ifname], &args).expect("start");
    let before_id = xdp_prog_id(&lab.node1, &lab.n1.ifname).expect("xdp prog id");
    let before = icmp_in(&pins, 1);
    // 2,500 echo requests over about 5 s; the restart falls inside them.
    let (out, second, after_id) = std::thread::scope(|s| {
        let ping = s.spawn(|| {
            lab.node2
                .run(
                    Duration::from_secs(60),
                    "ping",
                    &["-q", "-n", "-i", "0.002", "-c", "2500", &host],
                )
                .expect("ping")
        });
        std::thread::sleep(Duration::from_millis(1000));
        first.stop().expect("stop");
        let second = MonitorProc::start(&lab.node1, &[&lab.n1.ifname], &args).expect("restart");
        let after_id = xdp_prog_id(&lab.node1, &lab.n1.ifname).expect("xdp prog id");
        let out = ping.join().expect("ping thread");
        (
            String::from_utf8_lossy(&out.stdout).to_string(),
            second,
            after_id,
        )
    });
    assert!(
        second.stderr_contains("programs replaced in place"),
        "{}",
        second.stderr_so_far()
    );
    assert_ne!(before_id, after_id, "the new build's program runs");
    let sent: u64 = out
        .split(" packets transmitted")
        .next()
        .and_then(|s| s.rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ping's summary: {out}"));
    assert_eq!(sent, 2500, "{out}");
    // Every request was counted, by one program or the other: none fell
    // into a moment with nothing attached.
    let counted = wait_for(Duration::from_secs(3), || {
        icmp_in(&pins, 1) - before >= sent
    });
    assert!(counted, "counted {} of {sent}", icmp_in(&pins, 1) - before);
    assert_eq!(icmp_in(&pins, 1) - before, sent);
    second.stop().expect("stop");
}

#[test]
fn pins_that_do_not_match_are_replaced_and_said() {
    let lab = Pair::new(83, "mismatch").expect("lab");
    let fs = BpfFs::mount("mismatch").expect("bpffs");
    let pins = fs.pins("pc");
    let args = pinned(&pins);
    let first = MonitorProc::start(&lab.node1, &[&lab.n1.ifname], &args).expect("start");
    first.stop().expect("stop");

    // Another map where the flow table should be: the wrong shape.
    std::fs::remove_file(pins.join("maps/PC_FLOWS")).unwrap();
    let other = MapData::from_pin(pins.join("maps/PC_KSTATS")).expect("pinned kstats");
    other.pin(pins.join("maps/PC_FLOWS")).expect("pin");
    drop(other);
    let second = MonitorProc::start(&lab.node1, &[&lab.n1.ifname], &args).expect("restart");
    let done = second.stop().expect("stop");
    assert!(
        done.stderr
            .contains("pinned map PC_FLOWS does not match this build"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains("which unexpected flows were already reported start afresh"),
        "says what state is lost: {}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("PC_KSTATS does not match"),
        "a matching map is reused: {}",
        done.stderr
    );

    // A record of another layout version: nothing pinned is trusted.
    let mut layout = monitor::pin::record::read(&pins.join("layout"))
        .expect("record")
        .expect("present");
    layout.version += 1;
    monitor::pin::record::write(&pins.join("layout"), &layout).expect("write record");
    let third = MonitorProc::start(&lab.node1, &[&lab.n1.ifname], &args).expect("restart");
    let done = third.stop().expect("stop");
    assert!(
        done.stderr.contains("no pinned map is reused"),
        "{}",
        done.stderr
    );
    let out = run_portconform(&["detach", "--all", "--pin", pins.to_str().unwrap()]);
    assert!(out.is_ok());
}

#[test]
fn a_killed_pinned_run_is_removed_whole_by_detach_all() {
    let lab = Pair::new(84, "killed").expect("lab");
    let fs = BpfFs::mount("killed").expect("bpffs");
    let pins = fs.pins("pc");
    let inv = lab.dir.file("inventory.toml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let events = lab.events_path();
    let args = [&["--interval", "3600"][..], &pinned(&pins)].concat();
    let mon = MonitorProc::classifying(
        &lab.node1,
        &[&lab.n1.ifname],
        "thoughtspot",
        &inv,
        &events,
        &args,
    )
    .expect("start");
    assert!(!connect(&lab.node2, &lab.n1.v4, 6666));
    lab.wait_event("unexpected", &lab.n2.v4, 6666);
    mon.signal(libc::SIGKILL);
    drop(mon);
    assert!(
        xdp_attached(&lab.node1, &lab.n1.ifname).unwrap(),
        "pinned: still attached after kill -9"
    );

    // The next start cannot know the last seq written: a new instance.
    let next = MonitorProc::classifying(
        &lab.node1,
        &[&lab.n1.ifname],
        "thoughtspot",
        &inv,
        &events,
        &args,
    )
    .expect("start again");
    assert!(
        next.stderr_contains("did not stop cleanly"),
        "{}",
        next.stderr_so_far()
    );
    assert!(!connect(&lab.node2, &lab.n1.v4, 6667));
    lab.wait_event("unexpected", &lab.n2.v4, 6667);
    let done = next.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    let all = read_events(&events).expect("events");
    assert_eq!(numbering(&all).len(), 2, "{all:#?}");
    let prog = xdp_prog_id(&lab.node1, &lab.n1.ifname).expect("xdp prog id");

    let out = detach(&lab.node1, &["--all", "--pin", pins.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!pins.exists(), "no pin left");
    assert!(
        !xdp_attached(&lab.node1, &lab.n1.ifname).unwrap(),
        "no XDP program"
    );
    let tc = lab
        .node1
        .run(
            Duration::from_secs(10),
            "tc",
            &["filter", "show", "dev", &lab.n1.ifname, "egress"],
        )
        .expect("tc");
    assert!(
        tc.stdout.is_empty(),
        "no egress filter: {}",
        String::from_utf8_lossy(&tc.stdout)
    );
    // No program of the run is left loaded (freed shortly after the last
    // reference goes).
    let gone = wait_for(Duration::from_secs(5), || {
        aya::programs::loaded_programs()
            .flatten()
            .all(|p| u64::from(p.id()) != prog && p.name_as_str() != Some("pc_drops"))
    });
    assert!(gone, "the run's programs are unloaded");
    // A second detach finds nothing: said, not a crash.
    let again = detach(&lab.node1, &["--all", "--pin", pins.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("holds no pins"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
