//! The policy maps behind the shared classifier's lookup trait.

use aya_ebpf::maps::lpm_trie::Key;
use monitor_common::{
    classify::PolicyLookup,
    flow::{CONFIG_HOSTS4, CONFIG_HOSTS6, CONFIG_NETS4, CONFIG_NETS6, CONFIG_SET_B},
    packet::Family,
    policy::RuleSet,
};

use crate::maps::{
    PC_HOST4, PC_HOST4_B, PC_HOST6, PC_HOST6_B, PC_NET4, PC_NET4_B, PC_NET6, PC_NET6_B,
    PC_PORTCLASS, PC_PORTCLASS_B, PC_RULESETS, PC_RULESETS_B,
};

/// The lookups in the live map set, knowing which peer maps have entries
/// (`PC_CONFIG` bits).
pub struct KernelPolicy {
    pub config: u32,
}

impl KernelPolicy {
    #[inline(always)]
    pub fn set_b(&self) -> bool {
        self.config & CONFIG_SET_B != 0
    }
}

impl PolicyLookup for KernelPolicy {
    #[inline(always)]
    fn port_class(&self, index: u32) -> u16 {
        let map = if self.set_b() {
            &PC_PORTCLASS_B
        } else {
            &PC_PORTCLASS
        };
        map.get(index).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn rule_set(&self, id: u16) -> Option<&RuleSet> {
        let map = if self.set_b() {
            &PC_RULESETS_B
        } else {
            &PC_RULESETS
        };
        map.get(u32::from(id))
    }

    /// Exact hosts first (a hash hit), then the longest enclosing prefix;
    /// the builder already folded enclosing prefixes' roles into both.
    #[inline(always)]
    fn peer_roles(&self, family: Family, addr: &[u8; 16]) -> u64 {
        let b = self.set_b();
        match family {
            Family::V4 => {
                let a = [addr[0], addr[1], addr[2], addr[3]];
                if self.config & CONFIG_HOSTS4 != 0 {
                    let hosts = if b { &PC_HOST4_B } else { &PC_HOST4 };
                    // SAFETY: the value is copied out before any other map call.
                    if let Some(roles) = unsafe { hosts.get(a) } {
                        return *roles;
                    }
                }
                if self.config & CONFIG_NETS4 == 0 {
                    return 0;
                }
                let nets = if b { &PC_NET4_B } else { &PC_NET4 };
                nets.get(Key::new(32, a)).copied().unwrap_or(0)
            }
            Family::V6 => {
                if self.config & CONFIG_HOSTS6 != 0 {
                    let hosts = if b { &PC_HOST6_B } else { &PC_HOST6 };
                    // SAFETY: as above.
                    if let Some(roles) = unsafe { hosts.get(addr) } {
                        return *roles;
                    }
                }
                if self.config & CONFIG_NETS6 == 0 {
                    return 0;
                }
                let nets = if b { &PC_NET6_B } else { &PC_NET6 };
                nets.get(Key::new(128, *addr)).copied().unwrap_or(0)
            }
        }
    }
}
