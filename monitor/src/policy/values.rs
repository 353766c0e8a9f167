//! The values a rule is made of, with the text forms used in the policy
//! file, the JSON output and the command line.

use std::{fmt, str::FromStr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// L4 protocol of a rule. `Icmp` stands for ICMP towards IPv4 peers and
/// ICMPv6 towards IPv6 peers: the documents say "ICMP" for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }

    /// ICMP has no ports: its rules match every message type.
    pub fn has_ports(self) -> bool {
        !matches!(self, Proto::Icmp)
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "icmp" | "icmpv6" => Ok(Proto::Icmp),
            _ => Err(format!(
                "unknown protocol {s:?} (expected tcp, udp or icmp)"
            )),
        }
    }
}

/// Direction of the connection relative to the monitored host: `Inbound`
/// means the peer opens the connection to a local port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
    Bidirectional,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Bidirectional => "bidirectional",
        }
    }

    /// Whether connections opened in `one_way` (inbound or outbound) fall
    /// under this rule.
    pub fn covers(self, one_way: Direction) -> bool {
        self == Direction::Bidirectional || self == one_way
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Required {
    Yes,
    No,
    /// Applies only when its `condition` is enabled (`--enable-condition`).
    Conditional,
}

impl Required {
    pub fn name(self) -> &'static str {
        match self {
            Required::Yes => "yes",
            Required::No => "no",
            Required::Conditional => "conditional",
        }
    }
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange { lo: port, hi: port }
    }

    pub fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.lo, self.hi].serialize(s)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let [lo, hi] = <[u16; 2]>::deserialize(d)?;
        if lo == 0 || lo > hi {
            return Err(serde::de::Error::custom(format!(
                "bad port range [{lo}, {hi}]: ports are 1-65535 and lo <= hi"
            )));
        }
        Ok(PortRange { lo, hi })
    }
}

/// The ports of a rule: a fixed list, or the host's dynamic (ephemeral)
/// range, which differs between hosts and is therefore resolved when the
/// policy is used, not when it is compiled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ports {
    List(Vec<PortRange>),
    Dynamic,
}

impl Ports {
    pub const DYNAMIC: &'static str = "dynamic";
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ports::Dynamic => f.write_str(Self::DYNAMIC),
            Ports::List(list) if list.is_empty() => f.write_str("-"),
            Ports::List(list) => {
                for (i, r) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for Ports {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ports::List(list) => list.serialize(s),
            Ports::Dynamic => s.serialize_str(Self::DYNAMIC),
        }
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<PortRange>),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::List(list) => Ok(Ports::List(list)),
            Raw::Word(w) if w == Self::DYNAMIC => Ok(Ports::Dynamic),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "ports must be a list of [lo, hi] or \"dynamic\", not {w:?}"
            ))),
        }
    }
}

/// A literal peer named by a document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Net(IpNet),
    Name(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A host route reads better as the bare address.
            Peer::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Peer::Net(net) => write!(f, "{net}"),
            Peer::Name(name) => f.write_str(name),
        }
    }
}

impl FromStr for Peer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(addr) = s.parse::<std::net::IpAddr>() {
            return Ok(Peer::Net(IpNet::from(addr)));
        }
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Peer::Net(net));
        }
        if is_dns_name(s) {
            return Ok(Peer::Name(s.to_ascii_lowercase()));
        }
        Err(format!(
            "{s:?} is neither an address, a CIDR nor a DNS name"
        ))
    }
}

impl Serialize for Peer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Peer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A product release such as `4.5.1`, compared numerically part by part
/// (`4.10` is after `4.9`; missing parts count as zero).
#[derive(Debug, Clone, Eq)]
pub struct Release(Vec<u32>);

impl Release {
    fn parts(&self, n: usize) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied().chain(std::iter::repeat(0)).take(n)
    }
}

impl PartialEq for Release {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Ord for Release {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let n = self.0.len().max(other.0.len());
        self.parts(n).cmp(other.parts(n))
    }
}

impl PartialOrd for Release {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Release {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Result<Vec<u32>, _> = s.trim().split('.').map(str::parse::<u32>).collect();
        match parts {
            Ok(p) if !p.is_empty() && p.len() <= 8 => Ok(Release(p)),
            _ => Err(format!("{s:?} is not a release number such as 4.5.1")),
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl Serialize for Release {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Release {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Provenance: the document's stable name and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    pub doc: String,
    pub line: u32,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.doc, self.line)
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (doc, line) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("source {s:?} is not doc:line"))?;
        let line = line
            .parse()
            .map_err(|_| format!("source {s:?} is not doc:line"))?;
        Ok(Source {
            doc: doc.to_string(),
            line,
        })
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
/// RFC 1123 host name with at least two labels and an alphabetic top-level
/// label (so that `4.5.1` is not a name).
pub fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.len() > 253 || !s.contains('.') {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let valid = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let tld = labels.last().copied().unwrap_or("");
    valid && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
}
