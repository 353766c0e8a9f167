//! The policy maps behind the shared classifier's lookup trait.

use aya_ebpf::maps::lpm_trie::Key;
use monitor_common::{
    classify::PolicyLookup,
    flow::{CONFIG_HOSTS4, CONFIG_HOSTS6, CONFIG_NETS4, CONFIG_NETS6},
    packet::Family,
    policy::RuleSet,
};

use crate::maps::{PC_HOST4, PC_HOST6, PC_NET4, PC_NET6, PC_PORTCLASS, PC_RULESETS};

/// The lookups, knowing which peer maps have entries (`PC_CONFIG` bits).
pub struct KernelPolicy {
    pub config: u32,
}

impl PolicyLookup for KernelPolicy {
    #[inline(always)]
    fn port_class(&self, index: u32) -> u16 {
        PC_PORTCLASS.get(index).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn rule_set(&self, id: u16) -> Option<&RuleSet> {
        PC_RULESETS.get(u32::from(id))
    }

    /// Exact hosts first (a hash hit), then the longest enclosing prefix;
    /// the builder already folded enclosing prefixes' roles into both.
    #[inline(always)]
    fn peer_roles(&self, family: Family, addr: &[u8; 16]) -> u64 {
        match family {
            Family::V4 => {
                let a = [addr[0], addr[1], addr[2], addr[3]];
                if self.config & CONFIG_HOSTS4 != 0 {
                    // SAFETY: the value is copied out before any other map call.
                    if let Some(roles) = unsafe { PC_HOST4.get(a) } {
                        return *roles;
                    }
                }
                if self.config & CONFIG_NETS4 == 0 {
                    return 0;
                }
                PC_NET4.get(Key::new(32, a)).copied().unwrap_or(0)
            }
            Family::V6 => {
                if self.config & CONFIG_HOSTS6 != 0 {
                    // SAFETY: as above.
                    if let Some(roles) = unsafe { PC_HOST6.get(addr) } {
                        return *roles;
                    }
                }
                if self.config & CONFIG_NETS6 == 0 {
                    return 0;
                }
                PC_NET6.get(Key::new(128, *addr)).copied().unwrap_or(0)
            }
        }
    }
}
