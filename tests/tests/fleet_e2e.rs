//! A fleet under a real Prometheus (issue 19, item 4): Debian's prometheus
//! scrapes three monitored hosts with the shipped rules loaded, and the
//! blocked-required-flow alert fires for the one host whose required flow
//! is refused, with its rule, and for no other.
//!
//! Lab (documentation ranges only): a hub namespace (Prometheus, and the
//! client of every connection) linked to node-a (192.0.2.2), node-b
//! (198.51.100.2) and node-c (203.0.113.2), each monitored with the
//! thoughtspot profile, with the shipped defaults (the rule's `for: 1m`
//! included, so the test takes a little over a minute).

use std::time::{Duration, Instant};

use portconform_tests::{
    lab::{self, Netns, TempDir},
    monitor_proc::MonitorProc,
    pair::connect,
};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../monitor/packaging/prometheus/portconform.rules.yml"
);
const METRICS_PORT: u16 = 9464;

/// Prometheus's alerts, as its HTTP API lists them.
fn alerts(hub: &Netns) -> Vec<serde_json::Value> {
    let Ok(out) = hub.run(
        Duration::from_secs(10),
        "curl",
        &["-sf", "http://127.0.0.1:9090/api/v1/alerts"],
    ) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["data"]["alerts"].as_array().cloned().unwrap_or_default()
}

#[test]
fn prometheus_fires_the_blocked_alert_for_the_one_host_with_a_blocked_flow() {
    assert!(
        std::path::Path::new("/usr/bin/prometheus").exists(),
        "Debian's prometheus is required: cargo xtask setup installs it"
    );
    let hub = Netns::new("hub").expect("hub");
    let dir = TempDir::new("fleet").expect("dir");
    let nets = [lab::TEST_NET_1, lab::TEST_NET_2, lab::TEST_NET_3];
    let mut nodes = Vec::new();
    for (i, (name, net)) in ["node-a", "node-b", "node-c"]
        .into_iter()
        .zip(nets)
        .enumerate()
    {
        let ns = Netns::new(name).expect("node");
        let (hub_end, node_end) =
            lab::link(&hub, &ns, 95 + i as u32, net, &lab::v6_net(95 + i as u32)).expect("link");
        nodes.push((name, ns, hub_end, node_end));
    }
    lab::settle();
    // The hub is a node to each of them: its attempts on their required
    // ports are required flows.
    let inventory = dir.file("inventory.toml");
    std::fs::write(
        &inventory,
        format!(
            "nodes = [{}]\n",
            nets.iter()
                .map(|n| format!("\"{n}.0/24\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    let mut monitors = Vec::new();
    for (name, ns, _, node_end) in &nodes {
        let metrics = format!("{}:{METRICS_PORT}", node_end.v4);
        let events = dir.file(&format!("{name}.jsonl"));
        monitors.push(
            MonitorProc::classifying(
                ns,
                &[&node_end.ifname],
                "thoughtspot",
                &inventory,
                &events,
                &["--metrics", &metrics],
            )
            .expect("start portconform"),
        );
    }

    let targets: Vec<String> = nodes
        .iter()
        .map(|(_, _, _, e)| format!("\"{}:{METRICS_PORT}\"", e.v4))
        .collect();
    let config = dir.file("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {RULES}\nscrape_configs:\n  - job_name: portconform\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .unwrap();
    let data = dir.file("tsdb");
    let _prometheus = hub
        .spawn_graceful(
            "prometheus",
            &[
                &format!("--config.file={config}"),
                &format!("--storage.tsdb.path={data}"),
                "--web.listen-address=127.0.0.1:9090",
            ],
            libc::SIGTERM,
            Duration::from_secs(10),
        )
        .expect("prometheus");
    hub.wait_tcp_listening(9090, Duration::from_secs(30))
        .expect("prometheus listens");

    // node-b: a required port with nothing listening, refused by a reset.
    let node_b = &nodes[1].3;
    assert!(!connect(&hub, &node_b.v4, 2888));

    let deadline = Instant::now() + Duration::from_secs(150);
    let firing = loop {
        let all = alerts(&hub);
        let firing: Vec<serde_json::Value> = all
            .iter()
            .filter(|a| {
                a["labels"]["alertname"] == "PortconformRequiredFlowBlocked"
                    && a["state"] == "firing"
            })
            .cloned()
            .collect();
        if !firing.is_empty() {
            break firing;
        }
        assert!(
            Instant::now() < deadline,
            "the alert never fired; alerts: {all:#?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(firing.len(), 1, "one host, one rule: {firing:#?}");
    let a = &firing[0];
    assert_eq!(
        a["labels"]["instance"],
        format!("{}:{METRICS_PORT}", node_b.v4),
        "{a:#}"
    );
    assert_eq!(a["labels"]["rule"], "000-22", "{a:#}");
    assert_eq!(a["labels"]["severity"], "critical", "{a:#}");
    // Every host was scraped all along: the others had nothing to alert on.
    let up = hub
        .run(
            Duration::from_secs(10),
            "curl",
            &["-sf", "http://127.0.0.1:9090/api/v1/query?query=up"],
        )
        .expect("query up");
    let up: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    let results = up["data"]["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 3, "{up:#}");
    assert!(results.iter().all(|r| r["value"][1] == "1"), "{up:#}");
    for m in monitors {
        let done = m.stop().expect("stop");
        assert!(done.status.success(), "{}", done.stderr);
    }
}
