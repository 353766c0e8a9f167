//! Reading capture files as a stream of packets: pcap and pcapng, gzipped or
//! not, several files merged in time order.
//!
//! Capture files come from incident responders, so they are often damaged
//! (a capture cut when the disk filled, a copy truncated in transit, a file
//! that is not a capture at all). The reader never trusts a length field:
//! every record is framed against a hard cap before anything is allocated,
//! a damaged record is reported with its file and byte offset, and whatever
//! can still be framed after it is read. Memory is one buffer per file,
//! whatever the file's size.
//!
//! pcap-file's `PcapReader`/`PcapNgReader` cannot report offsets and refuse
//! packets whose original length exceeds the snapshot length (which is what
//! every capture taken with `-s` contains), so this module drives its
//! parsers over its own buffer instead.

mod pcap;
mod pcapng;
mod reader;
mod set;
#[cfg(test)]
mod tests;
mod window;

pub use set::CaptureSet;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicU64},
};

use pcap_file::{Endianness, PcapError, pcap::PcapParser, pcapng::PcapNgParser};

use window::Window;

/// The largest packet any capture tool writes (libpcap's MAXIMUM_SNAPLEN).
/// A record claiming more is corrupt, and must not make us allocate it.
pub const MAX_PACKET: usize = 262_144;
/// A pcapng block holds one packet plus options (comments, hashes); more
/// than this is a corrupt length field.
pub const MAX_BLOCK: usize = MAX_PACKET + 64 * 1024;
/// Errors remembered per file; beyond this they are only counted, so a file
/// of garbage cannot fill memory with messages.
const MAX_ERRORS_KEPT: usize = 20;
/// Interfaces one pcapng section may declare: real captures have a few,
/// a hostile file must not grow the list without bound.
const MAX_INTERFACES: usize = 4096;
/// How much is read from the file at a time.
const READ_CHUNK: usize = 64 * 1024;

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What went wrong, without where (see [`CaptureError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("cannot open: {0}")]
    Open(String),
    #[error("read error: {0}")]
    Io(String),
    #[error("empty file")]
    Empty,
    #[error(
        "not a pcap or pcapng file (starts with {0}); expected a pcap, pcapng or gzip magic number"
    )]
    WrongMagic(String),
    #[error("gzip inside gzip is not supported")]
    NestedGzip,
    #[error("file ends inside {what}: {needed} bytes needed, {present} present")]
    Truncated {
        what: &'static str,
        needed: usize,
        present: usize,
    },
    #[error(
        "{what} claims {len} bytes, more than any capture holds ({max}): the records after it cannot be framed"
    )]
    AbsurdLength {
        what: &'static str,
        len: u64,
        max: usize,
    },
    #[error(
        "{cause}; {skipped} bytes skipped to the next record that looks valid, at byte {resumed}"
    )]
    Resynced {
        cause: Box<Problem>,
        skipped: u64,
        resumed: u64,
    },
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("packet of interface {0}, which no interface description block declares")]
    UnknownInterface(u32),
    #[error(
        "link type {0} is not supported (Ethernet, Linux SLL/SLL2 and raw IP are); its packets are skipped"
    )]
    UnsupportedLink(u32),
}

/// A problem in a capture file, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}byte {offset}: {problem}", path.display(), if *.gzip { "decompressed " } else { "" })]
pub struct CaptureError {
    pub path: PathBuf,
    /// Offset of the record (or header) at fault, in the file or, for a
    /// gzipped file, in its decompressed stream.
    pub offset: u64,
    pub gzip: bool,
    pub problem: Problem,
}

pub use super::link::Link;

/// One packet of a capture, borrowed from its reader until the next one.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire; `data` may be shorter (snapshot length).
    pub orig_len: u32,
    pub link: Link,
    /// The capture's own LINKTYPE value for `link`, upper bits included:
    /// what a carved copy of the packet is written with.
    pub linktype: u32,
    /// Index into [`CaptureSet::interfaces`].
    pub iface: usize,
    pub data: &'a [u8],
    /// Which file it came from (index into the paths given).
    pub file: usize,
}

/// Per-file counters for the closing summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileStats {
    pub path: PathBuf,
    pub packets: u64,
    /// Records skipped because they were damaged or of an unsupported link.
    pub skipped: u64,
    /// Problems found (kept in `errors` up to a bound).
    pub problems: u64,
    pub errors: Vec<CaptureError>,
    /// Reading stopped before the end of the file.
    pub stopped_early: bool,
    pub opened: bool,
}

/// How a packet's timestamp ticks are turned into nanoseconds.
#[derive(Debug, Clone, Copy)]
struct TsUnit {
    /// if_tsresol: bit 7 clear = 10^-n s, set = 2^-n s.
    resol: u8,
    /// if_tsoffset, seconds.
    offset_s: u64,
}

impl TsUnit {
    const MICROS: TsUnit = TsUnit {
        resol: 6,
        offset_s: 0,
    };

    fn to_ns(self, ticks: u64) -> u64 {
        let ticks = u128::from(ticks);
        let ns = if self.resol & 0x80 != 0 {
            let shift = u32::from(self.resol & 0x7f).min(127);
            (ticks * 1_000_000_000) >> shift
        } else {
            let n = u32::from(self.resol).min(38);
            if n <= 9 {
                ticks * 10u128.pow(9 - n)
            } else {
                ticks / 10u128.pow(n - 9)
            }
        };
        let ns = ns + u128::from(self.offset_s) * 1_000_000_000;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

enum CaptureFormat {
    Pcap {
        parser: PcapParser,
        iface: usize,
        /// From the file header, read once rather than per record.
        endianness: Endianness,
        nanos: bool,
        link: Link,
        linktype: u32,
    },
    PcapNg {
        parser: PcapNgParser,
        interfaces: Vec<NgInterface>,
        /// SPBs carry no timestamp: they take the previous packet's.
        last_ts: u64,
    },
}

/// Where the current packet sits in the window.
#[derive(Clone, Copy)]
struct Current {
    ts_ns: u64,
    orig_len: u32,
    link: Link,
    linktype: u32,
    iface: usize,
    /// Range in the window's available bytes.
    data: (usize, usize),
}

/// One capture file read as a stream of packets.
pub struct CaptureReader {
    index: usize,
    path: PathBuf,
    gzip: bool,
    window: Window,
    format: CaptureFormat,
    /// Bytes of the current record still to consume before the next.
    pending: usize,
    current: Option<Current>,
    /// Time of the last packet read, to judge candidate records when
    /// looking for the next one after damage.
    last_ts_ns: Option<u64>,
    /// The file's size and how much of it has been read, for progress.
    size: u64,
    consumed: Arc<AtomicU64>,
    pub stats: FileStats,
}

/// Interface names shared by all files: pcapng's if_name, else the file name.
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<String>,
}

impl Names {
    fn intern(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }

    pub fn get(&self, i: usize) -> &str {
        self.names.get(i).map_or("?", String::as_str)
    }

    pub fn all(&self) -> &[String] {
        &self.names
    }
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn hex4(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn pcap_err(e: PcapError) -> String {
    match e {
        PcapError::InvalidField(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Outcome of trying to read one record.
enum Step {
    Packet(Current),
    /// A record that is not a packet, or a damaged one that was skipped.
    Skipped,
    End,
}

struct NgInterface {
    link: Link,
    linktype: u32,
    snaplen: u32,
    ts: TsUnit,
    /// Index into the capture set's interface names.
    name: usize,
}

fn read_u32(bytes: &[u8], e: Endianness) -> u32 {
    let b = [bytes[0], bytes[1], bytes[2], bytes[3]];
    match e {
        Endianness::Big => u32::from_be_bytes(b),
        Endianness::Little => u32::from_le_bytes(b),
    }
}

/// Bytes examined per step while looking for the next valid record.
const RESYNC_SCAN: usize = 64 * 1024;
/// How far from the last good packet a candidate record's time may be.
const RESYNC_TIME_WINDOW_S: u64 = 7 * 86_400;

/// What a pcap record header must satisfy to be taken for one.
struct RecordLimits {
    endianness: Endianness,
    frac_limit: u32,
    max_len: usize,
    near_sec: Option<u64>,
}

impl RecordLimits {
    fn header_ok(&self, h: &[u8]) -> Option<usize> {
        let sec = u64::from(read_u32(&h[0..4], self.endianness));
        let frac = read_u32(&h[4..8], self.endianness);
        let incl = read_u32(&h[8..12], self.endianness) as usize;
        let orig = read_u32(&h[12..16], self.endianness) as usize;
        let near = self
            .near_sec
            .is_none_or(|t| sec.abs_diff(t) <= RESYNC_TIME_WINDOW_S);
        (near && frac < self.frac_limit && incl <= self.max_len && incl <= orig && orig <= 1 << 24)
            .then_some(incl)
    }

    /// A record header at the start of `buf`, followed by another one or
    /// by the end of the file.
    fn plausible(&self, buf: &[u8], eof: bool) -> bool {
        if buf.len() < 16 {
            return false;
        }
        let Some(incl) = self.header_ok(&buf[..16]) else {
            return false;
        };
        let next = 16 + incl;
        match buf.get(next..next + 16) {
            Some(h) => self.header_ok(h).is_some(),
            None => eof && buf.len() == next,
        }
    }
}
