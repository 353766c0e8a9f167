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
        CONFIG_V4TRIE,
    },
    maps::{
        CONFIG_MAP, Counter, HOST4_MAP, HOST6_MAP, MASKS_MAP, NET4_MAP, NET6_MAP, PORTCLASS_MAP,
        RULESETS_MAP, RULESTATS_MAP, RULEWORK_MAP, V4L1_MAP, V4L2_MAP, V4L3_MAP,
    },
    policy::{
        Host4Key, Host6Key, MAX_RULES, MAX_RULESETS, NET_SET_BITS, Net4, Net6, PORT_TABLE_ENTRIES,
        RuleSet, V4_L1_ENTRIES, V4_L2_BLOCKS, V4_L3_BLOCKS, V4_MASKS, net4_key, net6_key,
    },
};

use super::KernelTables;

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

/// Fills set `set` (0 or 1) with `new`, removing what `previous` (the tables
/// last written to that set, if any) left there, and zeroes its rule
/// counters. The set must not be live.
pub fn write_set(
    ebpf: &mut Ebpf,
    set: usize,
    new: &KernelTables,
    previous: Option<&KernelTables>,
) -> Result<(), WriteError> {
    let set32 = set as u32;
    {
        let base = set32 * PORT_TABLE_ENTRIES;
        let mut ports: Array<_, u16> =
            Array::try_from(map_mut(ebpf, PORTCLASS_MAP)).map_err(err(PORTCLASS_MAP))?;
        if let Some(old) = previous {
            for index in old
                .port_classes
                .keys()
                .filter(|i| !new.port_classes.contains_key(i))
            {
                ports.set(base + *index, 0, 0).map_err(err(PORTCLASS_MAP))?;
            }
        }
        for (&index, &id) in &new.port_classes {
            ports.set(base + index, id, 0).map_err(err(PORTCLASS_MAP))?;
        }
    }
    {
        let base = set32 * MAX_RULESETS;
        let mut sets: Array<_, RuleSet> =
            Array::try_from(map_mut(ebpf, RULESETS_MAP)).map_err(err(RULESETS_MAP))?;
        for (id, rs) in new.rule_sets.iter().enumerate() {
            sets.set(base + id as u32, *rs, 0)
                .map_err(err(RULESETS_MAP))?;
        }
    }
    {
        let mut hosts: HashMap<_, Host4Key, u64> =
            HashMap::try_from(map_mut(ebpf, HOST4_MAP)).map_err(err(HOST4_MAP))?;
        let old: Vec<Host4Key> = hosts
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.set == set32)
            .collect();
        for k in old {
            hosts.remove(&k).map_err(err(HOST4_MAP))?;
        }
        for (addr, mask) in new.peers.hosts4() {
            let key = Host4Key { set: set32, addr };
            hosts.insert(key, mask, 0).map_err(err(HOST4_MAP))?;
        }
    }
    {
        let mut hosts: HashMap<_, Host6Key, u64> =
            HashMap::try_from(map_mut(ebpf, HOST6_MAP)).map_err(err(HOST6_MAP))?;
        let old: Vec<Host6Key> = hosts
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.set == set32)
            .collect();
        for k in old {
            hosts.remove(&k).map_err(err(HOST6_MAP))?;
        }
        for (addr, mask) in new.peers.hosts6() {
            let key = Host6Key { set: set32, addr };
            hosts.insert(key, mask, 0).map_err(err(HOST6_MAP))?;
        }
    }
    {
        let mut nets: LpmTrie<_, Net4, u64> =
            LpmTrie::try_from(map_mut(ebpf, NET4_MAP)).map_err(err(NET4_MAP))?;
        let old: Vec<Key<Net4>> = nets
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.data().set == set32)
            .collect();
        for k in old {
            nets.remove(&k).map_err(err(NET4_MAP))?;
        }
        for (len, addr, mask) in new.peers.nets4() {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&addr);
            let key = Key::new(NET_SET_BITS + len, net4_key(set32, &a));
            nets.insert(&key, mask, 0).map_err(err(NET4_MAP))?;
        }
    }
    {
        let mut nets: LpmTrie<_, Net6, u64> =
            LpmTrie::try_from(map_mut(ebpf, NET6_MAP)).map_err(err(NET6_MAP))?;
        let old: Vec<Key<Net6>> = nets
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.data().set == set32)
            .collect();
        for k in old {
            nets.remove(&k).map_err(err(NET6_MAP))?;
        }
        for (len, addr, mask) in new.peers.nets6() {
            let key = Key::new(NET_SET_BITS + len, net6_key(set32, &addr));
            nets.insert(&key, mask, 0).map_err(err(NET6_MAP))?;
        }
    }
    if let Some(trie) = &new.v4 {
        write_v4_trie(ebpf, set32, trie)?;
    }
    if previous.is_some() {
        let mut stats: PerCpuArray<_, Counter> =
            PerCpuArray::try_from(map_mut(ebpf, RULESTATS_MAP)).map_err(err(RULESTATS_MAP))?;
        let cpus = nr_cpus().map_err(|(_, e)| err(RULESTATS_MAP)(MapError::from(e)))?;
        for i in 0..MAX_RULES {
            let zero = PerCpuValues::try_from(vec![Counter::default(); cpus])
                .map_err(|e| err(RULESTATS_MAP)(MapError::from(e)))?;
            stats
                .set(set32 * MAX_RULES + i, zero, 0)
                .map_err(err(RULESTATS_MAP))?;
        }
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

/// The IPv4 role trie of one set. The first level is written whole (stale
/// entries of the previous policy must go); blocks only as far as used,
/// since nothing points past them.
fn write_v4_trie(ebpf: &mut Ebpf, set: u32, trie: &super::V4Table) -> Result<(), WriteError> {
    {
        let mut l1: Array<_, u32> =
            Array::try_from(map_mut(ebpf, V4L1_MAP)).map_err(err(V4L1_MAP))?;
        for (i, e) in trie.l1.iter().enumerate() {
            l1.set(set * V4_L1_ENTRIES + i as u32, *e, 0)
                .map_err(err(V4L1_MAP))?;
        }
    }
    for (name, blocks, per_set) in [
        (V4L2_MAP, &trie.l2, V4_L2_BLOCKS),
        (V4L3_MAP, &trie.l3, V4_L3_BLOCKS),
    ] {
        let mut level: Array<_, u32> = Array::try_from(map_mut(ebpf, name)).map_err(err(name))?;
        for (b, block) in blocks.iter().enumerate() {
            let base = (set * per_set + b as u32) * 256;
            for (i, e) in block.iter().enumerate() {
                level.set(base + i as u32, *e, 0).map_err(err(name))?;
            }
        }
    }
    let mut masks: Array<_, u64> =
        Array::try_from(map_mut(ebpf, MASKS_MAP)).map_err(err(MASKS_MAP))?;
    for (i, m) in trie.masks.iter().enumerate() {
        masks
            .set(set * V4_MASKS + i as u32, *m, 0)
            .map_err(err(MASKS_MAP))?;
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
        (tables.v4.is_some(), CONFIG_V4TRIE),
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
