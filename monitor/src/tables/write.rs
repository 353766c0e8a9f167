//! Writing the tables into one of the two policy map sets, then making it
//! live with a single update of `PC_CONFIG`. Until a set is live the
//! programs do not read it, so neither the first load nor a reload ever
//! shows packets a half-written policy.

use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, MapError, PerCpuArray, PerCpuValues, lpm_trie::Key},
    util::nr_cpus,
};
use monitor_common::{
    flow::{
        CONFIG_CLASSIFY, CONFIG_HOSTS4, CONFIG_HOSTS6, CONFIG_NETS4, CONFIG_NETS6, CONFIG_SET_B,
    },
    maps::{CONFIG_MAP, Counter, POLICY_SETS},
    policy::{MAX_RULES, Net4, Net6, RuleSet},
};

use super::KernelTables;

#[derive(Debug, thiserror::Error)]
#[error("writing map {map}: {source}")]
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

/// Fills set `set` (0 or 1) with `new`, removing what `previous` (the tables
/// last written to that set, if any) left there, and zeroes its rule
/// counters. The set must not be live.
pub fn write_set(
    ebpf: &mut Ebpf,
    set: usize,
    new: &KernelTables,
    previous: Option<&KernelTables>,
) -> Result<(), WriteError> {
    let names = POLICY_SETS[set];
    {
        let mut ports: Array<_, u16> =
            Array::try_from(map_mut(ebpf, names.portclass)).map_err(err(names.portclass))?;
        if let Some(old) = previous {
            for index in old
                .port_classes
                .keys()
                .filter(|i| !new.port_classes.contains_key(i))
            {
                ports.set(*index, 0, 0).map_err(err(names.portclass))?;
            }
        }
        for (&index, &id) in &new.port_classes {
            ports.set(index, id, 0).map_err(err(names.portclass))?;
        }
    }
    {
        let mut sets: Array<_, RuleSet> =
            Array::try_from(map_mut(ebpf, names.rulesets)).map_err(err(names.rulesets))?;
        for (id, set) in new.rule_sets.iter().enumerate() {
            sets.set(id as u32, *set, 0).map_err(err(names.rulesets))?;
        }
    }
    {
        let mut hosts: HashMap<_, Net4, u64> =
            HashMap::try_from(map_mut(ebpf, names.host4)).map_err(err(names.host4))?;
        let old: Vec<Net4> = hosts.keys().filter_map(Result::ok).collect();
        for k in old {
            hosts.remove(&k).map_err(err(names.host4))?;
        }
        for (addr, mask) in new.peers.hosts4() {
            hosts.insert(addr, mask, 0).map_err(err(names.host4))?;
        }
    }
    {
        let mut hosts: HashMap<_, Net6, u64> =
            HashMap::try_from(map_mut(ebpf, names.host6)).map_err(err(names.host6))?;
        let old: Vec<Net6> = hosts.keys().filter_map(Result::ok).collect();
        for k in old {
            hosts.remove(&k).map_err(err(names.host6))?;
        }
        for (addr, mask) in new.peers.hosts6() {
            hosts.insert(addr, mask, 0).map_err(err(names.host6))?;
        }
    }
    {
        let mut nets: LpmTrie<_, Net4, u64> =
            LpmTrie::try_from(map_mut(ebpf, names.net4)).map_err(err(names.net4))?;
        let old: Vec<Key<Net4>> = nets.keys().filter_map(Result::ok).collect();
        for k in old {
            nets.remove(&k).map_err(err(names.net4))?;
        }
        for (len, addr, mask) in new.peers.nets4() {
            nets.insert(&Key::new(len, addr), mask, 0)
                .map_err(err(names.net4))?;
        }
    }
    {
        let mut nets: LpmTrie<_, Net6, u64> =
            LpmTrie::try_from(map_mut(ebpf, names.net6)).map_err(err(names.net6))?;
        let old: Vec<Key<Net6>> = nets.keys().filter_map(Result::ok).collect();
        for k in old {
            nets.remove(&k).map_err(err(names.net6))?;
        }
        for (len, addr, mask) in new.peers.nets6() {
            nets.insert(&Key::new(len, addr), mask, 0)
                .map_err(err(names.net6))?;
        }
    }
    if previous.is_some() {
        let mut stats: PerCpuArray<_, Counter> =
            PerCpuArray::try_from(map_mut(ebpf, names.rulestats)).map_err(err(names.rulestats))?;
        let cpus = nr_cpus().map_err(|(_, e)| err(names.rulestats)(MapError::from(e)))?;
        for i in 0..MAX_RULES {
            let zero = PerCpuValues::try_from(vec![Counter::default(); cpus])
                .map_err(|e| err(names.rulestats)(MapError::from(e)))?;
            stats.set(i, zero, 0).map_err(err(names.rulestats))?;
        }
    }
    Ok(())
}

/// Makes set `set` live, with presence bits for `tables`' peer maps.
pub fn activate(ebpf: &mut Ebpf, set: usize, tables: &KernelTables) -> Result<(), WriteError> {
    let mut bits = CONFIG_CLASSIFY;
    for (present, bit) in [
        (!tables.peers.hosts4().is_empty(), CONFIG_HOSTS4),
        (!tables.peers.hosts6().is_empty(), CONFIG_HOSTS6),
        (!tables.peers.nets4().is_empty(), CONFIG_NETS4),
        (!tables.peers.nets6().is_empty(), CONFIG_NETS6),
        (set == 1, CONFIG_SET_B),
    ] {
        if present {
            bits |= bit;
        }
    }
    let mut config: Array<_, u32> =
        Array::try_from(map_mut(ebpf, CONFIG_MAP)).map_err(err(CONFIG_MAP))?;
    config.set(0, bits, 0).map_err(err(CONFIG_MAP))
}

/// First load: set A, then live.
pub fn write(ebpf: &mut Ebpf, tables: &KernelTables) -> Result<(), WriteError> {
    write_set(ebpf, 0, tables, None)?;
    activate(ebpf, 0, tables)
}
