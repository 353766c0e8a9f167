//! JSON-lines event sink with size-based rotation.
//!
//! The monitor runs unattended for months, so the events file must never grow
//! without bound; a line is never split across two files, so every file stays
//! valid JSON lines on its own and `report` can read any subset of them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::borrowed::RecordRef;
use super::record::{EventRecord, RequiredStatus};
use super::stream::Stream;
use crate::export::{Exporter, SinkCounts, spool::SpoolError};

/// How big the events file may grow and how many old files to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The current file is rotated before a line would take it past this size.
    pub max_bytes: u64,
    /// Rotated files kept as `FILE.1` (newest) … `FILE.keep` (oldest); 0 keeps none.
    pub keep: usize,
}

impl Default for Rotation {
    /// 100 MiB × (1 + 5) files: weeks of a noisy host, yet bounded.
    fn default() -> Self {
        Rotation {
            max_bytes: 100 * 1024 * 1024,
            keep: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("cannot open events file {}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot write events to {}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot rotate events file {} to {}", from.display(), to.display())]
    Rotate {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("cannot remove old events file {}", path.display())]
    Remove { path: PathBuf, source: io::Error },
    #[error(
        "events file {}: rotation size must be at least 1 byte (got 0); \
         pick a size such as 100 MiB so the file stays bounded", path.display()
    )]
    ZeroMaxBytes { path: PathBuf },
    #[error("cannot encode an event as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("cannot spool events for export")]
    Export(#[from] SpoolError),
}

enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File(BufWriter<File>),
    /// No file: the lines only go to the exporter.
    None(io::Sink),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File(w) => w,
            Sink::None(w) => w,
        }
    }
}

/// Bytes buffered between writes to the file: a batch of the daemon's
/// drain is up to 4096 lines of about 400 bytes, which std's default 8 KiB
/// buffer passes to the kernel in some 200 write calls.
pub const BUFFER: usize = 64 * 1024;

/// What can be a line of the events file.
pub trait JsonLine {
    /// Appends the JSON object, without the newline.
    fn write_line(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;

    /// Appends the IPFIX data record of the flow the line records, and
    /// returns its template; `None` when it records no flow. The IPFIX
    /// sinks take this rather than read the line back (see
    /// `export::ipfix::Flow`).
    fn ipfix(&self, _out: &mut Vec<u8>) -> Option<u16> {
        None
    }
}

/// One per new flow, so it has its own serializer.
impl JsonLine for EventRecord {
    fn write_line(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        self.write_json(out);
        Ok(())
    }

    fn ipfix(&self, out: &mut Vec<u8>) -> Option<u16> {
        self.borrowed().flow()?.encode(out)
    }
}

/// What the daemon's drain writes per new flow, without owning its text.
impl JsonLine for RecordRef<'_> {
    fn write_line(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        self.write_json(out);
        Ok(())
    }

    fn ipfix(&self, out: &mut Vec<u8>) -> Option<u16> {
        self.flow()?.encode(out)
    }
}

/// One per required rule at the end of a run.
impl JsonLine for RequiredStatus {
    fn write_line(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
}

/// Writes [`EventRecord`]s as JSON lines to a file (rotated) or stdout (`-`).
pub struct JsonlWriter {
    path: PathBuf,
    rotation: Rotation,
    sink: Sink,
    /// Bytes in the current file, including what is still buffered.
    size: u64,
    rotations: u64,
    line: Vec<u8>,
    /// The line's flow record, for the IPFIX sinks.
    flow: Vec<u8>,
    /// Numbers every line (`seq`, `instance`) when set.
    stream: Option<Stream>,
    /// Also sends every line to the `--export` sinks.
    export: Option<Exporter>,
}

impl JsonlWriter {
    /// Opens `path` for appending (its current size counts towards
    /// `max_bytes`), or stdout when `path` is `-`, which is never rotated:
    /// whoever reads the pipe owns its size.
    pub fn open(path: impl AsRef<Path>, rotation: Rotation) -> Result<Self, JsonlError> {
        let path = path.as_ref().to_path_buf();
        if rotation.max_bytes == 0 {
            return Err(JsonlError::ZeroMaxBytes { path });
        }
        let (sink, size) = if path.as_os_str() == "-" {
            (
                Sink::Stdout(BufWriter::with_capacity(BUFFER, io::stdout())),
                0,
            )
        } else {
            let (file, size) = open_append(&path)?;
            (Sink::File(BufWriter::with_capacity(BUFFER, file)), size)
        };
        Ok(JsonlWriter {
            path,
            rotation,
            sink,
            size,
            rotations: 0,
            line: Vec::with_capacity(512),
            flow: Vec::with_capacity(256),
            stream: None,
            export: None,
        })
    }

    /// A writer with no file, for lines that only go to the exporter.
    pub fn without_file() -> Self {
        JsonlWriter {
            path: PathBuf::from("(no events file)"),
            rotation: Rotation::default(),
            sink: Sink::None(io::sink()),
            size: 0,
            rotations: 0,
            line: Vec::with_capacity(512),
            flow: Vec::with_capacity(256),
            stream: None,
            export: None,
        }
    }

    /// Sends every line written from now on to `exporter`'s sinks too.
    pub fn with_export(mut self, exporter: Exporter) -> Self {
        self.export = Some(exporter);
        self
    }

    /// What each export sink did so far.
    pub fn export_counts(&self) -> Vec<SinkCounts> {
        self.export
            .as_ref()
            .map(Exporter::counts)
            .unwrap_or_default()
    }

    /// Stops exporting: what is spooled is sent for at most `grace` (the
    /// rest waits in the spools); the sinks' final counts and spools.
    pub fn finish_export(&mut self, grace: std::time::Duration) -> Vec<(SinkCounts, PathBuf)> {
        let Some(exporter) = self.export.take() else {
            return Vec::new();
        };
        let dirs = exporter.spool_dirs();
        exporter
            .finish(grace)
            .into_iter()
            .zip(dirs)
            .map(|(c, (_, d))| (c, d))
            .collect()
    }

    /// Numbers every line written from now on (see [`Stream`]).
    pub fn with_stream(mut self, stream: Stream) -> Self {
        self.stream = Some(stream);
        self
    }

    /// The numbering, to leave it to a pinned run's successor.
    pub fn stream(&self) -> Option<&Stream> {
        self.stream.as_ref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self.sink, Sink::Stdout(_))
    }

    /// Size of the current file as it will be once flushed.
    pub fn current_size(&self) -> u64 {
        self.size
    }

    /// How many times the file was rotated since it was opened.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Buffers one record as a line; call [`flush`](Self::flush) after each
    /// batch so that readers see whole batches without a syscall per event.
    ///
    /// A single line larger than `max_bytes` goes alone into a fresh file
    /// rather than being split or dropped.
    pub fn write<T: JsonLine>(&mut self, record: &T) -> Result<(), JsonlError> {
        self.line.clear();
        record.write_line(&mut self.line)?;
        if let Some(stream) = self.stream.as_mut() {
            stream.stamp(&mut self.line);
        }
        if let Some(export) = self.export.as_mut() {
            self.flow.clear();
            let flow = if export.wants_flows() {
                record.ipfix(&mut self.flow)
            } else {
                None
            };
            export.push(&self.line, flow.map(|t| (t, &self.flow[..])));
        }
        self.line.push(b'\n');
        let len = self.line.len() as u64;
        if let Sink::File(_) = self.sink
            && self.size > 0
            && self.size.saturating_add(len) > self.rotation.max_bytes
        {
            self.rotate()?;
        }
        let path = &self.path;
        self.sink
            .writer()
            .write_all(&self.line)
            .map_err(|source| JsonlError::Write {
                path: path.clone(),
                source,
            })?;
        self.size += len;
        Ok(())
    }

    /// Writes a batch and flushes it, the daemon's usual unit of work.
    pub fn write_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a EventRecord>,
    ) -> Result<(), JsonlError> {
        for r in records {
            self.write(r)?;
        }
        self.flush()
    }

    pub fn flush(&mut self) -> Result<(), JsonlError> {
        let path = &self.path;
        self.sink
            .writer()
            .flush()
            .map_err(|source| JsonlError::Write {
                path: path.clone(),
                source,
            })?;
        if let Some(export) = self.export.as_mut() {
            export.flush()?;
        }
        Ok(())
    }

    /// FILE → FILE.1 → … → FILE.keep; the oldest falls off the end.
    fn rotate(&mut self) -> Result<(), JsonlError> {
        self.flush()?;
        let keep = self.rotation.keep;
        if keep == 0 {
            remove_if_exists(&self.path)?;
        } else {
            remove_if_exists(&rotated(&self.path, keep))?;
            for i in (1..keep).rev() {
                rename_if_exists(&rotated(&self.path, i), &rotated(&self.path, i + 1))?;
            }
            rename_if_exists(&self.path, &rotated(&self.path, 1))?;
        }
        let (file, size) = open_append(&self.path)?;
        // The old handle is dropped here, after the rename: on Linux it still
        // points at FILE.1, and everything was flushed above.
        self.sink = Sink::File(BufWriter::with_capacity(BUFFER, file));
        self.size = size;
        self.rotations += 1;
        Ok(())
    }
}

impl Drop for JsonlWriter {
    fn drop(&mut self) {
        // Best effort: an error here has nobody left to report to, and the
        // daemon flushes explicitly on its orderly shutdown path.
        let _ = self.sink.writer().flush();
    }
}

/// The path of the `n`-th rotated file: `events.jsonl.3`.
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> Result<(File, u64), JsonlError> {
    let open_err = |source| JsonlError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(super::FILE_MODE)
        .open(path)
        .map_err(open_err)?;
    let size = file.metadata().map_err(open_err)?.len();
    Ok((file, size))
}

fn remove_if_exists(path: &Path) -> Result<(), JsonlError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(JsonlError::Remove {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<(), JsonlError> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(JsonlError::Rotate {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::record::{ConnDir, EventKind, IpProto};
    use std::time::{Duration, UNIX_EPOCH};

    fn record(i: u64) -> EventRecord {
        let mut r = EventRecord::new(
            EventKind::Unexpected,
            UNIX_EPOCH + Duration::new(1_795_365_758, 187_872_964),
            "eth0",
            ConnDir::Inbound,
            IpProto::Tcp,
            "198.51.100.7".parse().unwrap(),
            40000,
            "192.0.2.1".parse().unwrap(),
            2181,
        );
        r.count = i;
        r
    }

    fn line_len(i: u64) -> u64 {
        record(i).to_json().unwrap().len() as u64 + 1
    }

    fn lines(path: &Path) -> Vec<EventRecord> {
        let text = fs::read_to_string(path).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "partial line in {path:?}"
        );
        text.lines()
            .map(|l| serde_json::from_str(l).expect("every line is a whole record"))
            .collect()
    }

    fn writer(path: &Path, max_bytes: u64, keep: usize) -> JsonlWriter {
        JsonlWriter::open(path, Rotation { max_bytes, keep }).unwrap()
    }

    fn counts(path: &Path) -> Vec<u64> {
        lines(path).iter().map(|r| r.count).collect()
    }

    #[test]
    fn rotates_exactly_when_the_next_line_would_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        // Counts 10..=99 all have the same line length.
        let l = line_len(10);
        let mut w = writer(&path, 3 * l, 5);
        for i in 10..13 {
            w.write(&record(i)).unwrap();
        }
        w.flush().unwrap();
        // Exactly full is allowed.
        assert_eq!(fs::metadata(&path).unwrap().len(), 3 * l);
        assert_eq!(w.rotations(), 0);
        assert!(!rotated(&path, 1).exists());
        w.write(&record(13)).unwrap();
        w.flush().unwrap();
        assert_eq!(w.rotations(), 1);
        assert_eq!(counts(&rotated(&path, 1)), vec![10, 11, 12]);
        assert_eq!(counts(&path), vec![13]);
        assert_eq!(w.current_size(), l);
    }

    /// The mode bits of `path` (the umask may take bits away, never add).
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_the_file_and_each_rotation_readable_by_owner_and_group_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let l = line_len(10);
        let mut w = writer(&path, 2 * l, 2);
        for i in 10..15 {
            w.write(&record(i)).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(w.rotations(), 2);
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            let m = mode(&p);
            assert_eq!(m & !0o640, 0, "{p:?} is {m:o}: others must not read it");
            assert_eq!(m & 0o600, 0o600, "{p:?} is {m:o}: its owner writes it");
        }
    }

    #[test]
    fn keeps_only_keep_old_files_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        let l = line_len(10);
        let mut w = writer(&path, 2 * l, 2);
        for i in 10..20 {
            w.write(&record(i)).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(w.rotations(), 4);
        assert_eq!(counts(&path), vec![18, 19]);
        assert_eq!(counts(&rotated(&path, 1)), vec![16, 17]);
        assert_eq!(counts(&rotated(&path, 2)), vec![14, 15]);
        assert!(!rotated(&path, 3).exists());
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ev.jsonl", "ev.jsonl.1", "ev.jsonl.2"]);
    }

    #[test]
    fn keep_zero_truncates_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        let l = line_len(10);
        let mut w = writer(&path, 2 * l, 0);
        for i in 10..15 {
            w.write(&record(i)).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(counts(&path), vec![14]);
        assert!(!rotated(&path, 1).exists());
    }

    #[test]
    fn a_line_is_never_split_and_an_oversized_line_goes_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        let l = line_len(10);
        // Room for one and a half lines: the second line must not be split.
        let mut w = writer(&path, l + l / 2, 10);
        for i in 10..14 {
            w.write(&record(i)).unwrap();
        }
        let mut big = record(99);
        big.note = Some("x".repeat(4 * l as usize));
        w.write(&big).unwrap();
        w.write(&record(14)).unwrap();
        w.flush().unwrap();
        let mut all = Vec::new();
        for n in (1..=5).rev() {
            let f = rotated(&path, n);
            let c = counts(&f);
            assert_eq!(c.len(), 1, "{f:?} holds {c:?}");
            all.extend(c);
        }
        all.extend(counts(&path));
        assert_eq!(all, vec![10, 11, 12, 13, 99, 14]);
        assert!(fs::metadata(rotated(&path, 1)).unwrap().len() > l + l / 2);
    }

    #[test]
    fn appends_to_an_existing_file_and_counts_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        let l = line_len(10);
        let rotation = Rotation {
            max_bytes: 3 * l,
            keep: 3,
        };
        {
            let mut w = JsonlWriter::open(&path, rotation).unwrap();
            w.write(&record(10)).unwrap();
            w.write(&record(11)).unwrap();
            // Dropped without an explicit flush: Drop flushes.
        }
        let mut w = JsonlWriter::open(&path, rotation).unwrap();
        assert_eq!(w.current_size(), 2 * l);
        w.write(&record(12)).unwrap();
        w.flush().unwrap();
        assert_eq!(counts(&path), vec![10, 11, 12]);
        assert_eq!(w.rotations(), 0);
        w.write(&record(13)).unwrap();
        w.flush().unwrap();
        assert_eq!(counts(&rotated(&path, 1)), vec![10, 11, 12]);
        assert_eq!(counts(&path), vec![13]);
    }

    /// Runs itself in a child process so that the lines land on a stdout the
    /// test can read, instead of the test runner's.
    #[test]
    fn stdout_mode_never_rotates() {
        const CHILD: &str = "PORTCONFORM_JSONL_STDOUT_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let mut w = JsonlWriter::open(
                "-",
                Rotation {
                    max_bytes: 1,
                    keep: 1,
                },
            )
            .unwrap();
            assert!(w.is_stdout());
            for i in 10..13 {
                w.write(&record(i)).unwrap();
            }
            w.flush().unwrap();
            assert_eq!(w.rotations(), 0);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "events::jsonl::tests::stdout_mode_never_rotates"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let got: Vec<u64> = stdout
            .lines()
            // libtest prints "test NAME ... " without a newline before the
            // test body runs, so the first line may carry that prefix.
            .filter_map(|l| l.find('{').map(|i| &l[i..]))
            .map(|l| serde_json::from_str::<EventRecord>(l).unwrap().count)
            .collect();
        assert_eq!(got, vec![10, 11, 12], "{stdout}");
        // Nothing was created where a file named "-" or "-.1" would go.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn writers_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<JsonlWriter>();
        send::<crate::events::PcapngWriter>();
    }

    #[test]
    fn write_batch_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        let mut w = JsonlWriter::open(&path, Rotation::default()).unwrap();
        let batch: Vec<_> = (10..15).map(record).collect();
        w.write_batch(&batch).unwrap();
        assert_eq!(counts(&path), vec![10, 11, 12, 13, 14]);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("ev.jsonl");
        let err = JsonlWriter::open(&path, Rotation::default()).err().unwrap();
        // The message names the file; the cause is the error's source, as
        // `{:#}` at the CLI edge prints it.
        let msg = format!("{:#}", anyhow::Error::from(err));
        assert!(msg.contains("missing-dir/ev.jsonl"), "{msg}");
        assert!(msg.contains("No such file"), "{msg}");
        assert_eq!(
            msg.matches("No such file").count(),
            1,
            "the cause once: {msg}"
        );

        let err = JsonlWriter::open(
            dir.path().join("x"),
            Rotation {
                max_bytes: 0,
                keep: 1,
            },
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("at least 1 byte"), "{err}");
    }

    #[test]
    fn write_errors_name_the_path() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let mut w = JsonlWriter::open("/dev/full", Rotation::default()).unwrap();
        w.write(&record(10)).unwrap();
        let msg = w.flush().unwrap_err().to_string();
        assert!(msg.contains("/dev/full"), "{msg}");
    }
}
