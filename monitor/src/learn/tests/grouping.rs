//! Rows: how flows group, how peers are named, that the same events give
//! the same bytes, and that the compiler reads each row as it was meant.

use super::*;

#[test]
fn flows_group_by_role_direction_port_and_peer_network() {
    let lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.8", 9100, DAY1),
        // An update of the first flow: the same flow, not a third.
        inbound("198.51.100.7", 9100, DAY1).replace("\"unexpected\"", "\"update\""),
        line(
            "node-a",
            "inbound",
            "udp",
            "2001:db8:5::1",
            40001,
            "2001:db8::1",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "inbound",
            "udp",
            "2001:db8:5::2",
            40002,
            "2001:db8::1",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            40003,
            "203.0.113.53",
            53,
            DAY1,
        ),
        line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            40004,
            "203.0.113.53",
            53,
            DAY2,
        ),
    ];
    let (p, text) = learn(&[&lines]);
    assert_eq!(
        rows(&p),
        [
            "tcp 9100 inbound from 198.51.100.0/24 to nodes",
            "udp 123 inbound from 2001:db8:5::/64 to nodes",
            "udp 53 outbound from nodes to 203.0.113.0/24",
        ]
    );
    let web = &p.rows[0].evidence;
    assert_eq!((web.flows.len(), web.peers.len(), web.packets), (2, 2, 18));
    // One peer seen on two days is two flows: a service, not a one-off.
    assert_eq!(p.rows[2].evidence.days.len(), 2);
    assert!(
        text.contains("| 9100 | TCP | inbound | 198.51.100.0/24 | nodes | learned: 1 host from 2 peers <!-- hosts: 1 (node-a); peers: 2; flows: 2; days: 1; packets: 18; first seen: 2026-11-22T10:00:00Z; last seen: 2026-11-22T10:00:00Z --> | Yes |"),
        "{text}"
    );
    assert!(
        text.contains("| 53 | UDP | outbound | nodes | 203.0.113.0/24 |"),
        "{text}"
    );
    assert!(p.aside.is_empty(), "{:?}", p.aside);
}

#[test]
fn peers_are_named_by_their_roles() {
    let policy = profiles::load("thoughtspot").unwrap();
    let inv = Inventory::parse(
        "nodes = [\"192.0.2.0/28\"]\nadmin = [\"198.51.100.0/24\", \"198.51.100.9\"]\n",
        "inv.toml",
    )
    .unwrap();
    let mut ldap = inbound("203.0.113.20", 9100, DAY1);
    ldap = ldap.replace("\"host\"", "\"peer_roles\":[\"ldap-server\"],\"host\"");
    let lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.9", 9100, DAY1),
        ldap.clone(),
        ldap.replace("203.0.113.20", "203.0.113.21"),
        inbound("192.0.2.5", 9100, DAY1),
        inbound("192.0.2.6", 9100, DAY1),
    ];
    let (p, _) = learn_with(&[&lines], Some(&policy), Some(&inv));
    assert_eq!(
        rows(&p),
        [
            "tcp 9100 inbound from admin to nodes",
            "tcp 9100 inbound from ldap-server to nodes",
            "tcp 9100 inbound from nodes to nodes",
        ]
    );
}

#[test]
fn the_same_events_give_the_same_bytes_whatever_their_order() {
    let mut lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.8", 9100, DAY2),
        line(
            "node-b",
            "inbound",
            "udp",
            "198.51.100.9",
            40000,
            "192.0.2.2",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "inbound",
            "udp",
            "198.51.100.9",
            40000,
            "192.0.2.1",
            123,
            DAY1,
        ),
        inbound("203.0.113.4", 7000, DAY1),
    ];
    lines.extend((1..=12).map(|p| inbound("203.0.113.66", p, DAY1)));
    let (_, first) = learn(&[&lines]);
    let mut reversed = lines.clone();
    reversed.reverse();
    let (half_a, half_b) = reversed.split_at(7);
    let (_, second) = learn(&[half_a, half_b]);
    // The header counts the files; everything after it must be equal.
    let body = |t: &str| t.split_once("-->").unwrap().1.to_string();
    assert_eq!(body(&first), body(&second));
    assert_eq!(first, learn(&[&lines]).1);
}

/// The output read back by the compiler, with the vendor's own document:
/// every row becomes the rule it says, and the set-aside list none.
#[test]
fn the_output_compiles_into_the_rules_it_proposes() {
    let policy = profiles::load("thoughtspot").unwrap();
    let inv = Inventory::parse("nodes = [\"192.0.2.0/28\"]\n", "inv.toml").unwrap();
    let mut lines = vec![
        inbound("198.51.100.7", 9100, DAY1),
        inbound("198.51.100.8", 9100, DAY1),
        line(
            "node-a",
            "inbound",
            "udp",
            "2001:db8:5::1",
            40001,
            "192.0.2.1",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "inbound",
            "udp",
            "2001:db8:5::2",
            40002,
            "192.0.2.1",
            123,
            DAY1,
        ),
        line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            40003,
            "203.0.113.53",
            53,
            DAY1,
        ),
        line(
            "node-a",
            "outbound",
            "udp",
            "192.0.2.1",
            40004,
            "203.0.113.53",
            53,
            DAY2,
        ),
        inbound("192.0.2.5", 9200, DAY1),
        inbound("192.0.2.6", 9200, DAY1),
        inbound("198.51.100.7", 7777, DAY1),
    ];
    lines.extend((1000..1020).map(|p| inbound("203.0.113.66", p, DAY1)));
    let (p, text) = learn_with(&[&lines], Some(&policy), Some(&inv));
    assert_eq!(p.rows.len(), 4, "{text}");
    let vendor = policy::Document {
        name: "vendor.md".into(),
        text: "| Port | Protocol | Direction | Source | Destination |\n|---|---|---|---|---|\n| 80 | TCP | inbound | All nodes | All nodes |\n".into(),
    };
    let site = policy::Document {
        name: "site.md".into(),
        text: text.clone(),
    };
    let compiled = policy::compile(&[vendor, site]).unwrap();
    let learned: Vec<String> = compiled
        .rules
        .iter()
        .filter(|r| r.source.doc == "site.md")
        .map(|r| {
            let peer = r.peer_role.clone().unwrap_or_else(|| {
                r.peer
                    .iter()
                    .map(Peer::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            });
            format!(
                "{} {} {} from {} to {}",
                match r.proto {
                    Proto::Tcp => "tcp",
                    Proto::Udp => "udp",
                    Proto::Icmp => "icmp",
                },
                r.ports,
                r.direction.name(),
                if r.direction == Direction::Inbound {
                    peer.clone()
                } else {
                    r.local_role.clone()
                },
                if r.direction == Direction::Inbound {
                    r.local_role.clone()
                } else {
                    peer
                },
            )
        })
        .collect();
    assert_eq!(learned, rows(&p), "{text}");
    assert!(
        compiled.warnings.iter().all(|w| w.source.doc != "site.md"),
        "{:?}",
        compiled.warnings
    );
}
