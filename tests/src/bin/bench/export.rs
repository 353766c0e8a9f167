//! `--export` throughput (issue 19, item 6): events lines per second
//! through a sink's spool and out to a collector, every line acknowledged
//! (none lost), on one core, against writing the same records to the
//! events file in the same run.
//!
//! The collector is a thread that reads and discards as fast as the
//! loopback delivers (over TLS: decrypts with rustls, then discards), in a
//! namespace of the benchmark's own, on the other core: the benchmark
//! measures portconform's side (numbering, spooling, framing, encrypting,
//! sending, tracking acknowledgements), not a SIEM.

use std::{
    net::{TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use monitor::{
    events::{ConnDir, EventKind, EventRecord, IpProto, JsonlWriter, Rotation, Stream},
    export::{ExportArgs, Exporter, Target},
};
use portconform_tests::{
    lab::{Netns, TempDir},
    pki::Pki,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};

/// Records per measured round, and rounds (alternating file and export).
pub(crate) const RECORDS: u64 = 200_000;
pub(crate) const ROUNDS: usize = 3;

pub(crate) fn pin_to(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_setaffinity");
        }
    }
    Ok(())
}

pub(crate) fn record(i: u64) -> EventRecord {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_365_758) + Duration::from_micros(i);
    EventRecord {
        ts: t,
        kind: EventKind::Unexpected,
        iface: "eth0".into(),
        direction: ConnDir::Inbound,
        proto: IpProto::Tcp,
        src: std::net::IpAddr::from([198, 51, 100, (i % 250) as u8]),
        dst: std::net::IpAddr::from([192, 0, 2, 1]),
        sport: 40000 + (i % 20000) as u16,
        dport: 7000 + (i % 1000) as u16,
        count: 1,
        first_seen: t,
        last_seen: t,
        rule: None,
        source: None,
        reason: Some("no-rule".into()),
        bytes: Some(74),
        reply_packets: Some(0),
        peer_roles: Some(vec!["scanners".into()]),
        note: Some(format!("no rule allows tcp {} inbound", 7000 + i % 1000)),
        update_of: None,
        host: Some("bench".into()),
    }
}

/// Data records in one IPFIX message of portconform's IPv4 template (a
/// fixed part, five one-byte-length strings, a counter), or `None` for a
/// message this benchmark did not expect.
fn ipfix_records(msg: &[u8]) -> Option<u64> {
    let mut n = 0;
    let mut at = 16;
    while at + 4 <= msg.len() {
        let id = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
        let set = msg.get(at + 4..at + len)?;
        if id == 256 {
            let mut r = 0;
            while r < set.len() {
                r += 46;
                for _ in 0..5 {
                    r += 1 + usize::from(*set.get(r)?);
                }
                r += 8;
                n += 1;
            }
        }
        at += len.max(4);
    }
    Some(n)
}

/// Writes `RECORDS` records through `w`, flushing every 4096 as the
/// daemon's drain does.
pub(crate) fn write_all(w: &mut JsonlWriter, records: &[EventRecord]) -> anyhow::Result<()> {
    for chunk in records.chunks(4096) {
        for r in chunk {
            w.write(r)?;
        }
        w.flush()?;
    }
    Ok(())
}

/// Sets `socket`'s receive buffer to `bytes`, past `net.core.rmem_max`
/// (root).
fn receive_buffer(socket: &UdpSocket, bytes: libc::c_int) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: a valid socket and an int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const bytes).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("SO_RCVBUFFORCE");
    }
    Ok(())
}

/// Reads and discards what one connection brings, on the other core.
fn discard(mut s: impl std::io::Read) {
    let mut buf = vec![0u8; 1 << 20];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// A TLS collector on `listener`: each connection decrypted and discarded.
fn tls_collector(listener: TcpListener, cert: &str, key: &str) -> anyhow::Result<()> {
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?,
    );
    std::thread::spawn(move || {
        let _ = pin_to(1);
        for stream in listener.incoming() {
            let Ok(s) = stream else { return };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            discard(rustls::StreamOwned::<_, TcpStream>::new(conn, s));
        }
    });
    Ok(())
}

/// A writer with no file whose lines go to one sink, `target`, spooled
/// in `spool_dir`.
fn exporting(target: Target, spool_dir: String, ca: Option<&str>) -> anyhow::Result<JsonlWriter> {
    let args = ExportArgs {
        export: vec![target],
        spool_dir: spool_dir.into(),
        spool_max_mib: 1024,
        export_ca: ca.map(Into::into),
        ..ExportArgs::default()
    };
    let exporter = Exporter::start(&args)?.context("one sink")?;
    Ok(JsonlWriter::without_file()
        .with_stream(Stream::fresh())
        .with_export(exporter))
}

/// Writes `records` to a fresh events file in `dir`; how long it took.
pub(crate) fn file_round(
    dir: &str,
    round: usize,
    records: &[EventRecord],
) -> anyhow::Result<Duration> {
    let path = format!("{dir}/events-{round}.jsonl");
    let mut file = JsonlWriter::open(
        &path,
        Rotation {
            max_bytes: 1 << 40,
            keep: 0,
        },
    )?
    .with_stream(Stream::fresh());
    let start = Instant::now();
    write_all(&mut file, records)?;
    let took = start.elapsed();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(took)
}

/// Sends `records` through one sink to `target` until its collector
/// acknowledged every line (TCP's acknowledgement, or JetStream's); how
/// long it took.
pub(crate) fn acked_round(
    records: &[EventRecord],
    target: Target,
    spool_dir: String,
    ca: Option<&str>,
) -> anyhow::Result<Duration> {
    let mut w = exporting(target, spool_dir, ca)?;
    let start = Instant::now();
    write_all(&mut w, records)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while w.export_counts()[0].sent < RECORDS {
        anyhow::ensure!(Instant::now() < deadline, "not all lines were delivered");
        std::thread::sleep(Duration::from_micros(200));
    }
    let took = start.elapsed();
    let counts = w.finish_export(Duration::from_secs(1));
    let c = &counts[0].0;
    anyhow::ensure!(
        c.sent == RECORDS && c.dropped == 0 && c.spooled == 0,
        "lost lines: {c:?}"
    );
    Ok(took)
}

/// The median of a round's times.
pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn bench() -> anyhow::Result<()> {
    let ns = Netns::new("exportbench")?;
    let dir = TempDir::new("exportbench")?;
    let records: Vec<EventRecord> = (0..RECORDS).map(record).collect();
    let dir_path = dir.file("");
    let pki = Pki::new(&dir)?;
    let (cert, key) = pki.issue(&dir, "collector", "127.0.0.1")?;
    let ca = pki.ca.clone();
    /// Per round: the events file, each TCP sink, IPFIX over UDP.
    type Times = (Vec<Duration>, Vec<[Duration; 3]>, Vec<(Duration, u64)>);
    let result = ns.enter(move || -> anyhow::Result<Times> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        // The collector: accepts and discards, on the other core.
        std::thread::spawn(move || {
            let _ = pin_to(1);
            for s in listener.incoming().map_while(Result::ok) {
                discard(s);
            }
        });
        let tls_listener = TcpListener::bind("127.0.0.1:0")?;
        let tls_port = tls_listener.local_addr()?.port();
        tls_collector(tls_listener, &cert, &key)?;
        // The IPFIX collector: counts the records that arrive.
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let udp_port = udp.local_addr()?.port();
        // A receive buffer for a whole round, as a collector takes a burst
        // (nfcapd -B): a loss then says the exporter lost it, not that the
        // collector thread waited for its core.
        receive_buffer(&udp, 64 << 20)?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        std::thread::spawn(move || {
            let _ = pin_to(1);
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = udp.recv(&mut buf) {
                counter.fetch_add(ipfix_records(&buf[..n]).unwrap_or(0), Ordering::Relaxed);
            }
        });
        pin_to(0)?;
        let (mut file_times, mut export_times, mut ipfix) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            file_times.push(file_round(&dir_path, round, &records)?);

            let host = || "127.0.0.1".to_string();
            export_times.push([
                acked_round(
                    &records,
                    Target::SyslogTcp { host: host(), port },
                    format!("{dir_path}/syslog-{round}"),
                    None,
                )?,
                acked_round(
                    &records,
                    Target::SyslogTls {
                        host: host(),
                        port: tls_port,
                    },
                    format!("{dir_path}/tls-{round}"),
                    Some(&ca),
                )?,
                acked_round(
                    &records,
                    Target::IpfixTcp { host: host(), port },
                    format!("{dir_path}/ipfix-tcp-{round}"),
                    None,
                )?,
            ]);

            // IPFIX over UDP: until every record arrived at the collector
            // (UDP may drop: then the round says how many).
            let before = received.load(Ordering::Relaxed);
            let mut w = exporting(
                Target::IpfixUdp {
                    host: "127.0.0.1".into(),
                    port: udp_port,
                },
                format!("{dir_path}/ipfix-{round}"),
                None,
            )?;
            let start = Instant::now();
            write_all(&mut w, &records)?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while received.load(Ordering::Relaxed) - before < RECORDS
                && Instant::now() < deadline
                && !(w.export_counts()[0].sent == RECORDS
                    && start.elapsed() > Duration::from_secs(30))
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            let took = start.elapsed();
            w.finish_export(Duration::from_secs(1));
            ipfix.push((took, received.load(Ordering::Relaxed) - before));
        }
        Ok((file_times, export_times, ipfix))
    })??;
    let lost: u64 = result
        .2
        .iter()
        .map(|(_, got)| RECORDS - got.min(&RECORDS))
        .sum();
    let ipfix = median(result.2.iter().map(|(t, _)| *t).collect());
    let file = median(result.0);
    let sink = |i: usize| median(result.1.iter().map(|t| t[i]).collect());

    let rate = |d: Duration| RECORDS as f64 / d.as_secs_f64();
    println!(
        "\nexport: events lines to a collector, every line acknowledged, one core ({ROUNDS} rounds of {RECORDS}, median)"
    );
    println!("  the events file alone: {:.0} lines/s", rate(file));
    for (i, name) in ["syslog+tcp", "syslog+tls", "ipfix+tcp"].iter().enumerate() {
        let t = sink(i);
        println!(
            "  {name}: {:.0} lines/s, none lost ({:.2}x the events file's time)",
            rate(t),
            t.as_secs_f64() / file.as_secs_f64()
        );
    }
    println!(
        "  ipfix+udp: {:.0} records/s to the collector, {lost} lost over the rounds; {:.2}x the events file's time",
        rate(ipfix),
        ipfix.as_secs_f64() / file.as_secs_f64()
    );
    Ok(())
}
