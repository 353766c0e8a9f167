//! A sink's on-disk spool: every line goes to disk before it is sent, and
//! leaves only once the collector has acknowledged it, so a collector
//! outage or a daemon restart loses nothing (delivery is at least once;
//! the lines' `seq` and `instance` let a consumer drop the duplicates).
//!
//! The spool is bounded: when a line would take it past its size, its
//! oldest segment is removed and the lines in it that were not delivered
//! are counted as dropped, never silently lost. Lines of it already on the
//! wire are counted once their fate is known: sent if the collector
//! acknowledges them, dropped if the connection fails first.
//!
//! Layout, readable with `ls` and `cat`: segment files named by the spool
//! index of their first line (`00000000000000000042.seg`), each holding
//! whole lines ending in `\n` (records are JSON, which has no raw
//! newline), and `acked`, the index below which every line was delivered.
//! A crash can leave a torn last line, which opening cuts off, and an
//! `acked` behind what was delivered, which means some lines are sent
//! again.
//!
//! Hand-written rather than a crate's: the disk queues on crates.io either
//! grow without bound or block the writer when full, and a monitor must
//! neither fill the disk nor stop reading the kernel's events.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

/// Segments one spool is cut into: dropping the oldest frees an eighth.
const SEGMENTS: u64 = 8;
/// Bounds of one segment's size.
const MIN_SEGMENT: u64 = 64 * 1024;
const MAX_SEGMENT: u64 = 16 * 1024 * 1024;
/// The smallest spool: one segment's worth, twice.
pub const MIN_BYTES: u64 = 2 * MIN_SEGMENT;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {}: {what}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("spool {}: a {len}-byte line does not fit in a spool of {max} bytes", path.display())]
    TooLong { path: PathBuf, len: usize, max: u64 },
    #[error("spool {}: {detail}", path.display())]
    Damaged { path: PathBuf, detail: String },
}

/// One segment file.
#[derive(Debug, Clone)]
struct Segment {
    /// Spool index of its first line.
    first: u64,
    lines: u64,
    bytes: u64,
}

/// Where the sender is: the next line it has not taken yet.
#[derive(Debug, Clone, Copy, Default)]
struct ReadPos {
    index: u64,
    /// Byte offset of that line in its segment.
    offset: u64,
}

/// Counts for the closing summary and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolCounts {
    /// Lines acknowledged by the collector (this process).
    pub sent: u64,
    /// Lines removed undelivered because the spool was full (this process).
    pub dropped: u64,
    /// Lines waiting (from an earlier run's spool too), and lines removed
    /// while on the wire, until the collector acknowledges them or not.
    pub pending: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: Vec<Segment>,
    /// Appends to the last segment.
    writer: Option<BufWriter<File>>,
    /// Every line below this index was delivered.
    acked: u64,
    /// Every line below this index was handed to the sender.
    read: ReadPos,
    /// Lines removed from a full spool while on the wire: neither sent nor
    /// dropped until an [`ack`](Self::ack) or a [`rewind`](Self::rewind)
    /// says which. Ranges, in order: the sender may have taken part of a
    /// segment when it went, then read on past the lines it never took.
    /// At most one per segment removed between two acknowledgements.
    in_doubt: Vec<std::ops::Range<u64>>,
    counts: SpoolCounts,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, keeping what an earlier run
    /// left undelivered.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        let io_err = |what: &'static str| {
            let path = dir.to_path_buf();
            move |source| SpoolError::Io { path, what, source }
        };
        fs::create_dir_all(dir).map_err(io_err("cannot create the directory"))?;
        let max_bytes = max_bytes.max(MIN_BYTES);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / SEGMENTS).clamp(MIN_SEGMENT, MAX_SEGMENT),
            segments: Vec::new(),
            writer: None,
            acked: 0,
            read: ReadPos::default(),
            in_doubt: Vec::new(),
            counts: SpoolCounts::default(),
        };
        let mut firsts = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("cannot list the directory"))? {
            let entry = entry.map_err(io_err("cannot list the directory"))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(first) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let count = firsts.len();
        for (i, first) in firsts.into_iter().enumerate() {
            let (lines, bytes) = spool.scan(first, i + 1 == count)?;
            if let Some(prev) = spool.segments.last()
                && prev.first + prev.lines != first
            {
                return Err(SpoolError::Damaged {
                    path: spool.path(first),
                    detail: format!(
                        "expected a segment starting at line {}; move the spool away to start afresh",
                        prev.first + prev.lines
                    ),
                });
            }
            spool.segments.push(Segment {
                first,
                lines,
                bytes,
            });
        }
        let start = spool.segments.first().map_or(0, |s| s.first);
        let end = spool.end();
        spool.acked = spool.read_acked()?.clamp(start, end);
        spool.drop_acked_segments()?;
        spool.read = spool.position_of(spool.acked)?;
        spool.counts.pending = end - spool.acked;
        spool.counts.bytes = spool.segments.iter().map(|s| s.bytes).sum();
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn counts(&self) -> SpoolCounts {
        self.counts
    }

    /// The index the next appended line takes.
    fn end(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.first + s.lines)
    }

    fn path(&self, first: u64) -> PathBuf {
        self.dir.join(segment_name(first))
    }

    fn io<'a>(&'a self, what: &'static str) -> impl FnOnce(io::Error) -> SpoolError + 'a {
        move |source| SpoolError::Io {
            path: self.dir.clone(),
            what,
            source,
        }
    }

    /// Lines and bytes of a segment; the last one's torn tail is cut off.
    fn scan(&self, first: u64, last: bool) -> Result<(u64, u64), SpoolError> {
        let path = self.path(first);
        let err = |what| {
            let path = path.clone();
            move |source| SpoolError::Io { path, what, source }
        };
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(err("cannot read a segment"))?;
        let whole = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < data.len() {
            if !last {
                return Err(SpoolError::Damaged {
                    path,
                    detail: "a segment before the last ends inside a line".into(),
                });
            }
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(whole as u64))
                .map_err(err("cannot cut the torn last line"))?;
        }
        let lines = data[..whole].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok((lines, whole as u64))
    }

    fn read_acked(&self) -> Result<u64, SpoolError> {
        let path = self.dir.join("acked");
        match fs::read_to_string(&path) {
            Ok(s) => s.trim().parse().map_err(|_| SpoolError::Damaged {
                path,
                detail: format!("`acked` holds {:?}, not a line index", s.trim()),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(source) => Err(SpoolError::Io {
                path,
                what: "cannot read",
                source,
            }),
        }
    }

    /// Writes `acked` through a temporary file, so a crash leaves the old
    /// value or the new one.
    fn write_acked(&self) -> Result<(), SpoolError> {
        let tmp = self.dir.join("acked.tmp");
        fs::write(&tmp, format!("{}\n", self.acked))
            .and_then(|()| fs::rename(&tmp, self.dir.join("acked")))
            .map_err(self.io("cannot record what was delivered"))
    }

    /// The read position of line `index` (the end if past it).
    fn position_of(&self, index: u64) -> Result<ReadPos, SpoolError> {
        let Some(seg) = self
            .segments
            .iter()
            .find(|s| index >= s.first && index < s.first + s.lines)
        else {
            return Ok(ReadPos {
                index: self.end(),
                offset: self.segments.last().map_or(0, |s| s.bytes),
            });
        };
        let mut offset = 0;
        if index > seg.first {
            let path = self.path(seg.first);
            let mut r =
                BufReader::new(File::open(&path).map_err(self.io("cannot read a segment"))?);
            let mut line = Vec::new();
            for _ in seg.first..index {
                line.clear();
                offset += r
                    .read_until(b'\n', &mut line)
                    .map_err(self.io("cannot read a segment"))? as u64;
            }
        }
        Ok(ReadPos { index, offset })
    }

    /// Adds one line (without its newline).
    pub fn append(&mut self, line: &[u8]) -> Result<(), SpoolError> {
        let len = line.len() as u64 + 1;
        if len > self.segment_bytes {
            return Err(SpoolError::TooLong {
                path: self.dir.clone(),
                len: line.len(),
                max: self.segment_bytes,
            });
        }
        // An earlier run's last segment is not appended to: a new one starts.
        let rotate = match self.segments.last() {
            Some(s) if self.writer.is_some() => s.bytes + len > self.segment_bytes,
            _ => true,
        };
        if rotate {
            self.start_segment()?;
        }
        while self.counts.bytes + len > self.max_bytes && self.segments.len() > 1 {
            self.drop_oldest()?;
        }
        let w = self.writer.as_mut().expect("a segment is open");
        w.write_all(line)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|source| SpoolError::Io {
                path: self.dir.clone(),
                what: "cannot write",
                source,
            })?;
        let seg = self.segments.last_mut().expect("a segment is open");
        seg.lines += 1;
        seg.bytes += len;
        self.counts.bytes += len;
        self.counts.pending += 1;
        Ok(())
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        self.flush()?;
        let first = self.end();
        let path = self.path(first);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&path)
            .map_err(|source| SpoolError::Io {
                path,
                what: "cannot create a segment",
                source,
            })?;
        self.writer = Some(BufWriter::with_capacity(64 * 1024, file));
        // An empty last segment (a crash right after it was made) is the
        // file just opened: it is written to, not listed twice.
        if self.segments.last().is_none_or(|s| s.lines > 0) {
            self.segments.push(Segment {
                first,
                lines: 0,
                bytes: 0,
            });
        }
        Ok(())
    }

    /// Removes the oldest segment to make room; its lines not handed to
    /// the sender are counted as dropped, those on the wire are in doubt.
    fn drop_oldest(&mut self) -> Result<(), SpoolError> {
        let seg = self.segments.remove(0);
        let end = seg.first + seg.lines;
        let undelivered = self.acked.clamp(seg.first, end);
        let taken = self.read.index.clamp(undelivered, end);
        if taken > undelivered {
            match self.in_doubt.last_mut() {
                Some(last) if last.end == undelivered => last.end = taken,
                _ => self.in_doubt.push(undelivered..taken),
            }
        }
        self.counts.dropped += end - taken;
        self.counts.pending -= end - taken;
        self.counts.bytes -= seg.bytes;
        fs::remove_file(self.path(seg.first)).map_err(self.io("cannot remove a full segment"))?;
        if self.acked < end {
            self.acked = end;
            self.write_acked()?;
        }
        if self.read.index < end {
            self.read = ReadPos {
                index: end,
                offset: 0,
            };
        }
        Ok(())
    }

    fn drop_acked_segments(&mut self) -> Result<(), SpoolError> {
        // The last segment stays: it is the one being written.
        while self.segments.len() > 1
            && self.segments[0].first + self.segments[0].lines <= self.acked
        {
            let seg = self.segments.remove(0);
            self.counts.bytes = self.counts.bytes.saturating_sub(seg.bytes);
            fs::remove_file(self.path(seg.first))
                .map_err(self.io("cannot remove a sent segment"))?;
        }
        Ok(())
    }

    /// Makes appended lines visible to [`take`](Self::take) (and to the
    /// disk: the kernel's page cache).
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        if let Some(w) = self.writer.as_mut() {
            w.flush().map_err(|source| SpoolError::Io {
                path: self.dir.clone(),
                what: "cannot write",
                source,
            })?;
        }
        Ok(())
    }

    /// Forces what was written onto the disk, so a power loss loses none
    /// of it; called once a second, not per line.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.flush()?;
        if let Some(w) = self.writer.as_mut() {
            w.get_ref().sync_data().map_err(|source| SpoolError::Io {
                path: self.dir.clone(),
                what: "cannot sync",
                source,
            })?;
        }
        Ok(())
    }

    /// Whether lines wait that were not taken yet.
    pub fn has_unread(&self) -> bool {
        self.read.index < self.end()
    }

    /// Lines taken by the sender and not acknowledged yet.
    pub fn in_flight(&self) -> u64 {
        self.read.index - self.acked
    }

    /// Hands over up to `max` lines not taken yet, each with its index, in
    /// order. They stay in the spool until [`ack`](Self::ack)ed.
    pub fn take(&mut self, max: usize, out: &mut Vec<(u64, Vec<u8>)>) -> Result<(), SpoolError> {
        self.flush()?;
        let mut taken = 0;
        while taken < max && self.has_unread() {
            let Some(seg) = self
                .segments
                .iter()
                .find(|s| self.read.index >= s.first && self.read.index < s.first + s.lines)
                .cloned()
            else {
                break;
            };
            if self.read.index == seg.first {
                // Left at the end of the segment before, or never read.
                self.read.offset = 0;
            }
            let path = self.path(seg.first);
            let mut file = File::open(&path).map_err(self.io("cannot read a segment"))?;
            file.seek(SeekFrom::Start(self.read.offset))
                .map_err(self.io("cannot read a segment"))?;
            let mut r = BufReader::with_capacity(64 * 1024, file);
            while taken < max && self.read.index < seg.first + seg.lines {
                let mut line = Vec::with_capacity(512);
                let n = r
                    .read_until(b'\n', &mut line)
                    .map_err(self.io("cannot read a segment"))?;
                if n == 0 || line.last() != Some(&b'\n') {
                    return Err(SpoolError::Damaged {
                        path,
                        detail: format!("line {} is missing or cut", self.read.index),
                    });
                }
                line.pop();
                out.push((self.read.index, line));
                self.read.index += 1;
                self.read.offset += n as u64;
                taken += 1;
            }
        }
        Ok(())
    }

    /// Every line below `upto` was delivered.
    pub fn ack(&mut self, upto: u64) -> Result<(), SpoolError> {
        let upto = upto.min(self.read.index);
        // Only lines the sender took count: not those of a gap between
        // ranges, which the spool removed before the sender got to them.
        for range in &mut self.in_doubt {
            let settled = upto.clamp(range.start, range.end);
            let n = settled - range.start;
            self.counts.sent += n;
            self.counts.pending -= n;
            range.start = settled;
        }
        self.in_doubt.retain(|r| !r.is_empty());
        if upto <= self.acked {
            return Ok(());
        }
        let n = upto - self.acked;
        self.counts.sent += n;
        self.counts.pending -= n;
        self.acked = upto;
        self.write_acked()?;
        self.drop_acked_segments()
    }

    /// The lines taken but not acknowledged are taken again (the
    /// connection they went out on failed); those a full spool removed
    /// meanwhile are lost with it, and counted as dropped.
    pub fn rewind(&mut self) -> Result<(), SpoolError> {
        let lost: u64 = self.in_doubt.drain(..).map(|r| r.end - r.start).sum();
        self.counts.dropped += lost;
        self.counts.pending -= lost;
        self.read = self.position_of(self.acked)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
