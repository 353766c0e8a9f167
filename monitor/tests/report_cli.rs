//! `portconform report` as a user runs it: the summary on stdout, bad lines
//! named `file:line` on stderr without stopping the report, a non-zero exit
//! only when a file cannot be opened or nothing at all could be read, and
//! the HTML page written where asked.

mod common;

use std::path::Path;

use common::portconform;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report");

fn fixture(name: &str) -> String {
    Path::new(FIXTURES).join(name).display().to_string()
}

#[test]
fn summary_on_stdout_bad_lines_on_stderr_exit_zero() {
    let (a, a1, b) = (
        fixture("node-a.jsonl"),
        fixture("node-a.jsonl.1"),
        fixture("b-events.jsonl"),
    );
    let (ok, out, err) = portconform(&["report", &a, &a1, &b, "--top", "2"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("portconform report: 3 files, 22 records, 2 hosts"),
        "{out}"
    );
    assert!(out.contains(" By service port (top 2 of 4)"), "{out}");
    assert!(
        err.contains(&format!(
            "{a}:10: not a JSON object: EOF while parsing a string"
        )),
        "{err}"
    );
}

#[test]
fn json_and_html_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let html_arg = html.display().to_string();
    let (ok, out, err) = portconform(&[
        "report",
        &fixture("b-events.jsonl"),
        "--format",
        "json",
        "--html",
        &html_arg,
        "--profile",
        "thoughtspot",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["inputs"]["policy"], "--profile thoughtspot");
    assert_eq!(v["unexpected"]["flows_total"], 2);
    assert!(v["required"].as_array().unwrap().len() > 50);
    assert!(err.contains(&format!("wrote {html_arg}")), "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script"));
}

#[test]
fn a_missing_file_fails_after_reporting_the_others() {
    let (ok, out, err) = portconform(&[
        "report",
        &fixture("b-events.jsonl"),
        "/nonexistent/events.jsonl",
    ]);
    assert!(!ok);
    assert!(out.contains("1 file, 9 records, 1 host"), "{out}");
    assert!(
        err.contains("cannot open events file /nonexistent/events.jsonl"),
        "{err}"
    );
    assert!(err.contains("the report covers the other files"), "{err}");
}

#[test]
fn nothing_readable_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "not json\n{\"kind\":\"probe\"}\n").unwrap();
    let junk = junk.display().to_string();
    let (ok, out, err) = portconform(&["report", &junk]);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("{junk}:1: not a JSON object")),
        "{err}"
    );
    assert!(
        err.contains(&format!("no event could be read from {junk}")),
        "{err}"
    );
}

#[test]
fn policy_options_need_a_policy() {
    let (ok, _, err) = portconform(&["report", &fixture("b-events.jsonl"), "--release", "7.1.1"]);
    assert!(!ok);
    assert!(
        err.contains("give --policy FILE or --profile NAME"),
        "{err}"
    );
}

/// Lines a replay wrote, some of them taken out: the report names what is
/// missing per host and instance (issue 19), and says when all is there.
#[test]
fn missing_lines_are_found_from_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = portconform(&["report", &fixture("b-events.jsonl")]);
    assert!(ok, "{err}");
    assert!(
        !out.contains("Lines"),
        "unnumbered lines say nothing: {out}"
    );

    // Numbered lines, as run and replay write them: node-a's instance
    // complete, node-b's with a gap and without its first two lines.
    let line = |host: &str, instance: &str, seq: u64, kind: &str| {
        if kind == "probe" {
            return format!(
                r#"{{"ts":"2026-11-22T16:00:00Z","kind":"probe","host":"{host}","seq":{seq},"instance":"{instance}"}}"#
            );
        }
        format!(
            r#"{{"ts":"2026-11-22T16:00:{:02}Z","kind":"unexpected","iface":"eth0","direction":"inbound","proto":"tcp","src":"198.51.100.7","dst":"192.0.2.1","sport":40000,"dport":{},"count":1,"first_seen":"2026-11-22T16:00:00Z","last_seen":"2026-11-22T16:00:00Z","host":"{host}","seq":{seq},"instance":"{instance}"}}"#,
            seq % 60,
            7000 + seq
        )
    };
    let mut a = String::new();
    for seq in 1..=5 {
        // A kind this version does not know still takes its number.
        let kind = if seq == 3 { "probe" } else { "unexpected" };
        a.push_str(&line("node-a", "aaaaaaaa-1111", seq, kind));
        a.push('\n');
    }
    let mut b = String::new();
    for seq in (3..=9).chain(13..=14) {
        b.push_str(&line("node-b", "bbbbbbbb-2222", seq, "unexpected"));
        b.push('\n');
    }
    let (pa, pb) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    let html = dir.path().join("r.html");
    let (pa, pb, html_arg) = (
        pa.display().to_string(),
        pb.display().to_string(),
        html.display().to_string(),
    );
    let (ok, out, err) = portconform(&["report", &pa, &pb, "--html", &html_arg]);
    assert!(ok, "{err}");
    let want = "node-b (instance bbbbbbbb): lines 1 to 2 are not in the files given (rotated away, or lost); 3 lines missing between seq 3 and 14: 10-12";
    assert!(
        out.contains("Lines missing:") && out.contains(want),
        "{out}"
    );
    assert!(!out.contains("node-a (instance"), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(r##"<a href="#missing">Lines are missing</a>"##),
        "{page}"
    );
    assert!(page.contains(want), "{page}");

    let (ok, out, err) = portconform(&["report", &pa]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Lines: all there (5 numbered lines in 1 instance, none missing)"),
        "{out}"
    );
}
