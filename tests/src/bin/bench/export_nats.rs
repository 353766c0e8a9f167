//! `--export nats://` throughput (issue 19, item 6): events lines per
//! second into a real JetStream stream (Debian's nats-server, file
//! storage, on the other core), every line acknowledged by JetStream
//! before it leaves the spool, on one core, against writing the same
//! records to the events file in the same run.

use std::time::Duration;

use anyhow::Context as _;
use monitor::export::Target;
use portconform_tests::lab::{Netns, TempDir};

use crate::export::{RECORDS, ROUNDS, acked_round, file_round, median, pin_to, record};

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
            file_times.push(file_round(&dir_path, round, &records)?);
            nats_times.push(acked_round(
                &records,
                Target::Nats {
                    host: "127.0.0.1".into(),
                    port: PORT,
                    stream: "BENCH".into(),
                },
                format!("{dir_path}/spool-{round}"),
                None,
            )?);
        }
        Ok((file_times, nats_times))
    })??;
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
