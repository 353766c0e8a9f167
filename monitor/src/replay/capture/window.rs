//! The read-ahead window over a capture file: its bytes, read by a
//! background thread in chunks, so parsing never waits on the disk.
use std::{
    io::{self, Read},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
};

use super::*;

/// A growable window over a byte stream that knows the stream offset of
/// its first byte.
pub(super) struct Window {
    pub(super) reader: Source,
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Stream offset of `buf[start]`.
    pub(super) offset: u64,
    pub(super) eof: bool,
}

/// Where a window's bytes come from.
pub(super) enum Source {
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
pub(super) struct ReadAhead {
    pub(super) chunks: mpsc::Receiver<Chunk>,
    /// Chunks the window is done with, for the thread to fill again.
    pub(super) spare: mpsc::SyncSender<Vec<u8>>,
}

pub(super) enum Chunk {
    /// `buf[AHEAD_ROOM..AHEAD_ROOM + len]` are the next bytes of the stream.
    Data(Vec<u8>, usize),
    End,
    Failed(io::Error),
}

/// Bytes the thread reads per chunk.
pub(super) const AHEAD_CHUNK: usize = 256 * 1024;
/// Room in front of each chunk for the previous one's unread end: a record
/// split across two chunks. Longer ones are copied instead.
pub(super) const AHEAD_ROOM: usize = 16 * 1024;

impl ReadAhead {
    pub(super) fn start(mut reader: Box<dyn Read + Send>) -> io::Result<Self> {
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
    pub(super) fn new(reader: Box<dyn Read + Send>) -> Self {
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
    pub(super) fn read_ahead(&mut self) {
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

    pub(super) fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Makes at least `n` bytes available unless the stream ends first;
    /// returns how many are. `n` is bounded by the callers' caps.
    pub(super) fn fill(&mut self, n: usize) -> io::Result<usize> {
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
    pub(super) fn take_chunk(&mut self) -> io::Result<()> {
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

    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }
}

/// A reader whose first read fails with a given error.
pub(super) struct Failing(Option<io::Error>);

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
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
