//! `portconform learn` as a user runs it: the addendum on stdout or in
//! `-o`, which `policy compile` takes with the vendor's document; bad
//! files named `file:line` with a non-zero exit.

mod common;

use std::path::Path;

use common::portconform;

const REPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report");
const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/seeds/000_2809db0a7820664a.txt"
);

fn fixture(name: &str) -> String {
    Path::new(REPORT).join(name).display().to_string()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pc-learn-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_report_fixtures_give_no_row_and_say_why() {
    let files = [
        fixture("node-a.jsonl"),
        fixture("node-a.jsonl.1"),
        fixture("b-events.jsonl"),
    ];
    let mut args = vec!["learn", "--profile", "thoughtspot"];
    args.extend(files.iter().map(String::as_str));
    let (ok, out, err) = portconform(&args);
    assert!(ok, "{err}");
    assert!(
        out.contains("No group of flows passed the thresholds."),
        "{out}"
    );
    assert!(
        out.contains("one-off: tcp 6666 inbound from admin to nodes: one peer, one host, one day"),
        "{out}"
    );
    assert!(
        out.contains("no port: icmp 8 inbound from 203.0.113.0/24 to nodes"),
        "{out}"
    );
    // The torn line of node-a.jsonl is named, and the rest is read.
    assert!(
        err.contains(&format!("{}:10: not a JSON object", files[0])),
        "{err}"
    );
    // Same files, same bytes.
    assert_eq!(portconform(&args).1, out);
}

#[test]
fn written_with_o_it_compiles_with_the_vendor_document() {
    let dir = scratch("compile");
    let events = dir.join("node.jsonl");
    let line = |src: &str, dport: u16| {
        format!(
            r#"{{"ts":"2026-11-22T10:00:00Z","kind":"unexpected","iface":"eth0","direction":"inbound","proto":"tcp","src":"{src}","dst":"192.0.2.1","sport":40000,"dport":{dport},"count":3,"first_seen":"2026-11-22T10:00:00Z","last_seen":"2026-11-22T10:00:01Z"}}"#
        )
    };
    let text = [line("198.51.100.7", 9100), line("198.51.100.8", 9100)].join("\n");
    std::fs::write(&events, text).unwrap();
    let site = dir.join("site.md");
    let (ev, site_s) = (events.display().to_string(), site.display().to_string());
    let (ok, out, err) = portconform(&["learn", &ev, "-o", &site_s]);
    assert!(ok, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("1 rows proposed, 0 set aside, from 2 unexpected flows"),
        "{err}"
    );
    let policy = dir.join("policy.toml").display().to_string();
    let (ok, _, err) = portconform(&["policy", "compile", SEED, &site_s, "-o", &policy]);
    assert!(ok, "{err}");
    let (ok, out, err) = portconform(&["policy", "explain", "9100/tcp", "--policy", &policy]);
    assert!(ok, "{err}");
    assert!(out.contains("site.md:"), "{out}");
    assert!(out.contains("198.51.100.0/24"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_file_that_is_not_events_is_an_error_naming_its_line() {
    let summary = fixture("summary.txt");
    let (ok, out, err) = portconform(&["learn", &summary]);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("{summary}:1: not a JSON object")),
        "{err}"
    );
    assert!(err.contains("not an events file"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let (ok, _, err) = portconform(&["learn", "/nonexistent/ev.jsonl"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/ev.jsonl"), "{err}");

    let (ok, _, err) = portconform(&["learn", &summary, "--inventory", "inv.toml"]);
    assert!(!ok);
    assert!(
        err.contains("give --policy FILE or --profile NAME"),
        "{err}"
    );
}
