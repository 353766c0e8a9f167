//! The drop hook's cost per dropped packet, on real traffic: a lab node
//! whose own input chain drops a flood of UDP datagrams from its peer,
//! with `pc_drops` and a bare raw tracepoint program (`pc_rawtp_pass`,
//! which only reads the reason argument) both attached to `kfree_skb`.
//! The kernel's own statistics (bpf_stats: run_time_ns / run_cnt) time
//! both over the same drops, so the ratio compares like with like. The
//! tracepoint fires only when a packet is dropped: with nothing dropping,
//! neither program runs at all.
//!
//! Two floods: one of a required flow (DNS from the `local-dns` peer, the
//! whole path: headers read, classified, the flow's record bumped) and one
//! nobody requires (counted only).

use std::{
    net::UdpSocket,
    os::unix::fs::MetadataExt as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use monitor_common::{
    flow::Kstat,
    maps::{PROG_DROPS, PROG_RAWTP_PASS},
};
use portconform_tests::{
    kernel::{self, Kernel},
    lab::{self, TEST_NET_1},
};

/// Datagrams per flood: enough that the lab's drops swamp any other drop
/// on the host in the programs' counts, bounded in time below.
const FLOOD: u32 = 200_000;
const FLOOD_LIMIT: Duration = Duration::from_secs(30);

/// `--flood ADDR PORT COUNT`: this program as the flood's sender.
pub struct Flood {
    addr: String,
    port: u16,
    count: u32,
}

pub fn flood_args() -> Option<Flood> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, addr, port, count] if flag == "--flood" => Some(Flood {
            addr: addr.clone(),
            port: port.parse().ok()?,
            count: count.parse().ok()?,
        }),
        _ => None,
    }
}

/// Sends `count` small datagrams, bounded by [`FLOOD_LIMIT`].
pub fn flood(f: Flood) -> anyhow::Result<()> {
    let sock = UdpSocket::bind("0.0.0.0:0").context("binding the flood's socket")?;
    sock.connect((f.addr.as_str(), f.port))
        .context("the flood's destination")?;
    let start = Instant::now();
    for i in 0..f.count {
        // A full socket buffer or a transient error: keep going, the drops
        // are what is measured, not the sends.
        let _ = sock.send(&i.to_be_bytes());
        if i % 1024 == 0 && start.elapsed() > FLOOD_LIMIT {
            break;
        }
    }
    Ok(())
}

pub fn bench() -> anyhow::Result<()> {
    if !kernel::names_drop_reasons() {
        println!("\ndrop hook: this kernel has no drop reasons (5.17+): skipped");
        return Ok(());
    }
    let nodes = lab::host_and_peer("bench-node", "bench-dns", 159, TEST_NET_1)?;
    let (node, dns) = (&nodes.host_if, &nodes.peer_if);
    let inventory = format!("nodes = [\"{}\"]\nlocal-dns = [\"{}\"]\n", node.v4, dns.v4);
    let tables = kernel::profile_tables("auth0-psaas", &inventory)?;
    let mut k = Kernel::load()?;
    k.enable_policy(&tables)?;
    let netns = std::fs::metadata(format!("/run/netns/{}", nodes.host.name()))
        .context("the node's namespace")?
        .ino() as u32;
    let ifindex = nodes.host.ifindex(&node.ifname)?;
    nodes.host.run(
        Duration::from_secs(10),
        "nft",
        &[
            "add table inet pc_bench; add chain inet pc_bench input { type filter hook input priority 0; }; add rule inet pc_bench input udp dport { 53, 9 } drop",
        ],
    )?;
    lab::settle();
    k.attach_drop_hooks(netns, ifindex)?;
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("enabling bpf_stats")?;
    println!(
        "\ndrop hook on kfree_skb, a real flood of {FLOOD} UDP datagrams dropped by the node's input chain; bpf_stats: ns per run (runs), ratio to a bare raw tracepoint"
    );
    println!(
        "{:<34} {:>20} {:>20} {:>7}",
        "flood", "pc_rawtp_pass", "pc_drops", "ratio"
    );
    let self_exe = std::env::current_exe()?.to_string_lossy().into_owned();
    for (label, port, stat) in [
        ("required flow (dns, recorded)", 53u16, Kstat::LocalDrops),
        ("no rule (udp 9, counted)", 9, Kstat::LocalDropsOther),
    ] {
        let before = (
            k.run_stats(PROG_RAWTP_PASS)?,
            k.run_stats(PROG_DROPS)?,
            k.kstat(stat)?,
        );
        let out = nodes
            .peer
            .command(FLOOD_LIMIT + Duration::from_secs(10), &self_exe)
            .args(["--flood", &node.v4, &port.to_string(), &FLOOD.to_string()])
            .output()
            .context("the flood")?;
        anyhow::ensure!(
            out.status.success(),
            "the flood failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = (
            k.run_stats(PROG_RAWTP_PASS)?,
            k.run_stats(PROG_DROPS)?,
            k.kstat(stat)?,
        );
        let per = |(t0, n0): (Duration, u64), (t1, n1): (Duration, u64)| {
            let runs = n1.saturating_sub(n0);
            let ns = t1.saturating_sub(t0).as_nanos() as f64 / runs.max(1) as f64;
            (ns, runs)
        };
        let (base, base_runs) = per(before.0, after.0);
        let (hook, hook_runs) = per(before.1, after.1);
        println!(
            "{label:<34} {:>20} {:>20} {:>6.2}x",
            format!("{base:.1} ({base_runs})"),
            format!("{hook:.1} ({hook_runs})"),
            hook / base
        );
        eprintln!(
            "    ({} of the flood's drops reached the hook's {stat:?} counter)",
            after.2.saturating_sub(before.2)
        );
    }
    Ok(())
}
