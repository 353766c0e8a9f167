//! The compiled policy as the kernel sees it. Userspace (the map builder)
//! fills these maps; the classifier reads them through [`PolicyLookup`] so
//! the kernel and offline replay share one decision procedure.
//!
//! Layout, chosen so allowed traffic costs array reads (the arrays are the
//! programs' global data, `.bss.pc_*` sections, so a read is a plain load):
//! - `PC_PORTCLASS`: array, index [`port_index`] (direction of the
//!   connection, L4 class, destination port) → rule-set id (0 = no rule).
//! - `PC_RULESETS`: array, rule-set id → [`RuleSet`]: up to
//!   [`RULESET_WIDTH`] (peer-role mask, rule) pairs sharing those ports.
//! - `PC_HOST4/6`: hash, exact peer address → role mask; `PC_NET4/6`: LPM
//!   trie, prefix → role mask. The builder folds every enclosing prefix's
//!   roles into each entry, so one hit gives the whole role set.
//! - IPv4 peers, when they fit: a 16-8-8 multibit trie of arrays
//!   (`PC_V4L1/2/3` → `PC_MASKS`), walked by [`v4_roles`] in at most four
//!   array lookups the verifier inlines, instead of a hash miss and an LPM
//!   walk (which cost as much as everything else on the allowed path).
//! - `PC_CONFIG`: one word of switches, [`Config`]: whether to classify,
//!   which set is live, which peer maps to consult.

/// Roles are bits of a u64; the top one is [`KNOWN_PEER`].
pub const MAX_ROLES: usize = 63;
/// Carried by every address the inventory lists, besides its roles' bits,
/// and by no address only a rule's own literal peers (`0.0.0.0/0` for
/// "any") name: the kernel's budget for strangers' new flows (see
/// `flood`) never holds back a peer the operator knows. No rule names it.
pub const KNOWN_PEER: u64 = 1 << 63;
/// Rules the per-rule counters and events can name.
pub const MAX_RULES: u32 = 1024;
/// "No rule" in events and rule references.
pub const NO_RULE: u16 = u16::MAX;
/// Distinct sets of rules sharing a port.
pub const MAX_RULESETS: u32 = 4096;
/// Rules that may share one (direction, protocol, port).
pub const RULESET_WIDTH: usize = 8;
pub const MAX_HOSTS: u32 = 16384;
pub const MAX_NETS: u32 = 16384;

/// L4 classes with a port (or ICMP type) dimension in the port table. The
/// values are part of [`port_index`], so of the table userspace writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum L4 {
    Tcp = 0,
    Udp = 1,
    /// ICMP/ICMPv6: the "port" is the message type of the request (echo...).
    Icmp = 2,
    Icmpv6 = 3,
}

impl L4 {
    /// Classes in the port table.
    pub const COUNT: u32 = 4;
}

/// Direction of a *connection* relative to the monitored host: opened by a
/// peer (inbound) or by the host (outbound). Not the packet's direction
/// ([`crate::stats::PacketDir`]). The values are part of [`port_index`] and
/// of [`crate::flow::FlowKey::direction`], which holds them as a plain word:
/// keys come back from kernel maps, where any word may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "user",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
#[repr(u32)]
pub enum ConnDir {
    Inbound = 0,
    Outbound = 1,
}

impl ConnDir {
    /// As events and reports write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnDir::Inbound => "inbound",
            ConnDir::Outbound => "outbound",
        }
    }

    /// Directions in the port table.
    pub const COUNT: u32 = 2;

    /// The other direction: where the reply to a connection goes.
    #[inline(always)]
    pub const fn reverse(self) -> Self {
        match self {
            ConnDir::Inbound => ConnDir::Outbound,
            ConnDir::Outbound => ConnDir::Inbound,
        }
    }

    /// The direction a key's word holds; any word but inbound's reads as
    /// outbound, as every reader did before the word had a type.
    #[inline(always)]
    pub const fn of_word(word: u32) -> Self {
        if word == ConnDir::Inbound as u32 {
            ConnDir::Inbound
        } else {
            ConnDir::Outbound
        }
    }
}

impl core::fmt::Display for ConnDir {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Entries of one set's port table: every (direction, class, port).
pub const PORT_TABLE_ENTRIES: u32 = ConnDir::COUNT * L4::COUNT * 65536;

/// Each policy map holds two sets (see [`Config::SET_B`]): arrays are
/// twice as long (set B after set A), hash and trie keys start with the set.
/// One map per kind keeps every lookup's map constant, which the verifier
/// needs to inline array lookups; choosing between two maps would not.
pub const POLICY_SETS: u32 = 2;

/// The switches word, `PC_CONFIG[0]`: a set of bits. A plain word in a
/// newtype rather than an enum because the kernel reads whatever userspace
/// wrote; the bits are only ever tested, so any word is a valid `Config`.
/// The presence bits let the kernel skip lookups in peer maps that are
/// empty (a hash miss still costs a hash).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Config(pub u32);

impl Config {
    /// No bit: classification off (the state before userspace writes).
    pub const NONE: Config = Config(0);
    /// A policy is loaded: classify packets.
    pub const CLASSIFY: Config = Config(1);
    /// The live set's peer maps have entries (`PC_HOST4`...).
    pub const HOSTS4: Config = Config(2);
    pub const HOSTS6: Config = Config(4);
    pub const NETS4: Config = Config(8);
    pub const NETS6: Config = Config(16);
    /// Which of the two policy map sets is live (0: A, set: B). Userspace
    /// fills the idle set, then flips this bit in one map update, so a
    /// reload leaves no moment in which packets meet a half-written policy.
    pub const SET_B: Config = Config(32);
    /// IPv4 peers' roles are in the array trie (`PC_V4L1`...): the host
    /// hash and LPM trie are not consulted for IPv4.
    pub const V4TRIE: Config = Config(64);

    /// The word as written to the map.
    #[inline(always)]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether any bit of `bit` is set (a test and a compare in BPF).
    #[inline(always)]
    pub const fn has(self, bit: Config) -> bool {
        self.0 & bit.0 != 0
    }

    /// This set with `bit` added.
    #[inline(always)]
    #[must_use]
    pub const fn with(self, bit: Config) -> Config {
        Config(self.0 | bit.0)
    }
}

/// Key of the exact-host maps: the set, then the address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Host4Key {
    pub set: u32,
    pub addr: [u8; 4],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Host6Key {
    pub set: u32,
    pub addr: [u8; 16],
}

/// Index into `PC_PORTCLASS`. `conn_dir` is a [`ConnDir`] as a word
/// (`ConnDir::X as u32`): the classifier carries directions as words, for
/// the reason `classify::Conn::direction` gives.
#[inline(always)]
pub const fn port_index(conn_dir: u32, l4: L4, port: u16) -> u32 {
    ((conn_dir * L4::COUNT + l4 as u32) << 16) | port as u32
}

/// A rule on a port: which peers may use it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct RuleRef {
    /// Peer roles this rule admits; [`ANY_PEER`] admits every address.
    pub peer_roles: u64,
    /// Index of the rule in the compiled policy (per-rule counters, events).
    pub rule: u16,
    /// [`RULE_REQUIRED`] and friends.
    pub flags: u16,
    pub _pad: u32,
}

/// A rule whose flows must work (required = yes, or an enabled condition).
pub const RULE_REQUIRED: u16 = 1;
/// A rule allowing the document's dynamic port range: a reading of a packet
/// by a specific rule, or by a connection being counted as unexpected,
/// beats it (see `classify`). The builder lists it after a port's specific
/// rules.
pub const RULE_DYNAMIC: u16 = 2;
/// A peer-role mask that matches every peer (rules with no peer restriction).
pub const ANY_PEER: u64 = u64::MAX;

/// Rules sharing one (direction, L4 class, port).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RuleSet {
    pub len: u32,
    pub _pad: u32,
    pub rules: [RuleRef; RULESET_WIDTH],
}

const _: () = assert!(core::mem::size_of::<RuleRef>() == 16);
const _: () = assert!(core::mem::size_of::<RuleSet>() == 8 + 16 * RULESET_WIDTH);

/// LPM trie key data: the set as a word, then the address; the prefix
/// length counts the set's [`NET_SET_BITS`] too. The word keeps the address
/// aligned in the kernel's key, so it is copied as words, not bytes.
/// The set is a little-endian word, so its byte comes first (BPF and the
/// hosts portconform runs on are little-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Net4 {
    pub set: u32,
    pub addr: [u8; 4],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Net6 {
    pub set: u32,
    pub addr: [u8; 16],
}
/// Bits of an LPM key before the address.
pub const NET_SET_BITS: u32 = 32;

/// The LPM key of IPv4 `addr` (host byte order) in policy set `set`.
#[inline(always)]
pub fn net4_key(set: u32, addr: u32) -> Net4 {
    Net4 {
        set,
        addr: addr.to_be_bytes(),
    }
}

#[inline(always)]
pub fn net6_key(set: u32, a: &[u8; 16]) -> Net6 {
    Net6 { set, addr: *a }
}

/// First level of the IPv4 role trie: one entry per /16.
pub const V4_L1_ENTRIES: u32 = 65536;
/// Second-level blocks (a /16 split into /24s) and third-level blocks (a
/// /24 split into hosts) per set. Inventories needing more fall back to
/// the host hash and LPM trie.
pub const V4_L2_BLOCKS: u32 = 1024;
pub const V4_L3_BLOCKS: u32 = 2048;
/// Distinct role masks per set (`PC_MASKS`); index 0 is "no role".
pub const V4_MASKS: u32 = 4096;
/// Words of the known-peer bitmap per set (`PC_V4KNOWN`): one bit per /16,
/// set when an inventory address or network lies in it.
pub const V4_KNOWN_WORDS: u32 = V4_L1_ENTRIES / 64;
/// Tags in an entry's top two bits: a mask index, or the next level's block.
pub const V4_TAG_SHIFT: u32 = 30;
pub const V4_TAG_L2: u32 = 1;
pub const V4_TAG_L3: u32 = 2;
pub const V4_INDEX_MASK: u32 = (1 << V4_TAG_SHIFT) - 1;

/// Read access to one set of the IPv4 role trie.
pub trait V4Trie {
    /// `PC_V4L1[i]` (0 when out of range).
    fn l1(&self, index: u32) -> u32;
    /// `PC_V4L2[block * 256 + byte]`.
    fn l2(&self, index: u32) -> u32;
    /// `PC_V4L3[block * 256 + byte]`.
    fn l3(&self, index: u32) -> u32;
    /// `PC_MASKS[i]`.
    fn mask(&self, index: u32) -> u64;
    /// `PC_V4KNOWN[word]`: bits of the /16s where a known peer may be.
    fn known(&self, word: u32) -> u64;
}

/// Role mask of IPv4 `addr` (host byte order) by walking the trie: the
/// longest prefix wins because the builder paints longer prefixes last.
#[inline(always)]
pub fn v4_roles<T: V4Trie + ?Sized>(trie: &T, addr: u32) -> u64 {
    let mut e = trie.l1(addr >> 16);
    if e >> V4_TAG_SHIFT == V4_TAG_L2 {
        let block = e & V4_INDEX_MASK;
        e = trie.l2(block * 256 + ((addr >> 8) & 0xff));
        if e >> V4_TAG_SHIFT == V4_TAG_L3 {
            let block = e & V4_INDEX_MASK;
            e = trie.l3(block * 256 + (addr & 0xff));
        }
    }
    if e >> V4_TAG_SHIFT != 0 {
        return 0;
    }
    trie.mask(e)
}

/// Whether IPv4 `addr` is an address the inventory lists ([`KNOWN_PEER`]):
/// the bitmap first, a few kilobytes that stay in cache, so the addresses
/// of a spoofed flood (all over the space, nearly none near a known peer)
/// are answered without the walk, whose first level alone is 256 KiB and
/// missed the cache on each of them.
#[inline(always)]
pub fn v4_known_peer<T: V4Trie + ?Sized>(trie: &T, addr: u32) -> bool {
    let hi = addr >> 16;
    if trie.known(hi >> 6) & (1 << (hi & 63)) == 0 {
        return false;
    }
    v4_roles(trie, addr) & KNOWN_PEER != 0
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), explicit padding, plain integers.
    unsafe impl aya::Pod for super::RuleRef {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RuleSet {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Host4Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Host6Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Net4 {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Net6 {}
}

#[cfg(test)]
mod tests {
    use super::{Config, ConnDir, L4, PORT_TABLE_ENTRIES, port_index};

    /// The values are the layout of tables userspace writes and the kernel
    /// reads: typing them must not move them.
    #[test]
    fn typed_ids_keep_their_table_values() {
        assert_eq!(
            [ConnDir::Inbound, ConnDir::Outbound].map(|d| d as u32),
            [0, 1]
        );
        assert_eq!(
            [L4::Tcp, L4::Udp, L4::Icmp, L4::Icmpv6].map(|c| c as u32),
            [0, 1, 2, 3]
        );
        let bits = [
            Config::CLASSIFY,
            Config::HOSTS4,
            Config::HOSTS6,
            Config::NETS4,
            Config::NETS6,
            Config::SET_B,
            Config::V4TRIE,
        ];
        assert_eq!(bits.map(Config::bits), [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(
            port_index(ConnDir::Outbound as u32, L4::Icmpv6, u16::MAX),
            PORT_TABLE_ENTRIES - 1
        );
    }

    #[test]
    fn config_bits_add_up_and_test_alone() {
        let c = Config::CLASSIFY.with(Config::SET_B);
        assert_eq!(c.bits(), 33);
        assert!(c.has(Config::CLASSIFY) && c.has(Config::SET_B));
        assert!(!c.has(Config::HOSTS4));
        assert!(!Config::NONE.has(Config::CLASSIFY));
    }

    #[test]
    fn a_direction_reverses_and_any_key_word_reads_as_one() {
        assert_eq!(ConnDir::Inbound.reverse(), ConnDir::Outbound);
        assert_eq!(ConnDir::Outbound.reverse(), ConnDir::Inbound);
        assert_eq!(ConnDir::of_word(0), ConnDir::Inbound);
        assert_eq!(ConnDir::of_word(1), ConnDir::Outbound);
        assert_eq!(ConnDir::of_word(0x100), ConnDir::Outbound);
    }
}
