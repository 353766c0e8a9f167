//! The lab demo behind `cargo xtask demo`: a ThoughtSpot appliance node, a
//! second node and an admin workstation in network namespaces; real clients
//! and servers talking; portconform on the appliance with the embedded
//! thoughtspot profile, reporting the flows the vendor's document does not
//! allow. Everything is removed at the end, also when a step fails; the
//! events and the capture of offending packets stay in target/demo/.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::Context as _;
use portconform_tests::{
    lab::{self, Netns, TempDir},
    monitor_proc::read_events,
    portconform_bin, services,
};

const T: Duration = Duration::from_secs(20);

fn step(text: &str) {
    println!("\n\x1b[1m==> {text}\x1b[0m");
}

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/demo");
    std::fs::create_dir_all(&out_dir).context("creating target/demo")?;
    let out_dir = out_dir.canonicalize().context("target/demo")?;
    let events = out_dir.join("events.jsonl");
    let pcap = out_dir.join("unexpected.pcapng");
    let inventory = out_dir.join("inventory.toml");
    let _ = std::fs::remove_file(&events);

    step("building the lab: appliance node1, cluster peer node2, an admin workstation");
    let node1 = Netns::new("node1")?;
    let node2 = Netns::new("node2")?;
    let admin = Netns::new("admin")?;
    let (n1, n2) = lab::link(&node1, &node2, 1, "192.0.2", "2001:db8:1")?;
    let (n1_adm, adm) = lab::link(&node1, &admin, 2, "198.51.100", "2001:db8:2")?;
    println!(
        "    node1 {} <-> node2 {}   |   node1 {} <-> admin {}",
        n1.v4, n2.v4, n1_adm.v4, adm.v4
    );
    std::fs::write(
        &inventory,
        format!(
            "# Roles of the thoughtspot profile bound to this lab's addresses.\n\
             nodes = [\"192.0.2.0/24\", \"2001:db8:1::/64\"]\nadmin = [\"{}\"]\n",
            adm.v4
        ),
    )?;
    println!("    inventory: {}", inventory.display());
    lab::settle();

    step(
        "services on node1: PostgreSQL on 5432, a listener on ZooKeeper's 2181, one on 6666 (undocumented)",
    );
    let pg_dir = TempDir::new("demo-pg")?;
    let _postgres = services::postgres(&node1, &pg_dir)?;
    let _servers = [
        node1.spawn("nc", &["-k", "-l", "2181"])?,
        node1.spawn("nc", &["-k", "-l", "6666"])?,
    ];
    for port in [2181, 6666] {
        node1.wait_tcp_listening(port, Duration::from_secs(5))?;
    }

    step("starting portconform on node1 with the embedded thoughtspot profile");
    let mut monitor = Command::new("ip")
        .args(["netns", "exec", node1.name()])
        .arg(portconform_bin())
        .args(["run", "--iface", &n1.ifname, "--iface", &n1_adm.ifname])
        .args(["--profile", "thoughtspot", "--inventory"])
        .arg(&inventory)
        .arg("--events")
        .arg(&events)
        .arg("--pcap")
        .arg(&pcap)
        // The document's "dynamic ports between nodes" would cover the
        // clients' ephemeral ports (32768-60999 here); pin it below them so
        // the demo's unexpected node-to-node connection is visible whole.
        .args([
            "--handshake-timeout",
            "3s",
            "--interval",
            "6",
            "--refresh",
            "2",
            "--dynamic-ports",
            "20000-29999",
        ])
        .stdin(Stdio::null())
        .spawn()
        .context("starting portconform")?;
    thread::sleep(Duration::from_secs(2));

    let result = traffic(&node1, &node2, &admin, &n1.v4, &n1_adm.v4, &n2.v4);
    thread::sleep(Duration::from_secs(3));

    step("stopping portconform (SIGTERM): final counts, then everything detaches");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGTERM) };
    let status = monitor.wait()?;
    result?;
    anyhow::ensure!(status.success(), "portconform exited with {status}");

    step(&format!(
        "the events file ({}): one line per unexpected or blocked flow, refreshed counts, then one verdict per required rule",
        events.display()
    ));
    let all = read_events(&events)?;
    let verdicts = all.iter().filter(|e| e["kind"] == "required").count();
    for e in all.iter().filter(|e| e["kind"] != "required") {
        println!(
            "    {:<10} {:<8} {:<4} {}:{} -> {}:{} count {} ({})",
            e["kind"].as_str().unwrap_or_default(),
            e["direction"].as_str().unwrap_or_default(),
            e["proto"].as_str().unwrap_or_default(),
            e["src"].as_str().unwrap_or_default(),
            e["sport"],
            e["dst"].as_str().unwrap_or_default(),
            e["dport"],
            e["count"],
            e["note"].as_str().unwrap_or_default(),
        );
    }
    println!("    ... and {verdicts} \"required\" lines, one per required rule");
    println!(
        "    headers of each flow's first packet: {} (open it with tshark or wireshark)",
        pcap.display()
    );
    step("removing the lab");
    Ok(())
}

fn traffic(
    node1: &Netns,
    node2: &Netns,
    admin: &Netns,
    n1: &str,
    n1_admin: &str,
    n2: &str,
) -> anyhow::Result<()> {
    step(
        "node2 -> node1: psql sessions to PostgreSQL and a client on 2181 (allowed between nodes)",
    );
    for i in 0..3 {
        let query =
            format!("select 'session {i}: ' || count(*) || ' backends' from pg_stat_activity");
        println!("    psql: {}", services::psql(node2, n1, &query)?);
        let send = format!("echo request-{i} | nc -N -w 2 {n1} 2181");
        node2.run(T, "sh", &["-c", &send])?;
    }
    step("node2 -> node1: a client on 6666, which no document allows (3 connections: one flow)");
    for i in 0..3 {
        node2.run(
            T,
            "sh",
            &["-c", &format!("echo hello-{i} | nc -N -w 2 {n1} 6666")],
        )?;
    }
    step("admin -> node1: ZooKeeper's 2181 and a psql session, both allowed only between nodes");
    let _ = admin.run(
        T,
        "sh",
        &["-c", &format!("echo stat | nc -N -w 2 {n1_admin} 2181")],
    );
    if let Ok(answer) = services::psql(admin, n1_admin, "select 'admin session ok'") {
        println!("    psql: {answer} (PostgreSQL let it in; the vendor's document does not)");
    }
    step("node1 -> node2: a DNS query to UDP 53 (no rule for DNS on this appliance)");
    node1.run(
        T,
        "sh",
        &["-c", &format!("printf q | socat -u - UDP4-SENDTO:{n2}:53")],
    )?;
    step("admin -> node1: an hping3 burst of 200 SYNs to 8080 (one flow, counted in the kernel)");
    let _ = admin.run(
        T,
        "hping3",
        &[
            "-q", "-S", "-s", "40000", "-k", "-p", "8080", "-c", "200", "-i", "u2000", n1_admin,
        ],
    );
    step("a firewall change on node1 drops inbound 5432: PostgreSQL, required between nodes");
    let dir = TempDir::new("demo-nft")?;
    let ruleset = dir.file("block-5432.nft");
    std::fs::write(
        &ruleset,
        "table inet change_4711 {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 5432 drop\n  }\n}\n",
    )?;
    println!("    nft -f {ruleset}: tcp dport 5432 drop");
    node1.run(T, "nft", &["-f", &ruleset])?;
    match services::psql(node2, n1, "select 1") {
        Ok(_) => println!("    psql: connected (unexpected: the rule should drop it)"),
        Err(_) => {
            println!("    psql from node2: no answer; the monitor flags it after its 3 s timeout")
        }
    }
    thread::sleep(Duration::from_secs(2));
    step("the change is rolled back; the next session works and the monitor says it recovered");
    node1.run(T, "nft", &["delete", "table", "inet", "change_4711"])?;
    println!(
        "    psql: {}",
        services::psql(node2, n1, "select 'session after rollback'")?
    );
    thread::sleep(Duration::from_secs(2));
    Ok(())
}
