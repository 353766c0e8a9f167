//! Writing the tables into one of the two policy map sets, then making it
//! live with a single update of the config section. Until a set is live the
//! programs do not read it, so neither the first load nor a reload ever
//! shows packets a half-written policy.

use aya::{
    Ebpf, Pod,
    maps::{Array, HashMap, LpmTrie, MapError, PerCpuArray, PerCpuValues, lpm_trie::Key},
    util::nr_cpus,
};
use monitor_common::{
    drop::{DROP_REASON_SLOTS, SkbLayout},
    maps::{
        CONFIG_MAP, COUNTERS_MAP, CpuCounters, DROPWHY_MAP, HOST4_MAP, HOST6_MAP, IFSLOT_MAP,
        MASKS_MAP, NET4_MAP, NET6_MAP, PORTCLASS_MAP, RULESETS_MAP, RULEWORK_MAP, SKBLAYOUT_MAP,
        V4KNOWN_MAP, V4L1_MAP, V4L2_MAP, V4L3_MAP,
    },
    policy::{
        Config, Host4Key, Host6Key, MAX_RULES, NET_SET_BITS, Net4, Net6, RuleSet, net4_key,
        net6_key,
    },
    stats::IFINDEX_LIMIT,
};

use super::{
    KernelTables,
    sections::{
        MASKS_LEN, PORTS_LEN, RULESETS_LEN, Sections, V4KNOWN_LEN, V4L1_LEN, V4L2_LEN, V4L3_LEN,
    },
};

#[derive(Debug, thiserror::Error)]
#[error("writing map {map}")]
pub struct WriteError {
    map: &'static str,
    #[source]
    source: MapError,
}

fn err(map: &'static str) -> impl Fn(MapError) -> WriteError {
    move |source| WriteError { map, source }
}

fn map_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> &'a mut aya::maps::Map {
    ebpf.map_mut(name)
        .expect("the embedded object defines every policy map")
}

/// Replaces the entries of one set (`in_set`) of a peer hash map with `new`.
fn replace_hosts<K: Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
    in_set: impl Fn(&K) -> bool,
    new: impl IntoIterator<Item = (K, u64)>,
) -> Result<(), WriteError> {
    let mut hosts: HashMap<_, K, u64> =
        HashMap::try_from(map_mut(ebpf, name)).map_err(err(name))?;
    let old: Vec<K> = hosts
        .keys()
        .filter_map(Result::ok)
        .filter(|k| in_set(k))
        .collect();
    for k in old {
        hosts.remove(&k).map_err(err(name))?;
    }
    for (key, mask) in new {
        hosts.insert(key, mask, 0).map_err(err(name))?;
    }
    Ok(())
}

/// Replaces the entries of one set (`in_set`) of a peer LPM trie with `new`.
fn replace_nets<K: Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
    in_set: impl Fn(&K) -> bool,
    new: impl IntoIterator<Item = (Key<K>, u64)>,
) -> Result<(), WriteError> {
    let mut nets: LpmTrie<_, K, u64> = LpmTrie::try_from(map_mut(ebpf, name)).map_err(err(name))?;
    let old: Vec<Key<K>> = nets
        .keys()
        .filter_map(Result::ok)
        .filter(|k| in_set(&k.data()))
        .collect();
    for k in old {
        nets.remove(&k).map_err(err(name))?;
    }
    for (key, mask) in new {
        nets.insert(&key, mask, 0).map_err(err(name))?;
    }
    Ok(())
}

/// Fills set `set` (0 or 1) with `new`, removing what an earlier policy
/// left there, and with `zero_counters` zeroes its rule counters (an
/// earlier policy's counts there would be read as `new`'s). The set must
/// not be live; `live` is what the other set holds, rewritten unchanged
/// because array sections are written whole.
pub fn write_set(
    ebpf: &mut Ebpf,
    set: usize,
    new: &KernelTables,
    zero_counters: bool,
    live: Option<&KernelTables>,
) -> Result<(), WriteError> {
    let set32 = set as u32;
    let mut both = [live, live];
    both[set] = Some(new);
    write_sections(ebpf, &Sections::render(both))?;
    replace_hosts(
        ebpf,
        HOST4_MAP,
        |k: &Host4Key| k.set == set32,
        new.peers
            .hosts4()
            .into_iter()
            .map(|(addr, mask)| (Host4Key { set: set32, addr }, mask)),
    )?;
    replace_hosts(
        ebpf,
        HOST6_MAP,
        |k: &Host6Key| k.set == set32,
        new.peers
            .hosts6()
            .into_iter()
            .map(|(addr, mask)| (Host6Key { set: set32, addr }, mask)),
    )?;
    replace_nets(
        ebpf,
        NET4_MAP,
        |k: &Net4| k.set == set32,
        new.peers.nets4().into_iter().map(|(len, addr, mask)| {
            let key = net4_key(set32, u32::from_be_bytes(addr));
            (Key::new(NET_SET_BITS + len, key), mask)
        }),
    )?;
    replace_nets(
        ebpf,
        NET6_MAP,
        |k: &Net6| k.set == set32,
        new.peers
            .nets6()
            .into_iter()
            .map(|(len, addr, mask)| (Key::new(NET_SET_BITS + len, net6_key(set32, &addr)), mask)),
    )?;
    if zero_counters {
        // Only this set's rule counters: its traffic counters keep what was
        // counted while it was live. Nothing writes them now (the set is
        // idle), so reading and writing back loses nothing.
        let mut counters: PerCpuArray<_, CpuCounters> =
            PerCpuArray::try_from(map_mut(ebpf, COUNTERS_MAP)).map_err(err(COUNTERS_MAP))?;
        let mut cpus: Vec<CpuCounters> = counters
            .get(&set32, 0)
            .map_err(err(COUNTERS_MAP))?
            .iter()
            .copied()
            .collect();
        for c in &mut cpus {
            c.rules = CpuCounters::ZERO.rules;
        }
        let cpus =
            PerCpuValues::try_from(cpus).map_err(|e| err(COUNTERS_MAP)(MapError::from(e)))?;
        counters.set(set32, cpus, 0).map_err(err(COUNTERS_MAP))?;
        let cpus = nr_cpus().map_err(|(_, e)| err(RULEWORK_MAP)(MapError::from(e)))?;
        let mut work: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map_mut(ebpf, RULEWORK_MAP)).map_err(err(RULEWORK_MAP))?;
        for i in 0..MAX_RULES {
            let zero = PerCpuValues::try_from(vec![0u64; cpus])
                .map_err(|e| err(RULEWORK_MAP)(MapError::from(e)))?;
            work.set(set32 * MAX_RULES + i, zero, 0)
                .map_err(err(RULEWORK_MAP))?;
        }
    }
    Ok(())
}

/// Every array section, whole (see [`Sections`]).
fn write_sections(ebpf: &mut Ebpf, s: &Sections) -> Result<(), WriteError> {
    write_section::<u16, PORTS_LEN>(ebpf, PORTCLASS_MAP, &s.ports)?;
    write_section::<RuleSet, RULESETS_LEN>(ebpf, RULESETS_MAP, &s.rule_sets)?;
    write_section::<u32, V4L1_LEN>(ebpf, V4L1_MAP, &s.v4l1)?;
    write_section::<u32, V4L2_LEN>(ebpf, V4L2_MAP, &s.v4l2)?;
    write_section::<u32, V4L3_LEN>(ebpf, V4L3_MAP, &s.v4l3)?;
    write_section::<u64, MASKS_LEN>(ebpf, MASKS_MAP, &s.masks)?;
    write_section::<u64, V4KNOWN_LEN>(ebpf, V4KNOWN_MAP, &s.v4known)
}

/// A global-data section is a one-element array map whose value is the
/// whole section.
fn write_section<T: Pod, const N: usize>(
    ebpf: &mut Ebpf,
    name: &'static str,
    data: &[T],
) -> Result<(), WriteError> {
    let value: &[T; N] = data
        .try_into()
        .expect("sections are rendered at their declared length");
    let mut map: Array<_, [T; N]> = Array::try_from(map_mut(ebpf, name)).map_err(err(name))?;
    map.set(0, value, 0).map_err(err(name))
}

/// Counter slot of each monitored interface, by ifindex (a section too).
pub fn write_ifslots(ebpf: &mut Ebpf, slots: &[(u32, u32)]) -> Result<(), WriteError> {
    let mut table = vec![0u32; IFINDEX_LIMIT as usize];
    for &(index, slot) in slots {
        if let Some(entry) = table.get_mut(index as usize) {
            *entry = slot;
        }
    }
    write_section::<u32, { IFINDEX_LIMIT as usize }>(ebpf, IFSLOT_MAP, &table)
}

/// The drop program's tables (see `monitor_common::drop`): its struct
/// layout and the kernel reason value → cause table.
pub fn write_drop_tables(
    ebpf: &mut Ebpf,
    layout: &SkbLayout,
    reasons: &[u8],
) -> Result<(), WriteError> {
    write_section::<u8, { DROP_REASON_SLOTS as usize }>(ebpf, DROPWHY_MAP, reasons)?;
    write_section::<SkbLayout, 1>(ebpf, SKBLAYOUT_MAP, std::slice::from_ref(layout))
}

/// Makes set `set` live, with presence bits for `tables`' peer maps.
pub fn activate(ebpf: &mut Ebpf, set: usize, tables: &KernelTables) -> Result<(), WriteError> {
    let mut config = Config::CLASSIFY;
    for (present, bit) in [
        (!tables.peers.hosts4().is_empty(), Config::HOSTS4),
        (!tables.peers.hosts6().is_empty(), Config::HOSTS6),
        (!tables.peers.nets4().is_empty(), Config::NETS4),
        (!tables.peers.nets6().is_empty(), Config::NETS6),
        (set == 1, Config::SET_B),
        (tables.v4.is_some(), Config::V4TRIE),
    ] {
        if present {
            config = config.with(bit);
        }
    }
    write_section::<u32, 1>(ebpf, CONFIG_MAP, &[config.bits()])
}

/// First load: set A, then live.
pub fn write(ebpf: &mut Ebpf, tables: &KernelTables) -> Result<(), WriteError> {
    install(ebpf, 0, tables, false, None)
}

/// A policy swap: fills idle set `set` with `new` ([`write_set`]'s
/// arguments), then makes it live.
pub fn install(
    ebpf: &mut Ebpf,
    set: usize,
    new: &KernelTables,
    zero_counters: bool,
    live: Option<&KernelTables>,
) -> Result<(), WriteError> {
    write_set(ebpf, set, new, zero_counters, live)?;
    activate(ebpf, set, new)
}
