//! The embedded object loaded for BPF_PROG_TEST_RUN: the kernel programs run
//! on crafted frames without a NIC, for per-packet tests and benchmarks.

use std::time::Duration;

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{
        LinkOrder, RawTracePoint, SchedClassifier, TcAttachType, TestRun, TestRunOptions, Xdp,
        XdpMode, tc::TcAttachOptions,
    },
};
use monitor::{
    kernel_tables::KernelTables,
    loader::{Interface, XdpAttachMode},
    object::EBPF_OBJECT,
    stats::{self, IfaceCounters},
};
use monitor_common::{
    flow::{FlowEvent, FlowKey, FlowState, Kstat, SEEN_SLOTS, SeenSlot},
    maps::{
        COUNTERS_MAP, CpuCounters, DROP_TRACEPOINT, EVENTS_MAP, FLOWS_MAP, KSTATS_MAP, PROG_DROPS,
        PROG_EGRESS, PROG_INGRESS, PROG_RAWTP_PASS, PROG_TC_PASS, PROG_XDP_PASS, SEEN_MAP,
    },
    stats::PacketDir,
};

/// test_run hands XDP and TC programs the namespace's loopback device.
const TEST_RUN_IFINDEX: u32 = 1;
const TEST_RUN_SLOT: u32 = 1;

pub struct Kernel {
    ebpf: Ebpf,
}

/// A program attached by [`Kernel::attach_in`]: its link, detached on drop.
pub struct Attached(#[allow(dead_code)] Box<dyn std::any::Any + Send>);

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
        monitor::kernel_tables::write_ifslots(&mut ebpf, &[(TEST_RUN_IFINDEX, TEST_RUN_SLOT)])?;
        Ok(Self { ebpf })
    }

    /// Attaches the drop program and the bare raw tracepoint program to
    /// `kfree_skb`, the drop program watching interface `ifindex` of the
    /// network namespace whose inode is `netns` (as the daemon watches its
    /// own). Both stay attached while this lives.
    pub fn attach_drop_hooks(&mut self, netns: u32, ifindex: u32) -> anyhow::Result<()> {
        monitor::kernel_tables::write_ifslots(
            &mut self.ebpf,
            &[
                (TEST_RUN_IFINDEX, TEST_RUN_SLOT),
                (ifindex, TEST_RUN_SLOT + 1),
            ],
        )?;
        let btf = monitor::loader::btf::Btf::from_sys_fs()?;
        let r = monitor::loader::drops::resolve(&btf, netns).map_err(anyhow::Error::msg)?;
        monitor::kernel_tables::write_drop_tables(&mut self.ebpf, &r.layout, &r.reasons)?;
        for name in [PROG_DROPS, PROG_RAWTP_PASS] {
            let prog: &mut RawTracePoint = self.ebpf.program_mut(name).context(name)?.try_into()?;
            prog.load().with_context(|| format!("loading {name}"))?;
            prog.attach(DROP_TRACEPOINT)
                .with_context(|| format!("attaching {name}"))?;
        }
        Ok(())
    }

    /// Counts what the programs see on interface `ifindex` too (test_run's
    /// slot stays), as the daemon does for the interfaces it watches.
    pub fn watch_ifindex(&mut self, ifindex: u32) -> anyhow::Result<()> {
        monitor::kernel_tables::write_ifslots(
            &mut self.ebpf,
            &[
                (TEST_RUN_IFINDEX, TEST_RUN_SLOT),
                (ifindex, TEST_RUN_SLOT + 1),
            ],
        )?;
        Ok(())
    }

    /// Attaches program `name` to interface `ifname` of namespace `ns`, as
    /// the daemon does: an XDP program natively on ingress, a TC program
    /// by a tcx link on egress. Detached when the result is dropped.
    pub fn attach_in(
        &mut self,
        ns: &crate::lab::Netns,
        ifname: &str,
        name: &str,
    ) -> anyhow::Result<Attached> {
        let prog = self.ebpf.program_mut(name).context(name.to_string())?;
        ns.enter(|| -> anyhow::Result<Attached> {
            Ok(match prog {
                aya::programs::Program::Xdp(p) => {
                    let id = p
                        .attach(ifname, XdpMode::Driver)
                        .with_context(|| format!("attaching {name} to {ifname} (native XDP)"))?;
                    Attached(Box::new(p.take_link(id)?))
                }
                aya::programs::Program::SchedClassifier(p) => {
                    let id = p
                        .attach_with_options(
                            ifname,
                            TcAttachType::Egress,
                            TcAttachOptions::TcxOrder(LinkOrder::default()),
                        )
                        .with_context(|| format!("attaching {name} to {ifname} (tcx egress)"))?;
                    Attached(Box::new(p.take_link(id)?))
                }
                _ => anyhow::bail!("{name} is not an XDP or TC program"),
            })
        })?
    }

    /// Program `name`'s kernel statistics (`bpf_stats`, while enabled):
    /// total run time and runs.
    pub fn run_stats(&self, name: &'static str) -> anyhow::Result<(Duration, u64)> {
        let info = self.ebpf.program(name).context(name)?.info()?;
        Ok((info.run_time(), info.run_count()))
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

    /// Writes policy tables and switches classification on.
    pub fn enable_policy(&mut self, tables: &KernelTables) -> anyhow::Result<()> {
        monitor::kernel_tables::write(&mut self.ebpf, tables)?;
        Ok(())
    }

    /// Sum over CPUs of a per-CPU u64 counter.
    pub fn kstat(&self, stat: Kstat) -> anyhow::Result<u64> {
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(KSTATS_MAP).context(KSTATS_MAP)?)?;
        Ok(map.get(&stat.index(), 0)?.iter().sum())
    }

    /// Packets counted for a rule index of set A (where `enable_policy`
    /// puts the policy).
    pub fn rule_packets(&self, rule: u16) -> anyhow::Result<u64> {
        self.rule_packets_in(0, rule)
    }

    /// Packets counted for a rule index of policy set `set`.
    pub fn rule_packets_in(&self, set: u32, rule: u16) -> anyhow::Result<u64> {
        let map: PerCpuArray<_, CpuCounters> =
            PerCpuArray::try_from(self.ebpf.map(COUNTERS_MAP).context(COUNTERS_MAP)?)?;
        Ok(map
            .get(&set, 0)?
            .iter()
            .map(|c| c.rules.get(usize::from(rule)).map_or(0, |r| r.packets))
            .sum())
    }

    /// A reload as the daemon does it: fill idle set `set` with `new`
    /// (`previous` is what it held, `live` what the other set holds), then
    /// make it live.
    pub fn swap_policy(
        &mut self,
        set: usize,
        new: &KernelTables,
        previous: Option<&KernelTables>,
        live: &KernelTables,
    ) -> anyhow::Result<()> {
        monitor::kernel_tables::install(&mut self.ebpf, set, new, previous.is_some(), Some(live))?;
        Ok(())
    }

    /// The tracked unexpected flows, per-CPU copies merged.
    pub fn flows(&self) -> anyhow::Result<Vec<(FlowKey, FlowState)>> {
        let map: PerCpuHashMap<_, FlowKey, FlowState> =
            PerCpuHashMap::try_from(self.ebpf.map(FLOWS_MAP).context(FLOWS_MAP)?)?;
        let flows = map
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (k, FlowState::merge(v.iter())))
            .collect();
        let slots: PerCpuArray<_, SeenSlot> =
            PerCpuArray::try_from(self.ebpf.map(SEEN_MAP).context(SEEN_MAP)?)?;
        let mut held = Vec::new();
        for i in 0..SEEN_SLOTS {
            held.extend(slots.get(&i, 0)?.iter().copied());
        }
        Ok(monitor::loader::add_seen_slots(flows, &held))
    }

    /// Packets counted over all rules: the allowed total.
    pub fn allowed_packets(&self, rules: usize) -> anyhow::Result<u64> {
        (0..rules as u16).map(|r| self.rule_packets(r)).sum()
    }

    /// Drains the first-sighting events from the ring buffer.
    pub fn events(&mut self) -> anyhow::Result<Vec<FlowEvent>> {
        let mut ring = RingBuf::try_from(self.ebpf.map_mut(EVENTS_MAP).context(EVENTS_MAP)?)?;
        let mut out = Vec::new();
        while let Some(item) = ring.next() {
            anyhow::ensure!(
                item.len() >= size_of::<FlowEvent>(),
                "short ring buffer record"
            );
            // SAFETY: the kernel writes FlowEvent records; length checked.
            out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<FlowEvent>()) });
        }
        Ok(out)
    }

    /// The ring buffer itself, as the daemon holds it (`Monitor::take_events`):
    /// [`events`](Self::events) cannot be used afterwards.
    pub fn take_events(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self.ebpf.take_map(EVENTS_MAP).context(EVENTS_MAP)?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Counters the programs have accumulated for test_run's interface.
    pub fn counters(&self) -> anyhow::Result<IfaceCounters> {
        let map: PerCpuArray<_, CpuCounters> =
            PerCpuArray::try_from(self.ebpf.map(COUNTERS_MAP).context(COUNTERS_MAP)?)?;
        let iface = Interface {
            name: "test_run".into(),
            index: TEST_RUN_IFINDEX,
            slot: TEST_RUN_SLOT,
            xdp_mode: XdpAttachMode::Native,
            egress_mode: monitor::loader::EgressMode::Tcx,
        };
        let mut snapshot = stats::read_from(&map, &[iface])?;
        Ok(snapshot.ifaces.remove(0))
    }
}

/// The program that sees a frame going `dir`: XDP on ingress, TC on egress.
pub fn program(dir: PacketDir) -> &'static str {
    match dir {
        PacketDir::Ingress => PROG_INGRESS,
        PacketDir::Egress => PROG_EGRESS,
    }
}

/// Tables for an embedded profile bound by an inventory (TOML text), with
/// the dynamic range pinned so results do not depend on the host.
pub fn profile_tables(profile: &str, inventory: &str) -> anyhow::Result<KernelTables> {
    use monitor::policy::{self, Inventory, PortRange, ResolveOptions, profiles};
    let policy = profiles::load(profile)?;
    let options = ResolveOptions::all_releases(PortRange {
        lo: 32768,
        hi: 60999,
    });
    let resolved = policy::resolve(&policy, &options)?;
    let inventory = Inventory::parse(inventory, "inventory.toml")?;
    let no_dns = |_: &str| Vec::new();
    let peers = monitor::kernel_tables::Peers {
        inventory: Some(&inventory),
        default_nodes: &[],
        resolve: &no_dns,
    };
    Ok(monitor::kernel_tables::build(
        &policy::entries(&resolved, &[policy::model::NODES.into()]),
        &peers,
    )?)
}

/// Whether the running kernel's BTF has `enum skb_drop_reason` (5.17+):
/// where it does, the monitor sees drops by the host's own firewall
/// (`local-firewall`), elsewhere only their effect (`no-reply`).
pub fn names_drop_reasons() -> bool {
    monitor::loader::btf::Btf::from_sys_fs()
        .ok()
        .and_then(|b| b.enum_values("skb_drop_reason"))
        .is_some()
}
