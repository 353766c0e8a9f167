//! The three sinks driven only through the crate's public API, the way the
//! daemon will: the same events go to JSON lines, to pcapng (with the
//! one-line description as the packet comment) and into the metrics, and each
//! output is read back by an independent reader (serde_json, tshark, a plain
//! TCP client).

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use monitor::events::{
    CapturedPacket, ConnDir, EventKind, EventRecord, IpProto, JsonlWriter, LINKTYPE_ETHERNET,
    PcapngWriter, Rotation, jsonl::rotated,
};
use monitor::metrics::{Family, Metrics, Snapshot, TrafficCounter, parse_metrics_addr, serve};

fn t(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_795_365_758 + secs, nanos)
}

fn events() -> Vec<EventRecord> {
    let mut out = Vec::new();
    let mut zk = EventRecord::new(
        EventKind::Unexpected,
        t(0, 187_872_964),
        "veth-n1",
        ConnDir::Inbound,
        IpProto::Tcp,
        "198.51.100.7".parse().unwrap(),
        40000,
        "192.0.2.1".parse().unwrap(),
        2181,
    );
    zk.peer_roles = Some(vec![]);
    zk.note = Some("2181 is allowed, but only from nodes".into());
    out.push(zk);
    let mut v6 = EventRecord::new(
        EventKind::Unexpected,
        t(1, 5),
        "veth-n2",
        ConnDir::Outbound,
        IpProto::Udp,
        "2001:db8::1".parse().unwrap(),
        53000,
        "2001:db8::99".parse().unwrap(),
        11211,
    );
    v6.count = 12;
    out.push(v6);
    let mut blocked = EventRecord::new(
        EventKind::Blocked,
        t(2, 999_999_999),
        "veth-n1",
        ConnDir::Outbound,
        IpProto::Tcp,
        "192.0.2.1".parse().unwrap(),
        41000,
        "192.0.2.2".parse().unwrap(),
        5432,
    );
    blocked.rule = Some("ts-postgres-5432".into());
    blocked.source = Some("000_2809db0a7820664a.txt:57".into());
    blocked.reason = Some("reset".into());
    out.push(blocked);
    out
}

/// Ethernet + IP + L4 header of the event's first packet, as the kernel would
/// hand it over (at most 128 bytes), and the length on the wire.
fn headers(e: &EventRecord, wire_len: usize) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    let l4: Vec<u8> = match e.proto {
        IpProto::Tcp => {
            let mut h = Vec::new();
            h.extend_from_slice(&e.sport.to_be_bytes());
            h.extend_from_slice(&e.dport.to_be_bytes());
            h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
            h
        }
        _ => {
            let mut h = Vec::new();
            h.extend_from_slice(&e.sport.to_be_bytes());
            h.extend_from_slice(&e.dport.to_be_bytes());
            h.extend_from_slice(&((wire_len - 14 - 40) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 0]);
            h
        }
    };
    match (e.src, e.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            p.extend_from_slice(&((wire_len - 14) as u16).to_be_bytes());
            p.extend_from_slice(&[0, 1, 0x40, 0, 64, e.proto.number(), 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            p.extend_from_slice(&((wire_len - 14 - 40) as u16).to_be_bytes());
            p.extend_from_slice(&[e.proto.number(), 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => unreachable!("test events use one family per event"),
    }
    p.extend_from_slice(&l4);
    p
}

#[test]
fn events_go_to_rotated_json_lines_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let evs = events();
    let mut w = JsonlWriter::open(
        &path,
        Rotation {
            max_bytes: 700,
            keep: 10,
        },
    )
    .unwrap();
    for _ in 0..3 {
        w.write_batch(&evs).unwrap();
    }
    drop(w);

    let mut files = vec![path.clone()];
    files.extend((1..=10).map(|n| rotated(&path, n)).filter(|p| p.exists()));
    files.reverse();
    assert!(files.len() > 2, "expected rotation, got {files:?}");
    let mut all = Vec::new();
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= 700, "{f:?} is {size} bytes");
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
            for k in [
                "ts",
                "kind",
                "iface",
                "direction",
                "proto",
                "src",
                "dst",
                "sport",
                "dport",
                "count",
                "first_seen",
                "last_seen",
            ] {
                assert!(keys.iter().any(|x| x == k), "{k} missing in {line}");
            }
            all.push(serde_json::from_value::<EventRecord>(v).unwrap());
        }
    }
    let want: Vec<_> = (0..3).flat_map(|_| evs.clone()).collect();
    assert_eq!(all, want);
    let last = std::fs::read_to_string(&files[files.len() - 1]).unwrap();
    assert!(last.contains(r#""kind":"blocked""#));
    assert!(last.contains(r#""reason":"reset""#));
}

#[test]
fn tshark_shows_each_event_packet_with_its_description() {
    let tshark = Path::new("/usr/bin/tshark");
    assert!(
        tshark.exists(),
        "tshark is required: install it with `apt-get install tshark`"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offending.pcapng");
    let evs = events();
    let mut w = PcapngWriter::create(&path, ["veth-n1", "veth-n2"], 1 << 20).unwrap();
    let wire_lens = [74usize, 1200, 74];
    for (e, &len) in evs.iter().zip(&wire_lens) {
        let data = headers(e, len);
        let comment = e.to_string();
        assert!(
            w.write_packet(&CapturedPacket {
                iface: &e.iface,
                linktype: LINKTYPE_ETHERNET,
                ts: e.ts,
                original_len: len as u32,
                data: &data,
                comment: &comment,
            })
            .unwrap()
        );
    }
    w.flush().unwrap();
    drop(w);

    let out = Command::new(tshark)
        .arg("-r")
        .arg(&path)
        .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=f"])
        .args(["-e", "frame.interface_name", "-e", "frame.len"])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.dstport",
        ])
        .args(["-e", "frame.time_epoch", "-e", "frame.comment"])
        .output()
        .expect("cannot run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for ((row, e), len) in rows.iter().zip(&evs).zip(wire_lens) {
        assert_eq!(row[0], e.iface);
        assert_eq!(row[1], len.to_string());
        let src = if e.src.is_ipv4() { row[2] } else { row[3] };
        assert_eq!(src, e.src.to_string());
        let dport = if e.proto == IpProto::Tcp {
            row[4]
        } else {
            row[5]
        };
        assert_eq!(dport, e.dport.to_string());
        let ts = e.ts.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(row[6], format!("{}.{:09}", ts.as_secs(), ts.subsec_nanos()));
        assert_eq!(row[7], e.to_string());
    }
}

#[tokio::test]
async fn a_scrape_sees_the_latest_snapshot() {
    // What `--metrics 9464` would bind, moved to a free port for the test.
    let mut addr = parse_metrics_addr("9464").unwrap();
    assert!(addr.ip().is_loopback());
    addr.set_port(0);
    let metrics = Arc::new(Metrics::new());
    let server = serve(addr, Arc::clone(&metrics)).await.unwrap();
    metrics.update(Snapshot {
        traffic: vec![TrafficCounter {
            iface: "veth-n1".into(),
            direction: ConnDir::Inbound,
            family: Family::Ipv6,
            proto: IpProto::Icmpv6,
            packets: 3,
            bytes: 312,
        }],
        unexpected_flows: events().len() as u64,
        ..Snapshot::default()
    });
    let bound = server.local_addr();
    let body = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(bound).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    let body = body.split_once("\r\n\r\n").unwrap().1;
    assert!(body.contains(
        "portconform_packets_total{iface=\"veth-n1\",direction=\"inbound\",family=\"ipv6\",proto=\"icmpv6\"} 3\n"
    ));
    assert!(body.contains("portconform_unexpected_flows_total 3\n"));
    // Every sample line is `name{labels} value` with a numeric value.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
    server.abort();
}
