//! Bad input gets a clear error or warning naming the file and line, never a
//! panic, and a huge file is refused without being read whole.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use monitor::policy::{CompileError, Document, Policy, compile, compile_paths, document::source};

const MALFORMED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/policy/malformed"
);

fn fixture(name: &str) -> PathBuf {
    Path::new(MALFORMED).join(name)
}

fn compiled(name: &str) -> Policy {
    compile_paths(&[fixture(name)]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn warning_at(policy: &Policy, line: u32, text: &str) -> bool {
    policy
        .warnings
        .iter()
        .any(|w| w.source.line == line && w.message.contains(text))
}

fn assert_warning(policy: &Policy, line: u32, text: &str) {
    assert!(
        warning_at(policy, line, text),
        "expected a warning at line {line} containing {text:?}; got:\n{}",
        policy
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn rule_lines(policy: &Policy) -> Vec<u32> {
    policy.rules.iter().map(|r| r.source.line).collect()
}

fn skipped_lines(policy: &Policy) -> Vec<u32> {
    policy.skipped.iter().map(|s| s.source.line).collect()
}

#[test]
fn broken_tables() {
    let p = compiled("broken-tables.md");
    let doc = "broken-tables.md";
    assert!(p.warnings.iter().all(|w| w.source.doc == doc));
    // A pipe table without its delimiter row is not a table: said so.
    assert_warning(&p, 3, "not a table");
    // A short row: the missing cell reads as empty, the row still compiles.
    assert_warning(&p, 10, "row has 4 cells but the header has 5");
    // A long row: the extra cell is ignored.
    assert_warning(&p, 11, "row has 6 cells but the header has 5");
    assert_eq!(rule_lines(&p), vec![10, 11]);
    // An empty row and an unreadable direction are skipped, with reasons.
    assert_eq!(skipped_lines(&p), vec![12, 13]);
    assert_warning(&p, 13, "unknown direction \"sideways\"");
}

#[test]
fn unknown_protocol_skips_the_row() {
    let p = compiled("unknown-protocol.md");
    assert_warning(&p, 3, "unknown protocol \"Gopher\"");
    assert_eq!(skipped_lines(&p), vec![3]);
    assert_eq!(rule_lines(&p), vec![4]);
}

#[test]
fn out_of_range_ports_skip_the_row() {
    let p = compiled("port-70000.md");
    assert_warning(&p, 3, "port 70000 is out of range (ports are 1-65535)");
    assert_warning(&p, 4, "port range 8000-7000 is backwards");
    assert_eq!(skipped_lines(&p), vec![3, 4]);
    assert_eq!(rule_lines(&p), vec![5]);
}

#[test]
fn unclosed_html_still_reads_by_line() {
    let p = compiled("unclosed.html");
    assert_warning(&p, 4, "cannot read Required? \"Maybe\"");
    assert_warning(&p, 5, "row has 2 cells but the header has 3");
    assert_warning(&p, 5, "Required? cell is empty");
    assert_eq!(skipped_lines(&p), vec![4]);
    assert_eq!(rule_lines(&p), vec![5, 6]);
}

#[test]
fn html_table_without_header_cells_reads_its_first_row_as_header() {
    let doc = Document::from_bytes(
        "plain.html".into(),
        b"<table>\n<tr><td><b>Port</b></td><td>Protocol</td></tr>\n<tr><td>8443</td><td>TCP</td></tr>\n</table>\n".to_vec(),
    )
    .unwrap();
    let p = compile(&[doc]).unwrap();
    assert_warning(&p, 2, "first row is read as the header");
    assert_eq!(rule_lines(&p), vec![3]);
}

#[test]
fn a_document_without_port_tables_is_an_error() {
    let err = compile_paths(&[fixture("no-port-column.md")]).unwrap_err();
    assert!(matches!(err, CompileError::NoRules { .. }));
    assert!(
        err.to_string()
            .starts_with("no-port-column.md: no port table"),
        "{err}"
    );
}

#[test]
fn a_document_whose_rows_are_all_bad_says_why() {
    let doc = Document::from_bytes(
        "bad-rows.md".into(),
        b"|Port|Protocol|Direction|\n|--|--|--|\n|70000|TCP|inbound|\n|80|Gopher|inbound|\n"
            .to_vec(),
    )
    .unwrap();
    let err = compile(&[doc]).unwrap_err().to_string();
    assert_eq!(
        err,
        "bad-rows.md: no rule compiled: every port row was skipped (2 in all; the first, line 3: \
         port 70000 is out of range (ports are 1-65535))"
    );
}

#[test]
fn empty_and_blank_files_are_errors() {
    for name in ["empty.md", "blank.md"] {
        let err = compile_paths(&[fixture(name)]).unwrap_err();
        assert_eq!(err.to_string(), format!("{name}: the file is empty"));
    }
}

#[test]
fn binary_garbage_is_refused_with_its_line() {
    let mut bytes = b"|Port|Protocol|\n|--|--|\n".to_vec();
    // Deterministic pseudo-random bytes, NULs included.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x >> 24) as u8);
    }
    bytes.push(0);
    let err = Document::from_bytes("garbage.bin".into(), bytes).unwrap_err();
    assert!(matches!(err, CompileError::Binary { .. }), "{err}");
    assert!(err.to_string().starts_with("garbage.bin:"), "{err}");

    let err = Document::from_bytes("latin1.md".into(), b"|Port|\n|--|\n|80 caf\xe9|\n".to_vec())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "latin1.md:3: not UTF-8 text (invalid byte at offset 19)"
    );
}

#[test]
fn a_50_mb_file_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.md");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(
        file,
        "|Port|Protocol|Direction|Source|Dest.|\n|--|--|--|--|--|"
    )
    .unwrap();
    let row = b"|8080|TCP|inbound|All nodes|All nodes|\n";
    let mut written = 0usize;
    while written < 50 * 1024 * 1024 {
        file.write_all(row).unwrap();
        written += row.len();
    }
    file.flush().unwrap();
    drop(file);

    let start = Instant::now();
    let err = compile_paths(&[&path]).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(matches!(err, CompileError::TooLarge { .. }), "{err}");
    assert!(
        err.to_string().starts_with("huge.md: the file is 52428")
            && err.to_string().contains("refused"),
        "{err}"
    );
}

#[test]
fn a_large_document_under_the_limit_compiles_in_bounded_time() {
    // Just under the limit: tens of thousands of rows, many of them bad.
    // A release change before it makes every row of the big table a
    // successor: linking them must stay linear.
    let mut text = String::from(
        "|Port|Protocol|Direction|Source|Dest.|\n|--|--|--|--|--|\n\
         |8086|TCP|outbound|All nodes|All nodes|\n\n\
         In releases 4.5.1 and later, port 8086 is not required. Open the following port instead:\n\n\
         |Port|Protocol|Direction|Source|Dest.|\n|--|--|--|--|--|\n",
    );
    let mut n = 0u32;
    while text.len() < (source::MAX_DOCUMENT_BYTES as usize) - 200 {
        let port = 1 + n % 70_000;
        text.push_str(&format!("|{port}|TCP|inbound|All nodes|All nodes|\n"));
        n += 1;
    }
    let start = Instant::now();
    let policy =
        compile(&[Document::from_bytes("large.md".into(), text.into_bytes()).unwrap()]).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    assert!(policy.rules.len() > 50_000);
    assert_eq!(policy.rules[0].superseded_by.as_deref(), Some("large-9"));
    assert!(policy.rules.last().unwrap().since.is_some());
    // Warnings are capped so that garbage cannot flood memory or the terminal.
    assert!(policy.warnings.len() <= 201, "{}", policy.warnings.len());
    assert!(
        policy
            .warnings
            .last()
            .unwrap()
            .message
            .contains("more warnings")
    );
}
