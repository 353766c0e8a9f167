//! Reading events files for `report`: one line at a time, so memory follows
//! the number of distinct flows and never the size of a months-long log.
//! Each line's `kind` is read first and decides which record type the line
//! must be; a line that is not one is reported as `file:line: what` and the
//! rest of the file is still read, because one torn line (a daemon killed
//! mid-write, a disk that filled up) must not hide weeks of events.

use std::{
    borrow::Cow,
    fmt,
    fs::File,
    io::{self, BufRead, BufReader},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::events::{EventKind, EventRecord, RequiredStatus, flood::FloodRecord};

/// An event line is a few hundred bytes; a line this long is not one (a
/// binary file, a JSON dump) and is skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A file that cannot be read at all. Lines that cannot be used are not
/// errors but [`BadLine`]s.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot open events file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A line the report had to leave out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    #[serde(serialize_with = "display_path")]
    pub file: PathBuf,
    pub line: u64,
    pub what: String,
}

fn display_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&p.display())
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.what)
    }
}

/// One usable line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `unexpected`, `update`, `blocked` or `recovered`.
    Event(EventRecord),
    /// `required`: a rule's verdict at the end of a run or replay.
    Required(RequiredStatus),
}

/// Where the lines of a file go.
pub trait Sink {
    /// A record, with the host it belongs to (its `host` field, else the
    /// file's host name).
    fn record(&mut self, host: &str, record: Record);
    fn bad_line(&mut self, bad: BadLine);
    /// A line of a kind this version does not know: written by a newer
    /// monitor, so counted rather than reported as damage.
    fn unknown_kind(&mut self, kind: &str);
    /// A `flood` line, with its host as for [`Sink::record`]. The report
    /// has no section for floods and counts them with the kinds it does
    /// not read; `learn` sets flooded services aside.
    fn flood(&mut self, host: &str, flood: FloodRecord) {
        let _ = (host, flood);
        self.unknown_kind("flood");
    }
    /// A line's number in its host's `instance` (every line `run` and
    /// `replay` write has one), whatever its kind. False when that number
    /// was read before: the line is a duplicate and is skipped.
    fn numbered(&mut self, host: &str, instance: &str, seq: u64) -> bool;
}

/// What was read from one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileStats {
    #[serde(serialize_with = "display_path")]
    pub path: PathBuf,
    /// The host of the records that do not name one.
    pub host: String,
    pub lines: u64,
    pub records: u64,
    pub bad_lines: u64,
    pub unknown_kinds: u64,
    /// Lines whose number in their instance was read before: delivered
    /// twice (at least once means sometimes twice), read once.
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicates: u64,
    /// A read error that ended the file early (the lines before it count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl FileStats {
    /// Nothing read yet from `path`, whose records belong to `host` when
    /// they do not say.
    pub fn new(path: PathBuf, host: String) -> Self {
        FileStats {
            path,
            host,
            lines: 0,
            records: 0,
            bad_lines: 0,
            unknown_kinds: 0,
            duplicates: 0,
            stopped: None,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The host a file's records belong to when they do not say: the file name
/// without the rotation suffix (`node-a.jsonl.3` is `node-a.jsonl`), and
/// without `.jsonl`, so that columns read `node-a`.
pub fn file_host(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let name = match name.rsplit_once('.') {
        Some((stem, n))
            if !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            stem.to_string()
        }
        _ => name,
    };
    for ext in [".jsonl", ".json"] {
        if let Some(stem) = name.strip_suffix(ext)
            && !stem.is_empty()
        {
            return stem.to_string();
        }
    }
    name
}

/// Reads `path` line by line into `sink`.
pub fn read_file(path: &Path, sink: &mut impl Sink) -> Result<FileStats, LoadError> {
    let file = File::open(path).map_err(|source| LoadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut stats = FileStats::new(path.to_path_buf(), file_host(path));
    read_lines(BufReader::new(file), &mut stats, sink);
    Ok(stats)
}

/// The loop of [`read_file`], over any reader (tests feed it bytes).
pub fn read_lines(mut reader: impl BufRead, stats: &mut FileStats, sink: &mut impl Sink) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let line = match read_bounded_line(&mut reader, &mut buf, MAX_LINE_BYTES) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                stats.stopped = Some(format!("read error after line {}: {e}", stats.lines));
                sink.bad_line(BadLine {
                    file: stats.path.clone(),
                    line: stats.lines + 1,
                    what: format!("cannot read on: {e}"),
                });
                stats.bad_lines += 1;
                break;
            }
        };
        stats.lines += 1;
        let bad = |what: String| BadLine {
            file: stats.path.clone(),
            line: stats.lines,
            what,
        };
        if line == LineRead::TooLong {
            sink.bad_line(bad(format!(
                "line longer than {MAX_LINE_BYTES} bytes: not an event"
            )));
            stats.bad_lines += 1;
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            sink.bad_line(bad("not UTF-8 text".into()));
            stats.bad_lines += 1;
            continue;
        };
        let line_no = stats.lines;
        read_line(text, line_no, stats, sink);
    }
}

/// One line's text (its `line_no` in its file, or its message number in a
/// stream) into `sink`. A line whose number in its instance was read
/// before (a collector that got it twice, a file given twice) is counted
/// as a duplicate and not read again.
pub fn read_line(text: &str, line_no: u64, stats: &mut FileStats, sink: &mut impl Sink) {
    let bad = |what: String| BadLine {
        file: stats.path.clone(),
        line: line_no,
        what,
    };
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return;
    }
    let parsed = parse_line(text);
    if parsed.is_ok()
        && let Some((host, instance, seq)) = numbered(text)
    {
        let host = host.filter(|h| !h.is_empty());
        if !sink.numbered(host.as_deref().unwrap_or(&stats.host), &instance, seq) {
            stats.duplicates += 1;
            return;
        }
    }
    match parsed {
        Ok(Parsed::Record(record)) => {
            let host = match &*record {
                Record::Event(e) => e.host.as_deref(),
                Record::Required(r) => r.host.as_deref(),
            }
            .filter(|h| !h.is_empty())
            .unwrap_or(&stats.host)
            .to_string();
            stats.records += 1;
            sink.record(&host, *record);
        }
        Ok(Parsed::Flood(flood)) => {
            let host = flood
                .host
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or(&stats.host)
                .to_string();
            stats.records += 1;
            sink.flood(&host, *flood);
        }
        Ok(Parsed::UnknownKind(kind)) => {
            stats.unknown_kinds += 1;
            sink.unknown_kind(&kind);
        }
        Err(what) => {
            stats.bad_lines += 1;
            sink.bad_line(bad(what));
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    Whole,
    TooLong,
}

/// Reads up to and including the next `\n` into `buf`, keeping at most
/// `max` bytes: the rest of an over-long line is consumed and dropped.
fn read_bounded_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<LineRead>> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > max + 1 {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        reader.consume(take);
        if done {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => None,
        (true, true) => Some(LineRead::TooLong),
        (true, false) => Some(LineRead::Whole),
    })
}

enum Parsed {
    Record(Box<Record>),
    Flood(Box<FloodRecord>),
    UnknownKind(String),
}

/// The `kind`, and the line's number and host, borrowed: the dispatch
/// costs no allocation.
#[derive(Deserialize)]
struct KindOnly<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    instance: Option<Cow<'a, str>>,
    seq: Option<u64>,
}

/// A line's number: (host if the line names one, instance, seq).
type Numbered = (Option<String>, String, u64);

fn numbered(text: &str) -> Option<Numbered> {
    let head: KindOnly = serde_json::from_str(text).ok()?;
    Some((
        head.host.map(Cow::into_owned),
        head.instance?.into_owned(),
        head.seq?,
    ))
}

fn parse_line(text: &str) -> Result<Parsed, String> {
    let head: KindOnly =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {}", json_error(&e)))?;
    let Some(kind) = head.kind else {
        return Err("no \"kind\" field".into());
    };
    let known = [
        EventKind::Unexpected,
        EventKind::Update,
        EventKind::Blocked,
        EventKind::Recovered,
    ];
    if kind == EventKind::Required.as_str() {
        let r: RequiredStatus = serde_json::from_str(text)
            .map_err(|e| format!("bad \"required\" record: {}", json_error(&e)))?;
        return Ok(Parsed::Record(Box::new(Record::Required(r))));
    }
    if kind == "flood" {
        let f: FloodRecord = serde_json::from_str(text)
            .map_err(|e| format!("bad \"flood\" record: {}", json_error(&e)))?;
        return Ok(Parsed::Flood(Box::new(f)));
    }
    if !known.iter().any(|k| k.as_str() == kind) {
        return Ok(Parsed::UnknownKind(kind.into_owned()));
    }
    let r: EventRecord = serde_json::from_str(text)
        .map_err(|e| format!("bad \"{kind}\" record: {}", json_error(&e)))?;
    if r.kind == EventKind::Update
        && !matches!(
            r.update_of,
            None | Some(EventKind::Unexpected) | Some(EventKind::Blocked)
        )
    {
        return Err(format!(
            "\"update_of\" is {:?}: an update refreshes an unexpected or a blocked flow",
            r.update_of.map(EventKind::as_str).unwrap_or_default()
        ));
    }
    Ok(Parsed::Record(Box::new(Record::Event(r))))
}

/// serde_json's message without its "at line 1 column N" (every line is
/// line 1 to it; the file's line is already in front): the column stays.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(msg) => format!("{msg} (column {})", e.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        records: Vec<(String, Record)>,
        bad: Vec<String>,
        unknown: Vec<String>,
        numbered: Vec<(String, String, u64)>,
    }

    impl Sink for Collect {
        fn record(&mut self, host: &str, record: Record) {
            self.records.push((host.to_string(), record));
        }
        fn bad_line(&mut self, bad: BadLine) {
            self.bad.push(bad.to_string());
        }
        fn unknown_kind(&mut self, kind: &str) {
            self.unknown.push(kind.to_string());
        }

        fn numbered(&mut self, host: &str, instance: &str, seq: u64) -> bool {
            let n = (host.to_string(), instance.to_string(), seq);
            let new = !self.numbered.contains(&n);
            self.numbered.push(n);
            new
        }
    }

    fn read(name: &str, bytes: &[u8]) -> (FileStats, Collect) {
        let mut stats = FileStats::new(PathBuf::from(name), file_host(Path::new(name)));
        let mut sink = Collect::default();
        read_lines(io::Cursor::new(bytes.to_vec()), &mut stats, &mut sink);
        (stats, sink)
    }

    const UNEXPECTED: &str = r#"{"ts":"2026-11-22T16:55:30.594388125Z","kind":"unexpected","iface":"eth0","direction":"inbound","proto":"tcp","src":"198.51.100.2","dst":"198.51.100.1","sport":35320,"dport":2181,"count":1,"first_seen":"2026-11-22T16:55:30.594388125Z","last_seen":"2026-11-22T16:55:30.594388125Z"}"#;
    #[test]
    fn a_line_read_twice_is_read_once() {
        let numbered = UNEXPECTED.replace("}", r#","host":"n1","seq":4,"instance":"i"}"#);
        let again = UNEXPECTED.replace("}", r#","host":"n1","seq":5,"instance":"i"}"#);
        let text = format!("{numbered}\n{again}\n{numbered}\n");
        let (stats, sink) = read("n1.jsonl", text.as_bytes());
        assert_eq!((stats.lines, stats.records, stats.duplicates), (3, 2, 1));
        assert_eq!(sink.records.len(), 2);
    }

    #[test]
    fn host_comes_from_the_file_name_without_rotation_suffix() {
        assert_eq!(file_host(Path::new("/var/log/node-a.jsonl")), "node-a");
        assert_eq!(file_host(Path::new("node-a.jsonl.3")), "node-a");
        assert_eq!(file_host(Path::new("events.jsonl.12")), "events");
        assert_eq!(file_host(Path::new("events.log")), "events.log");
        assert_eq!(file_host(Path::new("host.v2")), "host.v2");
        assert_eq!(file_host(Path::new(".jsonl")), ".jsonl");
    }

    #[test]
    fn bad_lines_name_file_and_line_and_reading_goes_on() {
        let text = format!(
            "{UNEXPECTED}\n\nnot json\n{{\"ts\":1}}\n{}\n{}\n{}\n{UNEXPECTED}",
            UNEXPECTED.replace("\"tcp\"", "\"sctp\""),
            UNEXPECTED.replace("\"kind\":\"unexpected\"", "\"kind\":\"probe\""),
            UNEXPECTED
                .replace("\"count\":1", "\"count\":1,\"update_of\":\"recovered\"")
                .replace("\"kind\":\"unexpected\"", "\"kind\":\"update\""),
        );
        let (stats, sink) = read("n1.jsonl", text.as_bytes());
        assert_eq!(stats.lines, 8);
        assert_eq!(stats.records, 2);
        assert_eq!(stats.bad_lines, 4);
        assert_eq!(stats.unknown_kinds, 1);
        assert_eq!(sink.unknown, ["probe"]);
        assert!(
            sink.bad[0].starts_with("n1.jsonl:3: not a JSON object: expected ident (column 2)"),
            "{:?}",
            sink.bad
        );
        assert_eq!(sink.bad[1], "n1.jsonl:4: no \"kind\" field");
        assert!(
            sink.bad[2]
                .starts_with("n1.jsonl:5: bad \"unexpected\" record: unknown protocol \"sctp\""),
            "{:?}",
            sink.bad
        );
        assert!(
            sink.bad[3].starts_with("n1.jsonl:7: \"update_of\" is \"recovered\""),
            "{:?}",
            sink.bad
        );
        assert!(sink.records.iter().all(|(h, _)| h == "n1"));
    }

    #[test]
    fn torn_last_line_crlf_and_invalid_utf8() {
        let mut bytes = format!("{UNEXPECTED}\r\n").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        bytes.extend_from_slice(&UNEXPECTED.as_bytes()[..40]);
        let (stats, sink) = read("x.jsonl.1", &bytes);
        assert_eq!((stats.lines, stats.records, stats.bad_lines), (3, 1, 2));
        assert_eq!(sink.bad[0], "x.jsonl.1:2: not UTF-8 text");
        assert!(
            sink.bad[1].starts_with("x.jsonl.1:3: not a JSON object: EOF while parsing"),
            "{:?}",
            sink.bad
        );
        assert_eq!(sink.records[0].0, "x");
    }

    #[test]
    fn over_long_lines_are_skipped_not_held() {
        let mut bytes = vec![b'x'; MAX_LINE_BYTES * 2 + 7];
        bytes.push(b'\n');
        bytes.extend_from_slice(UNEXPECTED.as_bytes());
        let (stats, sink) = read("big.jsonl", &bytes);
        assert_eq!((stats.lines, stats.records, stats.bad_lines), (2, 1, 1));
        assert!(
            sink.bad[0].starts_with("big.jsonl:1: line longer than"),
            "{:?}",
            sink.bad
        );
        // A line of exactly the limit (newline aside) is still read.
        let mut exact = UNEXPECTED.as_bytes().to_vec();
        exact.resize(MAX_LINE_BYTES, b' ');
        exact.push(b'\n');
        let (stats, _) = read("ok.jsonl", &exact);
        assert_eq!((stats.records, stats.bad_lines), (1, 0));
    }

    #[test]
    fn the_host_field_wins_over_the_file_name() {
        let line = UNEXPECTED.replace("\"kind\"", "\"host\":\"node-b\",\"kind\"");
        let empty = UNEXPECTED.replace("\"kind\"", "\"host\":\"\",\"kind\"");
        let (_, sink) = read("node-a.jsonl", format!("{line}\n{empty}\n").as_bytes());
        assert_eq!(sink.records[0].0, "node-b");
        assert_eq!(sink.records[1].0, "node-a");
    }

    /// A `flood` line as the daemon writes it reaches the sink whole; the
    /// report's sink counts it with the kinds it does not read.
    #[test]
    fn flood_lines_are_read_back_as_written() {
        use crate::events::{ConnDir, IpProto, jsonl::JsonLine as _};
        let t = humantime::parse_rfc3339("2026-11-22T16:55:30Z").unwrap();
        let flood = FloodRecord {
            ts: t,
            kind: "flood".into(),
            direction: ConnDir::Inbound,
            proto: IpProto::Tcp,
            service_port: 8080,
            reason: "no-rule".into(),
            packets: 10,
            bytes: 600,
            total_packets: 30,
            sources: 25,
            sources_estimated: true,
            sample: vec!["198.51.100.7".parse().unwrap()],
            first_seen: t,
            last_seen: t,
            note: "n".into(),
            host: None,
        };
        let mut line = Vec::new();
        flood.write_line(&mut line).unwrap();
        line.push(b'\n');

        #[derive(Default)]
        struct Floods(Vec<(String, FloodRecord)>, Collect);
        impl Sink for Floods {
            fn record(&mut self, host: &str, record: Record) {
                self.1.record(host, record);
            }
            fn bad_line(&mut self, bad: BadLine) {
                self.1.bad_line(bad);
            }
            fn unknown_kind(&mut self, kind: &str) {
                self.1.unknown_kind(kind);
            }
            fn numbered(&mut self, host: &str, instance: &str, seq: u64) -> bool {
                self.1.numbered(host, instance, seq)
            }
            fn flood(&mut self, host: &str, flood: FloodRecord) {
                self.0.push((host.to_string(), flood));
            }
        }
        let mut stats = FileStats::new(PathBuf::from("n1.jsonl"), "n1".into());
        let mut sink = Floods::default();
        read_lines(io::Cursor::new(line.clone()), &mut stats, &mut sink);
        assert_eq!(sink.0, [("n1".to_string(), flood)]);
        assert!(sink.1.bad.is_empty(), "{:?}", sink.1.bad);
        // The report's default: counted as a kind it does not read.
        let (_, plain) = read("n1.jsonl", &line);
        assert_eq!(plain.unknown, ["flood"]);
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let mut sink = Collect::default();
        let err = read_file(Path::new("/nonexistent/ev.jsonl"), &mut sink).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ev.jsonl"), "{err}");
    }
}
