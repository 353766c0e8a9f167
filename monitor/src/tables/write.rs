//! Writing the tables into a loaded object's maps, then switching the
//! classifier on: until the switch the programs only count, so no packet is
//! judged against a half-written policy.

use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, MapError, lpm_trie::Key},
};
use monitor_common::{
    flow::{CONFIG_CLASSIFY, CONFIG_HOSTS4, CONFIG_HOSTS6, CONFIG_NETS4, CONFIG_NETS6},
    maps::{CONFIG_MAP, HOST4_MAP, HOST6_MAP, NET4_MAP, NET6_MAP, PORTCLASS_MAP, RULESETS_MAP},
    policy::{Net4, Net6, RuleSet},
};

use super::KernelTables;

#[derive(Debug, thiserror::Error)]
#[error("writing map {map}: {source}")]
pub struct WriteError {
    map: &'static str,
    #[source]
    source: MapError,
}

fn err(map: &'static str) -> impl FnOnce(MapError) -> WriteError {
    move |source| WriteError { map, source }
}

pub fn write(ebpf: &mut Ebpf, t: &KernelTables) -> Result<(), WriteError> {
    {
        let mut ports: Array<_, u16> =
            Array::try_from(ebpf.map_mut(PORTCLASS_MAP).expect("defined"))
                .map_err(err(PORTCLASS_MAP))?;
        for (&index, &id) in &t.port_classes {
            ports.set(index, id, 0).map_err(err(PORTCLASS_MAP))?;
        }
    }
    {
        let mut sets: Array<_, RuleSet> =
            Array::try_from(ebpf.map_mut(RULESETS_MAP).expect("defined"))
                .map_err(err(RULESETS_MAP))?;
        for (id, set) in t.rule_sets.iter().enumerate() {
            sets.set(id as u32, *set, 0).map_err(err(RULESETS_MAP))?;
        }
    }
    {
        let mut hosts: HashMap<_, Net4, u64> =
            HashMap::try_from(ebpf.map_mut(HOST4_MAP).expect("defined")).map_err(err(HOST4_MAP))?;
        for (addr, mask) in t.peers.hosts4() {
            hosts.insert(addr, mask, 0).map_err(err(HOST4_MAP))?;
        }
    }
    {
        let mut hosts: HashMap<_, Net6, u64> =
            HashMap::try_from(ebpf.map_mut(HOST6_MAP).expect("defined")).map_err(err(HOST6_MAP))?;
        for (addr, mask) in t.peers.hosts6() {
            hosts.insert(addr, mask, 0).map_err(err(HOST6_MAP))?;
        }
    }
    {
        let mut nets: LpmTrie<_, Net4, u64> =
            LpmTrie::try_from(ebpf.map_mut(NET4_MAP).expect("defined")).map_err(err(NET4_MAP))?;
        for (len, addr, mask) in t.peers.nets4() {
            nets.insert(&Key::new(len, addr), mask, 0)
                .map_err(err(NET4_MAP))?;
        }
    }
    {
        let mut nets: LpmTrie<_, Net6, u64> =
            LpmTrie::try_from(ebpf.map_mut(NET6_MAP).expect("defined")).map_err(err(NET6_MAP))?;
        for (len, addr, mask) in t.peers.nets6() {
            nets.insert(&Key::new(len, addr), mask, 0)
                .map_err(err(NET6_MAP))?;
        }
    }
    let mut config: Array<_, u32> =
        Array::try_from(ebpf.map_mut(CONFIG_MAP).expect("defined")).map_err(err(CONFIG_MAP))?;
    let mut bits = CONFIG_CLASSIFY;
    for (present, bit) in [
        (!t.peers.hosts4().is_empty(), CONFIG_HOSTS4),
        (!t.peers.hosts6().is_empty(), CONFIG_HOSTS6),
        (!t.peers.nets4().is_empty(), CONFIG_NETS4),
        (!t.peers.nets6().is_empty(), CONFIG_NETS6),
    ] {
        if present {
            bits |= bit;
        }
    }
    config.set(0, bits, 0).map_err(err(CONFIG_MAP))
}
