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

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
};

use pcap_file::{
    Endianness, PcapError, TsResolution,
    pcap::PcapParser,
    pcapng::{
        Block, PcapNgParser,
        blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
    },
};

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

/// A growable window over a byte stream that knows the stream offset of
/// its first byte.
struct Window {
    reader: Source,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

/// Where a window's bytes come from.
enum Source {
    /// Read when the window needs them.
    Direct(Box<dyn Read + Send>),
    /// Read ahead by a thread of their own.
    Ahead(ReadAhead),
}

/// Bytes read one chunk ahead by a background thread, so that the kernel's
/// copy (and, for a gzipped file, decompression) runs beside the parsing
/// instead of before it. Each chunk comes with room in front for the
/// unread end of the previous one, so the window takes it over instead of
/// copying it. At most three chunks exist: the window's, one queued and the
/// one being read; the thread stops when the window is dropped.
struct ReadAhead {
    chunks: mpsc::Receiver<Chunk>,
    /// Chunks the window is done with, for the thread to fill again.
    spare: mpsc::SyncSender<Vec<u8>>,
}

enum Chunk {
    /// `buf[AHEAD_ROOM..AHEAD_ROOM + len]` are the next bytes of the stream.
    Data(Vec<u8>, usize),
    End,
    Failed(io::Error),
}

/// Bytes the thread reads per chunk.
const AHEAD_CHUNK: usize = 256 * 1024;
/// Room in front of each chunk for the previous one's unread end: a record
/// split across two chunks. Longer ones are copied instead.
const AHEAD_ROOM: usize = 16 * 1024;

impl ReadAhead {
    fn start(mut reader: Box<dyn Read + Send>) -> io::Result<Self> {
        let (chunk_tx, chunks) = mpsc::sync_channel(1);
        let (spare, spare_rx) = mpsc::sync_channel::<Vec<u8>>(2);
        std::thread::Builder::new()
            .name("replay-read".into())
            .spawn(move || {
                loop {
                    let mut buf = spare_rx.try_recv().unwrap_or_default();
                    if buf.len() < AHEAD_ROOM + AHEAD_CHUNK {
                        buf.resize(AHEAD_ROOM + AHEAD_CHUNK, 0);
                    }
                    let mut len = 0;
                    let chunk = loop {
                        match reader.read(&mut buf[AHEAD_ROOM + len..AHEAD_ROOM + AHEAD_CHUNK]) {
                            Ok(0) if len == 0 => break Chunk::End,
                            Ok(0) => break Chunk::Data(buf, len),
                            Ok(k) => {
                                len += k;
                                if len == AHEAD_CHUNK {
                                    break Chunk::Data(buf, len);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            // What was read before the error comes first.
                            Err(e) if len > 0 => {
                                if chunk_tx.send(Chunk::Data(buf, len)).is_err() {
                                    return;
                                }
                                break Chunk::Failed(e);
                            }
                            Err(e) => break Chunk::Failed(e),
                        }
                    };
                    let last = !matches!(chunk, Chunk::Data(..));
                    // The window is gone: nobody wants the rest.
                    if chunk_tx.send(chunk).is_err() || last {
                        return;
                    }
                }
            })?;
        Ok(Self { chunks, spare })
    }
}

impl Window {
    fn new(reader: Box<dyn Read + Send>) -> Self {
        Self {
            reader: Source::Direct(reader),
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Reads ahead in a thread from now on. If no thread can be started,
    /// the next read fails with why (the file is reported as stopped there).
    fn read_ahead(&mut self) {
        let Source::Direct(reader) =
            std::mem::replace(&mut self.reader, Source::Direct(Box::new(io::empty())))
        else {
            return;
        };
        self.reader = match ReadAhead::start(reader) {
            Ok(ahead) => Source::Ahead(ahead),
            Err(e) => Source::Direct(Box::new(Failing(Some(e)))),
        };
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Makes at least `n` bytes available unless the stream ends first;
    /// returns how many are. `n` is bounded by the callers' caps.
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        while self.end - self.start < n && !self.eof {
            let reader = match &mut self.reader {
                Source::Direct(reader) => reader,
                Source::Ahead(_) => {
                    self.take_chunk()?;
                    continue;
                }
            };
            if self.start > 0 && (self.buf.len() - self.end < READ_CHUNK || self.start == self.end)
            {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let want = (self.end + READ_CHUNK).max(n);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            match reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Adds the read-ahead thread's next chunk to the window.
    fn take_chunk(&mut self) -> io::Result<()> {
        let Source::Ahead(ahead) = &self.reader else {
            return Ok(());
        };
        let (mut chunk, len) = match ahead.chunks.recv() {
            Ok(Chunk::Data(chunk, len)) => (chunk, len),
            Ok(Chunk::Failed(e)) => {
                // As a direct read would: this fill fails, a later one
                // finds the end.
                self.reader = Source::Direct(Box::new(io::empty()));
                return Err(e);
            }
            Ok(Chunk::End) | Err(_) => {
                self.eof = true;
                return Ok(());
            }
        };
        let left = self.end - self.start;
        let spent = if left <= AHEAD_ROOM {
            // The unread end goes in front of the chunk, which becomes the
            // window's buffer.
            chunk[AHEAD_ROOM - left..AHEAD_ROOM].copy_from_slice(&self.buf[self.start..self.end]);
            self.start = AHEAD_ROOM - left;
            self.end = AHEAD_ROOM + len;
            std::mem::replace(&mut self.buf, chunk)
        } else {
            // A long record across chunks: appended the plain way.
            self.buf.copy_within(self.start..self.end, 0);
            self.end = left;
            self.start = 0;
            self.buf.truncate(left);
            self.buf
                .extend_from_slice(&chunk[AHEAD_ROOM..AHEAD_ROOM + len]);
            self.end = self.buf.len();
            chunk
        };
        // The thread may have enough already: then this one is dropped.
        let _ = ahead.spare.try_send(spent);
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }
}

/// A reader whose first read fails with a given error.
struct Failing(Option<io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(io::Error::new(
                e.kind(),
                format!("cannot start reading ahead: {e}"),
            )),
            None => Ok(0),
        }
    }
}

/// Counts the bytes taken from the file itself (compressed, for a gzipped
/// one), so progress can be shown against the file sizes.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
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

struct NgInterface {
    link: Link,
    snaplen: u32,
    ts: TsUnit,
    /// Index into the capture set's interface names.
    name: usize,
}

enum CaptureFormat {
    Pcap {
        parser: PcapParser,
        iface: usize,
        /// From the file header, read once rather than per record.
        endianness: Endianness,
        nanos: bool,
        link: Link,
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

impl CaptureReader {
    /// Opens `path` and reads its file header. A file that cannot be opened
    /// or recognised is an error naming the file and offset.
    pub fn open(index: usize, path: &Path, names: &mut Names) -> Result<Self, CaptureError> {
        let err = |offset, gzip, problem| CaptureError {
            path: path.to_path_buf(),
            offset,
            gzip,
            problem,
        };
        let file = File::open(path).map_err(|e| err(0, false, Problem::Open(e.to_string())))?;
        let size = file.metadata().map_or(0, |m| m.len());
        let consumed = Arc::new(AtomicU64::new(0));
        let mut window = Window::new(Box::new(Counting {
            inner: file,
            count: consumed.clone(),
        }));
        let n = window
            .fill(4)
            .map_err(|e| err(0, false, Problem::Io(e.to_string())))?;
        let mut gzip = false;
        if n >= 2 && window.available()[..2] == GZIP_MAGIC {
            gzip = true;
            let inner = std::mem::replace(&mut window, Window::new(Box::new(io::empty())));
            let head = io::Cursor::new(inner.available().to_vec());
            let Source::Direct(reader) = inner.reader else {
                unreachable!("a file is opened without read-ahead")
            };
            let rest = head.chain(reader);
            window = Window::new(Box::new(flate2::read::MultiGzDecoder::new(rest)));
            window
                .fill(4)
                .map_err(|e| err(0, true, Problem::Io(format!("gzip: {e}"))))?;
        }
        let head = window.available();
        if head.is_empty() {
            return Err(err(0, gzip, Problem::Empty));
        }
        if gzip && head.len() >= 2 && head[..2] == GZIP_MAGIC {
            return Err(err(0, gzip, Problem::NestedGzip));
        }
        let label = file_label(path);
        let format = if head.len() >= 4 && PCAP_MAGICS.iter().any(|m| head[..4] == *m) {
            let n = window
                .fill(24)
                .map_err(|e| err(0, gzip, Problem::Io(e.to_string())))?;
            if n < 24 {
                return Err(err(
                    0,
                    gzip,
                    Problem::Truncated {
                        what: "the pcap file header",
                        needed: 24,
                        present: n,
                    },
                ));
            }
            let (_, parser) = PcapParser::new(&window.available()[..24]).map_err(|e| {
                err(
                    0,
                    gzip,
                    Problem::Invalid {
                        what: "pcap file header",
                        detail: pcap_err(e),
                    },
                )
            })?;
            window.consume(24);
            let header = parser.header();
            CaptureFormat::Pcap {
                endianness: header.endianness,
                nanos: header.ts_resolution == TsResolution::NanoSecond,
                link: Link::from_linktype(u32::from(header.datalink)),
                parser,
                iface: names.intern(&label),
            }
        } else if head.len() >= 4 && head[..4] == PCAPNG_MAGIC {
            let len = block_len(&mut window, None)
                .map_err(|(offset, problem)| err(offset, gzip, problem))?
                .ok_or_else(|| {
                    err(
                        0,
                        gzip,
                        Problem::Truncated {
                            what: "the section header block",
                            needed: 28,
                            present: window.available().len(),
                        },
                    )
                })?;
            let (_, parser) = PcapNgParser::new(&window.available()[..len]).map_err(|e| {
                err(
                    0,
                    gzip,
                    Problem::Invalid {
                        what: "section header block",
                        detail: pcap_err(e),
                    },
                )
            })?;
            window.consume(len);
            CaptureFormat::PcapNg {
                parser,
                interfaces: Vec::new(),
                last_ts: 0,
            }
        } else {
            return Err(err(0, gzip, Problem::WrongMagic(hex4(head))));
        };
        let mut stats = FileStats {
            path: path.to_path_buf(),
            opened: true,
            ..Default::default()
        };
        if let CaptureFormat::Pcap { parser, .. } = &format
            && let Link::Unsupported(n) = Link::from_linktype(u32::from(parser.header().datalink))
        {
            // Every packet would be skipped: say it once, up front.
            stats.problems += 1;
            stats
                .errors
                .push(err(20, gzip, Problem::UnsupportedLink(n)));
        }
        Ok(Self {
            index,
            path: path.to_path_buf(),
            gzip,
            window,
            format,
            pending: 0,
            current: None,
            last_ts_ns: None,
            size,
            consumed,
            stats,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn problem(&mut self, offset: u64, problem: Problem) {
        self.stats.problems += 1;
        if self.stats.errors.len() < MAX_ERRORS_KEPT {
            self.stats.errors.push(CaptureError {
                path: self.path.clone(),
                offset,
                gzip: self.gzip,
                problem,
            });
        }
    }

    /// The packet the reader is on, if any.
    #[inline]
    pub fn current(&self) -> Option<Packet<'_>> {
        let c = self.current?;
        Some(Packet {
            ts_ns: c.ts_ns,
            orig_len: c.orig_len,
            link: c.link,
            iface: c.iface,
            data: &self.window.available()[c.data.0..c.data.1],
            file: self.index,
        })
    }

    /// Moves to the next packet; `false` at the end of what can be read.
    /// Problems are recorded in `stats`, never returned: one bad record
    /// must not hide the rest of the file.
    #[inline]
    pub fn advance(&mut self, names: &mut Names) -> bool {
        if let Some(c) = self.next_framed() {
            self.stats.packets += 1;
            self.last_ts_ns = Some(c.ts_ns);
            self.current = Some(c);
            return true;
        }
        self.advance_slow(names)
    }

    /// [`advance`](Self::advance) for every case but a framed pcap record.
    #[inline(never)]
    fn advance_slow(&mut self, names: &mut Names) -> bool {
        self.current = None;
        loop {
            // The previous record (a packet, or a block that was skipped).
            self.window.consume(self.pending);
            self.pending = 0;
            let step = match &self.format {
                CaptureFormat::Pcap { .. } => self.next_pcap(),
                CaptureFormat::PcapNg { .. } => self.next_pcapng(names),
            };
            match step {
                Ok(Step::Packet(c)) => {
                    self.stats.packets += 1;
                    self.last_ts_ns = Some(c.ts_ns);
                    self.current = Some(c);
                    return true;
                }
                Ok(Step::Skipped) => {}
                Ok(Step::End) => return false,
                Err((offset, problem)) => {
                    self.problem(offset, problem);
                    self.stats.stopped_early = true;
                    return false;
                }
            }
        }
    }

    /// The common case: the next record is whole in the window and sane
    /// (a pcap record, or a pcapng enhanced packet block without options of
    /// a declared interface). It is read here without the general path's
    /// handling of ends, damage and refills, with the same result the
    /// general path would give (for such a block pcap-file checks no more
    /// than framing, the trailer and that the packet fills the body);
    /// anything else is left to it.
    #[inline(always)]
    fn next_framed(&mut self) -> Option<Current> {
        let rest = self
            .window
            .buf
            .get(self.window.start + self.pending..self.window.end)?;
        let (current, len) = match &mut self.format {
            &mut CaptureFormat::Pcap {
                iface,
                endianness,
                nanos,
                link,
                ..
            } => {
                if let Link::Unsupported(_) = link {
                    return None;
                }
                let head = rest.get(..16)?;
                let incl_len = read_u32(&head[8..12], endianness) as usize;
                if incl_len > MAX_PACKET || rest.len() < 16 + incl_len {
                    return None;
                }
                let ts_frac = read_u32(&head[4..8], endianness);
                let frac_ns = if nanos {
                    if ts_frac >= 1_000_000_000 {
                        return None;
                    }
                    u64::from(ts_frac)
                } else {
                    if ts_frac >= 1_000_000 {
                        return None;
                    }
                    u64::from(ts_frac) * 1000
                };
                let ts_sec = read_u32(&head[0..4], endianness);
                let orig_len = read_u32(&head[12..16], endianness);
                let current = Current {
                    ts_ns: u64::from(ts_sec) * 1_000_000_000 + frac_ns,
                    orig_len: orig_len.max(incl_len as u32),
                    link,
                    iface,
                    data: (16, 16 + incl_len),
                };
                (current, 16 + incl_len)
            }
            CaptureFormat::PcapNg {
                parser,
                interfaces,
                last_ts,
            } => {
                let e = parser.section().endianness;
                let head = rest.get(..32)?;
                let len = read_u32(&head[4..8], e) as usize;
                if read_u32(head, e) != 6
                    || !(32..=MAX_BLOCK).contains(&len)
                    || !len.is_multiple_of(4)
                    || rest.len() < len
                    || read_u32(&rest[len - 4..len], e) as usize != len
                {
                    return None;
                }
                let captured = read_u32(&head[20..24], e) as usize;
                if captured.div_ceil(4) * 4 != len - 32 {
                    return None;
                }
                let iface = interfaces.get(read_u32(&head[8..12], e) as usize)?;
                if let Link::Unsupported(_) = iface.link {
                    return None;
                }
                let ticks = u64::from(read_u32(&head[12..16], e)) << 32
                    | u64::from(read_u32(&head[16..20], e));
                let ts_ns = iface.ts.to_ns(ticks);
                *last_ts = ts_ns;
                let current = Current {
                    ts_ns,
                    orig_len: read_u32(&head[24..28], e).max(captured as u32),
                    link: iface.link,
                    iface: iface.name,
                    data: (28, 28 + captured),
                };
                (current, len)
            }
        };
        self.window.consume(self.pending);
        self.pending = len;
        Some(current)
    }

    fn next_pcap(&mut self) -> Result<Step, (u64, Problem)> {
        let CaptureFormat::Pcap {
            iface,
            endianness,
            nanos,
            link,
            ..
        } = self.format
        else {
            unreachable!("called for pcap files only")
        };
        let at = self.window.offset;
        let n = self
            .window
            .fill(16)
            .map_err(|e| (at, Problem::Io(e.to_string())))?;
        if n == 0 {
            return Ok(Step::End);
        }
        if n < 16 {
            return Err((
                at,
                Problem::Truncated {
                    what: "a packet record header",
                    needed: 16,
                    present: n,
                },
            ));
        }
        let incl_len = read_u32(&self.window.available()[8..12], endianness) as usize;
        if incl_len > MAX_PACKET {
            let cause = Problem::AbsurdLength {
                what: "a packet record",
                len: incl_len as u64,
                max: MAX_PACKET,
            };
            return self.resync_pcap(at, cause);
        }
        let n = self
            .window
            .fill(16 + incl_len)
            .map_err(|e| (at, Problem::Io(e.to_string())))?;
        if n < 16 + incl_len {
            return Err((
                at,
                Problem::Truncated {
                    what: "a packet record",
                    needed: 16 + incl_len,
                    present: n,
                },
            ));
        }
        // The record is framed: its header is read here directly, as
        // pcap-file's parser would (it checks nothing more than framing).
        let head = &self.window.available()[..16];
        let ts_sec = read_u32(&head[0..4], endianness);
        let ts_frac = read_u32(&head[4..8], endianness);
        let orig_len = read_u32(&head[12..16], endianness);
        self.pending = 16 + incl_len;
        let frac_limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        if ts_frac >= frac_limit {
            self.problem(
                at,
                Problem::Invalid {
                    what: "packet record",
                    detail: format!(
                        "timestamp fraction {ts_frac} is not below {frac_limit}; record skipped"
                    ),
                },
            );
            self.stats.skipped += 1;
            return Ok(Step::Skipped);
        }
        if let Link::Unsupported(_) = link {
            self.stats.skipped += 1;
            return Ok(Step::Skipped);
        }
        let frac_ns = if nanos {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1000
        };
        Ok(Step::Packet(Current {
            ts_ns: u64::from(ts_sec) * 1_000_000_000 + frac_ns,
            // A record may claim less on the wire than it holds; the bytes
            // present are the better witness.
            orig_len: orig_len.max(incl_len as u32),
            link,
            iface,
            data: (16, 16 + incl_len),
        }))
    }

    /// After a record whose length cannot be right, looks for the next
    /// offset where a plausible record starts and is followed by another
    /// (or by the end of the file), as pcap repair tools do: a corrupt
    /// stretch in the middle of a capture should not cost its second half.
    /// Streams through the file; memory stays bounded by the window.
    fn resync_pcap(&mut self, at: u64, cause: Problem) -> Result<Step, (u64, Problem)> {
        let CaptureFormat::Pcap { parser, .. } = &self.format else {
            unreachable!("called for pcap files only")
        };
        let header = parser.header();
        let limits = RecordLimits {
            endianness: header.endianness,
            frac_limit: match header.ts_resolution {
                TsResolution::MicroSecond => 1_000_000,
                TsResolution::NanoSecond => 1_000_000_000,
            },
            max_len: match header.snaplen as usize {
                0 => MAX_PACKET,
                n => n.min(MAX_PACKET),
            },
            near_sec: self.last_ts_ns.map(|t| t / 1_000_000_000),
        };
        // Past the record that failed.
        self.window.consume(1);
        self.resync(at, cause, 2 * 16 + MAX_PACKET, 1, |bytes, eof| {
            limits.plausible(bytes, eof)
        })
    }

    /// After a block whose framing is broken, looks for the next 4-byte
    /// aligned offset where a known block type starts with a length that
    /// its trailer repeats: pcapng's redundancy makes such a match a
    /// reliable sign that framing is found again.
    fn resync_pcapng(
        &mut self,
        at: u64,
        cause: Problem,
        endianness: Endianness,
    ) -> Result<Step, (u64, Problem)> {
        self.window.consume(4);
        self.resync(at, cause, MAX_BLOCK, 4, |bytes, _| {
            plausible_block(bytes, endianness)
        })
    }

    /// Scans forward, `step` bytes at a time, for an offset where
    /// `plausible` accepts what follows (reading up to `lookahead` bytes past
    /// it), and resumes there, reporting what was skipped; at the end of the
    /// file without a match, `cause` stands. Shared by pcap and pcapng so
    /// both recover from damage the same bounded way.
    fn resync(
        &mut self,
        at: u64,
        cause: Problem,
        lookahead: usize,
        step: usize,
        plausible: impl Fn(&[u8], bool) -> bool,
    ) -> Result<Step, (u64, Problem)> {
        loop {
            let here = self.window.offset;
            let n = self
                .window
                .fill(RESYNC_SCAN + lookahead)
                .map_err(|e| (here, Problem::Io(e.to_string())))?;
            let eof = self.window.eof;
            let avail = self.window.available();
            let scan = if eof { n } else { RESYNC_SCAN.min(n) };
            let found = (0..scan)
                .step_by(step)
                .find(|&k| plausible(&avail[k..], eof));
            if let Some(k) = found {
                self.window.consume(k);
                let resumed = self.window.offset;
                self.problem(
                    at,
                    Problem::Resynced {
                        cause: Box::new(cause),
                        skipped: resumed - at,
                        resumed,
                    },
                );
                return Ok(Step::Skipped);
            }
            if eof {
                self.window.consume(n);
                return Err((at, cause));
            }
            self.window.consume(scan);
        }
    }

    fn next_pcapng(&mut self, names: &mut Names) -> Result<Step, (u64, Problem)> {
        let CaptureFormat::PcapNg { parser, .. } = &self.format else {
            unreachable!("called for pcapng files only")
        };
        let endianness = parser.section().endianness;
        let at = self.window.offset;
        let len = match block_len(&mut self.window, Some(endianness)) {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(Step::End),
            Err((at, p @ (Problem::AbsurdLength { .. } | Problem::Invalid { .. }))) => {
                return self.resync_pcapng(at, p, endianness);
            }
            Err(e) => return Err(e),
        };
        self.pending = len;
        let CaptureFormat::PcapNg {
            parser,
            interfaces,
            last_ts,
        } = &mut self.format
        else {
            unreachable!("checked above")
        };
        let bytes = &self.window.available()[..len];
        let block = match parser.next_block(bytes) {
            Ok((_, block)) => block,
            Err(e) => {
                let kind = read_u32(bytes, endianness);
                if kind == SHB {
                    // Without a section header nothing after it can be read.
                    return Err((
                        at,
                        Problem::Invalid {
                            what: "section header block",
                            detail: pcap_err(e),
                        },
                    ));
                }
                if kind == IDB && interfaces.len() < MAX_INTERFACES {
                    // Keep interface numbering aligned: later packets name
                    // interfaces by position.
                    interfaces.push(NgInterface {
                        link: Link::Unsupported(u32::MAX),
                        snaplen: 0,
                        ts: TsUnit::MICROS,
                        name: 0,
                    });
                }
                let what = block_name(kind);
                self.problem(
                    at,
                    Problem::Invalid {
                        what,
                        detail: format!("{}; block skipped", pcap_err(e)),
                    },
                );
                self.stats.skipped += 1;
                return Ok(Step::Skipped);
            }
        };
        let offset_in = |data: &[u8]| {
            let start = data.as_ptr() as usize - bytes.as_ptr() as usize;
            (start, start + data.len())
        };
        let (iface_id, ticks, orig_len, range) = match &block {
            Block::SectionHeader(_) => {
                interfaces.clear();
                return Ok(Step::Skipped);
            }
            Block::InterfaceDescription(idb) => {
                if interfaces.len() >= MAX_INTERFACES {
                    self.problem(
                        at,
                        Problem::Invalid {
                            what: "interface description block",
                            detail: format!("more than {MAX_INTERFACES} interfaces in one section; block skipped"),
                        },
                    );
                } else {
                    interfaces.push(ng_interface(idb, &self.path, names));
                }
                return Ok(Step::Skipped);
            }
            Block::EnhancedPacket(epb) => (
                epb.interface_id,
                Some(epb.timestamp.as_nanos() as u64),
                epb.original_len,
                offset_in(&epb.data),
            ),
            Block::Packet(pb) => {
                // pcap-file reads the two timestamp halves as one u64 in the
                // section's byte order; the format stores high word first.
                let ts = match endianness {
                    Endianness::Big => pb.timestamp,
                    Endianness::Little => pb.timestamp.rotate_left(32),
                };
                (
                    u32::from(pb.interface_id),
                    Some(ts),
                    pb.original_len,
                    offset_in(&pb.data),
                )
            }
            Block::SimplePacket(spb) => {
                // The block's data includes padding: the original length
                // and the interface's snapshot length say how much is real.
                let snap = interfaces.first().map_or(u32::MAX, |i| i.snaplen);
                let snap = if snap == 0 { u32::MAX } else { snap };
                let real = spb
                    .data
                    .len()
                    .min(spb.original_len as usize)
                    .min(snap as usize);
                let (s, _) = offset_in(&spb.data);
                (0, None, spb.original_len, (s, s + real))
            }
            _ => return Ok(Step::Skipped),
        };
        let Some(iface) = interfaces.get(iface_id as usize) else {
            self.problem(at, Problem::UnknownInterface(iface_id));
            self.stats.skipped += 1;
            return Ok(Step::Skipped);
        };
        let ts_ns = match ticks {
            Some(t) => iface.ts.to_ns(t),
            None => *last_ts,
        };
        *last_ts = ts_ns;
        if let Link::Unsupported(_) = iface.link {
            self.stats.skipped += 1;
            return Ok(Step::Skipped);
        }
        let captured = (range.1 - range.0) as u32;
        Ok(Step::Packet(Current {
            ts_ns,
            orig_len: orig_len.max(captured),
            link: iface.link,
            iface: iface.name,
            data: range,
        }))
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

/// A block of a type that carries packets or their context, whose length
/// is sane and repeated by its trailer.
fn plausible_block(buf: &[u8], endianness: Endianness) -> bool {
    if buf.len() < 12 {
        return false;
    }
    let kind = read_u32(buf, endianness);
    if !matches!(kind, SHB | IDB | 2..=6) {
        return false;
    }
    let len = read_u32(&buf[4..8], endianness) as usize;
    if !(12..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) || buf.len() < len {
        return false;
    }
    read_u32(&buf[len - 4..len], endianness) as usize == len
}

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;

fn block_name(kind: u32) -> &'static str {
    match kind {
        SHB => "section header block",
        IDB => "interface description block",
        2 => "packet block",
        3 => "simple packet block",
        6 => "enhanced packet block",
        _ => "block",
    }
}

fn read_u32(bytes: &[u8], e: Endianness) -> u32 {
    let b = [bytes[0], bytes[1], bytes[2], bytes[3]];
    match e {
        Endianness::Big => u32::from_be_bytes(b),
        Endianness::Little => u32::from_le_bytes(b),
    }
}

/// Frames the next pcapng block: its checked total length, with that many
/// bytes available; `None` at a clean end of file. `endianness` is the
/// section's (`None` before the first section header).
fn block_len(
    window: &mut Window,
    endianness: Option<Endianness>,
) -> Result<Option<usize>, (u64, Problem)> {
    let at = window.offset;
    let io = |e: io::Error| (at, Problem::Io(e.to_string()));
    let n = window.fill(12).map_err(io)?;
    if n == 0 {
        return Ok(None);
    }
    if n < 12 {
        return Err((
            at,
            Problem::Truncated {
                what: "a block header",
                needed: 12,
                present: n,
            },
        ));
    }
    let head = window.available();
    // A section header carries its own byte order, after its length.
    let endianness = if head[..4] == PCAPNG_MAGIC {
        match head[8..12] {
            [0x1a, 0x2b, 0x3c, 0x4d] => Endianness::Big,
            [0x4d, 0x3c, 0x2b, 0x1a] => Endianness::Little,
            _ => {
                return Err((
                    at,
                    Problem::Invalid {
                        what: "section header block",
                        detail: format!("byte-order magic {}", hex4(&head[8..12])),
                    },
                ));
            }
        }
    } else {
        match endianness {
            Some(e) => e,
            None => {
                return Err((
                    at,
                    Problem::Invalid {
                        what: "pcapng file",
                        detail: "does not start with a section header block".into(),
                    },
                ));
            }
        }
    };
    let len = read_u32(&head[4..8], endianness) as usize;
    if len > MAX_BLOCK {
        return Err((
            at,
            Problem::AbsurdLength {
                what: "a block",
                len: len as u64,
                max: MAX_BLOCK,
            },
        ));
    }
    if len < 12 || !len.is_multiple_of(4) {
        return Err((
            at,
            Problem::Invalid {
                what: block_name(read_u32(head, endianness)),
                detail: format!(
                    "total length {len} (a block is a multiple of 4, at least 12): the blocks after it cannot be framed"
                ),
            },
        ));
    }
    let n = window.fill(len).map_err(io)?;
    if n < len {
        return Err((
            at,
            Problem::Truncated {
                what: block_name(read_u32(window.available(), endianness)),
                needed: len,
                present: n,
            },
        ));
    }
    let trailer = read_u32(&window.available()[len - 4..len], endianness) as usize;
    if trailer != len {
        return Err((
            at,
            Problem::Invalid {
                what: block_name(read_u32(window.available(), endianness)),
                detail: format!(
                    "total length {len} at its start but {trailer} at its end: the blocks after it cannot be framed"
                ),
            },
        ));
    }
    Ok(Some(len))
}

fn ng_interface(idb: &InterfaceDescriptionBlock, path: &Path, names: &mut Names) -> NgInterface {
    let mut ts = TsUnit::MICROS;
    let mut name = None;
    for opt in &idb.options {
        match opt {
            InterfaceDescriptionOption::IfTsResol(r) => ts.resol = *r,
            InterfaceDescriptionOption::IfTsOffset(o) => ts.offset_s = *o,
            InterfaceDescriptionOption::IfName(n) if !n.trim().is_empty() => {
                name = Some(n.trim().to_string())
            }
            _ => {}
        }
    }
    let name = name.unwrap_or_else(|| file_label(path));
    NgInterface {
        link: Link::from_linktype(u32::from(idb.linktype)),
        snaplen: idb.snaplen,
        ts,
        name: names.intern(&name),
    }
}

/// Several capture files read as one stream in time order: a k-way merge
/// holding one packet per file, so memory does not grow with the files.
pub struct CaptureSet {
    readers: Vec<CaptureReader>,
    /// (timestamp, reader) of each reader's current packet; ties go to the
    /// file given first.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    names: Names,
    /// Files that could not be opened at all.
    pub failed: Vec<CaptureError>,
    started: bool,
}

impl CaptureSet {
    /// Opens every file; those that cannot be read are kept in `failed`.
    pub fn open(paths: &[PathBuf]) -> Self {
        let mut names = Names::default();
        let mut readers = Vec::new();
        let mut failed = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            match CaptureReader::open(i, p, &mut names) {
                Ok(r) => readers.push(r),
                Err(e) => failed.push(e),
            }
        }
        // One file is read ahead by a thread; several are merged record by
        // record, and a thread each would multiply the memory by the files.
        if let [one] = &mut readers[..] {
            one.window.read_ahead();
        }
        Self {
            readers,
            heap: BinaryHeap::new(),
            names,
            failed,
            started: false,
        }
    }

    /// Interface names: the index in [`Packet::iface`] is the position here.
    pub fn interfaces(&self) -> &Names {
        &self.names
    }

    /// Calls `f` for every packet of every file in time order; returns
    /// early with `f`'s error (the packets after it are not read then).
    pub fn for_each<E>(
        &mut self,
        mut f: impl FnMut(&Packet<'_>, &Names) -> Result<(), E>,
    ) -> Result<(), E> {
        if let [reader] = &mut self.readers[..] {
            // One file is already in time order: no merge.
            if std::mem::replace(&mut self.started, true) {
                return Ok(());
            }
            loop {
                // The common case straight to `f`, without the round trip
                // through `current` that the general path takes.
                let c = match reader.next_framed() {
                    Some(c) => {
                        reader.stats.packets += 1;
                        reader.last_ts_ns = Some(c.ts_ns);
                        reader.current = Some(c);
                        c
                    }
                    None => match reader.advance_slow(&mut self.names) {
                        true => match reader.current {
                            Some(c) => c,
                            None => continue,
                        },
                        false => return Ok(()),
                    },
                };
                let p = Packet {
                    ts_ns: c.ts_ns,
                    orig_len: c.orig_len,
                    link: c.link,
                    iface: c.iface,
                    data: &reader.window.available()[c.data.0..c.data.1],
                    file: reader.index,
                };
                f(&p, &self.names)?;
            }
        }
        if !self.started {
            self.started = true;
            for i in 0..self.readers.len() {
                self.push(i);
            }
        }
        while let Some(Reverse((_, i))) = self.heap.pop() {
            if let Some(p) = self.readers[i].current() {
                f(&p, &self.names)?;
            }
            self.push(i);
        }
        Ok(())
    }

    fn push(&mut self, i: usize) {
        if self.readers[i].advance(&mut self.names)
            && let Some(p) = self.readers[i].current()
        {
            self.heap.push(Reverse((p.ts_ns, i)));
        }
    }

    /// (bytes read, total bytes) over the files that opened: progress
    /// through the input, compressed bytes for gzipped files.
    pub fn progress(&self) -> (u64, u64) {
        self.readers.iter().fold((0, 0), |(read, total), r| {
            (
                read + r.consumed.load(Ordering::Relaxed).min(r.size),
                total + r.size,
            )
        })
    }

    /// Bytes read so far, callable while [`for_each`](Self::for_each) runs.
    pub fn progress_counter(&self) -> impl Fn() -> u64 + 'static {
        let files: Vec<(Arc<AtomicU64>, u64)> = self
            .readers
            .iter()
            .map(|r| (r.consumed.clone(), r.size))
            .collect();
        move || {
            files
                .iter()
                .map(|(c, size)| c.load(Ordering::Relaxed).min(*size))
                .sum()
        }
    }

    /// Per-file counters and problems, including files that failed to open.
    pub fn stats(&self) -> Vec<FileStats> {
        let mut out: Vec<FileStats> = self.readers.iter().map(|r| r.stats.clone()).collect();
        for e in &self.failed {
            out.push(FileStats {
                path: e.path.clone(),
                problems: 1,
                errors: vec![e.clone()],
                stopped_early: true,
                ..Default::default()
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::{AHEAD_CHUNK, AHEAD_ROOM, CaptureError, CaptureReader, Names, TsUnit};

    /// A microsecond pcap of `n` records of varied sizes (some longer than
    /// the read-ahead's room, so records straddle chunks both ways), with
    /// a corrupt length field at `damage` records in, if any.
    fn capture(n: u32, damage: Option<u32>) -> Vec<u8> {
        let mut out = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        for i in 0..n {
            let len = match i % 97 {
                0 => AHEAD_ROOM + 3000,
                1 => 3 * AHEAD_ROOM,
                k => 40 + (k as usize * 37) % 1400,
            };
            let incl = if damage == Some(i) {
                0x7fff_0000
            } else {
                len as u32
            };
            out.extend_from_slice(&(1_700_000_000 + i / 1000).to_le_bytes());
            out.extend_from_slice(&((i % 1000) * 1000).to_le_bytes());
            out.extend_from_slice(&incl.to_le_bytes());
            out.extend_from_slice(&(len as u32).to_le_bytes());
            out.extend((0..len).map(|b| (b as u32 ^ i) as u8));
        }
        out
    }

    type Read = (Vec<(u64, u32, u64)>, u64, u64, Vec<CaptureError>, bool);

    /// Every packet (time, length, checksum of its bytes) and the file's
    /// counters, read directly or ahead.
    fn read(path: &std::path::Path, ahead: bool) -> Read {
        let mut names = Names::default();
        let mut r = CaptureReader::open(0, path, &mut names).unwrap();
        if ahead {
            r.window.read_ahead();
        }
        let mut packets = Vec::new();
        while r.advance(&mut names) {
            let p = r.current().unwrap();
            let sum = p
                .data
                .iter()
                .fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
            packets.push((p.ts_ns, p.orig_len, sum));
        }
        let s = r.stats;
        (packets, s.packets, s.skipped, s.errors, s.stopped_early)
    }

    /// A packet's time, length on the wire and bytes.
    type Expected = (u64, u32, Vec<u8>);

    /// A little-endian pcapng: one Ethernet interface with nanosecond
    /// timestamps, then `n` enhanced packet blocks of varied sizes, every
    /// seventh with a comment option (read by pcap-file, the others by the
    /// framed-record path); and what each packet must read as.
    fn pcapng(n: u32) -> (Vec<u8>, Vec<Expected>) {
        let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
            let len = (12 + body.len()) as u32;
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(&len.to_le_bytes());
        };
        let mut out = Vec::new();
        let mut shb = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        block(&mut out, 0x0A0D_0D0A, &shb);
        // Linktype 1, snaplen 0, if_tsresol 9, end of options.
        let idb = [1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0];
        block(&mut out, 1, &idb);
        let mut want = Vec::new();
        for i in 0..n {
            let len = 20 + (i as usize * 53) % 1500;
            let data: Vec<u8> = (0..len).map(|b| (b as u32 ^ i) as u8).collect();
            let ts = 1_700_000_000_000_000_000u64 + u64::from(i) * 1_001;
            let orig = len as u32 + i % 3;
            let mut body = Vec::new();
            body.extend_from_slice(&0u32.to_le_bytes());
            body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            body.extend_from_slice(&(ts as u32).to_le_bytes());
            body.extend_from_slice(&(len as u32).to_le_bytes());
            body.extend_from_slice(&orig.to_le_bytes());
            body.extend_from_slice(&data);
            body.resize(body.len().div_ceil(4) * 4, 0);
            if i % 7 == 0 {
                body.extend_from_slice(&[1, 0, 5, 0, b'h', b'e', b'l', b'l', b'o', 0, 0, 0]);
                body.extend_from_slice(&[0, 0, 0, 0]);
            }
            block(&mut out, 6, &body);
            want.push((ts, orig, data));
        }
        (out, want)
    }

    #[test]
    fn enhanced_packet_blocks_read_alike_with_and_without_options() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, want) = pcapng(3000);
        let path = dir.path().join("epb.pcapng");
        std::fs::write(&path, &bytes).unwrap();
        for ahead in [false, true] {
            let mut names = Names::default();
            let mut r = CaptureReader::open(0, &path, &mut names).unwrap();
            if ahead {
                r.window.read_ahead();
            }
            let mut got = Vec::new();
            while r.advance(&mut names) {
                let p = r.current().unwrap();
                got.push((p.ts_ns, p.orig_len, p.data.to_vec()));
            }
            assert_eq!(got.len(), want.len());
            assert!(got == want, "ahead: {ahead}");
            assert_eq!((r.stats.skipped, r.stats.problems), (0, 0));
        }
    }

    #[test]
    fn reading_ahead_reads_what_reading_directly_does() {
        let dir = tempfile::tempdir().unwrap();
        for (name, n, damage, gzip) in [
            ("plain.pcap", 3000, None, false),
            ("damaged.pcap", 3000, Some(1500), false),
            ("damaged.pcap.gz", 3000, Some(700), true),
            ("cut.pcap", 2000, None, false),
        ] {
            let mut bytes = capture(n, damage);
            if name == "cut.pcap" {
                bytes.truncate(bytes.len() - 100);
            }
            assert!(bytes.len() > 4 * AHEAD_CHUNK, "{name}: spans chunks");
            let path = dir.path().join(name);
            if gzip {
                let mut gz = flate2::write::GzEncoder::new(
                    std::fs::File::create(&path).unwrap(),
                    flate2::Compression::fast(),
                );
                gz.write_all(&bytes).unwrap();
                gz.finish().unwrap();
            } else {
                std::fs::write(&path, &bytes).unwrap();
            }
            let direct = read(&path, false);
            let ahead = read(&path, true);
            assert!(direct.1 > 0, "{name}");
            if damage.is_some() || name == "cut.pcap" {
                assert!(!direct.3.is_empty(), "{name}: the damage is reported");
            }
            assert_eq!(direct, ahead, "{name}");
        }
    }

    #[test]
    fn timestamp_units_follow_if_tsresol_and_if_tsoffset() {
        let at = |resol, offset_s, ticks| TsUnit { resol, offset_s }.to_ns(ticks);
        assert_eq!(at(6, 0, 1_500_000), 1_500_000_000);
        assert_eq!(at(9, 0, 7), 7);
        assert_eq!(at(3, 0, 2), 2_000_000);
        // Finer than nanoseconds: truncated.
        assert_eq!(at(12, 0, 5_999), 5);
        // Powers of two: 2^-10 s ticks.
        assert_eq!(at(0x80 | 10, 0, 1024), 1_000_000_000);
        assert_eq!(at(0x80 | 1, 0, 1), 500_000_000);
        // if_tsoffset is added in seconds.
        assert_eq!(at(6, 10, 1), 10_000_001_000);
        // Absurd values saturate instead of wrapping or panicking.
        assert_eq!(at(0, u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(at(0x80 | 0x7f, 0, u64::MAX), 0);
        assert_eq!(at(200 & 0x7f, 0, u64::MAX), 0);
    }
}
