//! Loading the kernel programs and attaching them: XDP on each interface's
//! ingress, TC on its egress (tcx, or a clsact filter before 6.6: see
//! [`egress`]). Attachments are owned by [`Monitor`]; dropping it detaches
//! everything. XDP and tcx links also go when the process dies; a clsact
//! filter left by a killed daemon is removed by the next start.

mod adopt;
pub mod btf;
pub mod command;
pub mod detach;
pub mod drops;
mod egress;
mod rtnl;

pub use adopt::STATE_MAPS;

pub use drops::DropWatch;
pub use egress::EgressMode;

use std::{ffi::CString, io, sync::Arc};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{HashMap, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{ProgramError, SchedClassifier, Xdp, XdpMode, links::FdLink},
    util::KernelVersion,
};
use monitor_common::{
    drop::LocalDrop,
    flood::{FloodKey, FloodStats},
    flow::{FlowKey, FlowState, KstatTotals, SEEN_SLOTS, SeenSlot},
    handshake::{Handshake, HandshakeKey},
    maps::{
        COUNTERS_MAP, Counter, CpuCounters, DROPS_MAP, EVENTS_MAP, FLOODS_MAP, FLOWS_MAP,
        HANDSHAKES_MAP, KSTATS_MAP, PROG_EGRESS, PROG_INGRESS, RULEWORK_MAP, SEEN_MAP, WATCH_MAP,
    },
    policy::MAX_RULES,
    stats::{IFINDEX_LIMIT, MAX_IFACES},
};

use crate::{
    kernel_tables::KernelTables,
    object::EBPF_OBJECT,
    pin::{self, Layout, PinDir, PinnedIface},
};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no network interface named {0:?} (list them with `ip link`)")]
    UnknownInterface(String),
    #[error("interface {0:?} is given twice")]
    DuplicateInterface(String),
    #[error("at most {max} interfaces can be monitored at once, got {0}", max = MAX_IFACES - 1)]
    TooManyInterfaces(usize),
    #[error("interface {name:?} has index {index}, beyond the {IFINDEX_LIMIT} the counters cover")]
    IfindexTooLarge { name: String, index: u32 },
    #[error(
        "permission denied while {what}: portconform needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON"
    )]
    Permission { what: String },
    #[error(
        "interface {0:?} already has an XDP program attached (is another portconform watching it? `ip link show {0}` names the program; a stopped `run --pin` leaves its programs attached: start it again with the same --pin, or remove them with `portconform detach --all`)"
    )]
    XdpBusy(String),
    #[error("loading the eBPF object failed: {0}")]
    Object(#[source] EbpfError),
    #[error("the kernel ({kernel}) rejected program {program}")]
    Program {
        program: &'static str,
        /// Its version, and a word when it is older than the oldest supported.
        kernel: String,
        #[source]
        source: ProgramError,
    },
    #[error("attaching {program} to {iface} failed")]
    Attach {
        program: &'static str,
        iface: String,
        #[source]
        source: ProgramError,
    },
    #[error("loading the policy into the kernel: {0}")]
    Policy(#[source] crate::kernel_tables::WriteError),
    #[error("telling the programs which interfaces they watch: {0}")]
    Slots(#[source] crate::kernel_tables::WriteError),
    #[error("pinned mode: {0}")]
    Pin(String),
    #[error("map {map}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
}

/// How the XDP program ended up attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// In the driver: the fast path.
    Native,
    /// In the generic network stack, because the driver has no XDP support.
    Generic,
}

impl XdpAttachMode {
    pub fn name(self) -> &'static str {
        match self {
            XdpAttachMode::Native => "native",
            XdpAttachMode::Generic => "generic",
        }
    }

    /// The mode a layout record names.
    fn named(name: &str) -> Self {
        if name == XdpAttachMode::Generic.name() {
            XdpAttachMode::Generic
        } else {
            XdpAttachMode::Native
        }
    }
}

/// One monitored interface.
#[derive(Clone, Debug)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    /// Counter slot the kernel uses for this interface.
    pub slot: u32,
    pub xdp_mode: XdpAttachMode,
    pub egress_mode: EgressMode,
}

/// The loaded object with its programs attached. Dropping it detaches.
pub struct Monitor {
    ebpf: Ebpf,
    /// Held for their drop, after `ebpf`'s: fields drop in order, so the
    /// programs' filters are gone before a qdisc is deleted.
    _qdiscs: Vec<egress::Clsact>,
    interfaces: Vec<Interface>,
    /// The tables in each policy map set, and which set is live.
    sets: [Option<Arc<KernelTables>>; 2],
    live: usize,
    /// Whether drops by the host's own stack are watched (with a policy).
    drop_watch: Option<DropWatch>,
    /// With `run --pin`: what stays attached when the daemon exits.
    pinned: Option<Pinned>,
}

/// A pinned run's hold on its pins: the directory (and its lock), the link
/// descriptors (closing them leaves the pinned links attached), and what
/// was adopted from the run before.
pub struct Pinned {
    dir: PinDir,
    _links: Vec<FdLink>,
    layout: Layout,
    adoption: Adoption,
}

/// What a pinned start took over from the run before it.
#[derive(Debug, Default)]
pub struct Adoption {
    /// Whether there was a run before (its links were replaced in place).
    pub adopted: bool,
    /// State maps reused, by name.
    pub reused: Vec<&'static str>,
    /// One line per kind of state that could not be kept.
    pub lost: Vec<String>,
    /// Per-rule counters the previous policy accumulated, by rule id, when
    /// this start's policy differs from it.
    pub retired: Vec<(String, Counter)>,
    /// Required flows the run before reported blocked, not yet recovered.
    pub blocked: Vec<pin::record::SavedBlocked>,
    /// The run before's events numbering.
    pub stream: Option<pin::record::SavedStream>,
}

impl Monitor {
    /// Loads the programs and attaches them to every interface in `names`.
    /// On error nothing stays attached (the partly built monitor is dropped).
    ///
    /// With `tables`, the policy is in the maps and classification switched
    /// on before any program is attached: the first packet is judged.
    ///
    /// With `pin`, the links and state maps are pinned there and stay when
    /// the monitor is dropped; what an earlier pinned run left is adopted
    /// (see [`adopt`]): its programs are replaced through their links.
    pub fn attach(
        names: &[String],
        tables: Option<&KernelTables>,
        pin: Option<PinDir>,
    ) -> Result<Self, LoadError> {
        let resolved = resolve_interfaces(names)?;
        raise_memlock_limit();
        let mut loader = EbpfLoader::new();
        let mut plan = match &pin {
            Some(dir) => Some(adopt::prepare(dir, &mut loader)?),
            None => None,
        };
        let mut ebpf = loader.load(EBPF_OBJECT).map_err(|err| match &err {
            EbpfError::MapError(MapError::CreateError { io_error, .. })
                if io_error.kind() == io::ErrorKind::PermissionDenied =>
            {
                LoadError::Permission {
                    what: "creating BPF maps".into(),
                }
            }
            _ => LoadError::Object(err),
        })?;
        let old_layout = plan.as_mut().and_then(|p| p.old.take());
        let old = old_layout.as_ref();

        let mut interfaces = assign_slots(&resolved, old);
        let slots: Vec<(u32, u32)> = interfaces.iter().map(|i| (i.index, i.slot)).collect();
        crate::kernel_tables::write_ifslots(&mut ebpf, &slots).map_err(LoadError::Slots)?;

        // A pinned run's counters continue: the same policy goes into the
        // set it was live in; a changed one into the other set, and the
        // old one's per-rule counts are handed to the daemon by rule id.
        let mut live = 0;
        let mut retired = Vec::new();
        if let Some(t) = tables {
            let ids: Vec<String> = t.rules.iter().map(|r| r.id.clone()).collect();
            let carried = plan.as_ref().filter(|p| p.reuses(COUNTERS_MAP)).and(old);
            let zero = match carried {
                Some(o) if o.rules == ids => {
                    live = usize::from(o.live_set & 1);
                    false
                }
                Some(o) => {
                    live = 1 - usize::from(o.live_set & 1);
                    retired = read_rule_counters(&ebpf, o.live_set.into(), o.rules.len())?
                        .into_iter()
                        .zip(&o.rules)
                        .map(|(c, id)| (id.clone(), c))
                        .collect();
                    true
                }
                None => false,
            };
            crate::kernel_tables::install(&mut ebpf, live, t, zero, None)
                .map_err(LoadError::Policy)?;
        }

        let mut links = Vec::new();
        let xdp: &mut Xdp = program(&mut ebpf, PROG_INGRESS)?;
        xdp.load()
            .map_err(|source| program_error(PROG_INGRESS, source))?;
        for iface in &mut interfaces {
            match &pin {
                Some(dir) => {
                    let path = dir.xdp_link(iface.index);
                    match adopt::xdp_link(xdp, &path)? {
                        Some(link) => {
                            iface.xdp_mode = old
                                .and_then(|o| o.iface(iface.index))
                                .map_or(XdpAttachMode::Native, |p| XdpAttachMode::named(&p.xdp));
                            links.push(link);
                        }
                        None => {
                            let (mode, id) = attach_xdp(xdp, iface)?;
                            iface.xdp_mode = mode;
                            let link = xdp
                                .take_link(id)
                                .map_err(|e| attach_error(PROG_INGRESS, &iface.name, e))?;
                            let link = FdLink::try_from(link).map_err(|e| {
                                LoadError::Pin(format!("the XDP link on {}: {e}", iface.name))
                            })?;
                            links.push(pin_link(link, &path)?);
                        }
                    }
                }
                None => iface.xdp_mode = attach_xdp(xdp, iface)?.0,
            }
        }

        let tc: &mut SchedClassifier = program(&mut ebpf, PROG_EGRESS)?;
        tc.load()
            .map_err(|source| program_error(PROG_EGRESS, source))?;
        let mut qdiscs = Vec::new();
        let mut pinned_ifaces = Vec::new();
        for iface in &mut interfaces {
            let result = match &pin {
                Some(dir) => egress_pinned(tc, iface, dir, old, &mut links).map(|p| {
                    pinned_ifaces.push(p);
                    None
                }),
                None => egress::attach(tc, iface).map(|(mode, qdisc, _)| {
                    iface.egress_mode = mode;
                    qdisc
                }),
            };
            match result {
                Ok(qdisc) => qdiscs.extend(qdisc),
                Err(err) => {
                    // The filters first (with the programs), then the
                    // qdiscs, which are only deleted once empty: the order
                    // `Monitor`'s fields drop in.
                    drop(ebpf);
                    drop(qdiscs);
                    return Err(err);
                }
            }
        }
        // Only a policy makes flows required; never fatal (see `drops`).
        let drop_watch = tables.map(|_| {
            let (watch, id) = drops::attach(&mut ebpf);
            if let (Some(dir), Some(id)) = (&pin, id) {
                // The new program is attached before the old one's pin
                // goes: a drop in between may be counted twice, never
                // missed.
                let path = dir.drops_link();
                let _ = PinDir::unpin(&path);
                if let Some(link) = drops::take_link(&mut ebpf, id) {
                    match pin_link(link, &path) {
                        Ok(l) => links.push(l),
                        Err(e) => log::warn!("{e}"),
                    }
                }
            }
            watch
        });
        if tables.is_none()
            && let Some(dir) = &pin
        {
            // No policy, no drop program: the last run's goes.
            let _ = PinDir::unpin(&dir.drops_link());
        }
        let pinned = match (pin, plan) {
            (Some(dir), Some(plan)) => {
                if let Some(o) = old {
                    for gone in o
                        .interfaces
                        .iter()
                        .filter(|g| !slots.iter().any(|(i, _)| *i == g.index))
                    {
                        detach::interface(&dir, gone).map_err(|e| LoadError::Pin(e.to_string()))?;
                        eprintln!(
                            "portconform: detached from {}, which the last pinned run watched and this one does not",
                            gone.name
                        );
                    }
                }
                let layout = Layout {
                    version: pin::LAYOUT_VERSION,
                    netns: pin::netns(),
                    maps: adopt::shapes()?,
                    interfaces: pinned_ifaces,
                    live_set: live as u8,
                    rules: tables
                        .map_or_else(Vec::new, |t| t.rules.iter().map(|r| r.id.clone()).collect()),
                    drops: matches!(drop_watch, Some(DropWatch::On(_))),
                    blocked: Vec::new(),
                    stream: None,
                };
                dir.write_layout(&layout)
                    .map_err(|e| LoadError::Pin(e.to_string()))?;
                Some(Pinned {
                    dir,
                    _links: links,
                    layout,
                    adoption: Adoption {
                        adopted: old.is_some(),
                        reused: plan.reused,
                        lost: plan.lost,
                        retired,
                        blocked: old.map(|o| o.blocked.clone()).unwrap_or_default(),
                        stream: old.and_then(|o| o.stream.clone()),
                    },
                })
            }
            _ => None,
        };
        Ok(Self {
            ebpf,
            _qdiscs: qdiscs,
            interfaces,
            sets: [None, None],
            live,
            drop_watch,
            pinned,
        }
        .with_tables(tables))
    }

    fn with_tables(mut self, tables: Option<&KernelTables>) -> Self {
        self.sets[self.live] = tables.cloned().map(Arc::new);
        self
    }

    /// With `run --pin`: what this start took over from the run before.
    pub fn adoption(&self) -> Option<&Adoption> {
        self.pinned.as_ref().map(|p| &p.adoption)
    }

    /// With `run --pin`: leaves `blocked` in the layout record for the next
    /// run (see [`Adoption::blocked`]).
    pub fn save_blocked(
        &mut self,
        blocked: Vec<pin::record::SavedBlocked>,
    ) -> Result<(), LoadError> {
        let Some(p) = &mut self.pinned else {
            return Ok(());
        };
        p.layout.blocked = blocked;
        p.dir
            .write_layout(&p.layout)
            .map_err(|e| LoadError::Pin(e.to_string()))
    }

    /// With `run --pin`: leaves the events numbering in the layout record
    /// for the next run.
    pub fn save_stream(&mut self, stream: pin::record::SavedStream) -> Result<(), LoadError> {
        let Some(p) = &mut self.pinned else {
            return Ok(());
        };
        p.layout.stream = Some(stream);
        p.dir
            .write_layout(&p.layout)
            .map_err(|e| LoadError::Pin(e.to_string()))
    }

    /// With `run --pin`: the pin directory.
    pub fn pin_dir(&self) -> Option<&std::path::Path> {
        self.pinned.as_ref().map(|p| p.dir.path())
    }

    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    /// Swaps in a new policy without detaching: fills the idle map set, makes
    /// it live in one update, and returns the per-rule counters the old set
    /// accumulated (by the old tables' rule index) so totals survive.
    pub fn replace_policy(&mut self, new: KernelTables) -> Result<Vec<Counter>, LoadError> {
        let idle = 1 - self.live;
        crate::kernel_tables::install(
            &mut self.ebpf,
            idle,
            &new,
            self.sets[idle].is_some(),
            self.sets[self.live].as_deref(),
        )
        .map_err(LoadError::Policy)?;
        let old_rules = self.sets[self.live].as_ref().map_or(0, |t| t.rules.len());
        let retired = self.rule_stats(old_rules)?;
        if let Some(p) = &mut self.pinned {
            p.layout.live_set = idle as u8;
            p.layout.rules = new.rules.iter().map(|r| r.id.clone()).collect();
            p.dir
                .write_layout(&p.layout)
                .map_err(|e| LoadError::Pin(e.to_string()))?;
        }
        self.sets[idle] = Some(Arc::new(new));
        self.live = idle;
        Ok(retired)
    }

    /// The live policy's tables.
    pub fn tables(&self) -> Option<&KernelTables> {
        self.sets[self.live].as_deref()
    }

    /// The live policy's tables, shared: the daemon's [`Enricher`] holds
    /// them across map updates and swaps them after a reload.
    ///
    /// [`Enricher`]: crate::enrich::Enricher
    pub fn shared_tables(&self) -> Option<Arc<KernelTables>> {
        self.sets[self.live].clone()
    }

    /// The ring buffer of first sightings (can be taken once).
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self.ebpf.take_map(EVENTS_MAP).ok_or(LoadError::Map {
            map: EVENTS_MAP,
            source: MapError::InvalidName {
                name: EVENTS_MAP.into(),
            },
        })?;
        RingBuf::try_from(map).map_err(|source| LoadError::Map {
            map: EVENTS_MAP,
            source,
        })
    }

    /// Classifier counters (see `Kstat`), summed over CPUs.
    pub fn kstats(&self) -> Result<KstatTotals, LoadError> {
        let map = self
            .ebpf
            .map(KSTATS_MAP)
            .expect("the object defines PC_KSTATS");
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|source| LoadError::Map {
                map: KSTATS_MAP,
                source,
            })?;
        let mut out = KstatTotals::default();
        for (i, v) in out.0.iter_mut().enumerate() {
            *v = map
                .get(&(i as u32), 0)
                .map_err(|source| LoadError::Map {
                    map: KSTATS_MAP,
                    source,
                })?
                .iter()
                .sum();
        }
        Ok(out)
    }

    /// Packets and bytes per rule index of the live set, for the first
    /// `rules` rules.
    pub fn rule_stats(&self, rules: usize) -> Result<Vec<Counter>, LoadError> {
        read_rule_counters(&self.ebpf, self.live, rules)
    }

    /// The live policy set (0 or 1): rule indexes in attempts belong to one.
    pub fn live_set(&self) -> u8 {
        self.live as u8
    }

    fn handshake_map(
        &mut self,
    ) -> Result<HashMap<&mut MapData, HandshakeKey, Handshake>, LoadError> {
        let map = self
            .ebpf
            .map_mut(HANDSHAKES_MAP)
            .expect("the object defines PC_HANDSHAKES");
        HashMap::try_from(map).map_err(|source| LoadError::Map {
            map: HANDSHAKES_MAP,
            source,
        })
    }

    /// Whether the host's own drops are watched; `None` without a policy.
    pub fn drop_watch(&self) -> Option<&DropWatch> {
        self.drop_watch.as_ref()
    }

    fn drops_map(&mut self) -> Result<HashMap<&mut MapData, FlowKey, LocalDrop>, LoadError> {
        let map = self
            .ebpf
            .map_mut(DROPS_MAP)
            .expect("the object defines PC_DROPS");
        HashMap::try_from(map).map_err(|source| LoadError::Map {
            map: DROPS_MAP,
            source,
        })
    }

    /// Required flows with packets the host's own stack dropped.
    pub fn local_drops(&mut self) -> Result<Vec<(FlowKey, LocalDrop)>, LoadError> {
        Ok(self.drops_map()?.iter().filter_map(Result::ok).collect())
    }

    /// Drops a collected record; one already gone is fine. A drop the
    /// kernel adds between the read and this removal is lost with it: a
    /// window of microseconds once per sweep, and only for a flow that
    /// keeps dropping, whose next drop starts a new record.
    pub fn forget_local_drop(&mut self, flow: &FlowKey) -> Result<(), LoadError> {
        match self.drops_map()?.remove(flow) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(source) => Err(LoadError::Map {
                map: DROPS_MAP,
                source,
            }),
        }
    }

    fn watch_map(&mut self) -> Result<HashMap<&mut MapData, FlowKey, u64>, LoadError> {
        let map = self
            .ebpf
            .map_mut(WATCH_MAP)
            .expect("the object defines PC_WATCH");
        HashMap::try_from(map).map_err(|source| LoadError::Map {
            map: WATCH_MAP,
            source,
        })
    }

    /// Attempts of required flows the kernel is tracking (pending, or
    /// refused and not yet collected).
    pub fn handshakes(&mut self) -> Result<Vec<(HandshakeKey, Handshake)>, LoadError> {
        // Entries removed while we iterate simply drop out.
        Ok(self
            .handshake_map()?
            .iter()
            .filter_map(Result::ok)
            .collect())
    }

    /// Drops a judged attempt; one already gone (answered meanwhile) is fine.
    pub fn forget_handshake(&mut self, key: &HandshakeKey) -> Result<(), LoadError> {
        match self.handshake_map()?.remove(key) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(source) => Err(LoadError::Map {
                map: HANDSHAKES_MAP,
                source,
            }),
        }
    }

    /// Asks the kernel to note when `flow` is next answered; false when the
    /// watch list is full.
    pub fn watch(&mut self, flow: &FlowKey) -> Result<bool, LoadError> {
        match self.watch_map()?.insert(flow, 0, 0) {
            Ok(()) => Ok(true),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::E2BIG) => {
                Ok(false)
            }
            Err(source) => Err(LoadError::Map {
                map: WATCH_MAP,
                source,
            }),
        }
    }

    /// Watched flows and when each was answered (0: not yet).
    pub fn watched(&mut self) -> Result<Vec<(FlowKey, u64)>, LoadError> {
        Ok(self.watch_map()?.iter().filter_map(Result::ok).collect())
    }

    pub fn unwatch(&mut self, flow: &FlowKey) -> Result<(), LoadError> {
        match self.watch_map()?.remove(flow) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(source) => Err(LoadError::Map {
                map: WATCH_MAP,
                source,
            }),
        }
    }

    /// Answered attempts per rule index of the live set, summed over CPUs.
    pub fn rule_work(&self, rules: usize) -> Result<Vec<u64>, LoadError> {
        let name = RULEWORK_MAP;
        let base = self.live as u32 * MAX_RULES;
        let map = self.ebpf.map(name).expect("the object defines PC_RULEWORK");
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|source| LoadError::Map { map: name, source })?;
        (0..rules as u32)
            .map(|i| {
                map.get(&(base + i), 0)
                    .map(|v| v.iter().sum())
                    .map_err(|source| LoadError::Map { map: name, source })
            })
            .collect()
    }

    /// The flood aggregates, each CPU's copy (see `monitor_common::flood`).
    /// Never removed: each only grows, so the daemon reports what grew and
    /// no count the kernel adds while it reads is lost.
    pub fn floods(&self) -> Result<Vec<(FloodKey, Vec<FloodStats>)>, LoadError> {
        let map = self
            .ebpf
            .map(FLOODS_MAP)
            .expect("the object defines PC_FLOODS");
        let map: PerCpuHashMap<_, FloodKey, FloodStats> =
            PerCpuHashMap::try_from(map).map_err(|source| LoadError::Map {
                map: FLOODS_MAP,
                source,
            })?;
        Ok(map
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (k, v.iter().copied().collect()))
            .collect())
    }

    /// The tracked unexpected flows, each with its per-CPU copies merged.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowState)>, LoadError> {
        let map = self
            .ebpf
            .map(FLOWS_MAP)
            .expect("the object defines PC_FLOWS");
        let map: PerCpuHashMap<_, FlowKey, FlowState> =
            PerCpuHashMap::try_from(map).map_err(|source| LoadError::Map {
                map: FLOWS_MAP,
                source,
            })?;
        // Entries evicted while we iterate simply drop out.
        let flows = map
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (k, FlowState::merge(v.iter())))
            .collect();
        // The LRU first, then the slots: a slot handed over in between has
        // already added its packets to the LRU, so they are counted once
        // (or, if it happens the other way round, at the next read).
        let slots: PerCpuArray<_, SeenSlot> =
            PerCpuArray::try_from(self.ebpf.map(SEEN_MAP).expect("the object defines PC_SEEN"))
                .map_err(|source| LoadError::Map {
                    map: SEEN_MAP,
                    source,
                })?;
        let mut held = Vec::new();
        for i in 0..SEEN_SLOTS {
            let copies = slots.get(&i, 0).map_err(|source| LoadError::Map {
                map: SEEN_MAP,
                source,
            })?;
            held.extend(copies.iter().copied());
        }
        Ok(add_seen_slots(flows, &held))
    }
}

/// Packets and bytes per rule index of policy set `set`, for the first
/// `rules` rules, summed over CPUs.
fn read_rule_counters(ebpf: &Ebpf, set: usize, rules: usize) -> Result<Vec<Counter>, LoadError> {
    let name = COUNTERS_MAP;
    let map = ebpf.map(name).expect("the object defines the counters");
    let map: PerCpuArray<_, CpuCounters> =
        PerCpuArray::try_from(map).map_err(|source| LoadError::Map { map: name, source })?;
    let cpus = map
        .get(&(set as u32), 0)
        .map_err(|source| LoadError::Map { map: name, source })?;
    Ok((0..rules.min(MAX_RULES as usize))
        .map(|i| {
            cpus.iter().fold(Counter::default(), |a, c| Counter {
                packets: a.packets + c.rules[i].packets,
                bytes: a.bytes + c.rules[i].bytes,
            })
        })
        .collect())
}

/// Counter slots: an interface a pinned run counted keeps its slot, so its
/// traffic counters continue; the others take the free slots in order.
fn assign_slots(resolved: &[(String, u32)], old: Option<&Layout>) -> Vec<Interface> {
    let kept = |index: u32| old.and_then(|o| o.iface(index)).map(|p| p.slot);
    let mut taken: Vec<u32> = resolved
        .iter()
        .filter_map(|(_, index)| kept(*index))
        .collect();
    let mut next = 1;
    resolved
        .iter()
        .map(|(name, index)| {
            let slot = kept(*index).unwrap_or_else(|| {
                while taken.contains(&next) {
                    next += 1;
                }
                taken.push(next);
                next
            });
            Interface {
                name: name.clone(),
                index: *index,
                slot,
                xdp_mode: XdpAttachMode::Native,
                egress_mode: EgressMode::Tcx,
            }
        })
        .collect()
}

/// Pins a fresh link at `path`; the returned descriptor may be closed, the
/// pin keeps the link attached.
fn pin_link(link: FdLink, path: &std::path::Path) -> Result<FdLink, LoadError> {
    link.pin(path)
        .map(FdLink::from)
        .map_err(|e| LoadError::Pin(format!("pinning {}: {e}", path.display())))
}

/// Egress of a pinned run: the last run's tcx link or clsact filter has its
/// program replaced; otherwise a fresh attach, pinned (tcx) or recorded
/// (clsact, left in place on exit).
fn egress_pinned(
    tc: &mut SchedClassifier,
    iface: &mut Interface,
    dir: &PinDir,
    old: Option<&Layout>,
    links: &mut Vec<FdLink>,
) -> Result<PinnedIface, LoadError> {
    let path = dir.tc_link(iface.index);
    let mut record = PinnedIface {
        name: iface.name.clone(),
        index: iface.index,
        slot: iface.slot,
        xdp: iface.xdp_mode.name().into(),
        egress: EgressMode::Tcx.name().into(),
        tc_priority: None,
        tc_handle: None,
        owned_qdisc: false,
    };
    if let Some(link) = adopt::tcx_link(tc, &path)? {
        iface.egress_mode = EgressMode::Tcx;
        links.push(link);
        return Ok(record);
    }
    let prior = old.and_then(|o| o.iface(iface.index));
    if let Some(p) = prior
        && let (Some(priority), Some(handle)) = (p.tc_priority, p.tc_handle)
        && let Some(link) = adopt::clsact_filter(tc, &iface.name, priority, handle)
    {
        iface.egress_mode = EgressMode::Clsact;
        record.egress = EgressMode::Clsact.name().into();
        record.tc_priority = Some(priority);
        record.tc_handle = Some(handle);
        record.owned_qdisc = p.owned_qdisc;
        // Held by the kernel's filter list, not by us: forgetting the link
        // keeps aya from deleting the filter on exit.
        std::mem::forget(link);
        return Ok(record);
    }
    let (mode, qdisc, id) = egress::attach(tc, iface)?;
    iface.egress_mode = mode;
    let link = tc
        .take_link(id)
        .map_err(|e| attach_error(PROG_EGRESS, &iface.name, e))?;
    match mode {
        EgressMode::Tcx => {
            let link = FdLink::try_from(link)
                .map_err(|e| LoadError::Pin(format!("the tcx link on {}: {e}", iface.name)))?;
            links.push(pin_link(link, &path)?);
        }
        EgressMode::Clsact => {
            record.egress = EgressMode::Clsact.name().into();
            record.tc_priority = link.priority().ok();
            record.tc_handle = link.handle().ok().map(u32::from);
            record.owned_qdisc = qdisc.as_ref().is_some_and(egress::Clsact::owned);
            std::mem::forget(link);
            // The qdisc stays too: `detach` removes it.
            std::mem::forget(qdisc);
        }
    }
    Ok(record)
}

/// Adds the packets the per-CPU seen-flow slots hold to their flows' merged
/// states. A slot whose flow has left the LRU counts for nothing: that
/// flow's eviction is already reported.
pub fn add_seen_slots(
    flows: Vec<(FlowKey, FlowState)>,
    slots: &[SeenSlot],
) -> Vec<(FlowKey, FlowState)> {
    let index: std::collections::HashMap<FlowKey, usize> = flows
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i))
        .collect();
    let mut flows = flows;
    for slot in slots.iter().filter(|s| s.occupied != 0) {
        if let Some(&i) = index.get(&slot.key) {
            flows[i].1.add_seen(slot);
        }
    }
    flows
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .expect("the embedded object defines every program");
    prog.try_into()
        .map_err(|source| program_error(name, source))
}

/// Native XDP first; drivers without it get generic mode, and the caller says so.
/// An interface whose XDP hook is taken (another portconform, say) is an
/// error: generic mode would run beside it, and the egress fallback takes a
/// filter of ours found there for a dead instance's.
fn attach_xdp(
    xdp: &mut Xdp,
    iface: &Interface,
) -> Result<(XdpAttachMode, aya::programs::xdp::XdpLinkId), LoadError> {
    match xdp.attach_to_if_index(iface.index, XdpMode::Driver) {
        Ok(id) => Ok((XdpAttachMode::Native, id)),
        Err(err) if io_error(&err).and_then(io::Error::raw_os_error) == Some(libc::EBUSY) => {
            Err(LoadError::XdpBusy(iface.name.clone()))
        }
        Err(native_err) if !is_permission(&native_err) => {
            match xdp.attach_to_if_index(iface.index, XdpMode::Skb) {
                Ok(id) => Ok((XdpAttachMode::Generic, id)),
                Err(_) => Err(attach_error(PROG_INGRESS, &iface.name, native_err)),
            }
        }
        Err(err) => Err(attach_error(PROG_INGRESS, &iface.name, err)),
    }
}

/// Each interface's index, in order. Refuses unknown, repeated and too
/// many interfaces, so `run` can check them before it compiles a policy.
pub fn resolve_interfaces(names: &[String]) -> Result<Vec<(String, u32)>, LoadError> {
    if names.len() >= MAX_IFACES as usize {
        return Err(LoadError::TooManyInterfaces(names.len()));
    }
    let mut out: Vec<(String, u32)> = Vec::with_capacity(names.len());
    for name in names {
        if out.iter().any(|(n, _)| n == name) {
            return Err(LoadError::DuplicateInterface(name.clone()));
        }
        let index = if_index(name).ok_or_else(|| LoadError::UnknownInterface(name.clone()))?;
        if index >= IFINDEX_LIMIT {
            return Err(LoadError::IfindexTooLarge {
                name: name.clone(),
                index,
            });
        }
        out.push((name.clone(), index));
    }
    Ok(out)
}

/// Interface index of `name`, or `None` when there is no such interface.
pub fn if_index(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: `c_name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    (index != 0).then_some(index)
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lifting it is
/// harmless on newer ones and failure is reported by the load itself.
fn raise_memlock_limit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
}

fn is_permission(err: &ProgramError) -> bool {
    io_error(err)
        .is_some_and(|e| matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)))
}

fn io_error(err: &ProgramError) -> Option<&io::Error> {
    match err {
        ProgramError::SyscallError(e) => Some(&e.io_error),
        ProgramError::LoadError { io_error, .. } => Some(io_error),
        _ => None,
    }
}

fn program_error(program: &'static str, source: ProgramError) -> LoadError {
    // A verifier rejection is EACCES or EINVAL with a log; EPERM means privileges.
    if io_error(&source).and_then(io::Error::raw_os_error) == Some(libc::EPERM) {
        return LoadError::Permission {
            what: format!("loading {program}"),
        };
    }
    let kernel = match KernelVersion::current() {
        Ok(v) if v < MIN_KERNEL => {
            format!(
                "{v}, older than 5.15, the oldest portconform supports: see the README's kernel table"
            )
        }
        Ok(v) => v.to_string(),
        Err(_) => "version unknown".into(),
    };
    LoadError::Program {
        program,
        kernel,
        source,
    }
}

/// The oldest kernel the README names as supported.
const MIN_KERNEL: KernelVersion = KernelVersion::new(5, 15, 0);

fn attach_error(program: &'static str, iface: &str, source: ProgramError) -> LoadError {
    if is_permission(&source) {
        return LoadError::Permission {
            what: format!("attaching {program} to {iface}"),
        };
    }
    if let ProgramError::UnknownInterface { name } = &source {
        return LoadError::UnknownInterface(name.clone());
    }
    LoadError::Attach {
        program,
        iface: iface.to_string(),
        source,
    }
}
