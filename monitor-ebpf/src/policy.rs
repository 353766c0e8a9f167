//! The policy maps behind the shared classifier's lookup trait.

use aya_ebpf::maps::lpm_trie::Key;
use monitor_common::{
    classify::PolicyLookup,
    policy::{
        Config, Host4Key, Host6Key, KNOWN_PEER, MAX_RULESETS, NET_SET_BITS, PORT_TABLE_ENTRIES,
        RuleSet, V4_KNOWN_WORDS, V4_L1_ENTRIES, V4_L2_BLOCKS, V4_L3_BLOCKS, V4_MASKS, V4Trie,
        net4_key, net6_key, v4_known_peer, v4_roles,
    },
};

use crate::{
    globals::{PC_MASKS, PC_PORTCLASS, PC_RULESETS, PC_V4KNOWN, PC_V4L1, PC_V4L2, PC_V4L3},
    maps::{PC_HOST4, PC_HOST6, PC_NET4, PC_NET6},
};

/// LPM keys are packed structs; on the stack they must still start on a
/// word boundary for the address words inside them to be aligned (the
/// verifier rejects misaligned stack access).
#[repr(C, align(8))]
struct Aligned<T>(T);

/// The lookups in the live map set, knowing which peer maps have entries
/// (`PC_CONFIG` bits).
pub struct KernelPolicy {
    pub config: Config,
}

impl KernelPolicy {
    /// The live set: 0 (A) or 1 (B).
    #[inline(always)]
    pub fn set(&self) -> u32 {
        u32::from(self.config.has(Config::SET_B))
    }

    /// Whether IPv4 `addr` (host byte order) is an address the inventory
    /// lists: through the trie's bitmap when the trie is in use.
    #[inline(always)]
    pub fn known_peer_v4(&self, addr: u32) -> bool {
        if self.config.has(Config::V4TRIE) {
            return v4_known_peer(self, addr);
        }
        self.peer_roles_v4(addr) & KNOWN_PEER != 0
    }
}

impl PolicyLookup for KernelPolicy {
    #[inline(always)]
    fn port_class(&self, index: u32) -> u16 {
        PC_PORTCLASS.at(self.set() * PORT_TABLE_ENTRIES + index)
    }

    #[inline(always)]
    fn rule_set(&self, id: u16) -> Option<&RuleSet> {
        Some(PC_RULESETS.get(self.set() * MAX_RULESETS + u32::from(id)))
    }

    /// Exact hosts first (a hash hit), then the longest enclosing prefix;
    /// the builder already folded enclosing prefixes' roles into both.
    #[inline(always)]
    fn peer_roles_v4(&self, addr: u32) -> u64 {
        if self.config.has(Config::V4TRIE) {
            return v4_roles(self, addr);
        }
        let set = self.set();
        if self.config.has(Config::HOSTS4) {
            let key = Host4Key {
                set,
                addr: addr.to_be_bytes(),
            };
            // SAFETY: the value is copied out before any other map call.
            if let Some(roles) = unsafe { PC_HOST4.get(key) } {
                return *roles;
            }
        }
        if !self.config.has(Config::NETS4) {
            return 0;
        }
        let key = Aligned(Key::new(NET_SET_BITS + 32, net4_key(set, addr)));
        PC_NET4.get(&key.0).copied().unwrap_or(0)
    }

    /// As for IPv4, without the trie.
    #[inline(always)]
    fn peer_roles_v6(&self, addr: &[u8; 16]) -> u64 {
        let set = self.set();
        if self.config.has(Config::HOSTS6) {
            let key = Host6Key { set, addr: *addr };
            // SAFETY: as above.
            if let Some(roles) = unsafe { PC_HOST6.get(key) } {
                return *roles;
            }
        }
        if !self.config.has(Config::NETS6) {
            return 0;
        }
        let key = Aligned(Key::new(NET_SET_BITS + 128, net6_key(set, addr)));
        PC_NET6.get(&key.0).copied().unwrap_or(0)
    }
}

/// The live set's IPv4 role trie: array lookups the verifier inlines.
impl V4Trie for KernelPolicy {
    #[inline(always)]
    fn l1(&self, index: u32) -> u32 {
        PC_V4L1.at(self.set() * V4_L1_ENTRIES + index)
    }

    #[inline(always)]
    fn l2(&self, index: u32) -> u32 {
        PC_V4L2.at(self.set() * V4_L2_BLOCKS * 256 + index)
    }

    #[inline(always)]
    fn l3(&self, index: u32) -> u32 {
        PC_V4L3.at(self.set() * V4_L3_BLOCKS * 256 + index)
    }

    #[inline(always)]
    fn mask(&self, index: u32) -> u64 {
        PC_MASKS.at(self.set() * V4_MASKS + index)
    }

    #[inline(always)]
    fn known(&self, word: u32) -> u64 {
        PC_V4KNOWN.at(self.set() * V4_KNOWN_WORDS + word)
    }
}
