//! One capture file as a stream of packets: opening it (gzip, pcap or
//! pcapng by magic), the current packet, moving on, and resynchronising
//! after damage.
use std::{
    fs::File,
    io::{self, Read},
    path::Path,
    sync::{Arc, atomic::AtomicU64},
};

use pcap_file::{TsResolution, pcap::PcapParser, pcapng::PcapNgParser};

use super::{
    pcapng::block_len,
    window::{Counting, Source, Window},
    *,
};

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
                linktype: u32::from(header.datalink),
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

    pub(super) fn problem(&mut self, offset: u64, problem: Problem) {
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
            linktype: c.linktype,
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
    pub(super) fn advance_slow(&mut self, names: &mut Names) -> bool {
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
    pub(super) fn next_framed(&mut self) -> Option<Current> {
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
                linktype,
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
                    linktype,
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
                    linktype: iface.linktype,
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

    /// Scans forward, `step` bytes at a time, for an offset where
    /// `plausible` accepts what follows (reading up to `lookahead` bytes past
    /// it), and resumes there, reporting what was skipped; at the end of the
    /// file without a match, `cause` stands. Shared by pcap and pcapng so
    /// both recover from damage the same bounded way.
    pub(super) fn resync(
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
}
