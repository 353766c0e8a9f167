//! Per-packet cost of the kernel programs, as a ratio to bare pass programs
//! loaded from the same object and timed in the same run with
//! BPF_PROG_TEST_RUN. Ratios, not absolute times, are what we compare across
//! machines. Run through `cargo xtask bench`.

#[path = "bench/drops.rs"]
mod drops;
#[path = "bench/export.rs"]
mod export;
#[path = "bench/export_nats.rs"]
mod export_nats;
#[path = "bench/live.rs"]
mod live;

use std::time::Duration;

use anyhow::Context as _;
use monitor_common::{
    maps::{PROG_EGRESS, PROG_INGRESS, PROG_TC_PASS, PROG_XDP_PASS},
    packet::{TCP_ACK, TCP_SYN},
};
use portconform_tests::{
    fixtures::{self, ADMIN, INVENTORY, NODE1, NODE1_V6, NODE2, tcp},
    kernel::Kernel,
    packets::{self, corpus},
};

/// Alternating rounds per measurement, each of a twentieth of `--repeat`
/// runs: many short rounds, so that preempted ones (this machine has two
/// cores, and shares its host) are outliers rather than the result.
const ROUNDS: usize = 41;

fn main() -> anyhow::Result<()> {
    // The drop benchmark runs this program again in a lab namespace to
    // send its flood.
    if let Some(flood) = drops::flood_args() {
        return drops::flood(flood);
    }
    let (repeat, only) = parse_args()?;
    let run = |section: &str| only.as_deref().is_none_or(|o| o == section);
    if run("counting") {
        counting(repeat)?;
    }
    if run("live") {
        live::bench()?;
    }
    if run("classifier") {
        classifier(repeat)?;
    }
    if run("drops") {
        drops::bench()?;
    }
    if run("daemon") {
        daemon()?;
    }
    if run("export") {
        export::bench()?;
        export_nats::bench()?;
    }
    if run("replay") {
        replay_bench(2_000_000)?;
    }
    Ok(())
}

/// The programs with no policy loaded: parsing and counting only.
fn counting(repeat: u32) -> anyhow::Result<()> {
    let kernel = Kernel::load()?;
    let all = corpus();
    let pick = |name: &str| {
        all.iter()
            .find(|c| c.name == name)
            .map(|c| c.frame.clone())
            .with_context(|| format!("corpus case {name}"))
    };
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("ipv4 tcp syn", packets::v4_tcp_syn(40000, 2181)),
        ("ipv6 udp", packets::v6_udp(40002, 53, b"q")),
        ("QinQ ipv6 udp", pick("802.1ad QinQ ipv6 udp")?),
        (
            "ipv6 2 ext hdrs udp",
            pick("ipv6 hop-by-hop + fragment header, udp")?,
        ),
        ("malformed ipv4", pick("ipv4 ihl 3")?),
    ];
    println!(
        "BPF_PROG_TEST_RUN, {ROUNDS} alternating rounds of {} repetitions: fastest round in ns per packet; ratio: median of per-round ratios",
        (repeat / 20).max(1000)
    );
    println!(
        "{:<22} {:>10} {:>10} {:>7}   {:>10} {:>10} {:>7}",
        "frame", "xdp_pass", "pc_ingress", "ratio", "tc_pass", "pc_egress", "ratio"
    );
    let mut worst: (f64, f64) = (0.0, 0.0);
    for (name, frame) in &frames {
        let xdp = measure(&kernel, PROG_XDP_PASS, PROG_INGRESS, frame, repeat)?;
        let tc = measure(&kernel, PROG_TC_PASS, PROG_EGRESS, frame, repeat)?;
        worst = (worst.0.max(xdp.2), worst.1.max(tc.2));
        println!(
            "{name:<22} {:>10.1} {:>10.1} {:>6.2}x   {:>10.1} {:>10.1} {:>6.2}x",
            xdp.0, xdp.1, xdp.2, tc.0, tc.1, tc.2
        );
    }
    println!(
        "worst ratio: ingress {:.2}x, egress {:.2}x",
        worst.0, worst.1
    );
    Ok(())
}

/// Fastest ns/packet of the baseline and the program over alternating
/// rounds, and the median of the per-round ratios: each round times the
/// baseline and then the program back to back, so a slower stretch of the
/// host (another guest, frequency changes) divides out of its ratio, and a
/// preempted round is an outlier the median ignores. Medians of the times
/// go to standard error, for comparison.
fn measure(
    kernel: &Kernel,
    base: &str,
    prog: &str,
    frame: &[u8],
    repeat: u32,
) -> anyhow::Result<(f64, f64, f64)> {
    let per_round = (repeat / 20).max(1000);
    let mut b = Vec::with_capacity(ROUNDS);
    let mut p = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        b.push(ns(kernel.run(base, frame, per_round)?.per_packet));
        p.push(ns(kernel.run(prog, frame, per_round)?.per_packet));
    }
    let ratios: Vec<f64> = b
        .iter()
        .zip(&p)
        .filter(|(b, _)| **b > 0.0)
        .map(|(b, p)| p / b)
        .collect();
    let ratio = if ratios.is_empty() {
        f64::NAN
    } else {
        median(ratios)
    };
    let (bm, pm) = (median(b.clone()), median(p.clone()));
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    eprintln!("    (medians: {bm:.1} / {pm:.1} ns)");
    Ok((min(&b), min(&p), ratio))
}

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `--repeat N` (test_run repetitions) and `--only SECTION` (live,
/// counting, classifier, drops, daemon or replay).
fn parse_args() -> anyhow::Result<(u32, Option<String>)> {
    let mut args = std::env::args().skip(1);
    let mut repeat = 1_000_000;
    let mut only = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => {
                repeat = args
                    .next()
                    .context("--repeat needs a number")?
                    .parse()
                    .context("--repeat needs a number")?
            }
            "--only" => {
                let section = args.next().context("--only needs a section")?;
                if ![
                    "live",
                    "counting",
                    "classifier",
                    "drops",
                    "daemon",
                    "export",
                    "replay",
                ]
                .contains(&section.as_str())
                {
                    anyhow::bail!(
                        "unknown section {section:?} (live, counting, classifier, drops, daemon, export, replay)"
                    );
                }
                only = Some(section);
            }
            other => {
                anyhow::bail!("unknown argument {other:?} (expected --repeat N, --only SECTION)")
            }
        }
    }
    Ok((repeat, only))
}

/// A documentation-range IPv6 source unique to (`tag`, `i`).
fn unique_src(tag: u32, i: u32) -> [u8; 16] {
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    src[4..8].copy_from_slice(&tag.to_be_bytes());
    src[8..12].copy_from_slice(&i.to_be_bytes());
    src[15] = 9;
    src
}

/// The classifier with the thoughtspot profile loaded: the allowed path,
/// an unexpected flow already in the LRU, and first sightings (LRU insert
/// plus a ring-buffer event), each against XDP_PASS on the same frames.
fn classifier(repeat: u32) -> anyhow::Result<()> {
    let tables = fixtures::tables()?;
    let mut k = Kernel::load()?;
    k.enable_policy(&tables)?;
    println!(
        "\nclassifier, thoughtspot profile loaded (fastest round in ns per packet; ratio: median of per-round ratios; ingress)"
    );
    println!(
        "{:<36} {:>10} {:>10} {:>7}",
        "path", "xdp_pass", "pc_ingress", "ratio"
    );
    // Most allowed packets are a connection's data: no SYN, no tracking.
    let data = tcp(NODE2, NODE1, 40000, 2181, TCP_ACK);
    let (b, p, r) = measure(&k, PROG_XDP_PASS, PROG_INGRESS, &data, repeat)?;
    println!(
        "{:<36} {b:>10.1} {p:>10.1} {r:>6.2}x",
        "allowed data (node -> 2181 ACK)"
    );
    // Its answers leave for the client's port, which the document's
    // dynamic range covers: the specific rule's reading wins over the
    // dynamic rule's, at the cost of a second port lookup.
    let answer = tcp(NODE1, NODE2, 2181, 40000, TCP_ACK);
    let (b, p, r) = measure(&k, PROG_TC_PASS, PROG_EGRESS, &answer, repeat)?;
    println!(
        "{:<36} {b:>10.1} {p:>10.1} {r:>6.2}x   (egress)",
        "allowed answer (2181 -> node 40000)"
    );
    // A SYN of a required rule also records the attempt (a hash update).
    let allowed = tcp(NODE2, NODE1, 40000, 2181, TCP_SYN);
    let (b, p, r) = measure(&k, PROG_XDP_PASS, PROG_INGRESS, &allowed, repeat)?;
    println!(
        "{:<36} {b:>10.1} {p:>10.1} {r:>6.2}x",
        "allowed SYN, required (+ attempt)"
    );
    let seen = tcp(ADMIN, NODE1, 40000, 7777, TCP_SYN);
    k.run(PROG_INGRESS, &seen, 1)?;
    let (b, p, r) = measure(&k, PROG_XDP_PASS, PROG_INGRESS, &seen, repeat)?;
    println!(
        "{:<36} {b:>10.1} {p:>10.1} {r:>6.2}x",
        "unexpected, flow already seen"
    );
    // Data of an unexpected connection between nodes: the dynamic rule
    // would allow it, the flow table says it is the connection's.
    let opened = tcp(NODE2, NODE1, 40000, 6666, TCP_SYN);
    k.run(PROG_INGRESS, &opened, 1)?;
    let data = tcp(NODE2, NODE1, 40000, 6666, TCP_ACK);
    let (b, p, r) = measure(&k, PROG_XDP_PASS, PROG_INGRESS, &data, repeat)?;
    println!(
        "{:<36} {b:>10.1} {p:>10.1} {r:>6.2}x",
        "unexpected data, client port dynamic"
    );
    // Every frame a new flow from a stranger, so one run per frame; the
    // kernel's per-run timer resolution shows, and the baseline has the
    // same. The first ones are first sightings (LRU insert and an event);
    // past the per-CPU budget, the rest are counted in a flood aggregate.
    let frames: Vec<Vec<u8>> = (0..8192u32)
        .map(|i| tcp(unique_src(1, i), NODE1_V6, 40000, 7000, TCP_SYN))
        .collect();
    let (mut base, mut prog) = (0f64, 0f64);
    for f in &frames {
        base += ns(k.run(PROG_XDP_PASS, f, 1)?.per_packet);
        prog += ns(k.run(PROG_INGRESS, f, 1)?.per_packet);
    }
    let events = k.events()?.len();
    let n = frames.len() as f64;
    println!(
        "{:<36} {:>10.1} {:>10.1} {:>6.2}x   ({events} events for {} new flows)",
        "unexpected, new flows of strangers",
        base / n,
        prog / n,
        prog / base,
        frames.len()
    );
    Ok(())
}

/// The daemon's pipeline from the ring buffer to JSON lines: the daemon's
/// own drain (decode, enrich with interface, roles, nearest rule and note,
/// remember the flow for refreshes, console rate limit, write to a file and
/// flush per batch), for rounds of first sightings the kernel produced;
/// against a baseline that writes the same lines already serialized.
fn daemon() -> anyhow::Result<()> {
    use std::io::Write as _;

    use monitor::{
        daemon::{self, Console, Sinks},
        enrich::{Clock, Enricher, Reported},
        events::{JsonlWriter, Rotation},
    };
    // The sources have a role (no rule names port 7000 for it): peers with
    // a role are never held back by the kernel's budget for strangers'
    // new flows, so every packet is a first sighting for the pipeline.
    let inventory = format!("{}scanners = [\"2001:db8::/32\"]\n", fixtures::INVENTORY);
    let tables = portconform_tests::kernel::profile_tables(fixtures::PROFILE, &inventory)?;
    let mut k = Kernel::load()?;
    k.enable_policy(&tables)?;
    let mut ring = k.take_events()?;
    let dir = portconform_tests::lab::TempDir::new("bench")?;
    let enricher = Enricher {
        tables: std::sync::Arc::new(tables.clone()),
        ifaces: vec![(1u32, "lo".to_string())],
        clock: Clock::new(),
        host: Some("bench".to_string()),
    };
    let rotation = Rotation {
        max_bytes: 1 << 40,
        keep: 0,
    };
    let events_file = dir.file("events.jsonl");
    let mut sinks = Sinks {
        events: Some(JsonlWriter::open(&events_file, rotation)?),
        pcap: None,
        metrics: None,
        // The daemon always has its console; the few lines the rate limit
        // lets through go nowhere rather than into the benchmark's output.
        console: Some(Console::to(
            "new unexpected flows",
            Box::new(std::io::sink()),
        )),
    };
    let mut reported = Reported::with_capacity(monitor_common::flow::MAX_FLOWS as usize);
    let (rounds, per_round) = (16u32, 8192u32);
    let mut pipeline = std::time::Duration::ZERO;
    let mut lines = String::new();
    for round in 0..rounds {
        for i in 0..per_round {
            let syn = tcp(unique_src(0x100 + round, i), NODE1_V6, 40000, 7000, TCP_SYN);
            k.run(PROG_INGRESS, &syn, 1)?;
        }
        let start = std::time::Instant::now();
        let mut drained = 0;
        // The daemon drains a budget per wake-up until the ring is empty.
        loop {
            let n = daemon::drain(&mut ring, &enricher, &mut reported, &mut sinks)?;
            if n == 0 {
                break;
            }
            drained += n;
        }
        pipeline += start.elapsed();
        anyhow::ensure!(
            drained == per_round as usize,
            "lost events: {drained} of {per_round}"
        );
        if round == 0 {
            lines = std::fs::read_to_string(&events_file)?;
        }
    }
    let lines: Vec<&str> = lines.lines().collect();
    anyhow::ensure!(
        lines.len() == per_round as usize,
        "the first round wrote {} lines for {per_round} events",
        lines.len()
    );
    let total = f64::from(rounds * per_round);
    // Buffered as the events file is, so the ratio is about producing lines.
    let mut out = std::io::BufWriter::with_capacity(
        monitor::events::jsonl::BUFFER,
        std::fs::File::create(dir.file("baseline.jsonl"))?,
    );
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        for l in &lines {
            out.write_all(l.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let floor = start.elapsed();
    println!("\ndaemon pipeline: ring buffer -> enriched JSON lines in a file, one core");
    println!(
        "  {total} events, none lost: {:.0} events/s; {:.2}x the time of writing the same lines pre-serialized ({:.0} lines/s)",
        total / pipeline.as_secs_f64(),
        pipeline.as_secs_f64() / floor.as_secs_f64(),
        total / floor.as_secs_f64()
    );
    Ok(())
}

/// Rounds of replay against tcpdump, alternating; tshark is timed once (a
/// round of it takes minutes).
const REPLAY_ROUNDS: usize = 5;

/// Replay against the reference readers on the same capture, in one run:
/// `tcpdump -r` with a port filter, and tshark with the same display
/// filter. Also the peak memory of replay on captures of two sizes, to show
/// it does not grow with the file.
fn replay_bench(packets: u32) -> anyhow::Result<()> {
    let dir = portconform_tests::lab::TempDir::new("replaybench")?;
    let small = dir.file("small.pcap");
    let large = dir.file("large.pcap");
    write_capture(&small, packets / 4)?;
    write_capture(&large, packets)?;
    let inventory = dir.file("inventory.toml");
    std::fs::write(&inventory, INVENTORY)?;
    let bin = portconform_tests::portconform_bin().display().to_string();
    let replay = |file: &str| -> Vec<String> {
        [
            bin.as_str(),
            "replay",
            "--no-resolve",
            file,
            "--host",
            "192.0.2.1",
            "--profile",
            "thoughtspot",
            "--inventory",
            &inventory,
            "--dynamic-ports",
            "32768-60999",
            "--events",
            "/dev/null",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let tcpdump: Vec<String> = ["tcpdump", "-r", &large, "-w", "/dev/null", "tcp port 2181"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let tshark: Vec<String> = [
        "tshark",
        "-r",
        &large,
        "-Y",
        "tcp.port == 2181",
        "-w",
        "/dev/null",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Paired rounds: each ratio compares runs made one after the other.
    let mut rounds: Vec<(Timed, Timed)> = Vec::with_capacity(REPLAY_ROUNDS);
    for _ in 0..REPLAY_ROUNDS {
        rounds.push((timed(&replay(&large))?, timed(&tcpdump)?));
    }
    let small_run = timed(&replay(&small))?;
    let t_tshark = timed(&tshark)?;
    let mid = |f: &dyn Fn(&(Timed, Timed)) -> f64| median(rounds.iter().map(f).collect());
    let (replay_wall, replay_cpu) = (mid(&|r| r.0.wall), mid(&|r| r.0.cpu));
    let (tcpdump_wall, tcpdump_cpu) = (mid(&|r| r.1.wall), mid(&|r| r.1.cpu));
    let wall_ratio = mid(&|r| r.1.wall / r.0.wall);
    let cpu_ratio = mid(&|r| r.1.cpu / r.0.cpu);
    let rss_large = rounds.iter().map(|r| r.0.rss_kib).max().unwrap_or(0);
    let pps = |t: f64| f64::from(packets) / t;
    println!(
        "\nreplay of a generated {packets}-packet capture (policy classification, events to /dev/null)"
    );
    println!(
        "  medians of {REPLAY_ROUNDS} alternating rounds of replay and tcpdump; times include process start-up"
    );
    println!(
        "  (replay's: compiling the profile; --no-resolve, so no DNS); cpu = user + system, all threads"
    );
    println!(
        "  portconform replay  {:>11.0} pkt/s   wall {replay_wall:.3} s, cpu {replay_cpu:.3} s",
        pps(replay_wall)
    );
    println!(
        "  tcpdump -r + filter {:>11.0} pkt/s   wall {tcpdump_wall:.3} s, cpu {tcpdump_cpu:.3} s",
        pps(tcpdump_wall)
    );
    println!(
        "    replay is {wall_ratio:.2}x tcpdump's speed (wall), {cpu_ratio:.2}x per cpu-second; tcpdump reads every"
    );
    println!(
        "    record and runs its BPF filter on each (1 in 6 match and are written); replay parses, classifies"
    );
    println!(
        "    and tracks flows and required-flow attempts for every record, reading ahead in a second thread"
    );
    println!(
        "  tshark -r + filter  {:>11.0} pkt/s   wall {:.3} s, cpu {:.3} s (one run; it dissects every packet)",
        pps(t_tshark.wall),
        t_tshark.wall,
        t_tshark.cpu
    );
    println!(
        "    replay is {:.1}x tshark's speed (wall, against the median replay), {:.1}x per cpu-second",
        t_tshark.wall / replay_wall,
        t_tshark.cpu / replay_cpu
    );
    println!(
        "  peak RSS of replay: {} KiB for {} packets, {} KiB for {packets} (largest of the rounds)",
        small_run.rss_kib,
        packets / 4,
        rss_large
    );
    Ok(())
}

/// What GNU time says of one command.
struct Timed {
    /// Wall time, s (measured here).
    wall: f64,
    /// User + system time of the process and its threads, s.
    cpu: f64,
    /// Peak resident set, KiB.
    rss_kib: u64,
}

/// Wall time, CPU time and peak RSS (from GNU time) of a command.
fn timed(argv: &[String]) -> anyhow::Result<Timed> {
    let start = std::time::Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%U %S %M"])
        .args(argv)
        .stdout(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", argv[0]))?;
    let wall = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        argv.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let fields: Vec<&str> = last.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let (Some(user), Some(system), Some(rss)) = (num(0), num(1), num(2)) else {
        anyhow::bail!("unexpected GNU time output from {}: {last:?}", argv[0]);
    };
    Ok(Timed {
        wall,
        cpu: user + system,
        rss_kib: rss as u64,
    })
}

/// A pcap (microsecond) of `n` Ethernet frames: TCP between nodes and
/// admins on documented and undocumented ports, SYNs, data and resets, so
/// replay takes its allowed, already-seen and new-flow paths.
fn write_capture(path: &str, n: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(&[
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ])?;
    let ports = [2181u16, 5432, 80, 443, 6666, 7777];
    for i in 0..n {
        let peer = [192, 0, 2, 2 + (i % 8) as u8];
        let src = if i % 5 == 0 { ADMIN } else { peer };
        let dport = ports[(i % ports.len() as u32) as usize];
        let sport = 40000 + (i % 2000) as u16;
        let frame = if i % 2 == 0 {
            tcp(src, NODE1, sport, dport, TCP_SYN)
        } else {
            tcp(NODE1, src, dport, sport, TCP_SYN)
        };
        let ts = 1_700_000_000u64 * 1_000_000 + u64::from(i) * 10;
        out.write_all(&((ts / 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&((ts % 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(frame.len() as u32).to_le_bytes())?;
        out.write_all(&(frame.len() as u32).to_le_bytes())?;
        out.write_all(&frame)?;
    }
    out.flush()?;
    Ok(())
}
