//! Verdicts under the shipped defaults: the thoughtspot document allows its
//! dynamic port range both ways between nodes, and the monitor takes that
//! range from the host's ip_local_port_range, where clients also take
//! their ephemeral ports. An unexpected connection between two nodes must
//! still count every packet and byte it carries, not only its SYN (issue
//! 15); tcpdump on the same interface is the oracle.
//!
//! Lab (documentation ranges only): node2 ── node1 (monitored). node1 runs
//! a socat echo server on 6666, a port no rule names; node2's client sends
//! 30 separate data segments to it.

use std::time::Duration;

use portconform_tests::{
    lab::{self, TEST_NET_1, TempDir},
    monitor_proc::{MonitorProc, read_events},
    services,
};
use serde_json::Value;

const T: Duration = Duration::from_secs(20);
const SEGMENTS: usize = 30;

/// node2's client: one connection, 30 writes of 100 bytes each a segment of
/// its own (TCP_NODELAY, a pause between writes), the echo read back.
const CLIENT: &str = r#"
import socket, sys, time
s = socket.create_connection((sys.argv[1], 6666), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
got = 0
for i in range(30):
    s.sendall(b"x" * 100)
    time.sleep(0.05)
s.shutdown(socket.SHUT_WR)
while True:
    b = s.recv(65536)
    if not b:
        break
    got += len(b)
print(got)
"#;

#[test]
fn an_unexpected_connection_between_nodes_counts_every_packet() {
    let nodes = lab::host_and_peer("dnode1", "dnode2", 65, TEST_NET_1).expect("lab");
    let dir = TempDir::new("dynamic").expect("scratch dir");
    lab::settle();
    let _server = services::tcp_echo(&nodes.host, 6666, 5).expect("echo server");
    let (host4, peer4) = (nodes.host_if.v4.clone(), nodes.peer_if.v4.clone());
    let capture = dir.file("node1.pcap");
    let tcpdump = nodes
        .host
        .spawn_graceful(
            "tcpdump",
            &[
                "-i",
                &nodes.host_if.ifname,
                "--immediate-mode",
                "-U",
                "-w",
                &capture,
                "tcp port 6666",
            ],
            libc::SIGINT,
            Duration::from_secs(5),
        )
        .expect("tcpdump");
    std::thread::sleep(Duration::from_secs(1));
    let inventory = dir.file("inventory.toml");
    std::fs::write(&inventory, "nodes = [\"192.0.2.0/24\"]\n").expect("inventory");
    let events = dir.file("events.jsonl");
    let mon = MonitorProc::classifying(
        &nodes.host,
        &[&nodes.host_if.ifname],
        "thoughtspot",
        &inventory,
        &events,
        &[],
    )
    .expect("start portconform");

    let out = nodes
        .peer
        .run(T, "python3", &["-c", CLIENT, &host4])
        .expect("client");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        (SEGMENTS * 100).to_string(),
        "echo"
    );
    // Let the close finish before the monitor's last count.
    std::thread::sleep(Duration::from_secs(1));
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    drop(tcpdump);

    // What tcpdump saw each way on node1's interface.
    let frames = |filter: &str| -> (u64, u64) {
        let out = std::process::Command::new("tshark")
            .args([
                "-r",
                &capture,
                "-Y",
                filter,
                "-T",
                "fields",
                "-e",
                "frame.len",
            ])
            .output()
            .expect("tshark");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lens: Vec<u64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().expect("frame.len"))
            .collect();
        (lens.len() as u64, lens.iter().sum())
    };
    let (sent, sent_bytes) = frames(&format!("ip.src == {peer4} && tcp.dstport == 6666"));
    let (answered, _) = frames(&format!("ip.src == {host4} && tcp.srcport == 6666"));
    assert!(sent > SEGMENTS as u64, "tcpdump saw {sent} packets");

    let events = read_events(&events).expect("events");
    let flow: Vec<&Value> = events
        .iter()
        .filter(|e| e["dport"] == 6666 && e["src"] == peer4.as_str())
        .collect();
    assert!(
        flow.iter().any(|e| e["kind"] == "unexpected"),
        "no unexpected event: {events:#?}"
    );
    let last = flow.last().expect("a record");
    assert_eq!(
        (
            last["count"].as_u64(),
            last["bytes"].as_u64(),
            last["reply_packets"].as_u64()
        ),
        (Some(sent), Some(sent_bytes), Some(answered)),
        "the flow's last record against tcpdump: {flow:#?}"
    );
}
