//! The programs' cost on real traffic (issue 16's headline): a veth lab,
//! node2 ── node1, with the thoughtspot profile loaded and the programs
//! attached to node1's end as the daemon attaches them (native XDP on
//! ingress, a tcx link on egress). Each round sends the same kind of
//! traffic twice, once through a bare program attached alone in the same
//! place (`pc_xdp_pass`, `pc_tc_pass`) and once through the monitor's;
//! the kernel's own statistics (bpf_stats: run_time_ns / run_cnt) time
//! every packet of both. A thread drains the ring buffer as the daemon
//! does, so first sightings cost what they cost in service.
//!
//! Traffic: a TCP stream from node2 to node1's ZooKeeper port (allowed
//! data in, its ACKs out) and back (allowed answers out, to node2's
//! ephemeral port, which the document's dynamic range covers), and hping3
//! floods: one unexpected flow, random sources (every packet a new flow),
//! and SYNs to a required port (every packet an attempt).

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use monitor_common::maps::{PROG_EGRESS, PROG_INGRESS, PROG_TC_PASS, PROG_XDP_PASS};
use portconform_tests::{
    kernel::{self, Kernel},
    lab::{self, Netns, TEST_NET_1},
};

/// How long each program sees each kind of traffic per round.
const ROUND: Duration = Duration::from_secs(2);
/// Rounds per path; the medians are reported.
const ROUNDS: usize = 5;
/// node1's port the streams use: ZooKeeper, which the document requires
/// between nodes.
const SERVICE: u16 = 2181;

/// What node2 sends in a round.
#[derive(Clone, Copy)]
enum Traffic {
    /// A TCP stream node2 → node1:2181 (data in, ACKs out).
    Upload,
    /// A TCP stream node1:2181 → node2 (data out, ACKs in).
    Download,
    /// `hping3 --flood` with these arguments, at node1.
    Flood(&'static [&'static str]),
}

/// One measured path: which programs, which traffic.
struct Path {
    label: &'static str,
    bare: &'static str,
    monitor: &'static str,
    traffic: Traffic,
}

const PATHS: &[Path] = &[
    Path {
        label: "allowed data (node -> 2181)",
        bare: PROG_XDP_PASS,
        monitor: PROG_INGRESS,
        traffic: Traffic::Upload,
    },
    Path {
        label: "allowed answers (2181 -> node)",
        bare: PROG_TC_PASS,
        monitor: PROG_EGRESS,
        traffic: Traffic::Download,
    },
    Path {
        label: "unexpected, one flow flooding",
        bare: PROG_XDP_PASS,
        monitor: PROG_INGRESS,
        traffic: Traffic::Flood(&["-S", "-p", "7777", "-s", "40000", "-k"]),
    },
    Path {
        label: "unexpected, random sources",
        bare: PROG_XDP_PASS,
        monitor: PROG_INGRESS,
        traffic: Traffic::Flood(&["-S", "-p", "7777", "--rand-source"]),
    },
    Path {
        label: "required SYN flood (2181)",
        bare: PROG_XDP_PASS,
        monitor: PROG_INGRESS,
        traffic: Traffic::Flood(&["-S", "-p", "2181"]),
    },
];

pub fn bench() -> anyhow::Result<()> {
    let nodes = lab::host_and_peer("live-node1", "live-node2", 160, TEST_NET_1)?;
    let (n1, n2) = (&nodes.host_if, &nodes.peer_if);
    let inventory = format!(
        "nodes = [\"{}\", \"{}\", \"{}\", \"{}\"]\n",
        n1.v4, n2.v4, n1.v6, n2.v6
    );
    let tables = kernel::profile_tables("thoughtspot", &inventory)?;
    let mut k = Kernel::load()?;
    k.enable_policy(&tables)?;
    k.watch_ifindex(nodes.host.ifindex(&n1.ifname)?)?;
    let stop = Arc::new(AtomicBool::new(false));
    let drained = Arc::new(AtomicU64::new(0));
    let drain = drain_events(&mut k, &stop, &drained)?;
    let server = serve(&nodes.host, &stop)?;
    lab::settle();
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("enabling bpf_stats")?;
    println!(
        "\nlive traffic, veth lab, thoughtspot profile (bpf_stats: ns per packet, median of {ROUNDS} rounds of {}s per program; ratio: median of per-round ratios to a bare program attached alone in the same place)",
        ROUND.as_secs()
    );
    println!(
        "{:<34} {:>8} {:>10} {:>7} {:>14}",
        "path", "bare", "portconform", "ratio", "packets/round"
    );
    // A developer's filter, to profile one path alone (`perf record -a`).
    let only = std::env::var("PORTCONFORM_LIVE_PATH").ok();
    for path in PATHS {
        if only.as_deref().is_some_and(|o| !path.label.contains(o)) {
            continue;
        }
        let mut bare = Vec::new();
        let mut mon = Vec::new();
        let mut ratios = Vec::new();
        let mut packets = Vec::new();
        for _ in 0..ROUNDS {
            let (b, _) = measure(&mut k, &nodes.host, &nodes.peer, path.bare, path, n1)?;
            let (m, n) = measure(&mut k, &nodes.host, &nodes.peer, path.monitor, path, n1)?;
            bare.push(b);
            mon.push(m);
            ratios.push(m / b);
            packets.push(n as f64);
        }
        println!(
            "{:<34} {:>8.1} {:>10.1} {:>6.2}x {:>14.0}",
            path.label,
            median(bare),
            median(mon),
            median(ratios),
            median(packets)
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    let _ = drain.join();
    eprintln!(
        "    ({} first sightings drained from the ring buffer)",
        drained.load(Ordering::Relaxed)
    );
    Ok(())
}

/// One round of `path`'s traffic through program `prog` attached alone:
/// its ns per run and runs.
fn measure(
    k: &mut Kernel,
    node1: &Netns,
    node2: &Netns,
    prog: &'static str,
    path: &Path,
    n1: &lab::End,
) -> anyhow::Result<(f64, u64)> {
    let link = k.attach_in(node1, &n1.ifname, prog)?;
    let (t0, c0) = k.run_stats(prog)?;
    send(node2, path.traffic, &n1.v4)?;
    let (t1, c1) = k.run_stats(prog)?;
    drop(link);
    let runs = c1.saturating_sub(c0);
    anyhow::ensure!(runs > 0, "{prog} saw none of {}'s traffic", path.label);
    Ok((t1.saturating_sub(t0).as_nanos() as f64 / runs as f64, runs))
}

/// Sends one round of `traffic` from node2 to node1 at `addr`.
fn send(node2: &Netns, traffic: Traffic, addr: &str) -> anyhow::Result<()> {
    match traffic {
        Traffic::Upload | Traffic::Download => {
            let target = format!("{addr}:{SERVICE}");
            let mut stream = node2
                .enter(|| TcpStream::connect(&target))?
                .with_context(|| format!("connecting to {target}"))?;
            let upload = matches!(traffic, Traffic::Upload);
            stream.write_all(if upload { b"u" } else { b"d" })?;
            let mut buf = vec![0u8; 64 * 1024];
            let start = Instant::now();
            while start.elapsed() < ROUND {
                if upload {
                    stream.write_all(&buf)?;
                } else if stream.read(&mut buf)? == 0 {
                    break;
                }
            }
        }
        Traffic::Flood(args) => {
            let secs = ROUND.as_secs().to_string();
            // hping3 ignores a count in flood mode: `timeout` bounds it,
            // and ends it with a status that is not an error here.
            node2
                .command(ROUND + Duration::from_secs(5), "timeout")
                .args([secs.as_str(), "hping3", "--flood", "-q"])
                .args(args)
                .arg(addr)
                .output()
                .context("hping3")?;
        }
    }
    Ok(())
}

/// node1's side of the streams, until `stop`: a connection that starts
/// with `u` is read to its end, one that starts with `d` written to until
/// the peer closes.
fn serve(node1: &Netns, stop: &Arc<AtomicBool>) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let listener = node1
        .enter(|| TcpListener::bind(("0.0.0.0", SERVICE)))?
        .context("listening on node1")?;
    listener.set_nonblocking(true)?;
    let stop = Arc::clone(stop);
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let _ = conn.set_nonblocking(false);
            std::thread::spawn(move || {
                let mut mode = [0u8; 1];
                if conn.read_exact(&mut mode).is_err() {
                    return;
                }
                let mut buf = vec![0u8; 64 * 1024];
                if mode[0] == b'u' {
                    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                } else {
                    while conn.write_all(&buf).is_ok() {}
                }
            });
        }
    }))
}

/// Drains first sightings from the ring buffer as the daemon does, until
/// `stop`, counting them.
fn drain_events(
    k: &mut Kernel,
    stop: &Arc<AtomicBool>,
    drained: &Arc<AtomicU64>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let mut ring = k.take_events()?;
    let (stop, drained) = (Arc::clone(stop), Arc::clone(drained));
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let mut n = 0;
            while ring.next().is_some() {
                n += 1;
            }
            drained.fetch_add(n, Ordering::Relaxed);
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
