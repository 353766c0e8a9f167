//! The fleet through NATS JetStream (issue 19, items 2, 3 and 5): three
//! monitored hosts export to a three-node JetStream cluster of Debian's
//! nats-server while traffic flows; one node is killed for ten seconds,
//! then the whole cluster is; afterwards the stream holds every line of
//! every host (the sequence numbers are complete), and the report built
//! from the stream is the report built from the hosts' events files.
//!
//! Lab (documentation ranges only): a hub namespace (the cluster, and the
//! client of every connection) linked to node-a (192.0.2.2), node-b
//! (198.51.100.2) and node-c (203.0.113.2), each monitored with the
//! thoughtspot profile and routed to the hub only.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use portconform_tests::{
    lab::{self, Background, Netns, TempDir},
    monitor_proc::{MonitorProc, read_events},
    pair::connect,
    portconform_bin,
};
use serde_json::Value;

const CLIENT_PORTS: [u16; 3] = [4222, 4223, 4224];
const ROUTE_PORTS: [u16; 3] = [6222, 6223, 6224];
const OUTAGE: Duration = Duration::from_secs(10);

/// One cluster node: its config file, written once, so a restart is the
/// same server with the same store.
fn node_config(dir: &TempDir, i: usize) -> String {
    let routes: Vec<String> = ROUTE_PORTS
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, p)| format!("\"nats-route://127.0.0.1:{p}\""))
        .collect();
    let store = dir.file(&format!("js{i}"));
    let path = dir.file(&format!("nats{i}.conf"));
    std::fs::write(
        &path,
        format!(
            "server_name: n{i}\nlisten: \"0.0.0.0:{}\"\njetstream {{\n  store_dir: \"{store}\"\n}}\ncluster {{\n  name: portconform-lab\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
            CLIENT_PORTS[i],
            ROUTE_PORTS[i],
            routes.join(", ")
        ),
    )
    .unwrap();
    path
}

fn start_node(hub: &Netns, config: &str, i: usize) -> Background {
    let bg = hub
        .spawn_graceful(
            "nats-server",
            &["-c", config],
            libc::SIGTERM,
            Duration::from_secs(10),
        )
        .expect("nats-server");
    hub.wait_tcp_listening(CLIENT_PORTS[i], Duration::from_secs(20))
        .expect("nats-server listens");
    bg
}

/// `report --from URL --format json`, run in the hub; None while it fails
/// (no stream yet, the cluster electing its leaders).
fn stream_report(hub: &Netns, url: &str) -> Option<Value> {
    let out = hub
        .command(
            Duration::from_secs(60),
            &portconform_bin().to_string_lossy(),
        )
        .args(["report", "--from", url, "--format", "json"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The report without the inputs' list of files (a file per host on one
/// side, the stream on the other).
fn comparable(mut report: Value) -> Value {
    report["inputs"]
        .as_object_mut()
        .expect("inputs")
        .remove("files");
    report
}

#[test]
fn the_stream_holds_every_line_across_a_node_and_a_cluster_outage() {
    assert!(
        std::path::Path::new("/usr/sbin/nats-server").exists()
            || std::path::Path::new("/usr/bin/nats-server").exists(),
        "Debian's nats-server is required: cargo xtask setup installs it"
    );
    let hub = Netns::new("natshub").expect("hub");
    let dir = TempDir::new("nats").expect("dir");
    let nets = [lab::TEST_NET_1, lab::TEST_NET_2, lab::TEST_NET_3];
    let mut nodes = Vec::new();
    for (i, (name, net)) in ["node-a", "node-b", "node-c"]
        .into_iter()
        .zip(nets)
        .enumerate()
    {
        let ns = Netns::new(name).expect("node");
        let (hub_end, node_end) =
            lab::link(&hub, &ns, 85 + i as u32, net, &lab::v6_net(85 + i as u32)).expect("link");
        // The cluster advertises all the hub's addresses: route to them.
        ns.ip(&["route", "add", "default", "via", &hub_end.v4])
            .expect("route");
        nodes.push((name, ns, hub_end, node_end));
    }
    lab::settle();
    let configs: Vec<String> = (0..3).map(|i| node_config(&dir, i)).collect();
    let mut cluster: Vec<Option<Background>> = (0..3)
        .map(|i| Some(start_node(&hub, &configs[i], i)))
        .collect();

    let inventory = dir.file("inventory.toml");
    std::fs::write(
        &inventory,
        format!(
            "nodes = [{}]\n",
            nodes
                .iter()
                .map(|(_, _, _, e)| format!("\"{}/32\"", e.v4))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    let mut monitors = Vec::new();
    let mut files = Vec::new();
    for (name, ns, hub_end, node_end) in &nodes {
        let events = dir.file(&format!("{name}.jsonl"));
        let url = format!("nats://{}:{}", hub_end.v4, CLIENT_PORTS[0]);
        monitors.push(
            MonitorProc::classifying(
                ns,
                &[&node_end.ifname],
                "thoughtspot",
                &inventory,
                &events,
                &[
                    "--host-name",
                    name,
                    "--export",
                    &url,
                    "--spool-dir",
                    &dir.file(&format!("spool-{name}")),
                ],
            )
            .expect("start portconform"),
        );
        files.push(events);
    }

    // Traffic all along: the hub tries ports no rule allows on every node,
    // one new unexpected flow (one line) each.
    let stop = AtomicBool::new(false);
    let tries = AtomicU64::new(0);
    let targets: Vec<(String, String)> = nodes
        .iter()
        .map(|(_, _, _, e)| (e.ns.clone(), e.v4.clone()))
        .collect();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Bounded, should the test fail before it says stop.
            let until = Instant::now() + Duration::from_secs(150);
            let mut port = 30000u16;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                for (_, addr) in &targets {
                    connect(&hub, addr, port);
                    tries.fetch_add(1, Ordering::Relaxed);
                }
                port += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        outages(&hub, &configs, &mut cluster);
        stop.store(true, Ordering::Relaxed);
    });

    let url = format!("nats://127.0.0.1:{}", CLIENT_PORTS[0]);
    // What the hosts wrote while the cluster was down reaches it once it
    // is back (its leaders elected): wait for that before stopping them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !caught_up(&hub, &url, &nodes_and_files(&nodes, &files)) {
        assert!(
            Instant::now() < deadline,
            "the stream never caught up with the events files"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    say("the stream has caught up; stopping the monitors");
    let mut stderrs = Vec::new();
    for m in monitors {
        let done = m.stop().expect("stop");
        assert!(done.status.success(), "{}", done.stderr);
        assert!(
            !done.stderr.contains("not delivered yet") && !done.stderr.contains("dropped"),
            "{}",
            done.stderr
        );
        stderrs.push(done.stderr);
    }
    // The outage was seen, and said.
    assert!(
        stderrs.iter().any(|s| s.contains("delivering again after")),
        "{stderrs:#?}"
    );

    // Every line of every host is in the stream, once each as the report
    // reads it.
    let from_stream = stream_report(&hub, &url).expect("report --from the stream");
    let sequences = from_stream["inputs"]["sequences"].as_array().unwrap();
    assert_eq!(sequences.len(), 3, "one instance per host: {sequences:#?}");
    let mut total = 0;
    for ((name, ..), file) in nodes.iter().zip(&files) {
        let lines = read_events(file).expect("events");
        let s = sequences
            .iter()
            .find(|s| s["host"] == *name)
            .unwrap_or_else(|| panic!("{name} is not in the stream: {sequences:#?}"));
        assert_eq!(s["first"], 1, "{s:#}");
        assert_eq!(s["missing"], 0, "{s:#}");
        assert_eq!(s["last"].as_u64(), Some(lines.len() as u64), "{s:#}");
        total += lines.len();
    }
    eprintln!(
        "{} connection attempts, {total} lines from 3 hosts; stream read: {:#}",
        tries.load(Ordering::Relaxed),
        from_stream["inputs"]["files"]
    );
    assert!(total > 300, "too little traffic to tell: {total} lines");

    // The same report as from the merged files.
    let out = hub
        .command(
            Duration::from_secs(60),
            &portconform_bin().to_string_lossy(),
        )
        .args(["report", "--format", "json"])
        .args(&files)
        .output()
        .expect("report from files");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_files: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(comparable(from_stream), comparable(from_files));
    drop(cluster);
}

/// While traffic flows: once every host is in the stream, one node dies
/// for [`OUTAGE`], then the whole cluster does.
fn outages(hub: &Netns, configs: &[String], cluster: &mut [Option<Background>]) {
    // Every host is in the stream before anything fails.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hosts = stream_report(hub, &format!("nats://127.0.0.1:{}", CLIENT_PORTS[0]))
            .map(|r| r["hosts"].as_array().map_or(0, Vec::len))
            .unwrap_or(0);
        if hosts == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the three hosts never reached the stream"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The node the monitors connected to dies without a word, and comes
    // back ten seconds later.
    say("killing node 0");
    kill_quietly(cluster, 0);
    std::thread::sleep(OUTAGE);
    cluster[0] = Some(start_node(hub, &configs[0], 0));
    say("node 0 is back");
    std::thread::sleep(Duration::from_secs(5));

    // Then the whole cluster.
    say("killing the whole cluster");
    for i in 0..3 {
        kill_quietly(cluster, i);
    }
    std::thread::sleep(OUTAGE);
    for (i, config) in configs.iter().enumerate() {
        cluster[i] = Some(start_node(hub, config, i));
    }
    say("the cluster is back");
    std::thread::sleep(Duration::from_secs(5));
}

fn nodes_and_files<'a, A, B, C>(
    nodes: &'a [(&'a str, A, B, C)],
    files: &'a [String],
) -> Vec<(&'a str, &'a str)> {
    nodes
        .iter()
        .zip(files)
        .map(|((n, ..), f)| (*n, f.as_str()))
        .collect()
}

/// Whether the stream has, for every host, as many lines as its file.
fn caught_up(hub: &Netns, url: &str, hosts: &[(&str, &str)]) -> bool {
    let Some(report) = stream_report(hub, url) else {
        return false;
    };
    let empty = Vec::new();
    let sequences = report["inputs"]["sequences"].as_array().unwrap_or(&empty);
    hosts.iter().all(|(name, file)| {
        let lines = read_events(file).map_or(0, |l| l.len() as u64);
        sequences
            .iter()
            .any(|s| s["host"] == *name && s["missing"] == 0 && s["last"].as_u64() >= Some(lines))
    })
}

/// A line on the test's output with the wall time, to read beside the
/// monitors' logs.
fn say(what: &str) {
    eprintln!(
        "nats_e2e {}: {what}",
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
    );
}

/// SIGKILL, as a crash: no goodbye to the cluster or the clients.
fn kill_quietly(cluster: &mut [Option<Background>], i: usize) {
    if let Some(bg) = cluster[i].take() {
        bg.kill();
    }
}
