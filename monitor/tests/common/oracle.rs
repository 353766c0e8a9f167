//! tshark as the oracle of the replay tests (issue 18): what it dissects as
//! the outermost IP packet of each frame of a capture, what replay's parser
//! reads in the same frame, and whether the two agree. Both are reduced to
//! one [`Ip`] per frame: addresses, protocol, and the ports, TCP flags or
//! ICMP type and code, as far as each side shows them.
//!
//! tshark shows inner headers too (the packet an ICMP error quotes, a
//! tunnel's payload) as further values of the same fields; the outermost
//! one is the first, and `frame.protocols` says which protocol follows it.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    process::Command,
};

use monitor::replay::{capture::CaptureSet, parse_frame};
use monitor_common::packet::{Family, Fragment, ParseError, Parsed};

/// Runs `tool --version`, or fails naming the Debian package that ships
/// it: the tests that use these tools must not pass by skipping them.
pub fn require(tool: &str, package: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{tool}` is missing: install Debian's {package} package (`cargo xtask setup` does)"
    );
}

/// The layer after IP, as far as it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// Flags where they were read (tshark shows ports of a header cut
    /// short by the IP total length, but not its flags).
    Tcp {
        sport: u16,
        dport: u16,
        flags: Option<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    /// ICMP or ICMPv6.
    Icmp {
        kind: u8,
        code: u8,
    },
}

/// The outermost IP packet of a frame, as one side reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol, where known (after IPv6's extension
    /// headers).
    pub proto: Option<u8>,
    pub l4: Option<L4>,
}

/// One frame as tshark dissects it.
#[derive(Debug, Clone)]
pub struct Dissected {
    /// `frame.protocols`, e.g. `eth:ethertype:vlan:ethertype:ip:tcp`.
    pub protocols: String,
    pub ip: Option<Ip>,
    /// The outer IP header tshark found was labelled IPv4 by the link but
    /// is an IPv6 header (Wireshark's IPv4 dissector hands it on).
    pub v6_under_v4_label: bool,
    /// The outer IPv4 header's total length (`ip.len`) and header length.
    pub ip_len: Option<(u16, u8)>,
    /// The outer TCP header's length (`tcp.hdr_len`).
    pub tcp_hdr_len: Option<u8>,
    pub len: u32,
    pub cap_len: u32,
}

impl Dissected {
    /// VLAN tags before the outer IP header.
    pub fn vlan_tags(&self) -> usize {
        self.tokens()
            .take_while(|t| *t != "ip" && *t != "ipv6")
            .filter(|t| matches!(*t, "vlan" | "ieee8021ad"))
            .count()
    }

    /// IPv6 extension headers (AH included) after the outer IPv6 header.
    pub fn ipv6_extensions(&self) -> usize {
        self.tokens()
            .skip_while(|t| *t != "ipv6")
            .skip(1)
            .take_while(|t| t.starts_with("ipv6.") || *t == "ah")
            .count()
    }

    fn tokens(&self) -> impl Iterator<Item = &str> {
        self.protocols.split(':')
    }
}

/// The fields read, in this order.
const FIELDS: [&str; 22] = [
    "frame.protocols",
    "frame.len",
    "frame.cap_len",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.len",
    "ip.hdr_len",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "tcp.hdr_len",
    "udp.srcport",
    "udp.dstport",
    "icmp.type",
    "icmp.code",
    "icmpv6.type",
    "icmpv6.code",
    "frame.number",
    "ip.version",
];

/// Options every run uses: names are not resolved; IP fragments are not
/// reassembled, so each fragment is dissected on its own as the kernel
/// reads it (a first fragment's ports, none in later ones); and link type
/// 149, the user DLT 2 that Darwin uses for PKTAP, is dissected as PKTAP
/// as on a Mac (libpcap writes 258 in files, Apple's tcpdump 149).
const OPTIONS: [&str; 7] = [
    "-n",
    "-o",
    "ip.defragment:FALSE",
    "-o",
    "ipv6.defragment:FALSE",
    "-o",
    "uat:user_dlts:\"User 2 (DLT=149)\",\"pktap\",\"0\",\"\",\"0\",\"\"",
];

/// What tshark dissects in each frame of `file`, in file order.
pub fn tshark(file: &Path) -> Vec<Dissected> {
    let mut cmd = Command::new("tshark");
    cmd.args(OPTIONS).arg("-r").arg(file).args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for field in FIELDS {
        cmd.args(["-e", field]);
    }
    let out = cmd
        .output()
        .expect("tshark (Debian's tshark package; `cargo xtask setup` installs it)");
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("tshark prints UTF-8")
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), FIELDS.len(), "tshark line {line:?}");
            assert_eq!(f[20], (i + 1).to_string(), "tshark prints frames in order");
            dissected(&f)
        })
        .collect()
}

/// The first of a field's values.
fn first(field: &str) -> Option<&str> {
    field.split(',').next().filter(|v| !v.is_empty())
}

/// The first of a field's values as a number.
fn num<T: std::str::FromStr>(field: &str) -> Option<T> {
    first(field).and_then(|v| v.parse().ok())
}

/// The first of a field's values, printed in hex (`0x0012`).
fn hex(field: &str) -> Option<u16> {
    first(field).and_then(|v| u16::from_str_radix(v.trim_start_matches("0x"), 16).ok())
}

/// One line of tshark's fields, in [`FIELDS`] order.
fn dissected(f: &[&str]) -> Dissected {
    let protocols = f[0].to_string();
    let tokens: Vec<&str> = protocols.split(':').collect();
    let outer = tokens.iter().position(|t| *t == "ip" || *t == "ipv6");
    let v4_addrs = first(f[3]).zip(first(f[4]));
    let v6_addrs = first(f[8]).zip(first(f[9]));
    let mut v6_under_v4_label = false;
    // The outer IP header, and the index of its token.
    let found = match outer {
        // An IPv6 header under an IPv4 label, which Wireshark's IPv4
        // dissector hands to IPv6 (the addresses of any IPv4 header
        // further in are not the outer packet's).
        Some(i) if tokens[i] == "ip" && num::<u8>(f[21]) == Some(6) => {
            v6_under_v4_label = true;
            v6_addrs.map(|a| (a, i + 1, true))
        }
        // No addresses: a header Wireshark gave up on.
        Some(i) if tokens[i] == "ip" => v4_addrs.map(|a| (a, i, false)),
        Some(i) => v6_addrs.map(|a| (a, i, true)),
        None => None,
    };
    let ip = found.map(|((src, dst), at, v6)| {
        let addr = |s: &str| -> IpAddr { s.parse().expect("tshark prints addresses") };
        // The protocol after the outer header: for IPv6, past its
        // extension headers (AH included, which the kernel walks too).
        let next = tokens[at + 1..]
            .iter()
            .find(|t| !(v6 && (t.starts_with("ipv6.") || **t == "ah")))
            .copied();
        let l4 = match next {
            Some("tcp") => num(f[10]).zip(num(f[11])).map(|(sport, dport)| L4::Tcp {
                sport,
                dport,
                flags: hex(f[12]).map(|v| (v & 0xff) as u8),
            }),
            Some("udp") => num(f[14])
                .zip(num(f[15]))
                .map(|(sport, dport)| L4::Udp { sport, dport }),
            Some("icmp") => num(f[16])
                .zip(num(f[17]))
                .map(|(kind, code)| L4::Icmp { kind, code }),
            Some("icmpv6") => num(f[18])
                .zip(num(f[19]))
                .map(|(kind, code)| L4::Icmp { kind, code }),
            _ => None,
        };
        let proto = if v6 {
            match next {
                Some("tcp") => Some(6),
                Some("udp") => Some(17),
                Some("icmp") => Some(1),
                Some("icmpv6") => Some(58),
                _ => None,
            }
        } else {
            num(f[5])
        };
        Ip {
            src: addr(src),
            dst: addr(dst),
            proto,
            l4,
        }
    });
    Dissected {
        protocols,
        ip,
        v6_under_v4_label,
        ip_len: num(f[6]).zip(num(f[7])),
        tcp_hdr_len: num(f[13]),
        len: num(f[1]).unwrap_or(0),
        cap_len: num(f[2]).unwrap_or(0),
    }
}

/// What replay's parser reads in each frame of `file`, in file order.
pub fn replay(file: &Path) -> Vec<Result<Ip, ParseError>> {
    let mut set = CaptureSet::open(&[file.to_path_buf()]);
    assert!(set.failed.is_empty(), "{:?}", set.failed);
    let mut scratch = Vec::new();
    let mut out = Vec::new();
    set.for_each::<()>(|p, _| {
        out.push(
            parse_frame(p.link, p.data, p.orig_len, &mut scratch).map(|(parsed, _)| ip_of(&parsed)),
        );
        Ok(())
    })
    .expect("replay reads the file");
    out
}

/// A parsed packet reduced to what tshark shows of one.
pub fn ip_of(p: &Parsed) -> Ip {
    let addr = |a: [u8; 16]| -> IpAddr {
        match p.family {
            Family::V4 => Ipv4Addr::new(a[0], a[1], a[2], a[3]).into(),
            Family::V6 => Ipv6Addr::from(a).into(),
        }
    };
    let l4 = if p.fragment == Fragment::Later {
        None
    } else {
        match p.proto {
            6 => Some(L4::Tcp {
                sport: p.sport,
                dport: p.dport,
                flags: Some(p.tcp_flags),
            }),
            17 => Some(L4::Udp {
                sport: p.sport,
                dport: p.dport,
            }),
            1 | 58 => Some(L4::Icmp {
                kind: p.sport as u8,
                code: p.dport as u8,
            }),
            _ => None,
        }
    };
    Ip {
        src: addr(p.src),
        dst: addr(p.dst),
        proto: Some(p.proto),
        l4,
    }
}

/// Whether replay's reading agrees with tshark's: the same addresses, and
/// the same protocol, ports, flags, ICMP type and code wherever tshark
/// shows them. `None` if so, else what differs.
pub fn disagreement(tshark: &Ip, replay: &Ip) -> Option<String> {
    let mut diffs = Vec::new();
    if (tshark.src, tshark.dst) != (replay.src, replay.dst) {
        diffs.push("addresses");
    }
    if tshark.proto.is_some() && tshark.proto != replay.proto {
        diffs.push("protocol");
    }
    if let Some(t) = tshark.l4 {
        let alike = match (t, replay.l4) {
            (
                L4::Tcp {
                    sport,
                    dport,
                    flags,
                },
                Some(L4::Tcp {
                    sport: s,
                    dport: d,
                    flags: f,
                }),
            ) => (sport, dport) == (s, d) && (flags.is_none() || flags == f),
            (t, r) => Some(t) == r,
        };
        if !alike {
            diffs.push("layer 4");
        }
    }
    (!diffs.is_empty()).then(|| format!("{} differ", diffs.join(", ")))
}
