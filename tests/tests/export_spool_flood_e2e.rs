//! The spool bound holds under a flood (issue 19, item 5): while the
//! collector is down and the host is flooded with new unexpected flows, an
//! export sink's on-disk spool never passes `--spool-max-mib`; what it
//! drops is counted, and said alike in the closing line, in the metrics
//! and by the `seq` gap of the delivered lines; and nothing else is lost:
//! once the collector is back every line the spool still held arrives, so
//! that delivered + dropped = the lines the monitor wrote, exactly.
//!
//! `--spool-max-mib 1` on purpose: the bound is the user's setting under
//! test, and its default (256 MiB) would take a test minutes of flood to
//! fill, where 1 MiB fills 9 times over in 5 s. Every other option is at
//! its shipped default.
//!
//! The flood: bare SYNs from node1, the monitored host, to one new port
//! of node2 (a node) each, 12400 and up (hping3 `-p ++12400`): no rule of
//! thoughtspot lists a port from 12346 to 32767, so each SYN is a new
//! unexpected flow and one events line. Connections the host opens never
//! compete for the kernel's new-flow budget of strangers (which makes a
//! random-source SYN flood at the host a few `flood` aggregates), and
//! node2's firewall drops them unanswered, so that no flow changes after
//! its line and no refresh writes an `update` for it later: one line per
//! flow, all written during the flood.
//!
//! Lab (documentation ranges only): node1 (monitored, thoughtspot,
//! exporting to node2; the flooder) ── node2 (drops the flood; rsyslog,
//! once the flood is over).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use portconform_tests::{
    metrics,
    monitor_proc::{read_events, status_kib},
    pair::Pair,
    services,
};

const PORT: u16 = 10514;
const METRICS_PORT: u16 = 9464;
/// `--spool-max-mib`.
const SPOOL_MIB: u64 = 1;
const SPOOL_BYTES: u64 = SPOOL_MIB << 20;
/// spool.rs cuts a spool into 8 segments (clamped to 64 KiB..16 MiB each),
/// and drops whole segments, the oldest first.
const SEGMENT_BYTES: u64 = SPOOL_BYTES / 8;
/// What spool.rs promises: the segments' bytes never pass the bound (the
/// oldest segment is removed before a line that would pass it is written),
/// beside which the directory holds only `acked` and, for a moment,
/// `acked.tmp`: a line index in decimal and a newline, 21 bytes at most.
const ACKED_BYTES: u64 = 2 * 21;
/// SYNs of the flood, one new destination port each: 12400 up to 32399.
const FLOOD_SYNS: u32 = 20_000;
const FLOOD_FIRST_PORT: u16 = 12_400;
/// The daemon's resident memory may not pass this, sampled during the
/// flood and at its peak (VmHWM). Measured: about 40 MiB before the flood
/// and 51 MiB at its peak, of which the new flows' tables are some 7 MiB
/// (the same flood without `--export`) and the export about 1.5 MiB: the
/// spool keeps on disk what the collector has not taken, and holds in
/// memory only a 64 KiB write buffer and a batch of 512 lines.
const RSS_BOUND_KIB: u64 = 80 * 1024;

/// The largest spool directory size and daemon RSS seen while sampling.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    samples: u64,
    segments: u64,
    total: u64,
    rss_kib: u64,
}

/// The bytes of the spool's segments and of all its files, newest segment
/// first: older segments are complete once a newer one exists and can only
/// go, so the sum never exceeds what the directory held at one instant.
fn spool_size(dir: &Path) -> (u64, u64) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.reverse();
    let (mut segments, mut total) = (0, 0);
    for f in files {
        // Removed since it was listed: it holds nothing now.
        let Ok(m) = std::fs::metadata(&f) else {
            continue;
        };
        total += m.len();
        if f.extension() == Some("seg".as_ref()) {
            segments += m.len();
        }
    }
    (segments, total)
}

/// Samples the spool under `spool` and the daemon's RSS every 50 ms until
/// `stop` is set.
fn sample(spool: PathBuf, pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Peaks> {
    std::thread::spawn(move || {
        let mut peaks = Peaks::default();
        while !stop.load(Ordering::Relaxed) {
            // One sink, one directory in --spool-dir.
            if let Some(dir) = std::fs::read_dir(&spool)
                .ok()
                .and_then(|mut d| Some(d.next()?.ok()?.path()))
            {
                let (segments, total) = spool_size(&dir);
                peaks.segments = peaks.segments.max(segments);
                peaks.total = peaks.total.max(total);
                peaks.samples += 1;
            }
            if let Ok(rss) = status_kib(pid, "VmRSS") {
                peaks.rss_kib = peaks.rss_kib.max(rss);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        peaks
    })
}

/// The events file's lines once it has stopped growing (bounded).
fn settled_lines(lab: &Pair) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(1000));
        let text = std::fs::read_to_string(lab.events_path()).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() == last && last > 0 {
            return lines;
        }
        assert!(Instant::now() < deadline, "the events file kept growing");
        last = lines.len();
    }
}

/// The number just before `marker` in `line`.
fn number_before(line: &str, marker: &str) -> u64 {
    let (before, _) = line
        .split_once(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {line}"));
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {marker:?} in {line}"))
}

/// What the metrics say of the sink.
#[derive(Debug, Clone, Copy)]
struct Exported {
    sent: u64,
    dropped: u64,
    spooled: u64,
    connected: bool,
}

/// Scrapes the daemon's metrics (fed every summary interval, 5 s) until
/// `until` holds of the sink `url`'s samples (bounded); those samples.
fn wait_metrics(lab: &Pair, url: &str, until: impl Fn(&Exported) -> bool) -> Exported {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics::scrape(&lab.node1, METRICS_PORT).expect("scrape");
        let sink = ("sink", url);
        let lines = |outcome| {
            metrics::sample(
                &text,
                "portconform_export_lines_total",
                &[sink, ("outcome", outcome)],
            )
        };
        let gauge = |name| metrics::sample(&text, name, &[sink]);
        if let (Some(sent), Some(dropped), Some(spooled), Some(connected)) = (
            lines("sent"),
            lines("dropped"),
            gauge("portconform_export_spooled_lines"),
            gauge("portconform_export_connected"),
        ) {
            let e = Exported {
                sent: sent as u64,
                dropped: dropped as u64,
                spooled: spooled as u64,
                connected: connected == 1.0,
            };
            if until(&e) {
                return e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the metrics never said it: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_flooded_spool_holds_its_bound_and_says_what_it_dropped() {
    let lab = Pair::new(95, "spoolflood").expect("lab");
    let work = lab.dir.file("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let received = lab.dir.file("received.log");
    let url = format!("syslog+tcp://{}:{PORT}", lab.n2.v4);
    let spool = lab.spool_dir();
    let mon = lab
        .exporting(
            &url,
            &[
                "--spool-max-mib",
                &SPOOL_MIB.to_string(),
                "--metrics",
                &METRICS_PORT.to_string(),
            ],
        )
        .expect("start portconform");
    let pid = mon.pid().expect("running");
    let rss_before = status_kib(pid, "VmRSS").expect("VmRSS");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(spool.clone().into(), pid, stop.clone());

    // The flood, with no collector to take the lines: 10,000 SYNs a
    // second asked of hping3, bounded in count and time.
    let last_port = FLOOD_FIRST_PORT + (FLOOD_SYNS - 1) as u16;
    let drop_flood = [
        "table inet flood {".to_string(),
        "  chain input {".into(),
        "    type filter hook input priority 0; policy accept;".into(),
        format!("    tcp dport {FLOOD_FIRST_PORT}-{last_port} drop"),
        "  }".into(),
        "}\n".into(),
    ];
    lab.nft(&lab.node2, &drop_flood.join("\n")).expect("nft");
    let flooding = Instant::now();
    let out = lab
        .node1
        .command(Duration::from_secs(30), "hping3")
        .args(["-q", "-S", "-i", "u100"])
        .args(["-p", &format!("++{FLOOD_FIRST_PORT}")])
        .args(["-c", &FLOOD_SYNS.to_string(), &lab.n2.v4])
        .output()
        .expect("hping3");
    eprintln!("hping3: {:.1} s", flooding.elapsed().as_secs_f64());
    let stats =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        stats.contains(&format!("{FLOOD_SYNS} packets transmitted")),
        "hping3 did not send {FLOOD_SYNS} SYNs: {stats}"
    );
    let lines = settled_lines(&lab);
    let flood_secs = flooding.elapsed().as_secs_f64();
    let written: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    eprintln!(
        "flood: {} lines, {written} bytes in {flood_secs:.1} s (incl. 1 s settling)",
        lines.len()
    );
    assert!(
        written > 3 * SPOOL_BYTES,
        "the flood wrote {written} bytes of lines, not enough to overflow the spool 3 times"
    );

    // The metrics, the collector still down: every line written is
    // dropped or spooled, and the spool still holds the newest lines.
    let flood = lines.len() as u64;
    let down = wait_metrics(&lab, &url, |e| e.dropped + e.spooled == flood);
    assert!(
        down.sent == 0 && !down.connected && down.dropped > 0,
        "{down:?}"
    );

    // The collector comes back; the metrics say when the spool is empty.
    let _collector =
        services::rsyslog(&lab.node2, &lab.n2.v4, PORT, &work, &received).expect("rsyslogd");
    let up = wait_metrics(&lab, &url, |e| e.sent > 0 && e.spooled == 0);
    let quiet = read_events(lab.events_path()).expect("events").len() as u64;
    stop.store(true, Ordering::Relaxed);
    let peaks = sampler.join().expect("sampler");
    let peak_rss = mon.peak_rss_kib().expect("VmHWM");
    let done = mon.stop().expect("stop");
    assert!(done.status.success(), "{}", done.stderr);
    eprintln!("{peaks:?}; RSS {rss_before} KiB before the flood, {peak_rss} KiB at its peak");

    // The bound held, to what spool.rs promises, and was reached.
    assert!(peaks.samples >= 20, "{peaks:?}");
    assert!(peaks.segments <= SPOOL_BYTES, "{peaks:?}");
    assert!(peaks.total <= SPOOL_BYTES + ACKED_BYTES, "{peaks:?}");
    assert!(peaks.segments > SPOOL_BYTES - SEGMENT_BYTES, "{peaks:?}");
    assert!(peaks.rss_kib < RSS_BOUND_KIB, "{peaks:?}");
    assert!(peak_rss < RSS_BOUND_KIB, "peak RSS {peak_rss} KiB");

    // The closing line: delivered + dropped is every line written.
    let closing = done
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("portconform: export {url}: ")))
        .unwrap_or_else(|| panic!("no closing line for {url}: {}", done.stderr));
    let delivered = number_before(closing, " lines delivered");
    let dropped = number_before(closing, " dropped undelivered: the spool was full");
    assert!(!closing.contains("not delivered yet"), "{closing}");
    let all = read_events(lab.events_path()).expect("events");
    let last = all.last().and_then(|l| l["seq"].as_u64()).expect("seq");
    assert_eq!(all.len() as u64, last, "the events file's seq has gaps");
    assert_eq!(delivered + dropped, last, "{closing}");

    // The metrics said the same: nothing was dropped once the flood was
    // over, and once the spool had emptied every line was sent or dropped.
    assert_eq!((down.dropped, up.dropped), (dropped, dropped), "{up:?}");
    assert_eq!(up.sent + up.dropped, quiet, "{up:?}");

    // The lines dropped are the oldest, which the delivered seqs' one gap
    // shows: rsyslog has every line from dropped + 1 on, and none before.
    let got = services::syslog_messages_by_seq(&received);
    let seqs: Vec<u64> = got.keys().copied().collect();
    let want: Vec<u64> = (dropped + 1..=last).collect();
    assert!(
        seqs == want,
        "rsyslog has seqs {:?}..{:?} ({} of them), the spool delivered {}..={last}",
        seqs.first(),
        seqs.last(),
        seqs.len(),
        dropped + 1
    );
    for line in &all[dropped as usize..] {
        let m = &got[&line["seq"].as_u64().unwrap()];
        let msg: serde_json::Value = serde_json::from_str(&m.msg).expect("JSON message");
        assert_eq!(&msg, line, "the message is the record");
    }
    // And only what the bound forced was dropped: the lines the spool still
    // held when the collector came back (as many as the metrics said
    // waited) fill more than all but one segment of it.
    assert_eq!(down.spooled, flood - dropped, "{down:?}");
    let kept: u64 = lines[dropped as usize..]
        .iter()
        .map(|l| l.len() as u64 + 1)
        .sum();
    assert!(
        kept > SPOOL_BYTES - SEGMENT_BYTES && kept <= SPOOL_BYTES,
        "{kept} bytes kept of {written}"
    );
    eprintln!(
        "{} lines written during the flood, {dropped} dropped, {delivered} delivered ({kept} bytes kept)",
        lines.len()
    );
}
