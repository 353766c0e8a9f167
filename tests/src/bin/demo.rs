//! The lab demo behind `cargo xtask demo`: an appliance node and two peers in
//! network namespaces, real clients and servers talking, and portconform on
//! the appliance counting every packet. Everything is removed at the end,
//! also when a step fails.

use std::{
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::Context as _;
use portconform_tests::{
    lab::{self, Netns},
    portconform_bin,
};

const T: Duration = Duration::from_secs(20);

fn step(text: &str) {
    println!("\n\x1b[1m==> {text}\x1b[0m");
}

fn main() -> anyhow::Result<()> {
    step("building the lab: appliance node1, peer node2, an admin workstation");
    let node1 = Netns::new("node1")?;
    let node2 = Netns::new("node2")?;
    let admin = Netns::new("admin")?;
    let (n1_cluster, n2) = lab::link(&node1, &node2, 1, "192.0.2", "2001:db8:1")?;
    let (n1_admin, adm) = lab::link(&node1, &admin, 2, "198.51.100", "2001:db8:2")?;
    println!(
        "    node1 {} / {} <-> node2 {} ; node1 {} <-> admin {}",
        n1_cluster.v4, n1_cluster.v6, n2.v4, n1_admin.v4, adm.v4
    );
    lab::settle();

    step("starting portconform on node1 (XDP ingress + TC egress on both links)");
    let mut monitor = Command::new("ip")
        .args(["netns", "exec", node1.name()])
        .arg(portconform_bin())
        .args([
            "run",
            "--iface",
            &n1_cluster.ifname,
            "--iface",
            &n1_admin.ifname,
            "--interval",
            "4",
        ])
        .stdin(Stdio::null())
        .spawn()
        .context("starting portconform")?;
    thread::sleep(Duration::from_secs(1));

    let result = traffic(
        &node1,
        &node2,
        &admin,
        &n1_cluster.v4,
        &n1_cluster.v6,
        &n1_admin.v4,
    );
    thread::sleep(Duration::from_millis(4500));

    step("stopping portconform (SIGTERM): final counters, then everything detaches");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGTERM) };
    let status = monitor.wait()?;
    result?;
    anyhow::ensure!(status.success(), "portconform exited with {status}");
    step("removing the lab");
    Ok(())
}

fn traffic(
    node1: &Netns,
    node2: &Netns,
    admin: &Netns,
    n1: &str,
    n1v6: &str,
    n1_admin: &str,
) -> anyhow::Result<()> {
    step("node2 -> node1: a client sends 5 requests to a TCP service on 2181");
    let _server = node1.spawn("nc", &["-k", "-l", "2181"])?;
    thread::sleep(Duration::from_millis(300));
    for i in 0..5 {
        node2.run(
            T,
            "sh",
            &["-c", &format!("echo request-{i} | nc -N -w 2 {n1} 2181")],
        )?;
    }

    step("node2 -> node1: ping over IPv4 and IPv6");
    node2.run(T, "ping", &["-q", "-c", "5", "-i", "0.2", n1])?;
    node2.run(T, "ping", &["-6", "-q", "-c", "5", "-i", "0.2", n1v6])?;

    step(
        "node1 -> node2: DNS-style UDP datagrams to port 53 (nothing listens: ICMP unreachable comes back)",
    );
    for _ in 0..3 {
        node1.run(
            T,
            "sh",
            &["-c", &format!("printf q | nc -u -w 0 {} 53", "192.0.2.2")],
        )?;
    }

    step("admin -> node1: an hping3 SYN burst to port 8080 (closed: node1 answers with RSTs)");
    let _ = admin.run(
        T,
        "hping3",
        &[
            "-q", "-S", "-p", "8080", "-c", "50", "-i", "u2000", n1_admin,
        ],
    );
    Ok(())
}
