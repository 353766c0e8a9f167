//! `policy export`: the policy as a host firewall ruleset. What one host
//! enforces (its roles' share of the policy, as [`super::resolve::entries`]
//! flattens it for the kernel maps) becomes a stateful allowlist in nft or
//! iptables-save syntax, with every allow rule commented with its rule id
//! and `doc:line`, so that a firewall reviewer can trace each line back to
//! the vendor document and `validate` can prove the ruleset right.
//!
//! [`build`] decides what goes in (shared by both syntaxes) and [`header`]
//! says so; [`nft`] and [`iptables`] only write it down.

pub mod build;
pub mod header;
pub mod iptables;
pub mod nft;

use ipnet::IpNet;

use super::{
    inventory::Inventory,
    model::{PortRange, Proto},
    roles::HostRoles,
};

pub use build::build;

/// What to export, beyond the policy and how it resolves.
#[derive(Debug, Clone)]
pub struct ExportOptions<'a> {
    /// How the policy was given, for the header: `profile thoughtspot`.
    pub origin: String,
    pub host: HostRoles,
    pub inventory: Option<&'a Inventory>,
    /// Also allow the optional rules (`required = "no"`).
    pub include_optional: bool,
}

/// The syntax of the exported ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Syntax {
    /// One `nft -f` file, table `inet portconform`: IPv4 and IPv6.
    Nft,
    /// An iptables-save file (IPv4) for iptables-restore.
    Iptables,
    /// An ip6tables-save file (IPv6) for ip6tables-restore.
    Ip6tables,
}

/// Who opens the connections an [`Allow`] lets through, from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// The peer connects to the host: the input chain.
    In,
    /// The host connects to the peer: the output chain.
    Out,
}

/// A named group of peer addresses: a role of the inventory, or the
/// literal endpoints of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSet {
    /// `nodes`, or the rule id for a rule's literal peers.
    pub name: String,
    /// The role it stands for; `None` for a rule's literal peers.
    pub role: Option<String>,
    /// Networks, merged and sorted (IPv4 first).
    pub nets: Vec<IpNet>,
    /// DNS names, not resolved: the export does not depend on DNS.
    pub names: Vec<String>,
}

impl PeerSet {
    pub fn nets_of(&self, v6: bool) -> impl Iterator<Item = &IpNet> {
        self.nets
            .iter()
            .filter(move |n| matches!(n, IpNet::V6(_)) == v6)
    }

    /// Whether a rule for this family has anything to match: networks of
    /// it, or (in an nft set, which can be filled later) names whose
    /// addresses are still to be added.
    pub fn has_family(&self, v6: bool, fillable: bool) -> bool {
        self.nets_of(v6).next().is_some() || (fillable && !self.names.is_empty())
    }
}

/// One allow rule of the policy, as the host enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub id: String,
    /// `doc:line`.
    pub source: String,
    pub service: String,
    pub way: Way,
    pub proto: Proto,
    /// Destination ports, ascending; empty for ICMP (every message type).
    pub ports: Vec<PortRange>,
    /// Index into [`Firewall::sets`].
    pub peer: usize,
}

impl Allow {
    /// The comment every emitted line of this rule carries: rule id,
    /// `doc:line` and the service, in the characters both nft and
    /// iptables-restore take between double quotes, at most
    /// [`COMMENT_MAX`] bytes (nft allows 128).
    pub fn comment(&self) -> String {
        comment(&format!("{} {} {}", self.id, self.source, self.service))
    }
}

/// Longest comment written.
pub const COMMENT_MAX: usize = 120;

/// `text` made safe for a double-quoted comment in nft and iptables-save:
/// printable ASCII without `"` and `\`, at most [`COMMENT_MAX`] bytes.
/// The text is ASCII by then, so the cut falls between characters.
pub fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => out.push('\''),
            // The compiler shortens long service names with an ellipsis.
            '\u{2026}' => out.push_str("..."),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c if c.is_whitespace() => out.push(' '),
            _ => out.push('?'),
        }
    }
    out.truncate(COMMENT_MAX);
    out.trim_end().to_string()
}

/// The host's ruleset, before it is written in a syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// What the ruleset is and what it leaves out, one line each, without
    /// comment markers.
    pub header: Vec<String>,
    /// Sorted by name.
    pub sets: Vec<PeerSet>,
    /// In policy order.
    pub allows: Vec<Allow>,
}

/// The ruleset in `syntax`.
pub fn render(fw: &Firewall, syntax: Syntax) -> String {
    match syntax {
        Syntax::Nft => nft::render(fw),
        Syntax::Iptables => iptables::render(fw, false),
        Syntax::Ip6tables => iptables::render(fw, true),
    }
}

/// The ICMP error messages every host must take and send (a PMTU signal,
/// a port unreachable): `(nft name, number)`, IPv4 then IPv6.
pub const ICMP_ERRORS: [(&str, u8); 3] = [
    ("destination-unreachable", 3),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
];
pub const ICMPV6_ERRORS: [(&str, u8); 4] = [
    ("destination-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
];
/// IPv6 neighbour discovery: router and neighbour solicitation and
/// advertisement, accepted only with hop limit 255 (RFC 4861: from the
/// link itself).
pub const ND: [(&str, u8); 4] = [
    ("nd-router-solicit", 133),
    ("nd-router-advert", 134),
    ("nd-neighbor-solicit", 135),
    ("nd-neighbor-advert", 136),
];

/// A small ruleset with every case the writers handle: a port list with a
/// range, ICMP, literal peers, a role bound by DNS names only, an unbound
/// role, both families.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    fn set(name: &str, role: bool, nets: &[&str], names: &[&str]) -> PeerSet {
        PeerSet {
            name: name.into(),
            role: role.then(|| name.to_string()),
            nets: nets.iter().map(|n| n.parse().unwrap()).collect(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn allow(
        line: u32,
        service: &str,
        way: Way,
        proto: Proto,
        ports: &[(u16, u16)],
        peer: usize,
    ) -> Allow {
        Allow {
            id: format!("d-{line}"),
            source: format!("d.md:{line}"),
            service: service.into(),
            way,
            proto,
            ports: ports.iter().map(|&(lo, hi)| PortRange { lo, hi }).collect(),
            peer,
        }
    }

    pub fn fixture() -> Firewall {
        Firewall {
            header: vec!["a test".into(), String::new(), "of rendering".into()],
            sets: vec![
                set("admin", true, &[], &[]),
                set("nodes", true, &["192.0.2.0/24", "2001:db8:1::/64"], &[]),
                set("smtp-relay", true, &[], &["mail.example.com"]),
                set("d-7", false, &["198.51.100.53/32"], &[]),
            ],
            allows: vec![
                allow(
                    5,
                    "Elastic \"search\"",
                    Way::In,
                    Proto::Tcp,
                    &[(9200, 9200), (9300, 9400)],
                    1,
                ),
                allow(6, "Healthcheck", Way::In, Proto::Icmp, &[], 1),
                allow(7, "DNS", Way::Out, Proto::Udp, &[(53, 53)], 3),
                allow(8, "SMTP", Way::Out, Proto::Tcp, &[(25, 25), (587, 587)], 2),
                allow(9, "SSH", Way::In, Proto::Tcp, &[(22, 22)], 0),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_safe_in_both_syntaxes() {
        assert_eq!(
            comment("000-14 d.txt:14 Zookeeper \"servers\" listen\ton \\ for\u{2026}"),
            "000-14 d.txt:14 Zookeeper 'servers' listen on ' for..."
        );
        assert_eq!(comment("caf\u{e9}"), "caf?");
        let long = comment(&"x".repeat(300));
        assert_eq!(long.len(), COMMENT_MAX);
    }
}
