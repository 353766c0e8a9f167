//! The ruleset as an iptables-save file (IPv4) or an ip6tables-save file
//! (IPv6), for iptables-restore and ip6tables-restore: one family per file,
//! as those tools take them (Debian's iptables-persistent keeps rules.v4
//! and rules.v6). Without ipset: one line per peer network and port range,
//! so that the file needs nothing but the two tools.

use std::fmt::Write as _;

use super::{Allow, Firewall, ICMP_ERRORS, ICMPV6_ERRORS, ND, PeerSet, Way};
use crate::policy::model::{PortRange, Proto};

/// `--dport 2181` or `--dport 9300:9400`.
fn dport(r: PortRange) -> String {
    if r.lo == r.hi {
        format!("--dport {}", r.lo)
    } else {
        format!("--dport {}:{}", r.lo, r.hi)
    }
}

/// The matches of an allow's protocol, one per port range.
fn l4(a: &Allow, v6: bool) -> Vec<String> {
    match a.proto {
        Proto::Tcp | Proto::Udp => a
            .ports
            .iter()
            .map(|&r| format!("-p {p} -m {p} {}", dport(r), p = a.proto.name()))
            .collect(),
        Proto::Icmp if v6 => vec!["-p ipv6-icmp".into()],
        Proto::Icmp => vec!["-p icmp".into()],
    }
}

fn icmp(v6: bool, ty: u8) -> String {
    if v6 {
        format!("-p ipv6-icmp -m icmp6 --icmpv6-type {ty}")
    } else {
        format!("-p icmp -m icmp --icmp-type {ty}")
    }
}

/// The rules every host needs, whatever its policy.
fn base_rules(out: &mut String, chain: &str, way: Way, v6: bool) {
    let iface = if way == Way::In { "-i" } else { "-o" };
    let mut lines: Vec<(String, &str, &str)> = vec![
        (format!("{iface} lo"), "loopback", "ACCEPT"),
        (
            "-m conntrack --ctstate RELATED,ESTABLISHED".into(),
            "established and related",
            "ACCEPT",
        ),
    ];
    if v6 {
        for (_, ty) in ICMPV6_ERRORS {
            lines.push((icmp(true, ty), "ICMPv6 errors", "ACCEPT"));
        }
        for (_, ty) in ND {
            lines.push((
                format!("{} -m hl --hl-eq 255", icmp(true, ty)),
                "ICMPv6 neighbour discovery",
                "ACCEPT",
            ));
        }
    } else {
        for (_, ty) in ICMP_ERRORS {
            lines.push((icmp(false, ty), "ICMP errors", "ACCEPT"));
        }
    }
    lines.push(("-m conntrack --ctstate INVALID".into(), "invalid", "DROP"));
    for (m, comment, target) in lines {
        let _ = writeln!(
            out,
            "-A {chain} {m} -m comment --comment \"{comment}\" -j {target}"
        );
    }
}

/// The allow's lines for the family: one per peer network and port range.
fn allow_lines(out: &mut String, chain: &str, a: &Allow, set: &PeerSet, v6: bool) {
    let flag = if a.way == Way::In { "-s" } else { "-d" };
    let nets: Vec<String> = set.nets_of(v6).map(ToString::to_string).collect();
    if nets.is_empty() {
        let family = if v6 { "IPv6" } else { "IPv4" };
        let why = if set.names.is_empty() {
            format!("its peers have no {family} address in the inventory")
        } else {
            format!(
                "its peers are DNS names ({}): add lines for their addresses",
                set.names.join(", ")
            )
        };
        let _ = writeln!(out, "# {}: no {family} line: {why}", a.comment());
        return;
    }
    for net in &nets {
        for m in l4(a, v6) {
            let _ = writeln!(
                out,
                "-A {chain} {flag} {net} {m} -m comment --comment \"{}\" -j ACCEPT",
                a.comment()
            );
        }
    }
}

/// The ruleset for IPv4 (`v6` false: iptables-save) or IPv6
/// (ip6tables-save).
pub fn render(fw: &Firewall, v6: bool) -> String {
    let mut out = String::new();
    for line in &fw.header {
        let _ = writeln!(out, "#{}{line}", if line.is_empty() { "" } else { " " });
    }
    let _ = writeln!(
        out,
        "#\n# {} rules only: --format {} writes the {} ones.",
        if v6 { "IPv6" } else { "IPv4" },
        if v6 { "iptables" } else { "ip6tables" },
        if v6 { "IPv4" } else { "IPv6" },
    );
    let _ = writeln!(out, "*filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]");
    for (way, chain) in [(Way::In, "INPUT"), (Way::Out, "OUTPUT")] {
        base_rules(&mut out, chain, way, v6);
        for a in fw.allows.iter().filter(|a| a.way == way) {
            allow_lines(&mut out, chain, a, &fw.sets[a.peer], v6);
        }
    }
    out.push_str("COMMIT\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::firewall::tests_support::fixture;

    #[test]
    fn v4_lines_per_network_and_range() {
        let text = render(&fixture(), false);
        assert!(text.starts_with("# a test\n#\n# of rendering\n"), "{text}");
        for line in [
            "-A INPUT -s 192.0.2.0/24 -p tcp -m tcp --dport 9200 -m comment --comment \"d-5 d.md:5 Elastic 'search'\" -j ACCEPT",
            "-A INPUT -s 192.0.2.0/24 -p tcp -m tcp --dport 9300:9400 -m comment --comment \"d-5 d.md:5 Elastic 'search'\" -j ACCEPT",
            "-A INPUT -s 192.0.2.0/24 -p icmp -m comment --comment \"d-6 d.md:6 Healthcheck\" -j ACCEPT",
            "-A OUTPUT -d 198.51.100.53/32 -p udp -m udp --dport 53 -m comment --comment \"d-7 d.md:7 DNS\" -j ACCEPT",
            "-A INPUT -p icmp -m icmp --icmp-type 3 -m comment --comment \"ICMP errors\" -j ACCEPT",
            "# d-8 d.md:8 SMTP: no IPv4 line: its peers are DNS names (mail.example.com): add lines for their addresses",
            "# d-9 d.md:9 SSH: no IPv4 line: its peers have no IPv4 address in the inventory",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("2001:db8"), "{text}");
        assert!(!text.contains("icmp6"), "{text}");
        assert!(text.ends_with("COMMIT\n"));
        assert_eq!(text, render(&fixture(), false), "deterministic");
    }

    #[test]
    fn v6_lines_and_neighbour_discovery() {
        let text = render(&fixture(), true);
        for line in [
            "-A INPUT -s 2001:db8:1::/64 -p tcp -m tcp --dport 9300:9400 -m comment --comment \"d-5 d.md:5 Elastic 'search'\" -j ACCEPT",
            "-A INPUT -s 2001:db8:1::/64 -p ipv6-icmp -m comment --comment \"d-6 d.md:6 Healthcheck\" -j ACCEPT",
            "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -m comment --comment \"ICMPv6 neighbour discovery\" -j ACCEPT",
            "-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 2 -m comment --comment \"ICMPv6 errors\" -j ACCEPT",
            "# d-7 d.md:7 DNS: no IPv6 line: its peers have no IPv6 address in the inventory",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("192.0.2"), "{text}");
    }
}
