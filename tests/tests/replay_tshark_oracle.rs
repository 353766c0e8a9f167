//! tshark as the oracle of replay's counts (issue #6, item 7): a real
//! capture, recorded by tcpdump on a host while real clients talk to real
//! servers, is replayed against a policy under which every flow but one is
//! unexpected; for each flow replay reports, the packets and bytes equal
//! what tshark counts in the same file (its TCP/UDP conversation tables,
//! summed over the client's ports, and its per-packet fields). Two tools,
//! two parsers, one capture: a flow split or merged wrongly, a packet
//! counted the wrong way or not at all, shows as a difference. The one
//! other flow is required and refused: replay's attempts are tshark's SYNs.
//! Then `portconform report` must show the same flows, in JSON and in HTML.
//!
//! Lab (documentation ranges only), both of the host's links captured:
//!
//! ```text
//!   client 192.0.2.2 / 2001:db8:91::2 ── host ── peer 198.51.100.2 / 2001:db8:92::2
//!            192.0.2.1 / 2001:db8:91::1      198.51.100.1 / 2001:db8:92::1
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::Path,
    process::Command,
    time::Duration,
};

use portconform_tests::{
    capture::Tcpdump,
    lab::{self, Background, End, Netns, TEST_NET_1, TEST_NET_2, TempDir, sh},
    monitor_proc::{read_events, run_portconform},
    services, tshark,
};
use serde_json::Value;

/// Bound of every client and setup command.
const T: Duration = Duration::from_secs(20);

/// The vendor document the policy cites (line 5 allows 7001 from admin
/// only, line 6 requires SSH from admin, line 7 requires 7999 from the
/// clients).
const DOC: &str = "\
# Oracle appliance: ports

| Port | Protocol | Service | ConnDir | Source |
| ---- | -------- | ------- | --------- | ------ |
| 7001 | TCP | echo console | inbound | Admin IP addresses |
| 22 | TCP | SSH | inbound | Admin IP addresses |
| 7999 | TCP | license check | inbound | Client hosts |
";

/// A policy under which everything the lab sends is unexpected but 7999:
/// 7001 is allowed from admin only (the client is not admin:
/// peer-not-allowed, with rule o-5 as the nearest), 7999 is required from
/// the clients (and closed: blocked, reset), other ports have no rule.
const POLICY: &str = r#"
format = 1

[[documents]]
name = "oracle.md"
id_prefix = "o"
lines = 7

[[rules]]
id = "o-5"
service = "echo console"
proto = "tcp"
ports = [[7001, 7001]]
direction = "inbound"
local_role = "nodes"
peer_role = "admin"
required = "no"
source = "oracle.md:5"

[[rules]]
id = "o-6"
service = "SSH"
proto = "tcp"
ports = [[22, 22]]
direction = "inbound"
local_role = "nodes"
peer_role = "admin"
required = "yes"
source = "oracle.md:6"

[[rules]]
id = "o-7"
service = "license check"
proto = "tcp"
ports = [[7999, 7999]]
direction = "inbound"
local_role = "nodes"
peer_role = "clients"
required = "yes"
source = "oracle.md:7"
"#;

/// The service ports the lab's servers listen on: the end of a TCP/UDP
/// conversation with one of these is the responder.
const SERVICES: [u16; 7] = [7001, 7002, 5432, 7999, 5300, 7100, 5301];

/// A flow as replay identifies it: protocol, initiator, responder, service
/// port (ICMP: the request type).
type Key = (String, IpAddr, IpAddr, u16);

/// Packets initiator → responder, responder → initiator, and the bytes of
/// the former (frame lengths, as both tools count them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    count: u64,
    reply_packets: u64,
    bytes: u64,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// An echo server: TCP (`tcp`) or UDP, IPv6 socket taking IPv4 too.
/// `-T 3` ends each forked child after 3 idle seconds, so none outlives
/// the test (killing the listener does not kill its children).
fn echo_server(ns: &Netns, proto: &str, port: u16) -> Background {
    let listen = match proto {
        "tcp" => format!("TCP6-LISTEN:{port},fork,reuseaddr"),
        _ => format!("UDP6-RECVFROM:{port},fork"),
    };
    let bg = ns
        .spawn("socat", &["-T", "3", &listen, "PIPE"])
        .expect("socat server");
    match proto {
        "tcp" => ns.wait_tcp_listening(port, T).expect("listening"),
        _ => ns.wait_udp_bound(port, T).expect("bound"),
    }
    bg
}

/// `head -c bytes /dev/zero | socat - ADDR` in `ns`: one exchange with an
/// echo server. After its input ends socat waits for the echo: over TCP
/// until the server closes, over UDP (no close) the whole `-t`.
fn exchange(ns: &Netns, bytes: usize, address: &str) {
    let wait = if address.starts_with("UDP") { 1 } else { 2 };
    let script = format!("head -c {bytes} /dev/zero | socat -t {wait} - {address} | wc -c");
    let out = ns.run(T, "sh", &["-c", &script]).expect("exchange");
    let echoed: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("wc");
    assert_eq!(echoed, bytes, "echo from {address}");
}

/// The traffic, bounded in count and time: several TCP connections to two
/// echo ports and to PostgreSQL, one to a closed port, UDP exchanges each
/// from a new client port, pings both ways of IP, and outbound connections
/// from the host to the peer.
fn traffic(host: &Netns, client: &Netns, h: &End, p: &End) {
    for bytes in [100, 3000, 20000] {
        exchange(client, bytes, &format!("TCP:{}:7001", h.v4));
    }
    for bytes in [5, 700] {
        exchange(client, bytes, &format!("TCP:[{}]:7002", h.v6));
    }
    for query in ["select 1", "select count(*) from pg_class"] {
        services::psql(client, &h.v4, query).expect("psql");
    }
    // A closed port: a SYN answered by a reset.
    let refused = client
        .command(T, "socat")
        .args(["-", &format!("TCP:{}:7999", h.v4)])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("socat");
    assert!(!refused.status.success(), "7999 should be closed");
    for bytes in [1, 2, 3] {
        exchange(client, bytes, &format!("UDP:{}:5300", h.v4));
    }
    exchange(client, 40, &format!("UDP:[{}]:5300", h.v6));
    client
        .run(T, "ping", &["-c", "3", "-i", "0.2", "-W", "2", &h.v4])
        .expect("ping");
    client
        .run(T, "ping", &["-6", "-c", "2", "-i", "0.2", "-W", "2", &h.v6])
        .expect("ping6");
    for bytes in [10, 1000] {
        exchange(host, bytes, &format!("TCP:{}:7100", p.v4));
    }
    for bytes in [8, 9] {
        exchange(host, bytes, &format!("UDP:[{}]:5301", p.v6));
    }
    // The last FIN/ACKs on the wire before the captures stop.
    std::thread::sleep(Duration::from_millis(500));
}

/// Replay's flows: the latest counts of each flow's records (`unexpected`
/// then `update`s, cumulative), as the report reads them.
fn replay_flows(events: &[Value]) -> BTreeMap<Key, (Counts, String)> {
    let mut flows: BTreeMap<Key, (Counts, String)> = BTreeMap::new();
    for e in events {
        let kind = e["kind"].as_str().unwrap_or_default();
        if kind != "unexpected" && kind != "update" {
            continue;
        }
        let key = (
            e["proto"].as_str().unwrap().to_string(),
            ip(e["src"].as_str().unwrap()),
            ip(e["dst"].as_str().unwrap()),
            e["dport"].as_u64().unwrap() as u16,
        );
        let c = Counts {
            count: e["count"].as_u64().unwrap(),
            reply_packets: e["reply_packets"].as_u64().unwrap_or(0),
            bytes: e["bytes"].as_u64().unwrap_or(0),
        };
        let dir = e["direction"].as_str().unwrap().to_string();
        let slot = flows.entry(key).or_insert((c, dir));
        if c.count + c.reply_packets >= slot.0.count + slot.0.reply_packets {
            slot.0 = c;
        }
    }
    flows
}

/// Which end of a tshark conversation is the responder.
fn orient(a: (IpAddr, u16), b: (IpAddr, u16)) -> Option<bool> {
    match (SERVICES.contains(&a.1), SERVICES.contains(&b.1)) {
        (false, true) => Some(true),
        (true, false) => Some(false),
        _ => None,
    }
}

/// tshark's conversations summed per flow: (counts, bytes exact?,
/// conversations). Bytes initiator → responder are summed only while tshark
/// printed each exactly.
fn tshark_conversation_flows(pcaps: &[&Path]) -> BTreeMap<Key, (Counts, bool, u64)> {
    let mut flows: BTreeMap<Key, (Counts, bool, u64)> = BTreeMap::new();
    for pcap in pcaps {
        for c in tshark::conversations(pcap).expect("tshark conversations") {
            let a_initiates = orient(c.a, c.b)
                .unwrap_or_else(|| panic!("conversation {c:?} has no service port"));
            let (init, resp, fwd, rev) = if a_initiates {
                (c.a, c.b, c.a_to_b, c.b_to_a)
            } else {
                (c.b, c.a, c.b_to_a, c.a_to_b)
            };
            let key = (c.proto.to_string(), init.0, resp.0, resp.1);
            let slot = flows.entry(key).or_insert((Counts::default(), true, 0));
            slot.0.count += fwd.frames;
            slot.0.reply_packets += rev.frames;
            match fwd.bytes {
                Some(b) => slot.0.bytes += b,
                None => slot.1 = false,
            }
            slot.2 += 1;
            assert_eq!(c.total_frames, fwd.frames + rev.frames);
        }
    }
    flows
}

/// The same flows from tshark's per-packet fields, ICMP echo included.
fn tshark_packet_flows(pcaps: &[&Path]) -> BTreeMap<Key, Counts> {
    let mut flows: BTreeMap<Key, Counts> = BTreeMap::new();
    for pcap in pcaps {
        for p in tshark::packets(pcap).expect("tshark fields") {
            let (key, forward) = match (p.proto, p.icmp_type) {
                ("icmp", Some(8)) => (("icmp".into(), p.src, p.dst, 8), true),
                ("icmp", Some(0)) => (("icmp".into(), p.dst, p.src, 8), false),
                ("icmpv6", Some(128)) => (("icmpv6".into(), p.src, p.dst, 128), true),
                ("icmpv6", Some(129)) => (("icmpv6".into(), p.dst, p.src, 128), false),
                ("tcp" | "udp", _) => {
                    match orient((p.src, p.sport), (p.dst, p.dport)).expect("service port") {
                        true => ((p.proto.into(), p.src, p.dst, p.dport), true),
                        false => ((p.proto.into(), p.dst, p.src, p.sport), false),
                    }
                }
                other => panic!("unexpected packet in the capture: {other:?} {p:?}"),
            };
            let slot = flows.entry(key).or_default();
            if forward {
                slot.count += 1;
                slot.bytes += p.len;
            } else {
                slot.reply_packets += 1;
            }
        }
    }
    flows
}

#[test]
fn replay_counts_every_flow_as_tshark_does() {
    let dir = TempDir::new("oracle").expect("dir");
    let lab = lab::host_and_peer("orhost", "orcli", 91, TEST_NET_1).expect("lab");
    let far = lab.add_peer("orpeer", 92, TEST_NET_2).expect("second link");
    // The lab's first peer is the client; the peer proper is on the second link.
    let (host, client, h, c) = (lab.host, lab.peer, lab.host_if, lab.peer_if);
    let (peer, hp, p) = (far.ns, far.host_if, far.peer_if);
    // Servers first in, last out of scope: they stop before the namespaces go.
    let servers = [
        echo_server(&host, "tcp", 7001),
        echo_server(&host, "tcp", 7002),
        echo_server(&host, "udp", 5300),
        echo_server(&peer, "tcp", 7100),
        echo_server(&peer, "udp", 5301),
        services::postgres(&host, &dir).expect("postgres"),
    ];
    lab::settle();

    let (pcap_c, pcap_p) = (
        dir.path().join("client-side.pcap"),
        dir.path().join("peer-side.pcap"),
    );
    let dump_c = Tcpdump::start(&host, &h.ifname, &pcap_c.display().to_string()).expect("tcpdump");
    let dump_p = Tcpdump::start(&host, &hp.ifname, &pcap_p.display().to_string()).expect("tcpdump");
    traffic(&host, &client, &h, &p);
    for (dump, name) in [(dump_c, "client side"), (dump_p, "peer side")] {
        let got = dump.stop().expect("tcpdump stops");
        assert_eq!(got.dropped_by_kernel, 0, "{name}: {got:?}");
        assert!(got.packets > 0, "{name}: {got:?}");
    }
    let pcaps = [pcap_c.as_path(), pcap_p.as_path()];

    // Replay both captures, merged, as the host.
    std::fs::write(dir.path().join("oracle.md"), DOC).unwrap();
    let policy = dir.file("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let inventory = dir.file("inventory.toml");
    std::fs::write(
        &inventory,
        format!(
            "nodes = [\"{}\", \"{}\", \"{}\", \"{}\"]\nadmin = [\"203.0.113.7\"]\n\
             clients = [\"{}\", \"{}\"]\n",
            h.v4, h.v6, hp.v4, hp.v6, c.v4, c.v6
        ),
    )
    .unwrap();
    let events = dir.file("host1.jsonl");
    let mut args: Vec<String> = vec!["replay".into(), "--no-resolve".into()];
    args.extend(pcaps.iter().map(|p| p.display().to_string()));
    for addr in [&h.v4, &h.v6, &hp.v4, &hp.v6] {
        args.extend(["--host".into(), addr.clone()]);
    }
    args.extend([
        "--policy".into(),
        policy.clone(),
        "--inventory".into(),
        inventory.clone(),
        "--events".into(),
        events.clone(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = run_portconform(&args).expect("replay");
    assert!(done.status.success(), "replay failed: {}", done.stderr);
    let records = read_events(&events).expect("events");
    let replayed = replay_flows(&records);

    // The flows the lab made, as both tools must find them.
    let (c4, c6, h4, h6) = (ip(&c.v4), ip(&c.v6), ip(&h.v4), ip(&h.v6));
    let (hp4, hp6, p4, p6) = (ip(&hp.v4), ip(&hp.v6), ip(&p.v4), ip(&p.v6));
    let is_host = |a: &IpAddr| [h4, h6, hp4, hp6].contains(a);
    let expected: BTreeSet<Key> = [
        ("tcp", c4, h4, 7001),
        ("tcp", c6, h6, 7002),
        ("tcp", c4, h4, 5432),
        ("udp", c4, h4, 5300),
        ("udp", c6, h6, 5300),
        ("icmp", c4, h4, 8),
        ("icmpv6", c6, h6, 128),
        ("tcp", hp4, p4, 7100),
        ("udp", hp6, p6, 5301),
    ]
    .into_iter()
    .map(|(proto, s, d, port)| (proto.to_string(), s, d, port))
    .collect();
    assert_eq!(
        replayed.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "replay's flows ({}):\n{}",
        done.stderr,
        records
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (key, (_, direction)) in &replayed {
        let outbound = is_host(&key.1);
        assert_eq!(
            direction,
            if outbound { "outbound" } else { "inbound" },
            "{key:?}"
        );
    }

    // tshark's conversation tables: every TCP/UDP flow, summed over the
    // client ports, has replay's packets each way (and bytes where exact).
    let key = |proto: &str, s, d, port| (proto.to_string(), s, d, port);
    let refused = key("tcp", c4, h4, 7999);
    let mut conversations = tshark_conversation_flows(&pcaps);
    let (syn_rst, _, _) = conversations.remove(&refused).expect("7999 in tshark");
    assert_eq!((syn_rst.count, syn_rst.reply_packets), (1, 1));
    let tcp_udp: BTreeSet<&Key> = expected
        .iter()
        .filter(|k| k.0 == "tcp" || k.0 == "udp")
        .collect();
    assert_eq!(conversations.keys().collect::<BTreeSet<_>>(), tcp_udp);
    let mut exact_bytes = 0;
    for (key, (theirs, bytes_exact, convs)) in &conversations {
        let ours = replayed[key].0;
        assert_eq!(
            (ours.count, ours.reply_packets),
            (theirs.count, theirs.reply_packets),
            "{key:?}: replay counted {ours:?}, tshark's {convs} conversations {theirs:?}"
        );
        if *bytes_exact {
            exact_bytes += 1;
            assert_eq!(ours.bytes, theirs.bytes, "{key:?} bytes");
        }
    }
    assert!(
        exact_bytes >= 5,
        "too few flows with exact byte counts in tshark's tables"
    );
    // The sums really are over several client ports.
    assert_eq!(conversations[&key("tcp", c4, h4, 7001)].2, 3);
    assert_eq!(conversations[&key("udp", c4, h4, 5300)].2, 3);
    assert_eq!(conversations[&key("tcp", c4, h4, 5432)].2, 2);
    // The 20000-byte exchange is big enough that tshark rounds it.
    assert!(!conversations[&key("tcp", c4, h4, 7001)].1);

    // tshark's per-packet fields: every flow, ICMP echo too, bytes always.
    let mut packets = tshark_packet_flows(&pcaps);
    let syns = packets
        .remove(&refused)
        .expect("7999 in tshark's packets")
        .count;
    assert_eq!(
        packets.keys().collect::<BTreeSet<_>>(),
        expected.iter().collect()
    );
    for (key, theirs) in &packets {
        assert_eq!(
            replayed[key].0, *theirs,
            "{key:?}: replay vs tshark's packets"
        );
    }
    assert_eq!(packets[&key("icmp", c4, h4, 8)].count, 3);
    assert_eq!(packets[&key("icmpv6", c6, h6, 128)].reply_packets, 2);

    // The refused required flow: blocked by a reset, once per SYN.
    let blocked: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "blocked" || r["update_of"] == "blocked")
        .collect();
    let last = blocked.last().expect("a blocked record");
    assert!(
        blocked
            .iter()
            .all(|r| r["dport"] == 7999 && r["src"] == c.v4.as_str()),
        "{blocked:?}"
    );
    assert_eq!(
        (&last["rule"], &last["reason"], last["count"].as_u64()),
        (&Value::from("o-7"), &Value::from("reset"), Some(syns)),
    );
    // Every record names the host, as replay's --host addresses say.
    let label = records[0]["host"].as_str().unwrap_or("host1").to_string();
    assert!(records.iter().all(|r| r["host"] == records[0]["host"]));

    // The report shows the same flows, in JSON and in the HTML page, and
    // links the nearest rule to the quoted document line.
    let html = dir.file("r.html");
    let done = run_portconform(&[
        "report", &events, "--policy", &policy, "--format", "json", "--html", &html,
    ])
    .expect("report");
    assert!(done.status.success(), "report failed: {}", done.stderr);
    let report: Value = serde_json::from_str(&done.stdout).expect("report JSON");
    let flows = report["unexpected"]["flows"].as_array().expect("flows");
    assert_eq!(flows.len(), expected.len(), "{}", done.stdout);
    for f in flows {
        let key: Key = (
            f["proto"].as_str().unwrap().into(),
            ip(f["src"].as_str().unwrap()),
            ip(f["dst"].as_str().unwrap()),
            f["dport"].as_u64().unwrap() as u16,
        );
        let ours = replayed[&key].0;
        assert_eq!(
            (
                f["count"].as_u64(),
                f["reply_packets"].as_u64(),
                f["bytes"].as_u64()
            ),
            (Some(ours.count), Some(ours.reply_packets), Some(ours.bytes)),
            "{key:?} in the report"
        );
        assert_eq!(f["host"], label.as_str());
    }
    let row = |rule: &str| -> &Value {
        report["required"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == rule)
            .unwrap_or_else(|| panic!("no row for required rule {rule}"))
    };
    assert_eq!(row("o-6")["hosts"][&label]["status"], "not-seen");
    let o7 = &row("o-7")["hosts"][&label];
    assert_eq!(
        (&o7["status"], &o7["reason"], o7["failed_attempts"].as_u64()),
        (&Value::from("blocked"), &Value::from("reset"), Some(syns)),
        "{o7}"
    );
    let b = &report["blocked"][0];
    assert_eq!(
        (
            &b["rule"],
            &b["dport"],
            b["attempts"].as_u64(),
            &b["recovered"]
        ),
        (
            &Value::from("o-7"),
            &Value::from(7999),
            Some(syns),
            &Value::from(false)
        )
    );
    let page = std::fs::read_to_string(&html).expect("html");
    for (proto, s, d, port) in &expected {
        let text = monitor::report::terminal::flow_text(
            proto.parse().unwrap(),
            s,
            d,
            *port,
            if is_host(s) {
                monitor::events::ConnDir::Outbound
            } else {
                monitor::events::ConnDir::Inbound
            },
        );
        let escaped = text.replace('>', "&gt;");
        assert!(page.contains(&escaped), "{escaped} not in the page");
    }
    assert!(
        page.contains("<td class=\"st-blocked\""),
        "no blocked cell in the matrix"
    );
    // o-5 is the nearest rule of the 7001 flow: linked, and quoted.
    assert!(page.contains("href=\"#d0-l5\""), "no link to oracle.md:5");
    assert!(page.contains("id=\"d0-l5\""), "no anchor for oracle.md:5");
    assert!(page.contains("| 7001 | TCP | echo console | inbound | Admin IP addresses |"));

    // No server, and no child a server forked, outlives the test.
    drop(servers);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for ns in [&host, &peer] {
        loop {
            let pids = sh(Command::new("ip").args(["netns", "pids", ns.name()])).expect("pids");
            let pids = String::from_utf8_lossy(&pids.stdout).trim().to_string();
            if pids.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "processes left in {}: {pids}",
                ns.name()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
