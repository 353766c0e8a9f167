//! The lab demo behind `cargo xtask demo`: a ThoughtSpot appliance node
//! running real services from Debian's packages on its documented ports, a
//! second node and an admin workstation, in network namespaces. portconform
//! watches the appliance with the embedded thoughtspot profile while the
//! nodes talk normally, someone connects where no document allows, and a
//! firewall change blocks a required port: `validate` catches the change
//! before it is applied, the monitor flags it once it is, and sees the
//! rollback recover. The HTML report closes the story. Everything is
//! removed at the end, also when a step fails; the events, the capture of
//! offending packets and the report stay in target/demo/.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::Context as _;
use portconform_tests::{
    lab::{self, Background, Netns, TEST_NET_1, TEST_NET_2, TempDir},
    monitor_proc::read_events,
    portconform_bin, services,
};

const T: Duration = Duration::from_secs(20);

/// The firewall change under review: close PostgreSQL to everyone (a
/// plausible ticket), which also cuts the cluster's own database traffic.
const CHANGE: &str = "\
# CHG-4711: close the database port
table inet chg4711 {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 5432 drop comment \"CHG-4711\"
  }
}
";

fn step(text: &str) {
    println!("\n\x1b[1m==> {text}\x1b[0m");
}

struct Paths {
    out: PathBuf,
    events: PathBuf,
    pcap: PathBuf,
    inventory: PathBuf,
    change: PathBuf,
    report: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/demo");
    std::fs::create_dir_all(&out).context("creating target/demo")?;
    let out = out.canonicalize().context("target/demo")?;
    let p = Paths {
        events: out.join("events.jsonl"),
        pcap: out.join("unexpected.pcapng"),
        inventory: out.join("inventory.toml"),
        change: out.join("chg4711.nft"),
        report: out.join("report.html"),
        out,
    };
    let _ = std::fs::remove_file(&p.events);
    std::fs::write(&p.change, CHANGE)?;

    step("building the lab: appliance node1, cluster peer node2, an admin workstation");
    let nodes = lab::host_and_peer("node1", "node2", 1, TEST_NET_1)?;
    let workstation = nodes.add_peer("admin", 2, TEST_NET_2)?;
    let (node1, node2, n1, n2) = (nodes.host, nodes.peer, nodes.host_if, nodes.peer_if);
    let (admin, n1_adm, adm) = (workstation.ns, workstation.host_if, workstation.peer_if);
    println!(
        "    node1 {} <-> node2 {}   |   node1 {} <-> admin {}",
        n1.v4, n2.v4, n1_adm.v4, adm.v4
    );
    std::fs::write(
        &p.inventory,
        format!(
            "# Roles of the thoughtspot profile bound to this lab's addresses.\n\
             nodes = [\"192.0.2.0/24\", \"2001:db8:1::/64\"]\nadmin = [\"{}\"]\n",
            adm.v4
        ),
    )?;
    println!("    inventory: {}", p.inventory.display());
    lab::settle();

    step(
        "services on node1 (Debian's packages): PostgreSQL 5432, memcached 11211, nginx 80, OpenSSH 22; \
         a stand-in for ZooKeeper on 2181; and something on 6666 no document mentions",
    );
    let scratch = TempDir::new("demo")?;
    let _services: Vec<Background> = vec![
        services::postgres(&node1, &scratch)?,
        services::memcached(&node1)?,
        services::nginx(&node1, &scratch)?,
        services::sshd(&node1, &scratch)?,
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
        .arg(&p.inventory)
        .arg("--events")
        .arg(&p.events)
        .arg("--pcap")
        .arg(&p.pcap)
        .args([
            "--handshake-timeout",
            "3s",
            "--interval",
            "3600",
            "--refresh",
            "2",
        ])
        .stdin(Stdio::null())
        .spawn()
        .context("starting portconform")?;
    thread::sleep(Duration::from_secs(2));

    let result = story(&p, &node1, &node2, &admin, &n1.v4, &n1_adm.v4, &n2.v4);
    thread::sleep(Duration::from_secs(2));

    step("stopping portconform (SIGTERM): per required rule, working / blocked / not seen");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGTERM) };
    let status = monitor.wait()?;
    result?;
    anyhow::ensure!(status.success(), "portconform exited with {status}");

    step(&format!("the events file: {}", p.events.display()));
    let all = read_events(&p.events)?;
    for e in all.iter().filter(|e| e["kind"] != "required") {
        println!(
            "    {:<10} {:<8} {:<4} {}:{} -> {}:{} count {}",
            e["kind"].as_str().unwrap_or_default(),
            e["direction"].as_str().unwrap_or_default(),
            e["proto"].as_str().unwrap_or_default(),
            e["src"].as_str().unwrap_or_default(),
            e["sport"],
            e["dst"].as_str().unwrap_or_default(),
            e["dport"],
            e["count"],
        );
    }
    let verdicts = all.iter().filter(|e| e["kind"] == "required").count();
    println!("    ... and {verdicts} \"required\" lines, one per required rule");

    step("the conformance report: portconform report EVENTS --html FILE");
    let status = Command::new(portconform_bin())
        .arg("report")
        .arg(&p.events)
        .args(["--profile", "thoughtspot", "--html"])
        .arg(&p.report)
        .status()
        .context("portconform report")?;
    anyhow::ensure!(status.success(), "portconform report exited with {status}");
    println!("    HTML report: {}", p.report.display());
    println!(
        "    also in {}: the events, the pcapng of offending packets' headers (tshark reads it), the inventory and the change",
        p.out.display()
    );
    step("removing the lab");
    Ok(())
}

fn story(
    p: &Paths,
    node1: &Netns,
    node2: &Netns,
    admin: &Netns,
    n1: &str,
    n1_admin: &str,
    n2: &str,
) -> anyhow::Result<()> {
    step("normal cluster traffic, node2 -> node1: PostgreSQL, memcached, nginx, ZooKeeper's port");
    for i in 0..2 {
        let query =
            format!("select 'session {i}: ' || count(*) || ' backends' from pg_stat_activity");
        println!("    psql: {}", services::psql(node2, n1, &query)?);
    }
    let stats = node2.run(
        T,
        "sh",
        &[
            "-c",
            &format!("printf 'stats\\r\\nquit\\r\\n' | nc -N -w 2 {n1} 11211"),
        ],
    )?;
    let pid = String::from_utf8_lossy(&stats.stdout)
        .lines()
        .find(|l| l.starts_with("STAT pid"))
        .map(str::to_owned)
        .unwrap_or_default();
    println!("    memcached: {}", pid.trim());
    let page = node2.run(T, "curl", &["-sS", "-m", "3", &format!("http://{n1}/")])?;
    println!(
        "    nginx: {}",
        String::from_utf8_lossy(&page.stdout).trim()
    );
    node2.run(
        T,
        "sh",
        &["-c", &format!("echo ruok | nc -N -w 2 {n1} 2181")],
    )?;
    println!("    2181: a ZooKeeper client's request sent");

    step("unexpected connections: each is one line, with the rule that comes closest");
    node2.run(
        T,
        "sh",
        &["-c", &format!("echo hello | nc -N -w 2 {n1} 6666")],
    )?;
    println!("    node2 -> node1:6666, a port no document mentions");
    let keys = admin.run(T, "ssh-keyscan", &["-T", "3", "-t", "ed25519", n1_admin]);
    println!(
        "    admin -> node1:22 (ssh-keyscan {}): SSH is documented for vendor support only",
        if keys.is_ok() { "answered" } else { "failed" }
    );
    if let Ok(answer) = services::psql(admin, n1_admin, "select 'admin session ok'") {
        println!(
            "    admin -> node1:5432: psql {answer}, PostgreSQL let it in; the document allows nodes only"
        );
    }
    node1.run(
        T,
        "sh",
        &["-c", &format!("printf q | socat -u - UDP4-SENDTO:{n2}:53")],
    )?;
    println!("    node1 -> node2:53/udp, a DNS query no rule allows on this appliance");
    let _ = admin.run(
        T,
        "hping3",
        &[
            "-q", "-S", "-s", "40000", "-k", "-p", "8080", "-c", "200", "-i", "u2000", n1_admin,
        ],
    );
    println!("    admin -> node1:8080, 200 SYNs from hping3: one flow, counted in the kernel");

    step(&format!(
        "a firewall change is proposed ({}): portconform validate tries it in a throwaway lab first",
        p.change.display()
    ));
    let validate = Command::new(portconform_bin())
        .args(["validate", "--ruleset"])
        .arg(&p.change)
        .args(["--profile", "thoughtspot", "--inventory"])
        .arg(&p.inventory)
        .status()
        .context("portconform validate")?;
    println!(
        "    validate exited with {} (1: the change blocks a required flow)",
        validate.code().unwrap_or(-1)
    );
    anyhow::ensure!(
        validate.code() == Some(1),
        "validate should have caught the change"
    );

    step("the change is applied anyway: node2's PostgreSQL sessions stop getting answers");
    node1.run(T, "nft", &["-f", &p.change.display().to_string()])?;
    if services::psql(node2, n1, "select 1").is_err() {
        println!("    psql from node2: no answer; the monitor flags it after its 3 s timeout");
    }
    thread::sleep(Duration::from_secs(2));

    step("the change is rolled back: the next session works, and the monitor says so");
    node1.run(T, "nft", &["delete", "table", "inet", "chg4711"])?;
    println!(
        "    psql: {}",
        services::psql(node2, n1, "select 'session after rollback'")?
    );
    thread::sleep(Duration::from_secs(2));
    Ok(())
}
