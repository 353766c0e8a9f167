//! Per-packet cost of the kernel programs, as a ratio to bare pass programs
//! loaded from the same object and timed in the same run with
//! BPF_PROG_TEST_RUN. Ratios, not absolute times, are what we compare across
//! machines. Run through `cargo xtask bench`.

use std::time::Duration;

use anyhow::Context as _;
use monitor_common::maps::{PROG_EGRESS, PROG_INGRESS, PROG_TC_PASS, PROG_XDP_PASS};
use portconform_tests::{
    kernel::Kernel,
    packets::{self, corpus},
};

/// Rounds per measurement; the median is reported, so one noisy round (the
/// other core busy) does not move the result.
const ROUNDS: usize = 7;

fn main() -> anyhow::Result<()> {
    let repeat = parse_repeat()?;
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
    println!("BPF_PROG_TEST_RUN, {repeat} repetitions x {ROUNDS} rounds (median), ns per packet");
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

/// Median ns/packet of the baseline and the program, alternating between them
/// each round so both see the same machine state; and their ratio.
fn measure(
    kernel: &Kernel,
    base: &str,
    prog: &str,
    frame: &[u8],
    repeat: u32,
) -> anyhow::Result<(f64, f64, f64)> {
    let mut b = Vec::with_capacity(ROUNDS);
    let mut p = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        b.push(ns(kernel.run(base, frame, repeat)?.per_packet));
        p.push(ns(kernel.run(prog, frame, repeat)?.per_packet));
    }
    let (b, p) = (median(b), median(p));
    Ok((b, p, if b > 0.0 { p / b } else { f64::NAN }))
}

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn parse_repeat() -> anyhow::Result<u32> {
    let mut args = std::env::args().skip(1);
    let mut repeat = 1_000_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => {
                repeat = args
                    .next()
                    .context("--repeat needs a number")?
                    .parse()
                    .context("--repeat needs a number")?
            }
            other => anyhow::bail!("unknown argument {other:?} (expected --repeat N)"),
        }
    }
    Ok(repeat)
}
