//! Reading the kernel's per-CPU counters into per-interface totals, and
//! rendering them for people (a table) and scripts (JSON lines).

use std::{collections::BTreeMap, fmt::Write as _};

use aya::maps::{MapError, PerCpuArray};
use monitor_common::{
    maps::{COUNTERS_MAP, Counter, CpuCounters},
    policy::POLICY_SETS,
    stats::{PacketDir, SLOTS, slot_name, stats_index},
};
use serde::Serialize;

use crate::loader::{Interface, Monitor};

/// Totals for one interface, indexed by direction then counter slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfaceCounters {
    pub name: String,
    pub counters: [[Counter; SLOTS as usize]; 2],
}

impl IfaceCounters {
    pub fn get(&self, dir: PacketDir, slot: u32) -> Counter {
        self.counters[dir as usize][slot as usize]
    }

    /// All packets in one direction, parsed or not.
    pub fn total(&self, dir: PacketDir) -> Counter {
        self.counters[dir as usize]
            .iter()
            .fold(Counter::default(), |acc, c| Counter {
                packets: acc.packets + c.packets,
                bytes: acc.bytes + c.bytes,
            })
    }
}

/// Counters of every monitored interface at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub ifaces: Vec<IfaceCounters>,
}

/// Sums the per-CPU values of every monitored interface's slots.
pub fn read(monitor: &Monitor) -> Result<Snapshot, MapError> {
    let map = monitor
        .ebpf()
        .map(COUNTERS_MAP)
        .expect("the object defines PC_COUNTERS");
    let counters: PerCpuArray<_, CpuCounters> = PerCpuArray::try_from(map)?;
    read_from(&counters, monitor.interfaces())
}

/// Traffic is counted under whichever policy set was live, so each slot's
/// total is summed over both sets and every CPU.
pub fn read_from<T: std::borrow::Borrow<aya::maps::MapData>>(
    counters: &PerCpuArray<T, CpuCounters>,
    interfaces: &[Interface],
) -> Result<Snapshot, MapError> {
    let sets = (0..POLICY_SETS)
        .map(|set| counters.get(&set, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let ifaces = interfaces
        .iter()
        .map(|iface| {
            let mut out = IfaceCounters {
                name: iface.name.clone(),
                ..Default::default()
            };
            for dir in PacketDir::ALL {
                for slot in 0..SLOTS {
                    let index = stats_index(iface.slot, dir, slot) as usize;
                    out.counters[dir as usize][slot as usize] = sets
                        .iter()
                        .flat_map(|cpus| cpus.iter())
                        .fold(Counter::default(), |acc, c| Counter {
                            packets: acc.packets + c.traffic[index].packets,
                            bytes: acc.bytes + c.traffic[index].bytes,
                        });
                }
            }
            out
        })
        .collect();
    Ok(Snapshot { ifaces })
}

/// One JSON line per non-zero counter, so scripts can aggregate freely.
#[derive(Serialize)]
struct CounterLine<'a> {
    ts: &'a str,
    #[serde(rename = "final")]
    last: bool,
    iface: &'a str,
    direction: &'static str,
    family: &'static str,
    proto: &'static str,
    packets: u64,
    bytes: u64,
}

pub fn render_json(snapshot: &Snapshot, ts: &str, last: bool) -> String {
    let mut out = String::new();
    for iface in &snapshot.ifaces {
        for dir in PacketDir::ALL {
            for slot in 0..SLOTS {
                let c = iface.get(dir, slot);
                if c.packets == 0 {
                    continue;
                }
                let (family, proto) = slot_name(slot);
                let line = CounterLine {
                    ts,
                    last,
                    iface: &iface.name,
                    direction: dir.name(),
                    family,
                    proto,
                    packets: c.packets,
                    bytes: c.bytes,
                };
                out.push_str(&serde_json::to_string(&line).expect("plain struct serializes"));
                out.push('\n');
            }
        }
    }
    out
}

/// A table per interface: one row per (family, protocol) seen, inbound and
/// outbound side by side, with packets since the previous snapshot.
pub fn render_table(snapshot: &Snapshot, previous: Option<&Snapshot>, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    for iface in &snapshot.ifaces {
        let prev = previous.and_then(|p| p.ifaces.iter().find(|i| i.name == iface.name));
        let _ = writeln!(
            out,
            "  {:<12} {:<10} {:>12} {:>14} {:>9} {:>12} {:>14} {:>9}",
            iface.name, "", "in pkts", "in bytes", "in +", "out pkts", "out bytes", "out +"
        );
        let mut rows: BTreeMap<u32, ()> = BTreeMap::new();
        for slot in 0..SLOTS {
            if PacketDir::ALL
                .iter()
                .any(|d| iface.get(*d, slot).packets > 0)
            {
                rows.insert(slot, ());
            }
        }
        if rows.is_empty() {
            let _ = writeln!(out, "  {:<12} (no packets yet)", "");
        }
        for slot in rows.keys() {
            let (family, proto) = slot_name(*slot);
            let inb = iface.get(PacketDir::Ingress, *slot);
            let outb = iface.get(PacketDir::Egress, *slot);
            let delta = |dir: PacketDir, now: Counter| {
                now.packets - prev.map_or(0, |p| p.get(dir, *slot).packets)
            };
            let _ = writeln!(
                out,
                "  {:<12} {:<10} {:>12} {:>14} {:>9} {:>12} {:>14} {:>9}",
                family,
                proto,
                inb.packets,
                inb.bytes,
                delta(PacketDir::Ingress, inb),
                outb.packets,
                outb.bytes,
                delta(PacketDir::Egress, outb),
            );
        }
    }
    out
}
