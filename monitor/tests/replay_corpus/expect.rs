//! What the comparison expects of each frame, and its verdict: the same
//! reading on both sides, or one of the differences made on purpose, each
//! checked to be exactly that difference, so that a frame read differently
//! for any other reason fails the test.

use monitor_common::packet::{MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS, ParseError};

use crate::common::oracle::{Dissected, Ip, disagreement};

/// Frames tshark and replay read differently on purpose: by the design
/// of the kernel's parser, which replay runs (all but the last), or by
/// Wireshark's (the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ByDesign {
    /// More VLAN tags than the kernel walks (`MAX_VLAN_TAGS`).
    VlanDepth,
    /// More IPv6 extension headers than it walks (`MAX_IPV6_EXT_HEADERS`).
    ExtensionDepth,
    /// Cut (by the snapshot length, or a runt) inside the bytes the
    /// kernel reads whole: the IPv4 header with its options, each IPv6
    /// extension header's first bytes, the TCP header with its options,
    /// the first 8 bytes of UDP and ICMP. Replay reads one cut by the
    /// snapshot length after its ports and TCP flags (then it must agree
    /// with tshark and counts in the share); the rest stay truncated.
    Cut,
    /// A TCP data offset below 5: malformed to the kernel, whose ports
    /// tshark still shows.
    TcpHeaderLength,
    /// An IPv6 header where the link header says IPv4: Wireshark's IPv4
    /// dissector hands it to IPv6, the kernel's parser (and Linux's IP
    /// input) hold it malformed.
    V6UnderV4Label,
    /// An IPv4 total length shorter than the header: tshark gives up on
    /// the header, the kernel's parser does not read the total length (and
    /// Linux's IP input drops the packet after XDP has seen it).
    IpTotalLength,
    /// An NFLOG record cut by the snapshot length after the IP headers but
    /// inside the payload TLV: Wireshark stops at the TLV the cut
    /// overruns, before it dissects the payload, so it shows no IP; replay
    /// reads the headers that are there.
    NflogCut,
}

impl ByDesign {
    pub const ALL: [ByDesign; 7] = [
        ByDesign::VlanDepth,
        ByDesign::ExtensionDepth,
        ByDesign::Cut,
        ByDesign::TcpHeaderLength,
        ByDesign::V6UnderV4Label,
        ByDesign::IpTotalLength,
        ByDesign::NflogCut,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            ByDesign::VlanDepth => "more than two VLAN tags",
            ByDesign::ExtensionDepth => "more than six IPv6 extension headers",
            ByDesign::Cut => "cut inside the headers the kernel reads whole",
            ByDesign::TcpHeaderLength => "a TCP data offset below 5",
            ByDesign::V6UnderV4Label => "an IPv6 header under an IPv4 label",
            ByDesign::IpTotalLength => "an IPv4 total length below its header length",
            ByDesign::NflogCut => "an NFLOG record cut after its IP headers",
        }
    }

    /// Whether tshark and replay differ as this kind of frame must: `Ok`
    /// with whether the difference showed (a cut frame may be cut before
    /// tshark sees any IP, and then the two agree).
    pub fn check(self, t: &Dissected, r: &Result<Ip, ParseError>) -> Result<bool, String> {
        let tshark_ip = t.ip.is_some();
        let ok = match self {
            ByDesign::VlanDepth => {
                tshark_ip && t.vlan_tags() > MAX_VLAN_TAGS && *r == Err(ParseError::TooDeep)
            }
            ByDesign::ExtensionDepth => {
                tshark_ip
                    && t.ipv6_extensions() > MAX_IPV6_EXT_HEADERS
                    && *r == Err(ParseError::TooDeep)
            }
            ByDesign::Cut => {
                if !tshark_ip {
                    return if r.is_err() {
                        Ok(false)
                    } else {
                        Err("replay read a packet cut inside its headers".into())
                    };
                }
                *r == Err(ParseError::Truncated)
            }
            ByDesign::TcpHeaderLength => {
                tshark_ip
                    && t.tcp_hdr_len.is_some_and(|l| l < 20)
                    && *r == Err(ParseError::Malformed)
            }
            ByDesign::V6UnderV4Label => {
                tshark_ip && t.v6_under_v4_label && *r == Err(ParseError::Malformed)
            }
            ByDesign::IpTotalLength => {
                !tshark_ip && t.ip_len.is_some_and(|(len, hdr)| len < u16::from(hdr)) && r.is_ok()
            }
            ByDesign::NflogCut => {
                !tshark_ip && t.protocols == "nflog" && t.cap_len < t.len && r.is_ok()
            }
        };
        if ok {
            Ok(true)
        } else {
            Err(format!("expected {}", self.describe()))
        }
    }
}

/// What the comparison expects of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The same IP packet on both sides, or none on either.
    Alike,
    ByDesign(ByDesign),
}

/// What the comparison made of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The same IP packet on both sides.
    SameIp,
    /// No IP packet on either side.
    NoIp,
    /// A difference made on purpose, and exactly that one.
    OnPurpose(ByDesign),
    /// Anything else: what differs.
    Mismatch(String),
}

/// The verdict on a frame expected to be read as `expect` says, which
/// tshark read as `t` and replay as `r`.
pub fn judge(expect: Expect, t: &Dissected, r: &Result<Ip, ParseError>) -> Verdict {
    match expect {
        Expect::Alike => match (&t.ip, r) {
            (Some(tshark), Ok(replay)) => match disagreement(tshark, replay) {
                None => Verdict::SameIp,
                Some(why) => Verdict::Mismatch(why),
            },
            (None, Err(_)) => Verdict::NoIp,
            (Some(_), Err(_)) => Verdict::Mismatch("tshark reads IP, replay does not".into()),
            (None, Ok(_)) => Verdict::Mismatch("replay reads IP, tshark does not".into()),
        },
        // Cut by the snapshot length after the bytes classifying reads:
        // replay reads it (see `parse_frame`), and must read it as tshark.
        Expect::ByDesign(ByDesign::Cut) if t.cap_len < t.len && r.is_ok() => match (&t.ip, r) {
            (Some(tshark), Ok(replay)) => match disagreement(tshark, replay) {
                None => Verdict::SameIp,
                Some(why) => Verdict::Mismatch(why),
            },
            _ => Verdict::Mismatch("replay read a cut packet tshark finds no IP in".into()),
        },
        Expect::ByDesign(d) => match d.check(t, r) {
            Ok(true) => Verdict::OnPurpose(d),
            Ok(false) => Verdict::NoIp,
            Err(why) => Verdict::Mismatch(why),
        },
    }
}
