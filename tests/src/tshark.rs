//! tshark as an independent oracle: its conversation tables (`-z conv,tcp`,
//! `-z conv,udp`) and a per-packet field dump, read into plain numbers.
//!
//! The conversation table's layout is read from its own header rather than
//! assumed: which of the two direction columns is `->` (A to B) comes from
//! the header line, and byte counts are taken only where tshark prints them
//! exactly (`5272 bytes`, not `10 kB`). A data line that does not parse is
//! an error, never skipped, so a format change fails loudly.

use std::{net::IpAddr, path::Path, process::Command};

use anyhow::{Context as _, bail};

use crate::lab::sh;

/// Frames and bytes one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Way {
    pub frames: u64,
    /// `None` when tshark rounded it (`10 kB`).
    pub bytes: Option<u64>,
}

/// One row of a conversation table: A is the left endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    pub a: (IpAddr, u16),
    pub b: (IpAddr, u16),
    pub a_to_b: Way,
    pub b_to_a: Way,
    pub total_frames: u64,
}

/// `tshark -r pcap -q -z conv,tcp -z conv,udp`, parsed.
pub fn conversations(pcap: &Path) -> anyhow::Result<Vec<Conversation>> {
    let out = sh(Command::new("timeout")
        .args(["-s", "KILL", "60", "tshark", "-n", "-r"])
        .arg(pcap)
        .args(["-q", "-z", "conv,tcp", "-z", "conv,udp"]))?;
    parse_conversations(&String::from_utf8_lossy(&out.stdout))
}

fn endpoint(s: &str) -> anyhow::Result<(IpAddr, u16)> {
    // IPv6 too: the port is after the last colon.
    let (addr, port) = s
        .rsplit_once(':')
        .with_context(|| format!("endpoint {s:?} has no port"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    Ok((
        addr.parse()
            .with_context(|| format!("endpoint {s:?}: bad address"))?,
        port.parse()
            .with_context(|| format!("endpoint {s:?}: bad port"))?,
    ))
}

/// (frames, bytes if exact, tokens used) from `4 5272 bytes` / `10 10 kB`.
fn way(tokens: &[&str]) -> anyhow::Result<Way> {
    let [frames, bytes, unit] = tokens else {
        bail!("expected FRAMES BYTES UNIT, got {tokens:?}");
    };
    Ok(Way {
        frames: frames
            .parse()
            .with_context(|| format!("frames {frames:?}"))?,
        bytes: match *unit {
            "bytes" | "byte" => Some(bytes.parse().with_context(|| format!("bytes {bytes:?}"))?),
            _ => None,
        },
    })
}

/// Parses the text tshark prints for `-z conv,tcp -z conv,udp`.
pub fn parse_conversations(text: &str) -> anyhow::Result<Vec<Conversation>> {
    let mut out = Vec::new();
    let mut proto: Option<&'static str> = None;
    // Whether the first direction column is A -> B.
    let mut a_to_b_first: Option<bool> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("TCP Conversations") {
            (proto, a_to_b_first) = (Some("tcp"), None);
            continue;
        }
        if t.starts_with("UDP Conversations") {
            (proto, a_to_b_first) = (Some("udp"), None);
            continue;
        }
        if let (Some(left), Some(right)) = (t.find("<-"), t.find("->"))
            && !t.contains("<->")
        {
            a_to_b_first = Some(right < left);
            continue;
        }
        if !t.contains(" <-> ") {
            continue;
        }
        let (Some(proto), Some(first_is_a_to_b)) = (proto, a_to_b_first) else {
            bail!("conversation line before its table's header: {line:?}");
        };
        let tokens: Vec<&str> = t.split_whitespace().collect();
        let row = || -> anyhow::Result<Conversation> {
            if tokens.len() < 12 || tokens[1] != "<->" {
                bail!("expected A <-> B and three FRAMES BYTES UNIT groups");
            }
            let first = way(&tokens[3..6])?;
            let second = way(&tokens[6..9])?;
            let total = way(&tokens[9..12])?;
            let (a_to_b, b_to_a) = if first_is_a_to_b {
                (first, second)
            } else {
                (second, first)
            };
            if a_to_b.frames + b_to_a.frames != total.frames {
                bail!("the two directions do not add up to the total");
            }
            Ok(Conversation {
                proto,
                a: endpoint(tokens[0])?,
                b: endpoint(tokens[2])?,
                a_to_b,
                b_to_a,
                total_frames: total.frames,
            })
        };
        out.push(row().with_context(|| format!("tshark conversation line {line:?}"))?);
    }
    Ok(out)
}

/// One packet of the field dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// `tcp`, `udp`, `icmp` or `icmpv6`.
    pub proto: &'static str,
    pub sport: u16,
    pub dport: u16,
    /// For ICMP: the message type.
    pub icmp_type: Option<u8>,
    /// frame.len: the length on the wire.
    pub len: u64,
}

const FIELDS: [&str; 11] = [
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "icmp.type",
    "icmpv6.type",
    "frame.len",
];

/// Every IP packet of `pcap` with its addresses, ports or ICMP type and
/// length, from `tshark -T fields` (outer headers only: ICMP errors quote
/// an inner packet whose fields would come second).
pub fn packets(pcap: &Path) -> anyhow::Result<Vec<Packet>> {
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", "60", "tshark", "-n", "-r"])
        .arg(pcap)
        .args(["-Y", "ip || ipv6", "-T", "fields"])
        .args(["-E", "separator=/t", "-E", "occurrence=f"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = sh(&mut cmd)?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| parse_packet(l).with_context(|| format!("tshark field line {l:?}")))
        .collect()
}

/// Every packet's comment in a pcapng file, in file order (empty for a
/// packet without one): what `replay --pcap` says of each packet it carved.
pub fn comments(pcap: &Path) -> anyhow::Result<Vec<String>> {
    let out = sh(Command::new("timeout")
        .args(["-s", "KILL", "60", "tshark", "-n", "-r"])
        .arg(pcap)
        .args(["-T", "fields", "-E", "occurrence=f", "-e", "frame.comment"]))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

fn parse_packet(line: &str) -> anyhow::Result<Packet> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != FIELDS.len() {
        bail!("expected {} fields, got {}", FIELDS.len(), f.len());
    }
    let pick = |a: &str, b: &str| -> Option<String> {
        [a, b]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(str::to_string)
    };
    let addr = |s: Option<String>| -> anyhow::Result<IpAddr> {
        s.context("no address")?.parse().context("bad address")
    };
    let num = |s: &str| -> anyhow::Result<u64> { s.parse().with_context(|| format!("{s:?}")) };
    let (proto, sport, dport, icmp_type) = if !f[8].is_empty() {
        ("icmp", 0, 0, Some(num(f[8])? as u8))
    } else if !f[9].is_empty() {
        ("icmpv6", 0, 0, Some(num(f[9])? as u8))
    } else if !f[4].is_empty() {
        ("tcp", num(f[4])? as u16, num(f[5])? as u16, None)
    } else if !f[6].is_empty() {
        ("udp", num(f[6])? as u16, num(f[7])? as u16, None)
    } else {
        ("other", 0, 0, None)
    };
    Ok(Packet {
        src: addr(pick(f[0], f[1]))?,
        dst: addr(pick(f[2], f[3]))?,
        proto,
        sport,
        dport,
        icmp_type,
        len: num(f[10])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by tshark 4.0 for a capture of this lab.
    const SAMPLE: &str = "\
================================================================================
UDP Conversations
Filter:<No Filter>
                                                           |       <-      | |       ->      | |     Total     |    Relative    |   Duration   |
                                                           | Frames  Bytes | | Frames  Bytes | | Frames  Bytes |      Start     |              |
192.0.2.2:56518            <-> 192.0.2.1:5300                   1 44 bytes        1 44 bytes        2 88 bytes      0.902291000         0.0018
================================================================================
================================================================================
TCP Conversations
Filter:<No Filter>
                                                           |       <-      | |       ->      | |     Total     |    Relative    |   Duration   |
                                                           | Frames  Bytes | | Frames  Bytes | | Frames  Bytes |      Start     |              |
192.0.2.2:34878            <-> 192.0.2.1:7001                   4 5272 bytes       6 5404 bytes      10 10 kB         0.845678000         0.0033
2001:db8:1::2:38042        <-> 2001:db8:1::1:7001               4 355 bytes       6 527 bytes      10 882 bytes     0.881423000         0.0007
================================================================================
";

    #[test]
    fn reads_both_tables_with_the_direction_the_header_gives() {
        let c = parse_conversations(SAMPLE).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].proto, "udp");
        assert_eq!(c[1].proto, "tcp");
        assert_eq!(c[1].a, ("192.0.2.2".parse().unwrap(), 34878));
        // "->" is the second column: the client sent 6 frames.
        assert_eq!(
            c[1].a_to_b,
            Way {
                frames: 6,
                bytes: Some(5404)
            }
        );
        assert_eq!(c[1].total_frames, 10);
        assert_eq!(c[2].b, ("2001:db8:1::1".parse().unwrap(), 7001));
        // Swapped header, swapped meaning.
        let swapped = SAMPLE.replace(
            "|       <-      | |       ->      |",
            "|       ->      | |       <-      |",
        );
        let s = parse_conversations(&swapped).unwrap();
        assert_eq!(s[1].a_to_b.frames, 4);
    }

    #[test]
    fn a_line_that_does_not_parse_is_an_error() {
        let broken = SAMPLE.replace("4 5272 bytes", "4 5272");
        assert!(parse_conversations(&broken).is_err());
        let bad_total = SAMPLE.replace("10 882 bytes", "11 882 bytes");
        assert!(parse_conversations(&bad_total).is_err());
        let headless =
            "TCP Conversations\n1.2.3.4:1 <-> 1.2.3.5:2 1 1 bytes 1 1 bytes 2 2 bytes 0 0\n";
        assert!(parse_conversations(headless).is_err());
    }

    #[test]
    fn field_lines() {
        let p = parse_packet("192.0.2.2\t\t192.0.2.1\t\t44966\t7999\t\t\t\t\t74").unwrap();
        assert_eq!((p.proto, p.sport, p.dport, p.len), ("tcp", 44966, 7999, 74));
        let p = parse_packet("\t2001:db8:1::2\t\t2001:db8:1::1\t\t\t\t\t\t128\t118").unwrap();
        assert_eq!(
            (p.proto, p.icmp_type, p.src.to_string().as_str()),
            ("icmpv6", Some(128), "2001:db8:1::2")
        );
        assert!(parse_packet("x\ty").is_err());
    }
}
