//! The files of the corpus: each link type's frames written as pcap and
//! pcapng files of either byte order and timestamp resolution, gzipped,
//! cut to a snapshot length, or made by Debian's Wireshark tools
//! (`text2pcap` from hex dumps, building headers itself too; `editcap`
//! converting, cutting and relabelling); and pcapng files whose interfaces
//! are of different link types.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use pcap_file::{DataLink, Endianness, TsResolution};

use crate::{
    common::{
        links::arp,
        pcap::{NgWritten, Written, pcap_bytes, pcapng_bytes},
    },
    frames::{Host, Kind, Made, frames, wrap},
    packets::{Rng, ip_packet, ports, v4_addr, v6_addr},
};

/// The corpus's seed, the same on every run so that a failure comes back;
/// `PORTCONFORM_CORPUS_SEED` (a number) makes other files.
const SEED: u64 = 0x5eed_0018;
/// Frames per file.
const FRAMES_PER_FILE: usize = 60;

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// pcap-file's pcap writer: resolution, byte order.
    Pcap { nanos: bool, big: bool },
    /// pcap-file's pcapng writer, in either byte order.
    Pcapng { big: bool },
    /// A hex dump through `text2pcap -l LINKTYPE` (pcapng, or pcap).
    Text2pcap { pcapng: bool },
    /// A pcap converted by `editcap -F pcapng` or `-F nsecpcap`.
    EditcapFromPcap { to: &'static str },
    /// A pcapng converted by `editcap -F pcap`.
    EditcapFromPcapng,
    /// Cut to a snapshot length by the writer, or by `editcap -s`.
    Snaplen { editcap: bool },
    /// A gzipped pcap.
    Gzip,
}

/// The formats of a link type's files: one from each slot, the variant
/// within a slot turning with the link type, so that every variant meets
/// several link types without a file for every pair (tshark's start-up,
/// about a quarter of a second of CPU, is what each file costs).
const SLOTS: [&[Format]; 4] = [
    // The tests' pcap writer: either resolution in either byte order.
    &[
        Format::Pcap {
            nanos: false,
            big: false,
        },
        Format::Pcap {
            nanos: true,
            big: true,
        },
        Format::Pcap {
            nanos: false,
            big: true,
        },
        Format::Pcap {
            nanos: true,
            big: false,
        },
    ],
    // The tests' pcapng writer, and a gzipped pcap.
    &[
        Format::Pcapng { big: false },
        Format::Pcapng { big: true },
        Format::Gzip,
    ],
    // Made or converted by Wireshark's tools.
    &[
        Format::Text2pcap { pcapng: true },
        Format::EditcapFromPcap { to: "pcapng" },
        Format::Text2pcap { pcapng: false },
        Format::EditcapFromPcap { to: "nsecpcap" },
        Format::EditcapFromPcapng,
    ],
    // Cut to a snapshot length.
    &[
        Format::Snaplen { editcap: false },
        Format::Snaplen { editcap: true },
    ],
];

/// One file of the corpus and its frames as generated, in file order.
pub struct CorpusFile {
    pub path: PathBuf,
    pub frames: Vec<Made>,
}

/// The first packet's capture time, and the gap between packets.
const T0_NS: u64 = 1_795_365_758_000_000_000;
const GAP_NS: u64 = 1_000_000;

/// `frames` as the pcap writer takes them, a millisecond apart.
fn written(frames: &[Made]) -> Vec<Written> {
    frames
        .iter()
        .enumerate()
        .map(|(i, m)| (T0_NS + i as u64 * GAP_NS, m.data.clone(), m.orig_len))
        .collect()
}

/// A pcap of `linktype` (any value: the tests' writer keeps flag bits).
fn write_pcap(path: &Path, linktype: u32, frames: &[Made], nanos: bool, big: bool, snaplen: u32) {
    let res = if nanos {
        TsResolution::NanoSecond
    } else {
        TsResolution::MicroSecond
    };
    let endianness = if big {
        Endianness::Big
    } else {
        Endianness::Little
    };
    assert_eq!(
        u32::from(DataLink::from(linktype)),
        linktype,
        "pcap-file keeps {linktype}"
    );
    let bytes = pcap_bytes(
        &written(frames),
        res,
        endianness,
        DataLink::from(linktype),
        snaplen,
    );
    std::fs::write(path, bytes).unwrap();
}

/// A pcapng of one interface per link type in `frames`, in the order met.
fn write_pcapng(path: &Path, frames: &[Made], big: bool) {
    let mut kinds: Vec<Kind> = Vec::new();
    let pkts: Vec<NgWritten> = frames
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let iface = match kinds.iter().position(|k| *k == m.kind) {
                Some(i) => i,
                None => {
                    kinds.push(m.kind);
                    kinds.len() - 1
                }
            };
            (
                iface as u32,
                T0_NS + i as u64 * GAP_NS,
                m.data.clone(),
                m.orig_len,
            )
        })
        .collect();
    let interfaces: Vec<(u32, u32)> = kinds.iter().map(|k| (k.linktype(), 262_144)).collect();
    let endianness = if big {
        Endianness::Big
    } else {
        Endianness::Little
    };
    std::fs::write(path, pcapng_bytes(&interfaces, &pkts, endianness)).unwrap();
}

/// Runs a Wireshark tool, which must succeed.
fn tool(cmd: &mut Command) {
    let out = cmd
        .output()
        .expect("Wireshark's tools are installed (checked first)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `frames` as the hex dump `text2pcap` reads: an offset, then bytes.
fn hex_dump(frames: &[Made]) -> String {
    let mut s = String::new();
    for m in frames {
        for (i, chunk) in m.data.chunks(16).enumerate() {
            s.push_str(&format!("{:06x}", i * 16));
            for b in chunk {
                s.push_str(&format!(" {b:02x}"));
            }
            s.push('\n');
        }
        s.push('\n');
    }
    s
}

/// Writes `frames` of one link type as `format` says, returning the
/// frames as the file holds them.
fn write_file(
    dir: &Path,
    stem: &str,
    kind: Kind,
    format: Format,
    frames: Vec<Made>,
    big: bool,
    rng: &mut Rng,
) -> CorpusFile {
    let linktype = kind.linktype();
    let tmp = dir.join(format!("{stem}.src"));
    let (path, frames) = match format {
        Format::Pcap { nanos, big } => {
            let path = dir.join(format!("{stem}.pcap"));
            write_pcap(&path, linktype, &frames, nanos, big, 262_144);
            (path, frames)
        }
        Format::Pcapng { big } => {
            let path = dir.join(format!("{stem}.pcapng"));
            write_pcapng(&path, &frames, big);
            (path, frames)
        }
        Format::Text2pcap { pcapng } => {
            let path = dir.join(format!("{stem}.{}", if pcapng { "pcapng" } else { "pcap" }));
            std::fs::write(&tmp, hex_dump(&frames)).unwrap();
            let mut cmd = Command::new("text2pcap");
            cmd.args(["-q", "-l", &linktype.to_string()]);
            if !pcapng {
                cmd.args(["-F", "pcap"]);
            }
            tool(cmd.arg(&tmp).arg(&path));
            (path, frames)
        }
        Format::EditcapFromPcap { to } => {
            let ext = if to == "pcapng" { "pcapng" } else { "pcap" };
            let path = dir.join(format!("{stem}.{ext}"));
            write_pcap(&tmp, linktype, &frames, false, big, 262_144);
            tool(
                Command::new("editcap")
                    .args(["-F", to])
                    .arg(&tmp)
                    .arg(&path),
            );
            (path, frames)
        }
        Format::EditcapFromPcapng => {
            let path = dir.join(format!("{stem}.pcap"));
            write_pcapng(&tmp, &frames, big);
            tool(
                Command::new("editcap")
                    .args(["-F", "pcap"])
                    .arg(&tmp)
                    .arg(&path),
            );
            (path, frames)
        }
        Format::Snaplen { editcap } => {
            // NFLOG's TLVs put its packet 20 to 100 bytes in: only the
            // longer lengths cut some of its packets after their headers.
            let len = if kind == Kind::Nflog {
                rng.pick(&[80, 96, 128])
            } else {
                rng.pick(&[34, 40, 54, 60, 64, 68, 74, 80, 96, 128])
            };
            let path = dir.join(format!("{stem}.s{len}.pcap"));
            let cut: Vec<Made> = frames.iter().map(|m| m.snapped(len)).collect();
            if editcap {
                write_pcap(&tmp, linktype, &frames, true, big, 262_144);
                tool(
                    Command::new("editcap")
                        .args(["-s", &len.to_string()])
                        .arg(&tmp)
                        .arg(&path),
                );
            } else {
                write_pcap(&path, linktype, &cut, false, big, len as u32);
            }
            (path, cut)
        }
        Format::Gzip => {
            let path = dir.join(format!("{stem}.pcap.gz"));
            write_pcap(&tmp, linktype, &frames, rng.percent(50), big, 262_144);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&std::fs::read(&tmp).unwrap()).unwrap();
            std::fs::write(&path, gz.finish().unwrap()).unwrap();
            (path, frames)
        }
    };
    CorpusFile { path, frames }
}

/// Whether a format suits a link type: flag bits exist only in a pcap
/// header (pcapng has an option instead, and text2pcap takes plain link
/// types), and frames ending in an FCS are not cut.
fn suits(kind: Kind, format: Format) -> bool {
    match (kind, format) {
        (Kind::EthernetFcs(_), Format::Pcap { .. } | Format::Gzip) => true,
        (Kind::EthernetFcs(_), Format::Snaplen { editcap: false }) => !kind.fcs(),
        (Kind::EthernetFcs(_), _) => false,
        _ => true,
    }
}

/// Files whose packets `text2pcap` builds itself (-4/-6 and -T/-u/-i):
/// Ethernet, IP and transport headers written by Wireshark's code, around
/// random payloads; and one of ARP frames it writes (-e).
fn text2pcap_built(dir: &Path, rng: &mut Rng) -> Vec<CorpusFile> {
    let mut files = Vec::new();
    for i in 0..6 {
        let v6 = i % 2 == 1;
        let kind = rng.pick(&[
            Kind::Ethernet,
            Kind::Raw(101),
            if v6 { Kind::RawIpv6 } else { Kind::RawIpv4 },
        ]);
        let count = 10 + rng.below(20);
        let payloads: Vec<Made> = (0..count)
            .map(|_| Made::not_ip(kind, rng.some_bytes(1, 120)))
            .collect();
        let src = dir.join(format!("built{i}.txt"));
        std::fs::write(&src, hex_dump(&payloads)).unwrap();
        let path = dir.join(format!(
            "built{i}.{}",
            if i % 3 == 0 { "pcap" } else { "pcapng" }
        ));
        let mut cmd = Command::new("text2pcap");
        cmd.args(["-q", "-l", &kind.linktype().to_string()]);
        if i % 3 == 0 {
            cmd.args(["-F", "pcap"]);
        }
        let (sport, dport) = ports(rng);
        let addrs = if v6 {
            let a = |r: &mut Rng| std::net::Ipv6Addr::from(v6_addr(r)).to_string();
            format!("{},{}", a(rng), a(rng))
        } else {
            let a = |r: &mut Rng| std::net::Ipv4Addr::from(v4_addr(r)).to_string();
            format!("{},{}", a(rng), a(rng))
        };
        cmd.args([if v6 { "-6" } else { "-4" }, &addrs]);
        match i % 5 {
            0 | 3 => cmd.args(["-T", &format!("{sport},{dport}")]),
            1 | 4 => cmd.args(["-u", &format!("{sport},{dport}")]),
            _ => cmd.args(["-i", &rng.pick(&[132u8, 47, 89]).to_string()]),
        };
        tool(cmd.arg(&src).arg(&path));
        files.push(CorpusFile {
            path,
            frames: payloads,
        });
    }
    let src = dir.join("built-arp.txt");
    let arps: Vec<Made> = (0..5)
        .map(|_| Made::not_ip(Kind::Ethernet, arp()))
        .collect();
    std::fs::write(&src, hex_dump(&arps)).unwrap();
    let path = dir.join("built-arp.pcapng");
    tool(
        Command::new("text2pcap")
            .args(["-q", "-e", "0x806"])
            .arg(&src)
            .arg(&path),
    );
    files.push(CorpusFile { path, frames: arps });
    files
}

/// Files relabelled by `editcap -T`: raw IP of one version made IPV4 or
/// IPV6, a NULL capture of a big-endian host made LOOP (the same header
/// in network order).
fn relabelled(dir: &Path, rng: &mut Rng) -> Vec<CorpusFile> {
    let host = Host {
        big_endian: true,
        specials: false,
    };
    let mut files = Vec::new();
    for (i, (from, to, encap)) in [
        (Kind::Raw(101), Kind::RawIpv4, "rawip4"),
        (Kind::Raw(101), Kind::RawIpv6, "rawip6"),
        (Kind::Null, Kind::Loop, "loop"),
        (Kind::Null, Kind::Loop, "loop"),
    ]
    .into_iter()
    .enumerate()
    {
        let made: Vec<Made> = (0..FRAMES_PER_FILE)
            .map(|_| {
                let v6 = match to {
                    Kind::RawIpv4 => false,
                    Kind::RawIpv6 => true,
                    _ => rng.percent(50),
                };
                let ip = ip_packet(rng, v6, true, 0);
                let mut m = wrap(from, rng, &ip, host);
                m.kind = to;
                m
            })
            .collect();
        let src = dir.join(format!("relabel{i}.src"));
        write_pcap(&src, from.linktype(), &made, false, true, 262_144);
        let path = dir.join(format!("relabel{i}-{encap}.pcap"));
        tool(
            Command::new("editcap")
                .args(["-T", encap])
                .arg(&src)
                .arg(&path),
        );
        files.push(CorpusFile { path, frames: made });
    }
    files
}

/// pcapng files whose interfaces are of different link types, their
/// packets interleaved.
fn mixed(dir: &Path, rng: &mut Rng) -> Vec<CorpusFile> {
    (0..6)
        .map(|i| {
            let kinds: Vec<Kind> = (0..2 + rng.below(3))
                .map(|_| {
                    loop {
                        let k = rng.pick(&Kind::ALL);
                        if !matches!(k, Kind::EthernetFcs(_)) {
                            break k;
                        }
                    }
                })
                .collect();
            let host = Host {
                big_endian: i % 2 == 1,
                specials: true,
            };
            let made: Vec<Made> = (0..FRAMES_PER_FILE)
                .flat_map(|_| {
                    let kind = rng.pick(&kinds);
                    frames(kind, rng, 1, host)
                })
                .collect();
            let path = dir.join(format!("mixed{i}.pcapng"));
            write_pcapng(&path, &made, host.big_endian);
            CorpusFile { path, frames: made }
        })
        .collect()
}

/// The whole corpus, written under `dir`.
pub fn corpus(dir: &Path) -> Vec<CorpusFile> {
    let seed = std::env::var("PORTCONFORM_CORPUS_SEED")
        .ok()
        .map(|s| s.parse().expect("PORTCONFORM_CORPUS_SEED is a number"))
        .unwrap_or(SEED);
    let mut rng = Rng(seed);
    let mut files = Vec::new();
    for (k, kind) in Kind::ALL.into_iter().enumerate() {
        for (n, slot) in SLOTS.iter().enumerate() {
            let mut format = slot[(k + n) % slot.len()];
            if !suits(kind, format) {
                format = Format::Pcap {
                    nanos: n % 2 == 1,
                    big: (k + n) % 2 == 0,
                };
            }
            // The byte order of the file our writers write (text2pcap
            // writes the machine's), which NFLOG's TLVs must share.
            let big = match format {
                Format::Pcap { big, .. } | Format::Pcapng { big } => big,
                Format::Text2pcap { .. } => false,
                _ => rng.percent(40),
            };
            let cut = matches!(format, Format::Snaplen { .. });
            let host = Host {
                big_endian: big,
                specials: !cut,
            };
            let made = frames(kind, &mut rng, FRAMES_PER_FILE, host);
            let stem = format!("{}-{n}", kind.name().replace([' ', '(', ')', '+'], ""));
            files.push(write_file(dir, &stem, kind, format, made, big, &mut rng));
        }
    }
    files.extend(text2pcap_built(dir, &mut rng));
    files.extend(relabelled(dir, &mut rng));
    files.extend(mixed(dir, &mut rng));
    files
}
