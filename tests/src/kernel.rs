//! The embedded object loaded for BPF_PROG_TEST_RUN: the kernel programs run
//! on crafted frames without a NIC, for per-packet tests and benchmarks.

use std::time::Duration;

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{Array, PerCpuArray},
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
};
use monitor::{
    loader::{Interface, XdpAttachMode},
    object::EBPF_OBJECT,
    stats::{self, IfaceCounters},
};
use monitor_common::maps::{
    Counter, IFSLOT_MAP, PROG_EGRESS, PROG_INGRESS, PROG_TC_PASS, PROG_XDP_PASS, STATS_MAP,
};

/// test_run hands XDP and TC programs the namespace's loopback device.
const TEST_RUN_IFINDEX: u32 = 1;
const TEST_RUN_SLOT: u32 = 1;

pub struct Kernel {
    ebpf: Ebpf,
}

/// Result of one program run over one frame.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub verdict: u32,
    /// Mean time per repetition, as the kernel measured it.
    pub per_packet: Duration,
}

impl Kernel {
    pub fn load() -> anyhow::Result<Self> {
        let mut ebpf = Ebpf::load(EBPF_OBJECT).context("loading the embedded eBPF object")?;
        for name in [PROG_INGRESS, PROG_XDP_PASS] {
            let prog: &mut Xdp = ebpf.program_mut(name).context(name)?.try_into()?;
            prog.load().with_context(|| format!("loading {name}"))?;
        }
        for name in [PROG_EGRESS, PROG_TC_PASS] {
            let prog: &mut SchedClassifier = ebpf.program_mut(name).context(name)?.try_into()?;
            prog.load().with_context(|| format!("loading {name}"))?;
        }
        let mut ifslot: Array<_, u32> =
            Array::try_from(ebpf.map_mut(IFSLOT_MAP).context(IFSLOT_MAP)?)?;
        ifslot.set(TEST_RUN_IFINDEX, TEST_RUN_SLOT, 0)?;
        Ok(Self { ebpf })
    }

    /// Runs program `name` over `frame` `repeat` times.
    pub fn run(&self, name: &str, frame: &[u8], repeat: u32) -> anyhow::Result<Run> {
        let prog = self
            .ebpf
            .program(name)
            .with_context(|| format!("no program {name}"))?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat;
        let result = match prog {
            aya::programs::Program::Xdp(p) => p.test_run(opts),
            aya::programs::Program::SchedClassifier(p) => p.test_run(opts),
            _ => anyhow::bail!("{name} is not an XDP or TC program"),
        }
        .with_context(|| {
            format!(
                "BPF_PROG_TEST_RUN of {name} on a {}-byte frame",
                frame.len()
            )
        })?;
        Ok(Run {
            verdict: result.return_value,
            per_packet: result.duration,
        })
    }

    /// Counters the programs have accumulated for test_run's interface.
    pub fn counters(&self) -> anyhow::Result<IfaceCounters> {
        let map: PerCpuArray<_, Counter> =
            PerCpuArray::try_from(self.ebpf.map(STATS_MAP).context(STATS_MAP)?)?;
        let iface = Interface {
            name: "test_run".into(),
            index: TEST_RUN_IFINDEX,
            slot: TEST_RUN_SLOT,
            xdp_mode: XdpAttachMode::Native,
        };
        let mut snapshot = stats::read_from(&map, &[iface])?;
        Ok(snapshot.ifaces.remove(0))
    }
}
