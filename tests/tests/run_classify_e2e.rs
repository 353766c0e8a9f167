//! `portconform run` classifying real traffic against the thoughtspot profile
//! (issue 4, item 5): a monitored appliance node with real servers, real
//! clients on another node and on an admin host, and the events file checked
//! to hold exactly the flows the vendor's document does not allow, once each.
//!
//! Lab (documentation ranges only):
//!
//! ```text
//!   node2 192.0.2.2 / 2001:db8:<id>::2 ── node1 (monitored) ── admin 198.51.100.2 / 2001:db8:<id+1>::2
//!                 192.0.2.1 / 2001:db8:<id>::1        198.51.100.1 / 2001:db8:<id+1>::1
//! ```
//!
//! Inventory: `nodes` = node1 and node2's subnets, `admin` = the admin host.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
    time::Duration,
};

use portconform_tests::{
    lab::{self, Background, End, Netns, TEST_NET_1, TEST_NET_2, TempDir, sh},
    monitor_proc::{MonitorProc, read_events, run_portconform},
    services,
};
use serde_json::Value;

/// Bound of every client, scanner and setup command.
const T: Duration = Duration::from_secs(20);

/// The dynamic-port range the one test that lowers it gives the monitor.
///
/// Every other test runs with the shipped default, the host's
/// net.ipv4.ip_local_port_range, which the thoughtspot document allows both
/// ways between nodes (rule 000-6) and where the clients also take their
/// ephemeral ports: the classifier gives the packets of a connection whose
/// SYN it saw to that connection. A connection between two nodes already
/// open when the monitor starts has no SYN to go by, and its client's port
/// reads as the dynamic range's: connections_open_before... moves the range
/// away from the clients' ports on purpose, to judge such connections by
/// their service port (the README lists this limit).
const DYNAMIC_PORTS: &str = "20000-20009";

// ---------------------------------------------------------------- the lab --

struct Lab {
    /// Servers first: they stop before their namespaces and scratch go.
    servers: Vec<Background>,
    node1: Netns,
    node2: Netns,
    admin: Netns,
    /// node1's end of the node link, and node2's.
    n1: End,
    n2: End,
    /// node1's end of the admin link, and the admin host's.
    a1: End,
    adm: End,
    dir: TempDir,
}

/// A lab whose veth pairs use `id` and `id + 1` (distinct per test, so tests
/// may run side by side), settled, with the inventory written.
fn lab(id: u32) -> Lab {
    let nodes = lab::host_and_peer("node1", "node2", id, TEST_NET_1).expect("lab");
    let admin = nodes
        .add_peer("admin", id + 1, TEST_NET_2)
        .expect("admin link");
    let dir = TempDir::new("classify").expect("scratch dir");
    std::fs::write(
        dir.path().join("inventory.toml"),
        format!(
            "nodes = [\"192.0.2.0/24\", \"2001:db8:{id}::/64\"]\nadmin = [\"{}\", \"{}\"]\n",
            admin.peer_if.v4, admin.peer_if.v6
        ),
    )
    .expect("inventory");
    lab::settle();
    Lab {
        servers: Vec::new(),
        node1: nodes.host,
        node2: nodes.peer,
        admin: admin.ns,
        n1: nodes.host_if,
        n2: nodes.peer_if,
        a1: admin.host_if,
        adm: admin.peer_if,
        dir,
    }
}

impl Lab {
    fn events_path(&self) -> String {
        self.dir.file("events.jsonl")
    }

    /// The monitor on node1's two interfaces, classifying against the
    /// thoughtspot profile as shipped; counts of unexpected flows refreshed
    /// every `refresh` seconds and on exit.
    fn monitor(&self, refresh: &str) -> MonitorProc {
        self.monitor_with(refresh, &[])
    }

    /// [`monitor`](Self::monitor) with `extra` options.
    fn monitor_with(&self, refresh: &str, extra: &[&str]) -> MonitorProc {
        let (inventory, events) = (self.dir.file("inventory.toml"), self.events_path());
        let mut args = vec!["--refresh", refresh, "--interval", "3600"];
        args.extend_from_slice(extra);
        MonitorProc::classifying(
            &self.node1,
            &[&self.n1.ifname, &self.a1.ifname],
            "thoughtspot",
            &inventory,
            &events,
            &args,
        )
        .expect("start portconform")
    }

    /// Stops the monitor with SIGTERM and returns the events it wrote.
    fn stop(&self, mon: MonitorProc) -> Vec<Event> {
        let done = mon.stop().expect("stop");
        assert!(
            done.status.success(),
            "exit status {}\nstderr: {}",
            done.status,
            done.stderr
        );
        let all = read_events(self.events_path()).expect("events file");
        // The run ends with one verdict per required rule, and closed
        // required ports probed here are rightly `blocked` (reset):
        // blocked_e2e checks those. These tests judge unexpected flows.
        assert!(
            all.iter().any(|e| e["kind"] == "required"),
            "no required-rule verdicts at exit"
        );
        let events: Vec<Event> = all
            .iter()
            .filter(|e| {
                e["kind"] == "unexpected" || e.get("update_of") == Some(&"unexpected".into())
            })
            .map(Event::parse)
            .collect();
        // A console line per new unexpected flow, too.
        let console = done
            .stderr
            .lines()
            .filter(|l| l.starts_with("UNEXPECTED "))
            .count();
        let new = events.iter().filter(|e| e.kind == "unexpected").count();
        assert_eq!(console, new, "console lines vs events\n{}", done.stderr);
        events
    }

    /// Keeps `server` running until the lab goes.
    fn keep(&mut self, server: Background) {
        self.servers.push(server);
    }
}

/// A TCP echo server (socat, one process per connection, each ended after
/// 10 s idle) on `port` in `ns`, IPv4 and IPv6; returns once it listens.
fn echo_server(ns: &Netns, port: u16) -> Background {
    services::tcp_echo(ns, port, 10).expect("echo server")
}

// ------------------------------------------------------------ the clients --

/// A TCP client in `ns`: sends a line to `addr`:`port` (from `sport` if
/// given), half-closes, and checks the echo came back.
fn talk(ns: &Netns, addr: &str, port: u16, sport: Option<u16>) {
    talk_on_cpu(ns, None, addr, port, sport);
}

/// [`talk`], with the client pinned to `cpu` if given (with veth, the
/// monitored host's XDP program runs on the sender's CPU).
fn talk_on_cpu(ns: &Netns, cpu: Option<usize>, addr: &str, port: u16, sport: Option<u16>) {
    let from = sport.map(|p| format!("-p {p}")).unwrap_or_default();
    let pin = cpu.map(|c| format!("taskset -c {c} ")).unwrap_or_default();
    let out = ns
        .run(
            T,
            "sh",
            &[
                "-c",
                &format!("echo hello-{port} | {pin}nc -N -w 5 {from} {addr} {port}"),
            ],
        )
        .unwrap_or_else(|e| panic!("nc {addr} {port}: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("hello-{port}"),
        "no echo from {addr}:{port}"
    );
}

/// A real PostgreSQL session from `ns`: one query over TCP.
fn psql(ns: &Netns, addr: &str) {
    let answer =
        services::psql(ns, addr, "select 'pg-' || 6 * 7").unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(answer, "pg-42");
}

fn postgres(ns: &Netns, dir: &TempDir) -> Background {
    services::postgres(ns, dir).unwrap_or_else(|e| panic!("{e:#}"))
}

/// One UDP datagram from `client` to a closed `port` on `server` (IPv4
/// `addr`), from `sport`; checked to have arrived by the server's count of
/// datagrams to closed ports (each answered by ICMP port unreachable).
fn udp_to_closed_port(client: &Netns, server: &Netns, addr: &str, port: u16, sport: u16) {
    let before = udp_no_ports(server);
    // socat's exit status reflects the ICMP error when it arrives in time.
    let _ = client
        .command(T, "sh")
        .args([
            "-c",
            &format!("printf x | socat -t 0.2 - UDP4:{addr}:{port},sourceport={sport}"),
        ])
        .output();
    assert_eq!(
        udp_no_ports(server),
        before + 1,
        "the datagram did not arrive"
    );
}

/// Udp NoPorts of /proc/net/snmp in `ns`.
fn udp_no_ports(ns: &Netns) -> u64 {
    let out = ns.run(T, "cat", &["/proc/net/snmp"]).expect("snmp");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (
        udp.next().expect("Udp header"),
        udp.next().expect("Udp values"),
    );
    let col = names
        .split_whitespace()
        .position(|n| n == "NoPorts")
        .expect("NoPorts");
    values
        .split_whitespace()
        .nth(col)
        .and_then(|v| v.parse().ok())
        .expect("NoPorts value")
}

/// An nmap SYN scan of `ports` on `addr` from `ns`, one probe per port;
/// returns port → state, and checks that every port was answered (open or
/// closed), so that every probe reached the monitored host.
fn nmap_syn_scan(ns: &Netns, addr: &str, ports: &[u16]) -> BTreeMap<u16, String> {
    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut args = vec!["-sS", "-Pn", "-n", "-p", &list, "--max-retries", "0"];
    if addr.contains(':') {
        args.push("-6");
    }
    args.push(addr);
    let out = ns.run(T, "nmap", &args).expect("nmap");
    let text = String::from_utf8_lossy(&out.stdout);
    let states: BTreeMap<u16, String> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let port = w.next()?.strip_suffix("/tcp")?.parse().ok()?;
            Some((port, w.next()?.to_string()))
        })
        .collect();
    for port in ports {
        let state = states.get(port).map(String::as_str);
        assert!(
            matches!(state, Some("open" | "closed")),
            "nmap: port {port} {state:?} (every probe must be answered)\n{text}"
        );
    }
    states
}

// ------------------------------------------------------------- the events --

/// One record of the events file, every field the contract names checked
/// for presence and type.
#[derive(Debug, Clone)]
struct Event {
    kind: String,
    iface: String,
    direction: String,
    proto: String,
    src: String,
    dst: String,
    sport: u16,
    dport: u16,
    count: u64,
    reply_packets: u64,
    reason: String,
    rule: Option<String>,
    source: Option<String>,
    peer_roles: Vec<String>,
    note: String,
    first_seen: Instant,
    last_seen: Instant,
}

/// An RFC 3339 UTC timestamp as (date and time to the second, nanoseconds):
/// ordered like the instants it names.
type Instant = (String, u32);

fn instant(t: &str) -> Instant {
    let parsed = t.strip_suffix('Z').and_then(|body| {
        let (secs, frac) = body.split_once('.').unwrap_or((body, "0"));
        let shape = secs.len() == 19 && secs.as_bytes()[10] == b'T' && frac.len() <= 9;
        let nanos = format!("{frac:0<9}").parse().ok()?;
        shape.then(|| (secs.to_string(), nanos))
    });
    parsed.unwrap_or_else(|| panic!("not an RFC 3339 UTC timestamp: {t:?}"))
}

/// What identifies a flow: (initiator, responder, service port, protocol).
type Flow = (String, String, u16, String);

impl Event {
    fn parse(v: &Value) -> Self {
        let text = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k:?} missing or not text in {v}"))
                .to_string()
        };
        let num = |k: &str| {
            v[k].as_u64()
                .unwrap_or_else(|| panic!("{k:?} missing or not a number in {v}"))
        };
        let opt = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        instant(&text("ts"));
        let (first_seen, last_seen) = (instant(&text("first_seen")), instant(&text("last_seen")));
        assert!(first_seen <= last_seen, "first_seen after last_seen: {v}");
        let port = |k: &str| u16::try_from(num(k)).unwrap_or_else(|_| panic!("{k} in {v}"));
        Self {
            kind: text("kind"),
            iface: text("iface"),
            direction: text("direction"),
            proto: text("proto"),
            src: text("src"),
            dst: text("dst"),
            sport: port("sport"),
            dport: port("dport"),
            count: num("count"),
            reply_packets: num("reply_packets"),
            reason: text("reason"),
            rule: opt("rule"),
            source: opt("source"),
            peer_roles: v["peer_roles"]
                .as_array()
                .unwrap_or_else(|| panic!("peer_roles missing in {v}"))
                .iter()
                .map(|r| r.as_str().expect("role name").to_string())
                .collect(),
            note: text("note"),
            first_seen,
            last_seen,
        }
    }

    fn flow(&self) -> Flow {
        (
            self.src.clone(),
            self.dst.clone(),
            self.dport,
            self.proto.clone(),
        )
    }
}

fn flow(src: &str, dst: &str, dport: u16, proto: &str) -> Flow {
    (src.into(), dst.into(), dport, proto.into())
}

/// The "unexpected" records by flow; fails if a flow was reported twice or
/// a record has another kind than "unexpected" or "update".
fn unexpected_by_flow(events: &[Event]) -> BTreeMap<Flow, Event> {
    let mut by_flow: BTreeMap<Flow, Event> = BTreeMap::new();
    // The latest record of each flow: an update refreshes a flow reported
    // before it, with the same first sighting, and no count or last sighting
    // going back.
    let mut latest: BTreeMap<Flow, &Event> = BTreeMap::new();
    for e in events {
        let f = e.flow();
        match e.kind.as_str() {
            "unexpected" => {
                if let Some(first) = by_flow.insert(f.clone(), e.clone()) {
                    panic!("flow reported twice:\n{first:?}\n{e:?}");
                }
            }
            "update" => {
                let first = by_flow
                    .get(&f)
                    .unwrap_or_else(|| panic!("update before its flow's event: {e:?}"));
                assert_eq!(
                    (&e.first_seen, e.sport, &e.reason, &e.iface, &e.direction),
                    (
                        &first.first_seen,
                        first.sport,
                        &first.reason,
                        &first.iface,
                        &first.direction
                    ),
                    "update differs from its event:\n{first:?}\n{e:?}"
                );
            }
            other => panic!("unexpected kind {other:?}: {e:?}"),
        }
        if let Some(prev) = latest.insert(f, e) {
            assert!(
                prev.count <= e.count
                    && prev.reply_packets <= e.reply_packets
                    && prev.last_seen <= e.last_seen,
                "went back:\n{prev:?}\n{e:?}"
            );
        }
    }
    by_flow
}

fn updates<'a>(events: &'a [Event], f: &Flow) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.kind == "update" && e.flow() == *f)
        .collect()
}

/// Asserts that the reported flows are exactly `expected`, each with its
/// reason, and returns them.
fn assert_exactly(events: &[Event], expected: &[(Flow, &str)]) -> BTreeMap<Flow, Event> {
    let got = unexpected_by_flow(events);
    let want: BTreeMap<Flow, &str> = expected.iter().cloned().collect();
    let got_keys: BTreeSet<&Flow> = got.keys().collect();
    let want_keys: BTreeSet<&Flow> = want.keys().collect();
    assert_eq!(
        got_keys,
        want_keys,
        "reported flows (left) differ from the unexpected ones (right)\n\
         missing: {:?}\nextra: {:?}\nall records: {events:#?}",
        want_keys.difference(&got_keys).collect::<Vec<_>>(),
        got_keys.difference(&want_keys).collect::<Vec<_>>(),
    );
    for (f, reason) in &want {
        assert_eq!(got[f].reason, *reason, "{:?}", got[f]);
    }
    got
}

/// The compiled thoughtspot policy, as `policy show --format json` lists it.
fn policy_rules() -> Vec<Value> {
    let done = run_portconform(&[
        "policy",
        "show",
        "--profile",
        "thoughtspot",
        "--format",
        "json",
    ])
    .expect("policy show");
    assert!(done.status.success(), "{}", done.stderr);
    let v: Value = serde_json::from_str(&done.stdout).expect("policy JSON");
    v["rules"].as_array().expect("rules").clone()
}

fn covers(rule: &Value, proto: &str, port: u16) -> bool {
    rule["active"] == Value::Bool(true)
        && rule["proto"] == proto
        && rule["ports"].as_array().is_some_and(|ranges| {
            ranges.iter().any(|r| {
                let (lo, hi) = (r[0].as_u64().unwrap_or(1), r[1].as_u64().unwrap_or(0));
                (lo..=hi).contains(&u64::from(port))
            })
        })
}

/// An event's explanation agrees with `policy show`: "no-rule" when no
/// active rule covers the port (the dynamic range aside: it is moved out of
/// the way), else "peer-not-allowed" naming a rule that covers the port, for
/// another role than the peer's, with that rule's own doc:line.
fn assert_explained_by_policy(e: &Event, rules: &[Value]) {
    let covering: Vec<&Value> = rules
        .iter()
        .filter(|r| r["dynamic_ports"] != Value::Bool(true) && covers(r, &e.proto, e.dport))
        .collect();
    match e.reason.as_str() {
        "no-rule" => {
            assert!(
                covering.is_empty(),
                "no-rule, yet {covering:?} cover it: {e:?}"
            );
            assert!(e.note.contains(&e.dport.to_string()), "{e:?}");
        }
        "peer-not-allowed" => {
            let id = e
                .rule
                .as_deref()
                .unwrap_or_else(|| panic!("no rule: {e:?}"));
            let rule = covering
                .iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("rule {id} does not cover the port: {e:?}"));
            assert_eq!(e.source.as_deref(), rule["source"].as_str(), "{e:?}");
            assert!(is_doc_line(e.source.as_deref().unwrap_or("")), "{e:?}");
            let role = rule["peer_role"].as_str().unwrap_or_default();
            assert!(!e.peer_roles.iter().any(|r| r == role), "{e:?}");
            assert!(
                e.note.contains(role),
                "the note names the allowed role: {e:?}"
            );
        }
        other => panic!("reason {other:?}: {e:?}"),
    }
}

/// `doc:line`: a document name, a colon and a line number.
fn is_doc_line(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(doc, line)| !doc.is_empty() && line.parse::<u32>().is_ok_and(|n| n > 0))
}

/// The only active rule that covers tcp `port` (id, source).
fn only_rule_for(rules: &[Value], port: u16) -> (String, String) {
    let covering: Vec<&Value> = rules.iter().filter(|r| covers(r, "tcp", port)).collect();
    assert_eq!(covering.len(), 1, "rules covering tcp {port}: {covering:?}");
    (
        covering[0]["id"].as_str().expect("id").into(),
        covering[0]["source"].as_str().expect("source").into(),
    )
}

// ------------------------------------------------------------------ tests --

#[test]
fn events_hold_exactly_the_unexpected_flows() {
    let mut lab = lab(10);
    // node1: PostgreSQL, ZooKeeper's client port, an admin HTTP port and a
    // port no document allows; node2 serves 2181 too (node1 connects out to
    // it), and the admin host a port nothing allows node1 to reach.
    lab.keep(postgres(&lab.node1, &lab.dir));
    for port in [2181, 2101, 6666] {
        lab.keep(echo_server(&lab.node1, port));
    }
    lab.keep(echo_server(&lab.node2, 2181));
    lab.keep(echo_server(&lab.admin, 7070));
    let rules = policy_rules();
    let mon = lab.monitor("60");
    let (n1, n2, a1, adm) = (&lab.n1, &lab.n2, &lab.a1, &lab.adm);

    // Allowed: between nodes on 2181 (both ways, IPv4 and IPv6) and 5432;
    // from the admin host on 2101.
    talk(&lab.node2, &n1.v4, 2181, None);
    talk(&lab.node2, &n1.v6, 2181, None);
    psql(&lab.node2, &n1.v4);
    psql(&lab.node2, &n1.v6);
    talk(&lab.admin, &a1.v4, 2101, None);
    talk(&lab.node1, &n2.v4, 2181, None);

    // Unexpected: a port no document allows, from a node (IPv4, IPv6, UDP:
    // nothing listens there, so node1 answers with ICMP port unreachable,
    // which must not be a flow of its own); node-only ports from the admin
    // host; node1 connecting out to the admin host on a port nothing allows.
    talk(&lab.node2, &n1.v4, 6666, Some(45001));
    talk(&lab.node2, &n1.v6, 6666, Some(45002));
    udp_to_closed_port(&lab.node2, &lab.node1, &n1.v4, 6666, 45005);
    talk(&lab.admin, &a1.v4, 2181, Some(45003));
    psql(&lab.admin, &a1.v4);
    talk(&lab.node1, &adm.v4, 7070, Some(45004));
    std::thread::sleep(Duration::from_millis(300));
    let events = lab.stop(mon);

    let zk = flow(&adm.v4, &a1.v4, 2181, "tcp");
    let pg = flow(&adm.v4, &a1.v4, 5432, "tcp");
    let out = flow(&a1.v4, &adm.v4, 7070, "tcp");
    let v4 = flow(&n2.v4, &n1.v4, 6666, "tcp");
    let v6 = flow(&n2.v6, &n1.v6, 6666, "tcp");
    let udp = flow(&n2.v4, &n1.v4, 6666, "udp");
    let got = assert_exactly(
        &events,
        &[
            (v4.clone(), "no-rule"),
            (v6.clone(), "no-rule"),
            (udp.clone(), "no-rule"),
            (zk.clone(), "peer-not-allowed"),
            (pg.clone(), "peer-not-allowed"),
            (out.clone(), "no-rule"),
        ],
    );
    for e in got.values() {
        assert_explained_by_policy(e, &rules);
    }
    // Where, which way and from which port each was seen.
    for (f, iface, direction, sport, roles) in [
        (&v4, &n1.ifname, "inbound", Some(45001), "nodes"),
        (&v6, &n1.ifname, "inbound", Some(45002), "nodes"),
        (&udp, &n1.ifname, "inbound", Some(45005), "nodes"),
        (&zk, &a1.ifname, "inbound", Some(45003), "admin"),
        (&pg, &a1.ifname, "inbound", None, "admin"),
        (&out, &a1.ifname, "outbound", Some(45004), "admin"),
    ] {
        let e = &got[f];
        assert_eq!(
            (&e.iface, e.direction.as_str(), e.peer_roles.clone()),
            (iface, direction, vec![roles.to_string()]),
            "{e:?}"
        );
        if let Some(sport) = sport {
            assert_eq!(e.sport, sport, "{e:?}");
        }
    }
    // The nearest rule of a node-only port reached from the admin host is
    // the one rule for that port, with its place in the document.
    for (f, port) in [(&zk, 2181), (&pg, 5432)] {
        let (id, source) = only_rule_for(&rules, port);
        assert_eq!(got[f].rule.as_deref(), Some(id.as_str()), "{:?}", got[f]);
        assert_eq!(got[f].source.as_deref(), Some(source.as_str()));
    }
    // Each TCP conversation went on after its first packet: the counts
    // refreshed on exit (--refresh 60 outlasts the test) have both ways.
    for f in [&v4, &v6, &zk, &pg, &out] {
        let last = updates(&events, f)
            .last()
            .copied()
            .unwrap_or_else(|| panic!("no update for {f:?} on exit: {events:#?}"))
            .clone();
        assert!(last.count >= 4 && last.reply_packets >= 3, "{last:?}");
    }
}

#[test]
fn nmap_syn_scan_gives_one_event_per_unexpected_port() {
    let mut lab = lab(20);
    // Some probed ports open, some closed: both are answered, both judged.
    for port in [2181, 5432, 6666] {
        lab.keep(echo_server(&lab.node1, port));
    }
    let rules = policy_rules();
    let mon = lab.monitor("60");
    let (n1, n2, a1, adm) = (&lab.n1, &lab.n2, &lab.a1, &lab.adm);

    // From the admin host: 2101, 2201 and 4001 are allowed from admin; 22
    // only from vendor support; 80, 2181, 5432 and 8080 only from nodes;
    // 6666 and 7777 from nobody.
    let admin_ports = [22, 80, 2101, 2181, 2201, 4001, 5432, 6666, 7777, 8080];
    let admin_unexpected = [
        (22, "peer-not-allowed"),
        (80, "peer-not-allowed"),
        (2181, "peer-not-allowed"),
        (5432, "peer-not-allowed"),
        (6666, "no-rule"),
        (7777, "no-rule"),
        (8080, "peer-not-allowed"),
    ];
    // From the other node: all allowed but 6666, 7777 and 9999.
    let node_ports = [2101, 2181, 2888, 5432, 6666, 7777, 8080, 9999];
    let node_unexpected = [(6666, "no-rule"), (7777, "no-rule"), (9999, "no-rule")];

    // Every scan twice: the second one adds no event. What nmap saw, by the
    // flow its probe of a port is: (source, target, port) -> state.
    let mut states = BTreeMap::new();
    for _ in 0..2 {
        for (ns, from, to, ports) in [
            (&lab.admin, &adm.v4, &a1.v4, &admin_ports[..]),
            (&lab.node2, &n2.v4, &n1.v4, &node_ports[..]),
            (&lab.node2, &n2.v6, &n1.v6, &node_ports[..]),
        ] {
            for (port, state) in nmap_syn_scan(ns, to, ports) {
                states.insert(flow(from, to, port, "tcp"), state);
            }
        }
    }
    assert_eq!(states[&flow(&adm.v4, &a1.v4, 6666, "tcp")], "open");
    std::thread::sleep(Duration::from_millis(300));
    let events = lab.stop(mon);

    let mut expected = Vec::new();
    for (port, reason) in admin_unexpected {
        expected.push((flow(&adm.v4, &a1.v4, port, "tcp"), reason));
    }
    for (port, reason) in node_unexpected {
        expected.push((flow(&n2.v4, &n1.v4, port, "tcp"), reason));
        expected.push((flow(&n2.v6, &n1.v6, port, "tcp"), reason));
    }
    let got = assert_exactly(&events, &expected);
    for e in got.values() {
        assert_explained_by_policy(e, &rules);
        assert_eq!(e.direction, "inbound", "{e:?}");
    }
    // One probe per scan and port, answered by a RST from a closed port or
    // a SYN-ACK from an open one, which the scanner's kernel (that knows no
    // such connection) resets: 1 or 2 packets per scan from the scanner.
    for f in got.keys() {
        let last = updates(&events, f).last().copied().cloned();
        let last = last.unwrap_or_else(|| panic!("no update for {f:?}: {events:#?}"));
        let per_scan = if states[f] == "open" { 2 } else { 1 };
        assert_eq!(
            (last.count, last.reply_packets),
            (2 * per_scan, 2),
            "{} port: {last:?}",
            states[f]
        );
    }
}

#[test]
fn hping3_flood_of_one_flow_is_one_event_with_its_count() {
    const N: u64 = 2000;
    let lab = lab(30);
    // Refreshed every second, so updates come during the flood and on exit.
    let mon = lab.monitor("1");
    // From a node, source port fixed (-k): SYNs at 1000/s to a closed port,
    // each answered by a RST. The client port 40000 is in the host's default
    // dynamic range: the RSTs still count as this flow's replies.
    let out = lab
        .node2
        .command(T, "hping3")
        .args(["-q", "-S", "-s", "40000", "-k", "-p", "7777"])
        .args(["-c", &N.to_string(), "-i", "u1000", &lab.n1.v4])
        .output()
        .expect("hping3");
    let stats =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        stats.contains(&format!("{N} packets transmitted")),
        "hping3 did not send {N} packets: {stats}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let events = lab.stop(mon);

    let f = flow(&lab.n2.v4, &lab.n1.v4, 7777, "tcp");
    let got = assert_exactly(&events, &[(f.clone(), "no-rule")]);
    let first = &got[&f];
    assert_eq!(
        (first.sport, first.iface.as_str()),
        (40000, lab.n1.ifname.as_str())
    );
    assert!(first.count >= 1 && first.count <= N, "{first:?}");
    // Counts never go back (unexpected_by_flow checks) and end at N.
    let ups = updates(&events, &f);
    let last = ups
        .last()
        .unwrap_or_else(|| panic!("no update: {events:#?}"));
    assert_eq!((last.count, last.reply_packets), (N, N), "{last:?}");
    // The flood outlasts two refresh periods: counts were refreshed during
    // it, not only on exit.
    assert!(
        ups.iter().any(|u| u.count < N),
        "no refresh during the flood: {ups:#?}"
    );
}

#[test]
fn client_reconnecting_from_new_ports_is_one_flow() {
    const CONNECTIONS: usize = 5;
    let mut lab = lab(40);
    lab.keep(echo_server(&lab.node1, 6666));
    // tcpdump on node2's side of the link is the oracle for the counts.
    let pcap = lab.dir.file("node2.pcap");
    let tcpdump = lab
        .node2
        .spawn(
            "tcpdump",
            &[
                "-i",
                &lab.n2.ifname,
                "-nn",
                "-U",
                "--immediate-mode",
                "-Z",
                "root",
                "-w",
                &pcap,
                "tcp",
            ],
        )
        .expect("tcpdump");
    wait_for_file(&pcap);
    // --refresh 60 outlasts the test: the only update is the one on exit.
    let mon = lab.monitor("60");
    // Each connection from another CPU where there are several: the flow's
    // state in the kernel must still be one.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 0..CONNECTIONS {
        talk_on_cpu(&lab.node2, Some(i % cpus), &lab.n1.v4, 6666, None);
    }
    std::thread::sleep(Duration::from_millis(300));
    let events = lab.stop(mon);
    drop(tcpdump);

    let (n1, n2) = (&lab.n1.v4, &lab.n2.v4);
    let text = String::from_utf8_lossy(
        &sh(Command::new("tcpdump").args(["-nn", "-r", &pcap]))
            .expect("tcpdump -r")
            .stdout,
    )
    .into_owned();
    let to_server = format!(" > {n1}.6666: ");
    let from_server = format!(" {n1}.6666 > {n2}.");
    let sent = text.lines().filter(|l| l.contains(&to_server)).count() as u64;
    let replies = text.lines().filter(|l| l.contains(&from_server)).count() as u64;
    let syn_ports: BTreeSet<&str> = text
        .lines()
        .filter(|l| l.contains(&to_server) && l.contains("Flags [S]"))
        .filter_map(|l| l.split(&format!("{n2}.")).nth(1)?.split(' ').next())
        .collect();
    assert_eq!(
        syn_ports.len(),
        CONNECTIONS,
        "client ports: {syn_ports:?}\n{text}"
    );

    let f = flow(n2, n1, 6666, "tcp");
    let got = assert_exactly(&events, &[(f.clone(), "no-rule")]);
    assert!(
        syn_ports.contains(got[&f].sport.to_string().as_str()),
        "{:?}",
        got[&f]
    );
    let ups = updates(&events, &f);
    assert_eq!(ups.len(), 1, "one update, on exit: {ups:#?}");
    assert_eq!(
        (ups[0].count, ups[0].reply_packets),
        (sent, replies),
        "counts vs tcpdump on node2:\n{text}"
    );
}

/// Waits (bounded) until tcpdump has opened its output file, which it does
/// once capturing.
fn wait_for_file(path: &str) {
    wait_until(
        || std::fs::metadata(path).is_ok_and(|m| m.len() >= 24),
        &format!("{path} never appeared"),
    );
}

#[test]
fn connections_open_before_the_monitor_started_are_judged_by_their_service_port() {
    let mut lab = lab(50);
    for port in [2181, 6666] {
        lab.keep(echo_server(&lab.node1, port));
    }
    lab.keep(echo_server(&lab.admin, 7070));
    // Long-lived clients, connected before the monitor attaches and still
    // talking after (a line every 0.2 s for 6 s), so the monitor never sees
    // their SYNs: node2 to ZooKeeper's port on node1 (allowed between nodes)
    // and to a port nothing allows; node1 out to the admin host on a port
    // nothing allows.
    let clients = [
        (&lab.node2, &lab.n1.v4, 2181),
        (&lab.node2, &lab.n1.v4, 6666),
        (&lab.node1, &lab.adm.v4, 7070),
    ];
    let mut running = Vec::new();
    for (ns, addr, port) in clients {
        let script = format!(
            "i=0; while [ $i -lt 30 ]; do echo tick-$i; i=$((i+1)); sleep 0.2; done \
             | nc -N -w 5 {addr} {port} >/dev/null"
        );
        running.push(ns.spawn("sh", &["-c", &script]).expect("client"));
    }
    let established = |ns: &Netns, port: u16| {
        let filter = format!("dport = :{port}");
        let out = ns
            .run(T, "ss", &["-Htn", "state", "established", &filter])
            .expect("ss");
        !out.stdout.is_empty()
    };
    let all = |want: bool| {
        clients
            .iter()
            .all(|(ns, _, port)| established(ns, *port) == want)
    };
    wait_until(|| all(true), "clients connected");
    let mon = lab.monitor_with("60", &["--dynamic-ports", DYNAMIC_PORTS]);
    wait_until(|| all(false), "clients done");
    drop(running);
    std::thread::sleep(Duration::from_millis(300));
    let events = lab.stop(mon);

    // Mid-stream, the port that is not the client's ephemeral one serves:
    // one inbound flow from node2, one outbound flow from node1.
    let inbound = flow(&lab.n2.v4, &lab.n1.v4, 6666, "tcp");
    let outbound = flow(&lab.a1.v4, &lab.adm.v4, 7070, "tcp");
    let got = assert_exactly(
        &events,
        &[(inbound.clone(), "no-rule"), (outbound.clone(), "no-rule")],
    );
    for (f, direction) in [(&inbound, "inbound"), (&outbound, "outbound")] {
        assert_eq!(got[f].direction, direction, "{:?}", got[f]);
        let last = updates(&events, f).last().copied().cloned();
        let last = last.unwrap_or_else(|| panic!("no update on exit: {events:#?}"));
        assert!(last.count >= 10 && last.reply_packets >= 10, "{last:?}");
    }
}

/// Polls `cond` every 50 ms, failing after T.
fn wait_until(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + T;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {T:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn icmp_echo_both_ways_is_two_flows_with_their_own_counts() {
    let lab = lab(60);
    let mon = lab.monitor("60");
    // No document allows ICMP echo: node2 pings node1 5 times, then node1
    // pings node2 twice. Two flows, each initiated by the one that pings.
    lab.node2
        .run(T, "ping", &["-q", "-c", "5", "-i", "0.05", &lab.n1.v4])
        .expect("ping node1");
    lab.node1
        .run(T, "ping", &["-q", "-c", "2", "-i", "0.05", &lab.n2.v4])
        .expect("ping node2");
    std::thread::sleep(Duration::from_millis(300));
    let events = lab.stop(mon);

    // ICMP flows are keyed by the request's type: echo request, 8.
    let inbound = flow(&lab.n2.v4, &lab.n1.v4, 8, "icmp");
    let outbound = flow(&lab.n1.v4, &lab.n2.v4, 8, "icmp");
    let got = assert_exactly(
        &events,
        &[(inbound.clone(), "no-rule"), (outbound.clone(), "no-rule")],
    );
    assert_eq!(got[&inbound].direction, "inbound");
    assert_eq!(got[&outbound].direction, "outbound");
    // The first sighting of node1's pings is its first echo request.
    assert_eq!(
        (got[&outbound].count, got[&outbound].reply_packets),
        (1, 0),
        "{:?}",
        got[&outbound]
    );
    for (f, n) in [(&inbound, 5), (&outbound, 2)] {
        let last = updates(&events, f).last().copied().cloned();
        let last = last.unwrap_or_else(|| panic!("no update for {f:?}: {events:#?}"));
        assert_eq!((last.count, last.reply_packets), (n, n), "{last:?}");
    }
}
