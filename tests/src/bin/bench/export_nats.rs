//! `--export nats://` throughput (issue 19, item 6): events lines per
//! second into a real JetStream stream (Debian's nats-server, file
//! storage, on the other core), every line acknowledged by JetStream
//! before it leaves the spool, on one core, against writing the same
//! records to the events file in the same run.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use monitor::{
    events::{JsonlWriter, Rotation, Stream},
    export::{ExportArgs, Exporter, Target},
};
use portconform_tests::lab::{Netns, TempDir};

use crate::export::{pin_to, record, write_all};

const RECORDS: u64 = 200_000;
const ROUNDS: usize = 3;
const PORT: u16 = 14222;

pub fn bench() -> anyhow::Result<()> {
    let ns = Netns::new("natsbench")?;
    let dir = TempDir::new("natsbench")?;
    ns.ip(&["link", "set", "lo", "up"])?;
    let store = dir.file("js");
    // The server on the other core: the benchmark measures portconform.
    let _server = ns.spawn_graceful(
        "taskset",
        &[
            "-c",
            "1",
            "nats-server",
            "-js",
            "-sd",
            &store,
            "-a",
            "127.0.0.1",
            "-p",
            &PORT.to_string(),
        ],
        libc::SIGTERM,
        Duration::from_secs(10),
    )?;
    ns.wait_tcp_listening(PORT, Duration::from_secs(20))
        .context("nats-server does not listen")?;
    let records: Vec<_> = (0..RECORDS).map(record).collect();
    let dir_path = dir.file("");
    let (file_times, nats_times) = ns.enter(move || -> anyhow::Result<_> {
        pin_to(0)?;
        let (mut file_times, mut nats_times) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let path = format!("{dir_path}/events-{round}.jsonl");
            let mut file = JsonlWriter::open(
                &path,
                Rotation {
                    max_bytes: 1 << 40,
                    keep: 0,
                },
            )?
            .with_stream(Stream::fresh());
            let start = Instant::now();
            write_all(&mut file, &records)?;
            file_times.push(start.elapsed());
            drop(file);
            std::fs::remove_file(&path)?;

            let args = ExportArgs {
                export: vec![Target::Nats {
                    host: "127.0.0.1".into(),
                    port: PORT,
                    stream: "BENCH".into(),
                }],
                spool_dir: format!("{dir_path}/spool-{round}").into(),
                spool_max_mib: 1024,
                ..ExportArgs::default()
            };
            let exporter = Exporter::start(&args)?.context("one sink")?;
            let mut w = JsonlWriter::without_file()
                .with_stream(Stream::fresh())
                .with_export(exporter);
            let start = Instant::now();
            write_all(&mut w, &records)?;
            // Until JetStream acknowledged every line.
            let deadline = Instant::now() + Duration::from_secs(120);
            while w.export_counts()[0].sent < RECORDS {
                anyhow::ensure!(Instant::now() < deadline, "not all lines were delivered");
                std::thread::sleep(Duration::from_micros(200));
            }
            nats_times.push(start.elapsed());
            let counts = w.finish_export(Duration::from_secs(1));
            let c = &counts[0].0;
            anyhow::ensure!(
                c.sent == RECORDS && c.dropped == 0 && c.spooled == 0,
                "lost lines: {c:?}"
            );
        }
        Ok((file_times, nats_times))
    })??;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (file, nats) = (median(file_times), median(nats_times));
    let rate = |d: Duration| RECORDS as f64 / d.as_secs_f64();
    println!(
        "  nats (JetStream, file storage): {:.0} lines/s, every one acknowledged, none lost; {:.2}x the events file's time ({:.0} lines/s)",
        rate(nats),
        nats.as_secs_f64() / file.as_secs_f64(),
        rate(file)
    );
    Ok(())
}
