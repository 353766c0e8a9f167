//! The ruleset as one `nft -f` file: table `inet portconform`, replaced
//! atomically on every load (declared, deleted and declared again in one
//! transaction, so that loading it twice does not stack rules), with one
//! named set per peer role and family that the site can also fill at run
//! time (`nft add element inet portconform nodes_v4 { ... }`; auto-merge
//! takes elements that overlap the ones written), input and
//! output chains that drop by default.

use std::fmt::Write as _;

use super::{Allow, Firewall, ICMP_ERRORS, ICMPV6_ERRORS, ND, PeerSet, Way};
use crate::policy::model::{PortRange, Proto};

/// The table every export writes.
pub const TABLE: &str = "portconform";

/// The set of `set` for a family: `nodes_v4`; a role that does not start
/// with a letter gets `role_`, a rule's literal peers `peers_<id>` (role
/// names have no `_`, so neither can meet a role's).
pub fn set_name(set: &PeerSet, v6: bool) -> String {
    let base = match &set.role {
        Some(role) if role.starts_with(|c: char| c.is_ascii_alphabetic()) => role.clone(),
        Some(role) => format!("role_{role}"),
        None => format!(
            "peers_{}",
            set.name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                })
                .collect::<String>()
        ),
    };
    format!("{base}_{}", if v6 { "v6" } else { "v4" })
}

/// `2181`, `9300-9400` or `{ 25, 587 }`.
pub fn ports(ranges: &[PortRange]) -> String {
    let items: Vec<String> = ranges.iter().map(ToString::to_string).collect();
    match items.as_slice() {
        [one] => one.clone(),
        _ => format!("{{ {} }}", items.join(", ")),
    }
}

/// The match of an allow's protocol and ports for a family.
fn l4(a: &Allow, v6: bool) -> String {
    match a.proto {
        Proto::Tcp | Proto::Udp => format!("{} dport {}", a.proto.name(), ports(&a.ports)),
        Proto::Icmp if v6 => "meta l4proto ipv6-icmp".into(),
        Proto::Icmp => "meta l4proto icmp".into(),
    }
}

fn names(list: &[(&str, u8)]) -> String {
    list.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The rules every host needs, whatever its policy.
fn base_rules(out: &mut String, way: Way) {
    let iface = if way == Way::In { "iif" } else { "oif" };
    let lines = [
        format!("{iface} \"lo\" accept comment \"loopback\""),
        "ct state established,related accept comment \"established and related\"".into(),
        format!(
            "meta l4proto icmp icmp type {{ {} }} accept comment \"ICMP errors\"",
            names(&ICMP_ERRORS)
        ),
        format!(
            "meta l4proto ipv6-icmp icmpv6 type {{ {} }} accept comment \"ICMPv6 errors\"",
            names(&ICMPV6_ERRORS)
        ),
        format!(
            "meta l4proto ipv6-icmp icmpv6 type {{ {} }} ip6 hoplimit 255 accept comment \"ICMPv6 neighbour discovery\"",
            names(&ND)
        ),
        "ct state invalid drop comment \"invalid\"".into(),
    ];
    for l in lines {
        let _ = writeln!(out, "\t\t{l}");
    }
}

/// The ruleset as nft syntax.
pub fn render(fw: &Firewall) -> String {
    let mut out = String::from("#!/usr/sbin/nft -f\n");
    for line in &fw.header {
        let _ = writeln!(out, "#{}{line}", if line.is_empty() { "" } else { " " });
    }
    let _ = writeln!(
        out,
        "\ntable inet {TABLE} {{}}\ndelete table inet {TABLE}\n\ntable inet {TABLE} {{"
    );
    // Sets that some rule uses.
    for (i, set) in fw.sets.iter().enumerate() {
        for v6 in [false, true] {
            if !set.has_family(v6, true) || !fw.allows.iter().any(|a| a.peer == i) {
                continue;
            }
            let what = match &set.role {
                Some(role) => format!("role {role}"),
                None => format!("the peers of {}", set.name),
            };
            let _ = writeln!(out, "\t# {what}");
            if !set.names.is_empty() {
                let _ = writeln!(out, "\t# to add: the addresses of {}", set.names.join(", "));
            }
            let _ = writeln!(
                out,
                "\tset {} {{\n\t\ttype {}\n\t\tflags interval\n\t\tauto-merge",
                set_name(set, v6),
                if v6 { "ipv6_addr" } else { "ipv4_addr" }
            );
            let elements: Vec<String> = set.nets_of(v6).map(ToString::to_string).collect();
            if !elements.is_empty() {
                let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
            }
            let _ = writeln!(out, "\t}}\n");
        }
    }
    for (way, chain, hook, dir) in [
        (Way::In, "input", "input", "saddr"),
        (Way::Out, "output", "output", "daddr"),
    ] {
        let _ = writeln!(
            out,
            "\tchain {chain} {{\n\t\ttype filter hook {hook} priority filter; policy drop;"
        );
        base_rules(&mut out, way);
        for a in fw.allows.iter().filter(|a| a.way == way) {
            let set = &fw.sets[a.peer];
            let mut any = false;
            for (v6, family) in [(false, "ip"), (true, "ip6")] {
                if !set.has_family(v6, true) {
                    continue;
                }
                any = true;
                let _ = writeln!(
                    out,
                    "\t\t{family} {dir} @{} {} accept comment \"{}\"",
                    set_name(set, v6),
                    l4(a, v6),
                    a.comment()
                );
            }
            if !any {
                let _ = writeln!(
                    out,
                    "\t\t# {}: its peers have no address in the inventory",
                    a.comment()
                );
            }
        }
        let _ = writeln!(out, "\t}}\n");
    }
    out.truncate(out.trim_end().len());
    out.push_str("\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::firewall::tests_support::fixture;

    #[test]
    fn ranges_sets_and_comments() {
        let text = render(&fixture());
        assert!(
            text.contains(
                "\t\tip saddr @nodes_v4 tcp dport { 9200, 9300-9400 } accept comment \"d-5 d.md:5 Elastic 'search'\"\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\t\tip6 saddr @nodes_v6 tcp dport { 9200, 9300-9400 } accept"),
            "{text}"
        );
        assert!(
            text.contains(
                "\t\tip daddr @peers_d-7_v4 udp dport 53 accept comment \"d-7 d.md:7 DNS\"\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\t\tip6 saddr @nodes_v6 meta l4proto ipv6-icmp accept"),
            "{text}"
        );
        assert!(text.contains("elements = { 192.0.2.0/24 }"), "{text}");
        assert!(text.contains("elements = { 2001:db8:1::/64 }"), "{text}");
        // Names only: the set is declared empty, to be filled.
        assert!(
            text.contains("# to add: the addresses of mail.example.com"),
            "{text}"
        );
        assert!(
            text.contains("\t\tip daddr @smtp-relay_v4 tcp dport { 25, 587 }"),
            "{text}"
        );
        // Unbound: said, not emitted.
        assert!(
            text.contains("# d-9 d.md:9 SSH: its peers have no address in the inventory"),
            "{text}"
        );
        assert!(!text.contains("@admin_v4"), "{text}");
        assert_eq!(text, render(&fixture()), "deterministic");
    }
}
