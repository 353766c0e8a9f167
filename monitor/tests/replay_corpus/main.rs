//! Replay against tshark over a corpus of generated captures (issue 18,
//! "Tests against tshark"): about a hundred files, every link type
//! replay reads in the variants real captures have (byte orders, framings,
//! pcap and pcapng, micro- and nanosecond, big- and little-endian files,
//! gzip, flag bits in the link-type field), holding IPv4 and IPv6 packets
//! of many kinds (TCP with every flag combination and options, UDP, ICMP
//! and ICMPv6 errors quoting packets, IPv4 options, IPv6 extension headers,
//! fragments, tunnels, VLAN and QinQ tags), frames of the same links that
//! carry no IP, and malformed and truncated ones. Some files are made by
//! Debian's Wireshark tools rather than by the tests' own writers:
//! `text2pcap` turns hex dumps into pcap and pcapng files, and builds IP,
//! TCP and UDP headers itself; `editcap` converts between formats, cuts
//! packets to a snapshot length and relabels a file's link type.
//!
//! Every frame of every file is read by tshark, once per file, and by
//! replay's parser, and the two must agree: the same outermost IP packet
//! (addresses, protocol, ports, TCP flags, ICMP type and code, as far as
//! tshark shows them), or no IP packet on either side. The corpus is
//! seeded, so a failure names a file and frame that the next run makes
//! again.
//!
//! A few kinds of frame are read differently on purpose: the kernel's
//! parser walks two VLAN tags and six IPv6 extension headers at most, wants
//! whole the headers it reads (a frame cut inside them is unread, however
//! much tshark still shows), holds a TCP data offset below 5 and an IPv6
//! header under an IPv4 label malformed, and does not read the IPv4 total
//! length; and Wireshark shows nothing of an NFLOG record cut by the
//! snapshot length, not even the IP headers before the cut. Frames made
//! that way are labelled so when they are generated, their difference is
//! checked to be exactly that one (see [`expect`]), and they are counted
//! apart from the share, which is over every other IP packet tshark
//! dissects.

// The helpers every integration test shares (a test in a folder of its
// own names their path).
#[path = "../common/mod.rs"]
mod common;
mod expect;
mod files;
mod frames;
mod packets;

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use common::oracle::{self, Dissected, Ip};
use expect::{ByDesign, Expect, Verdict, judge};
use files::{CorpusFile, corpus};
use frames::Kind;
use monitor_common::packet::ParseError;

/// tshark runs at once: its start-up, not its reading, is what costs.
const WORKERS: usize = 3;

/// Both readings of one file.
type Readings = (Vec<Dissected>, Vec<Result<Ip, ParseError>>);

/// Reads every file with tshark and replay, `WORKERS` files at a time.
fn read_all(files: &[CorpusFile]) -> Vec<Readings> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Readings>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let readings = (oracle::tshark(&file.path), oracle::replay(&file.path));
                    results.lock().unwrap()[i] = Some(readings);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every file read"))
        .collect()
}

/// Counts per link type.
#[derive(Default)]
struct Tally {
    /// IP packets tshark dissects (frames read differently on purpose
    /// apart), and those replay reads the same.
    ip: usize,
    alike: usize,
    /// Frames without IP on either side.
    not_ip: usize,
    /// Frames read differently on purpose, by how.
    by_design: BTreeMap<ByDesign, usize>,
}

#[test]
fn replay_reads_the_ip_packets_tshark_dissects_across_a_corpus_of_captures() {
    oracle::require("tshark", "tshark");
    oracle::require("text2pcap", "wireshark-common");
    oracle::require("editcap", "wireshark-common");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let readings = read_all(&files);

    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for (file, (tshark, replay)) in files.iter().zip(&readings) {
        let name = file.path.file_name().unwrap().to_string_lossy();
        if (tshark.len(), replay.len()) != (file.frames.len(), file.frames.len()) {
            mismatches.push(format!(
                "{name}: {} frames written, tshark read {}, replay {}",
                file.frames.len(),
                tshark.len(),
                replay.len()
            ));
            continue;
        }
        for (i, ((made, t), r)) in file.frames.iter().zip(tshark).zip(replay).enumerate() {
            let tally = tallies.entry(made.kind.name()).or_default();
            match judge(made.expect, t, r) {
                Verdict::SameIp => {
                    tally.ip += 1;
                    tally.alike += 1;
                }
                Verdict::NoIp => tally.not_ip += 1,
                Verdict::OnPurpose(d) => *tally.by_design.entry(d).or_default() += 1,
                Verdict::Mismatch(why) => {
                    // Counted in the share, which it lowers.
                    tally.ip += usize::from(made.expect == Expect::Alike && t.ip.is_some());
                    mismatches.push(format!(
                        "{name} frame {} ({}, {} of {} bytes captured, {} needed whole): \
                         {why}\n    tshark: {:?} [{}]\n    replay: {r:?}",
                        i + 1,
                        made.kind.name(),
                        made.data.len(),
                        made.orig_len,
                        made.needed,
                        t.ip,
                        t.protocols
                    ));
                }
            }
        }
    }

    println!(
        "corpus: per link type: IP packets tshark dissects, those replay reads alike; \
         frames without IP on both sides; frames read differently on purpose"
    );
    for (name, t) in &tallies {
        let by_design: usize = t.by_design.values().sum();
        println!(
            "  {name:<28} {:>5}/{:<5} {:>4} without IP {:>4} on purpose",
            t.alike, t.ip, t.not_ip, by_design
        );
    }
    let ip: usize = tallies.values().map(|t| t.ip).sum();
    let alike: usize = tallies.values().map(|t| t.alike).sum();
    let frames: usize = files.iter().map(|f| f.frames.len()).sum();
    println!(
        "corpus: {alike}/{ip} IP packets ({:.1}%) over {} files ({frames} frames), {} link types, in {:.1} s",
        100.0 * alike as f64 / ip.max(1) as f64,
        files.len(),
        tallies.len(),
        started.elapsed().as_secs_f64()
    );
    let mut designed: BTreeMap<ByDesign, usize> = BTreeMap::new();
    for t in tallies.values() {
        for (d, n) in &t.by_design {
            *designed.entry(*d).or_default() += n;
        }
    }
    println!("corpus: read differently on purpose, apart from the share above:");
    for (d, n) in &designed {
        println!("  {n:>4} {}", d.describe());
    }

    if !mismatches.is_empty() {
        // Kept for `tshark -V -r`: the next run makes the same files again,
        // but reading one that failed is quicker.
        println!("corpus: files kept in {}", dir.keep().display());
    }
    assert!(
        mismatches.is_empty(),
        "{} frames where replay and tshark disagree (the first 200):\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(200)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The corpus is what it claims to be: every link type with IP packets
    // tshark reads, and every difference made on purpose met.
    assert!(ip >= 4000, "only {ip} IP packets in the corpus");
    for kind in Kind::ALL {
        let t = &tallies[&kind.name()];
        assert!(t.ip > 50, "{}: only {} IP packets", kind.name(), t.ip);
    }
    for d in ByDesign::ALL {
        assert!(
            designed.contains_key(&d),
            "no frame showed {}",
            d.describe()
        );
    }
}
