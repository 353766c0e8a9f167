//! pcapng sink for offending packets: `run --pcap` writes the headers the
//! kernel copied (Ethernet, cut at [`SNAPLEN`]); `replay --pcap` carves
//! whole packets out of captures of any link type.
//!
//! Incident responders open this in Wireshark next to the JSON lines, so each
//! packet carries its event's one-line description as a comment and its
//! interface by name. Encoding is done by `pcap-file`, which supports the
//! options needed (`if_name`, `if_tsresol`, `opt_comment`) and always writes
//! nanosecond timestamps, which is why every interface declares
//! `if_tsresol = 9`.
//!
//! Each block is encoded into a scratch buffer first so that its exact size is
//! known before it reaches the file; that is what keeps the file under
//! `max_bytes` without ever writing half a block.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};

/// The kernel hands over at most this many bytes of each packet.
pub const SNAPLEN: u32 = 128;

/// Comments are for a human reading one line in Wireshark; capping them keeps
/// a pathological note from bloating the capture (the format's own limit is
/// 65535 bytes per option).
pub const MAX_COMMENT_BYTES: usize = 1024;

/// `if_tsresol` value meaning 10^-9 s.
const TSRESOL_NANOS: u8 = 9;
/// LINKTYPE_ETHERNET: what the kernel programs copy.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// libpcap's LINKTYPE_MATCHING_MASK and LT_FCS_LENGTH_PRESENT.
const LINKTYPE_MASK: u32 = 0x03ff_ffff;
const FCS_LENGTH_PRESENT: u32 = 0x0400_0000;

#[derive(Debug, thiserror::Error)]
pub enum PcapngError {
    #[error("cannot create pcapng file {}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write pcapng file {}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot encode a pcapng block for {}", path.display())]
    Encode {
        path: PathBuf,
        source: pcap_file::PcapError,
    },
    #[error(
        "pcapng file {}: a size limit of {max_bytes} bytes leaves no room for the \
         {needed}-byte file header; allow at least a few KiB", path.display()
    )]
    TooSmall {
        path: PathBuf,
        max_bytes: u64,
        needed: u64,
    },
}

/// One captured packet and what to say about it.
#[derive(Clone, Copy, Debug)]
pub struct CapturedPacket<'a> {
    /// Interface name; an interface (name and link type) not given at
    /// creation gets its own description block on first use.
    pub iface: &'a str,
    /// How `data` is framed: a pcap LINKTYPE value, upper bits (libpcap's
    /// FCS length) included.
    pub linktype: u32,
    pub ts: SystemTime,
    /// Length of the packet on the wire; never less than what was captured.
    pub original_len: u32,
    /// The captured bytes from the link header on; cut to the writer's
    /// snapshot length.
    pub data: &'a [u8],
    /// Usually the event's one-line description.
    pub comment: &'a str,
}

/// Writes offending packets' headers to a size-bounded pcapng file.
pub struct PcapngWriter {
    path: PathBuf,
    /// Encodes blocks into its inner `Vec`, which is then moved to `file`.
    encoder: PcapNgWriter<Vec<u8>>,
    file: BufWriter<File>,
    /// (name, linktype) of each interface described, by interface id.
    interfaces: Vec<(String, u32)>,
    snaplen: u32,
    max_bytes: u64,
    bytes_written: u64,
    packets_written: u64,
    packets_dropped: u64,
    full: bool,
}

impl PcapngWriter {
    /// Creates (or replaces) `path` for the kernel's Ethernet headers, cut
    /// at [`SNAPLEN`], and writes the section header and one interface
    /// description per name in `interfaces`.
    ///
    /// Once a packet would take the file past `max_bytes` the file is
    /// closed to further packets: the capture stays a gap-free prefix of the
    /// run, and every later packet is only counted.
    pub fn create<I, S>(
        path: impl AsRef<Path>,
        interfaces: I,
        max_bytes: u64,
    ) -> Result<Self, PcapngError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names: Vec<(String, u32)> = interfaces
            .into_iter()
            .map(|n| (n.as_ref().to_owned(), LINKTYPE_ETHERNET))
            .collect();
        Self::create_with(path, names, SNAPLEN, max_bytes)
    }

    /// Creates (or replaces) `path` for packets of up to `snaplen` bytes,
    /// describing the (name, linktype) `interfaces` up front; others are
    /// described when their first packet comes.
    pub fn create_with(
        path: impl AsRef<Path>,
        interfaces: Vec<(String, u32)>,
        snaplen: u32,
        max_bytes: u64,
    ) -> Result<Self, PcapngError> {
        let path = path.as_ref().to_path_buf();
        let section = SectionHeaderBlock {
            endianness: pcap_file::Endianness::native(),
            options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
                "portconform {}",
                env!("CARGO_PKG_VERSION")
            )))],
            ..SectionHeaderBlock::default()
        };
        let mut encoder = PcapNgWriter::with_section_header(Vec::with_capacity(512), section)
            .map_err(|source| PcapngError::Encode {
                path: path.clone(),
                source,
            })?;
        for (name, linktype) in &interfaces {
            encode_interface(&mut encoder, &path, name, *linktype, snaplen)?;
        }
        let header = std::mem::take(encoder.get_mut());
        // Checked before the file is created, so a bad limit leaves nothing behind.
        if header.len() as u64 > max_bytes {
            return Err(PcapngError::TooSmall {
                path,
                max_bytes,
                needed: header.len() as u64,
            });
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(super::FILE_MODE)
            .open(&path)
            .map_err(|source| PcapngError::Create {
                path: path.clone(),
                source,
            })?;
        let mut w = PcapngWriter {
            path,
            encoder,
            file: BufWriter::new(file),
            interfaces,
            snaplen,
            max_bytes,
            bytes_written: 0,
            packets_written: 0,
            packets_dropped: 0,
            full: false,
        };
        w.emit(&header)?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one packet, or counts it as dropped once the file is full.
    /// Returns whether it was written.
    pub fn write_packet(&mut self, packet: &CapturedPacket<'_>) -> Result<bool, PcapngError> {
        if self.full {
            self.packets_dropped += 1;
            return Ok(false);
        }
        let interface_id = match self
            .interfaces
            .iter()
            .position(|(n, l)| n == packet.iface && *l == packet.linktype)
        {
            Some(id) => id,
            None => {
                encode_interface(
                    &mut self.encoder,
                    &self.path,
                    packet.iface,
                    packet.linktype,
                    self.snaplen,
                )?;
                self.interfaces
                    .push((packet.iface.to_owned(), packet.linktype));
                self.interfaces.len() - 1
            }
        };
        let data = &packet.data[..packet.data.len().min(self.snaplen as usize)];
        let comment = truncate_at_char(packet.comment, MAX_COMMENT_BYTES);
        let options = if comment.is_empty() {
            Vec::new()
        } else {
            vec![EnhancedPacketOption::Comment(Cow::Borrowed(comment))]
        };
        let block = EnhancedPacketBlock {
            interface_id: interface_id as u32,
            timestamp: packet
                .ts
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO),
            original_len: packet.original_len.max(data.len() as u32),
            data: Cow::Borrowed(data),
            options,
        };
        let path = &self.path;
        self.encoder
            .write_pcapng_block(block)
            .map_err(|source| PcapngError::Encode {
                path: path.clone(),
                source,
            })?;
        // May also hold a new interface's description: both or neither.
        let bytes = std::mem::take(self.encoder.get_mut());
        if self.bytes_written + bytes.len() as u64 > self.max_bytes {
            self.full = true;
            self.packets_dropped += 1;
            return Ok(false);
        }
        self.emit(&bytes)?;
        // Hand the allocation back so steady state does not allocate.
        *self.encoder.get_mut() = bytes;
        self.encoder.get_mut().clear();
        self.packets_written += 1;
        Ok(true)
    }

    pub fn flush(&mut self) -> Result<(), PcapngError> {
        let path = &self.path;
        self.file.flush().map_err(|source| PcapngError::Write {
            path: path.clone(),
            source,
        })
    }

    pub fn packets_written(&self) -> u64 {
        self.packets_written
    }

    /// Packets not written because the size limit was reached.
    pub fn packets_dropped(&self) -> u64 {
        self.packets_dropped
    }

    /// Size of the file once flushed.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    pub fn is_full(&self) -> bool {
        self.full
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<(), PcapngError> {
        let path = &self.path;
        self.file
            .write_all(bytes)
            .map_err(|source| PcapngError::Write {
                path: path.clone(),
                source,
            })?;
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }
}

impl Drop for PcapngWriter {
    fn drop(&mut self) {
        // Best effort; the daemon flushes explicitly when shutting down.
        let _ = self.file.flush();
    }
}

/// Encodes an interface description into the encoder's scratch buffer; the
/// caller emits or discards the buffer. pcapng's link type field has 16
/// bits: a pcap link type's FCS length (libpcap's upper bits, in 16-bit
/// words) becomes the `if_fcslen` option, so the frames' trailing checksum
/// is still known for what it is.
fn encode_interface(
    encoder: &mut PcapNgWriter<Vec<u8>>,
    path: &Path,
    name: &str,
    linktype: u32,
    snaplen: u32,
) -> Result<(), PcapngError> {
    let mut options = vec![
        InterfaceDescriptionOption::IfName(Cow::Owned(name.to_owned())),
        InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOS),
    ];
    if linktype & FCS_LENGTH_PRESENT != 0 {
        options.push(InterfaceDescriptionOption::IfFcsLen(
            ((linktype >> 28) * 2) as u8,
        ));
    }
    let idb = InterfaceDescriptionBlock {
        linktype: DataLink::from(linktype & LINKTYPE_MASK),
        snaplen,
        options,
    };
    encoder
        .write_pcapng_block(idb)
        .map_err(|source| PcapngError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(())
}

fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::{Block, PcapNgReader};
    use std::process::Command;

    /// Ethernet + IPv4 + TCP SYN, then padding up to `wire_len` bytes, so
    /// that tshark dissects it and `frame.len` differs from `frame.cap_len`.
    fn tcp_syn(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, wire_len: usize) -> Vec<u8> {
        let mut p = Vec::with_capacity(wire_len);
        p.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
        let ip_len = (wire_len - 14) as u16;
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&ip_len.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        p.resize(wire_len, 0xab);
        p
    }

    struct Sample {
        iface: &'static str,
        ts: SystemTime,
        wire: Vec<u8>,
        comment: String,
    }

    fn samples() -> Vec<Sample> {
        let base = UNIX_EPOCH + Duration::new(1_795_365_758, 187_872_964);
        vec![
            Sample {
                iface: "eth0",
                ts: base,
                wire: tcp_syn([198, 51, 100, 7], [192, 0, 2, 1], 40000, 2181, 60),
                comment: "unexpected tcp 198.51.100.7:40000 -> 192.0.2.1:2181 inbound on eth0: \
                          2181 is allowed, but only from nodes"
                    .into(),
            },
            Sample {
                iface: "veth-lab1",
                ts: base + Duration::new(1, 1),
                wire: tcp_syn([192, 0, 2, 1], [203, 0, 113, 9], 51000, 6667, 1514),
                comment: "unexpected tcp 192.0.2.1:51000 -> 203.0.113.9:6667 outbound on veth-lab1"
                    .into(),
            },
            Sample {
                iface: "eth0",
                ts: base + Duration::new(2, 999_999_999),
                wire: tcp_syn([198, 51, 100, 8], [192, 0, 2, 1], 40001, 9999, 200),
                comment: "ünexpected, with UTF-8 ✓".into(),
            },
        ]
    }

    fn write_samples(path: &Path, max_bytes: u64) -> PcapngWriter {
        let mut w = PcapngWriter::create(path, ["eth0", "veth-lab1"], max_bytes).unwrap();
        for s in samples() {
            let cap = &s.wire[..s.wire.len().min(SNAPLEN as usize)];
            w.write_packet(&CapturedPacket {
                iface: s.iface,
                linktype: LINKTYPE_ETHERNET,
                ts: s.ts,
                original_len: s.wire.len() as u32,
                data: cap,
                comment: &s.comment,
            })
            .unwrap();
        }
        w.flush().unwrap();
        w
    }

    #[test]
    fn reads_back_with_pcap_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.pcapng");
        let w = write_samples(&path, 1 << 20);
        assert_eq!(w.packets_written(), 3);
        assert_eq!(w.packets_dropped(), 0);
        assert_eq!(w.bytes_written(), std::fs::metadata(&path).unwrap().len());

        let file = File::open(&path).unwrap();
        let mut r = PcapNgReader::new(file).unwrap();
        let mut idbs = Vec::new();
        let mut epbs = Vec::new();
        while let Some(block) = r.next_block() {
            match block.unwrap() {
                Block::InterfaceDescription(i) => idbs.push(i.into_owned()),
                Block::EnhancedPacket(e) => epbs.push(e.into_owned()),
                other => panic!("unexpected block {other:?}"),
            }
        }
        assert_eq!(idbs.len(), 2);
        for (idb, name) in idbs.iter().zip(["eth0", "veth-lab1"]) {
            assert_eq!(idb.linktype, DataLink::ETHERNET);
            assert_eq!(idb.snaplen, SNAPLEN);
            assert!(
                idb.options
                    .contains(&InterfaceDescriptionOption::IfName(name.into()))
            );
            assert!(
                idb.options
                    .contains(&InterfaceDescriptionOption::IfTsResol(9))
            );
        }
        let samples = samples();
        assert_eq!(epbs.len(), samples.len());
        for (e, s) in epbs.iter().zip(&samples) {
            let want_id = if s.iface == "eth0" { 0 } else { 1 };
            assert_eq!(e.interface_id, want_id);
            assert_eq!(e.original_len as usize, s.wire.len());
            assert_eq!(&e.data[..], &s.wire[..s.wire.len().min(128)]);
            assert_eq!(UNIX_EPOCH + e.timestamp, s.ts);
            assert_eq!(
                e.options,
                vec![EnhancedPacketOption::Comment(s.comment.clone().into())]
            );
        }
    }

    #[test]
    fn stops_at_max_bytes_and_counts_drops() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full.pcapng");
        let w = write_samples(&full, 1 << 20);
        let header = {
            let p = dir.path().join("empty.pcapng");
            PcapngWriter::create(&p, ["eth0", "veth-lab1"], 1 << 20)
                .unwrap()
                .bytes_written()
        };
        let total = w.bytes_written();
        // Room for everything but one byte of the last packet.
        let small = dir.path().join("small.pcapng");
        let mut w = write_samples(&small, total - 1);
        assert_eq!(w.packets_written(), 2);
        assert_eq!(w.packets_dropped(), 1);
        assert!(w.is_full());
        let size = std::fs::metadata(&small).unwrap().len();
        assert!(size < total - 1 && size > header, "{size}");
        // Full stays full, even for a tiny packet that would fit.
        assert!(
            !w.write_packet(&CapturedPacket {
                iface: "eth0",
                linktype: LINKTYPE_ETHERNET,
                ts: UNIX_EPOCH,
                original_len: 1,
                data: &[0],
                comment: "",
            })
            .unwrap()
        );
        assert_eq!(w.packets_dropped(), 2);
        w.flush().unwrap();
        assert_eq!(std::fs::metadata(&small).unwrap().len(), size);
        // Exactly the size needed writes everything.
        let exact = dir.path().join("exact.pcapng");
        let w = write_samples(&exact, total);
        assert_eq!((w.packets_written(), w.packets_dropped()), (3, 0));
    }

    #[test]
    fn header_larger_than_limit_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcapng");
        let err = PcapngWriter::create(&path, ["eth0"], 10).err().unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("x.pcapng") && msg.contains("10 bytes"),
            "{msg}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn unknown_interface_gets_a_description_block_and_input_is_sanitised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.pcapng");
        let mut w = PcapngWriter::create(&path, ["eth0"], 1 << 20).unwrap();
        let big = vec![0u8; 300];
        let long_comment = "é".repeat(MAX_COMMENT_BYTES);
        w.write_packet(&CapturedPacket {
            iface: "late0",
            linktype: LINKTYPE_ETHERNET,
            ts: UNIX_EPOCH - Duration::from_secs(5),
            // Claims to be shorter than what was captured.
            original_len: 10,
            data: &big,
            comment: &long_comment,
        })
        .unwrap();
        w.flush().unwrap();
        let mut r = PcapNgReader::new(File::open(&path).unwrap()).unwrap();
        let mut seen = 0;
        while let Some(block) = r.next_block() {
            if let Block::EnhancedPacket(e) = block.unwrap() {
                assert_eq!(e.interface_id, 1);
                assert_eq!(e.data.len(), 128);
                assert_eq!(e.original_len, 128);
                assert_eq!(e.timestamp, Duration::ZERO);
                let EnhancedPacketOption::Comment(c) = &e.options[0] else {
                    panic!("no comment");
                };
                assert!(c.len() <= MAX_COMMENT_BYTES && c.len() >= MAX_COMMENT_BYTES - 1);
                seen += 1;
            }
        }
        assert_eq!(seen, 1);
        assert_eq!(r.interfaces().len(), 2);
    }

    #[test]
    fn the_file_is_readable_by_owner_and_group_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modes.pcapng");
        PcapngWriter::create(&path, ["eth0"], 1 << 20).unwrap();
        // The umask may take bits away, never add them.
        let m = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(m & !0o640, 0, "{m:o}: others must not read it");
        assert_eq!(m & 0o600, 0o600, "{m:o}: its owner writes it");
    }

    #[test]
    fn create_error_names_the_path() {
        let err = PcapngWriter::create("/nonexistent-dir/cap.pcapng", ["eth0"], 1 << 20)
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent-dir/cap.pcapng"), "{msg}");
    }

    /// The file must open in the tool incident responders use. tshark is a
    /// hard requirement of this test: skipping would hide a broken capture.
    #[test]
    fn tshark_reads_lengths_interfaces_timestamps_and_comments() {
        let tshark = Path::new("/usr/bin/tshark");
        assert!(
            tshark.exists(),
            "tshark is required for this test: install it with `apt-get install tshark`"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.pcapng");
        write_samples(&path, 1 << 20);
        let out = Command::new(tshark)
            .arg("-r")
            .arg(&path)
            .args(["-T", "fields", "-E", "separator=|"])
            .args(["-e", "frame.len", "-e", "frame.cap_len"])
            .args(["-e", "frame.interface_name", "-e", "frame.time_epoch"])
            .args(["-e", "tcp.dstport", "-e", "frame.comment"])
            .output()
            .expect("cannot run /usr/bin/tshark");
        assert!(
            out.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split('|').collect()).collect();
        let expect = [
            ("60", "60", "eth0", "1795365758.187872964", "2181"),
            ("1514", "128", "veth-lab1", "1795365759.187872965", "6667"),
            ("200", "128", "eth0", "1795365761.187872963", "9999"),
        ];
        assert_eq!(rows.len(), expect.len(), "tshark output:\n{stdout}");
        for ((row, want), s) in rows.iter().zip(expect).zip(samples()) {
            assert_eq!(row.len(), 6, "{row:?}");
            assert_eq!(
                (row[0], row[1], row[2], row[3], row[4]),
                want,
                "tshark output:\n{stdout}"
            );
            assert_eq!(row[5], s.comment);
        }
    }
}
