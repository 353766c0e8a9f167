//! The report over hand-written events files (tests/fixtures/report): two
//! hosts, a rotated file, updates superseding first sightings, a flow seen
//! again after a restart, blocked and recovered flows, verdict lines, a torn
//! last line, a kind from the future, and fields carrying markup; and the
//! timeline over them, in the terminal and in the page.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use html5ever::{
    TokenizerResult,
    tendril::StrTendril,
    tokenizer::{
        BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    },
};

use super::{
    Aggregator, Documents, PolicyContext, Report,
    html::{self, citations},
    load,
    model::Basis,
    terminal,
    timeline::{COLUMNS, Kind, Lane, Timeline},
};
use crate::{
    events::{ConnDir, IpProto, RequiredState},
    policy::{self, PortRange, ResolveOptions},
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report");
const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/seeds");

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

const FILES: [&str; 3] = ["node-a.jsonl", "node-a.jsonl.1", "b-events.jsonl"];

fn aggregate(paths: &[PathBuf]) -> Aggregator {
    let mut agg = Aggregator::new();
    for p in paths {
        let stats = load::read_file(p, &mut agg).unwrap();
        agg.file_read(stats);
    }
    agg
}

fn report(policy: Option<&PolicyContext>) -> Report {
    let paths: Vec<PathBuf> = FILES.iter().map(|f| fixture(f)).collect();
    aggregate(&paths).finish(policy)
}

fn thoughtspot() -> PolicyContext {
    let policy = policy::profiles::load("thoughtspot").unwrap();
    let options = ResolveOptions::all_releases(PortRange {
        lo: 32768,
        hi: 60999,
    });
    let resolved = policy::resolve(&policy, &options).unwrap();
    PolicyContext::new("--profile thoughtspot", &resolved)
}

/// The parts of a report that must not depend on the order of the input.
fn content(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "hosts": r.hosts,
        "required": r.required,
        "blocked": r.blocked,
        "unexpected": r.unexpected,
        "records": r.inputs.records,
        "bad_lines": r.inputs.bad_lines,
    })
}

#[test]
fn updates_supersede_first_sightings_and_new_sightings_add_up() {
    let r = report(None);
    let u = &r.unexpected;
    assert_eq!((u.flows_total, u.packets_total), (4, 76));
    let zk = u
        .flows
        .iter()
        .find(|f| f.host == "node-a" && f.dport == 2181)
        .unwrap();
    // Sighting one ends at 9 packets (its update of 5 is superseded, not
    // added); sighting two (after a restart) adds its 2.
    assert_eq!(
        (zk.count, zk.bytes, zk.reply_packets, zk.sightings),
        (11, 848, 9, 2)
    );
    assert_eq!(zk.sport, 40000, "the first sighting's client port");
    assert_eq!(
        crate::events::rfc3339(zk.first_seen),
        "2026-11-22T16:00:01.000000000Z"
    );
    assert_eq!(
        crate::events::rfc3339(zk.last_seen),
        "2026-11-22T17:00:00.500000000Z"
    );
    assert_eq!(zk.rule.as_deref(), Some("000-14"));
    assert_eq!(zk.reason.as_deref(), Some("peer-not-allowed"));
    assert_eq!(zk.peer_roles, ["admin"]);
    // The busiest flow first; one flow per (host, direction, proto, src, dst, dport).
    let order: Vec<(&str, u16, u64)> = u
        .flows
        .iter()
        .map(|f| (f.host.as_str(), f.dport, f.count))
        .collect();
    assert_eq!(
        order,
        [
            ("node-b", 6666, 60),
            ("node-a", 2181, 11),
            ("node-b", 5353, 3),
            ("node-a", 8, 2)
        ]
    );
    let scan = &u.flows[0];
    assert_eq!(
        (scan.sport, scan.bytes, scan.reply_packets),
        (50000, 4440, 60)
    );
}

#[test]
fn groups_by_port_and_by_peer_across_hosts() {
    let r = report(None);
    let ports: Vec<(ConnDir, IpProto, u16, u64, u64)> = r
        .unexpected
        .by_port
        .iter()
        .map(|g| (g.direction, g.proto, g.dport, g.flows, g.packets))
        .collect();
    assert_eq!(
        ports,
        [
            (ConnDir::Inbound, IpProto::Tcp, 6666, 1, 60),
            (ConnDir::Inbound, IpProto::Tcp, 2181, 1, 11),
            (ConnDir::Outbound, IpProto::Udp, 5353, 1, 3),
            (ConnDir::Inbound, IpProto::Icmp, 8, 1, 2),
        ]
    );
    let admin = &r.unexpected.by_peer[0];
    assert_eq!(admin.peer.to_string(), "198.51.100.7");
    assert_eq!(
        (admin.flows, admin.packets, admin.reply_packets),
        (2, 71, 69)
    );
    assert_eq!(admin.hosts, ["node-a", "node-b"]);
    assert_eq!(admin.ports, ["tcp/6666 in", "tcp/2181 in"]);
    // Outbound flows are grouped by their responder.
    assert_eq!(r.unexpected.by_peer[1].peer.to_string(), "2001:db8::53");
}

#[test]
fn blocked_flows_count_attempts_and_know_when_they_recovered() {
    let r = report(None);
    type Row<'a> = (&'a str, &'a str, u16, Option<&'a str>, u64, bool);
    let b: Vec<Row> = r
        .blocked
        .iter()
        .map(|f| {
            (
                f.host.as_str(),
                f.rule.as_str(),
                f.dport,
                f.reason.as_deref(),
                f.attempts,
                f.recovered,
            )
        })
        .collect();
    assert_eq!(
        b,
        [
            ("node-a", "000-10", 80, Some("reset"), 4, false),
            ("node-b", "000-14", 2181, Some("icmp-unreachable"), 6, false),
            ("node-a", "000-42", 5432, Some("no-reply"), 3, true),
        ]
    );
    assert_eq!(
        r.blocked[2]
            .recovered_at
            .map(crate::events::rfc3339)
            .as_deref(),
        Some("2026-11-22T16:02:10.000000000Z")
    );
}

#[test]
fn required_matrix_merges_hosts_and_takes_the_latest_verdict() {
    let r = report(None);
    let rules: Vec<&str> = r.required.iter().map(|row| row.rule.as_str()).collect();
    assert_eq!(rules, ["000-10", "000-14", "000-42", "x-1"]);
    let cell = |rule: &str, host: &str| {
        r.required
            .iter()
            .find(|row| row.rule == rule)
            .unwrap()
            .hosts
            .get(host)
            .cloned()
    };
    let a10 = cell("000-10", "node-a").unwrap();
    assert_eq!(
        (
            a10.status,
            a10.reason.as_deref(),
            a10.failed_attempts,
            a10.basis
        ),
        (
            RequiredState::Blocked,
            Some("reset"),
            4,
            Basis::RequiredLine
        )
    );
    // node-b's older "blocked" verdict is superseded by its later "working".
    assert_eq!(
        cell("000-10", "node-b").unwrap().status,
        RequiredState::Working
    );
    // No verdict line from node-b for 000-14: its blocked events say.
    let b14 = cell("000-14", "node-b").unwrap();
    assert_eq!(
        (
            b14.status,
            b14.reason.as_deref(),
            b14.failed_attempts,
            b14.basis
        ),
        (
            RequiredState::Blocked,
            Some("icmp-unreachable"),
            6,
            Basis::Events
        )
    );
    assert_eq!(
        cell("000-14", "node-a").unwrap().status,
        RequiredState::NotSeen
    );
    // Both directions of 000-42 on node-b fold into one cell.
    let b42 = cell("000-42", "node-b").unwrap();
    assert_eq!((b42.status, b42.working), (RequiredState::Working, 8));
    assert_eq!(cell("000-42", "node-a").unwrap().recovered_flows, 1);
    let row42 = r.required.iter().find(|row| row.rule == "000-42").unwrap();
    assert_eq!(row42.direction, "inbound, outbound");
    // Without a policy nothing is invented for a host that said nothing.
    assert!(cell("x-1", "node-a").is_none());
    let hosts: Vec<(&str, u64, u64, u64, u64, u64, u64)> = r
        .hosts
        .iter()
        .map(|h| {
            (
                h.host.as_str(),
                h.unexpected_flows,
                h.unexpected_packets,
                h.blocked_flows,
                h.required_working,
                h.required_blocked,
                h.required_not_seen,
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [("node-a", 2, 13, 1, 1, 1, 1), ("node-b", 2, 63, 1, 2, 1, 1)]
    );
}

#[test]
fn with_a_policy_every_required_rule_has_a_row_in_policy_order() {
    let ctx = thoughtspot();
    let r = report(Some(&ctx));
    let required: Vec<&str> = ctx.required().map(|r| r.id.as_str()).collect();
    let rows: Vec<&str> = r.required.iter().map(|row| row.rule.as_str()).collect();
    assert_eq!(&rows[..required.len()], &required[..]);
    assert_eq!(
        rows.last(),
        Some(&"x-1"),
        "rules the policy does not know come last"
    );
    let nginx_vs = r.required.iter().find(|row| row.rule == "000-58").unwrap();
    for host in ["node-a", "node-b"] {
        let cell = &nginx_vs.hosts[host];
        assert_eq!(
            (cell.status, cell.basis),
            (RequiredState::NotSeen, Basis::Policy)
        );
    }
    // The policy describes the rule, not the event line.
    let zk = r.required.iter().find(|row| row.rule == "000-14").unwrap();
    assert_eq!(
        (zk.direction.as_str(), zk.peer.as_str()),
        ("bidirectional", "nodes")
    );
    assert_eq!(r.inputs.policy.as_deref(), Some("--profile thoughtspot"));
}

#[test]
fn input_order_does_not_matter() {
    let forward = report(None);
    let mut paths: Vec<PathBuf> = FILES.iter().rev().map(|f| fixture(f)).collect();
    let backward = aggregate(&paths).finish(None);
    assert_eq!(content(&forward), content(&backward));
    // Every line in reverse order, in one file.
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for f in FILES {
        let text = std::fs::read_to_string(fixture(f)).unwrap();
        let host = load::file_host(Path::new(f));
        for line in text.lines() {
            // The file name no longer says the host: put it in the line.
            lines.push(match line.strip_prefix('{') {
                Some(rest) if !line.contains("\"host\"") && line.ends_with('}') => {
                    format!("{{\"host\":\"{host}\",{rest}")
                }
                _ => line.to_string(),
            });
        }
    }
    lines.reverse();
    let merged = dir.path().join("merged.jsonl");
    std::fs::write(&merged, lines.join("\n")).unwrap();
    paths = vec![merged];
    let reversed = aggregate(&paths).finish(None);
    assert_eq!(content(&forward), content(&reversed));
}

#[test]
fn bad_lines_and_unknown_kinds_are_counted_with_file_and_line() {
    let r = report(None);
    let i = &r.inputs;
    assert_eq!((i.records, i.bad_lines), (22, 1));
    let bad = i.bad_line_samples[0].to_string();
    assert!(
        bad.starts_with(&format!(
            "{}:10: not a JSON object: EOF while parsing a string",
            fixture("node-a.jsonl").display()
        )),
        "{bad}"
    );
    assert_eq!(i.unknown_kinds.get("probe"), Some(&1));
    let files: Vec<(String, u64, u64)> = i
        .files
        .iter()
        .map(|f| (f.host.clone(), f.lines, f.records))
        .collect();
    assert_eq!(
        files,
        [
            ("node-a".into(), 10, 9),
            ("node-a".into(), 4, 4),
            ("b-events".into(), 10, 9)
        ]
    );
}

#[test]
fn terminal_summary_matches_the_golden_file() {
    let r = report(None);
    let mut out = Vec::new();
    terminal::write(&mut out, &r, 10).unwrap();
    let text = String::from_utf8(out).unwrap();
    let golden = fixture("summary.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert!(
        text == expected,
        "terminal summary differs from {} (UPDATE_GOLDEN=1 rewrites it; review the diff):\n{text}",
        golden.display()
    );
    // --top bounds each list and says so.
    let mut out = Vec::new();
    terminal::write(&mut out, &r, 1).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(" By service port (top 1 of 4)"), "{text}");
    assert!(text.contains(" By packets (top 1 of 4)"), "{text}");
    assert!(!text.contains("2001:db8::53"), "{text}");
}

#[test]
fn terminal_output_escapes_control_characters() {
    assert_eq!(
        terminal::terminal_safe("a\x1b[2Jb\rc\u{7}"),
        "a\\u{1b}[2Jb\\rc\\u{7}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.jsonl");
    let line = std::fs::read_to_string(fixture("b-events.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .replace("<script>", "\\u001b]0;owned\\u0007");
    std::fs::write(&path, line).unwrap();
    let r = aggregate(&[path]).finish(None);
    let mut out = Vec::new();
    terminal::write(&mut out, &r, 10).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(text.contains("\\u{1b}]0;owned\\u{7}"), "{text}");
}

#[test]
fn json_output_is_the_aggregated_report() {
    let r = report(None);
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(v["unexpected"]["flows"].as_array().unwrap().len(), 4);
    let f = &v["unexpected"]["flows"][1];
    assert_eq!(f["src"], "198.51.100.7");
    assert_eq!(f["count"], 11);
    assert_eq!(f["first_seen"], "2026-11-22T16:00:01.000000000Z");
    assert_eq!(v["blocked"][2]["recovered"], true);
    assert_eq!(v["required"][0]["hosts"]["node-a"]["status"], "blocked");
    assert_eq!(v["required"][1]["hosts"]["node-b"]["basis"], "events");
    assert_eq!(v["hosts"][1]["host"], "node-b");
    assert_eq!(v["inputs"]["bad_lines"], 1);
    assert!(
        v["inputs"]["bad_line_samples"][0]["what"]
            .as_str()
            .unwrap()
            .starts_with("not a JSON object")
    );
}

/// An element of the page as html5ever's tokenizer reads it, with the text
/// up to the next tag.
#[derive(Debug, Clone)]
struct Elem {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
}

/// The elements in document order; text goes to the innermost open one.
#[derive(Default)]
struct Collect(RefCell<(Vec<Elem>, Vec<usize>)>);

const VOID: [&str; 6] = ["meta", "br", "img", "link", "input", "hr"];

impl TokenSink for Collect {
    type Handle = ();
    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let (elems, open) = &mut *self.0.borrow_mut();
        match token {
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => {
                let name = tag.name.to_string();
                if !tag.self_closing && !VOID.contains(&name.as_str()) {
                    open.push(elems.len());
                }
                elems.push(Elem {
                    name,
                    attrs: tag
                        .attrs
                        .iter()
                        .map(|a| (a.name.local.to_string(), a.value.to_string()))
                        .collect(),
                    text: String::new(),
                });
            }
            Token::TagToken(tag) => {
                if let Some(at) = open.iter().rposition(|&i| *elems[i].name == *tag.name) {
                    open.truncate(at);
                }
            }
            Token::CharacterTokens(t) => {
                if let Some(&i) = open.last() {
                    elems[i].text.push_str(&t);
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

fn elements(page: &str) -> Vec<Elem> {
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(page));
    let tok = Tokenizer::new(Collect::default(), TokenizerOpts::default());
    while let TokenizerResult::Script(()) = tok.feed(&input) {}
    tok.end();
    tok.sink.0.into_inner().0
}

fn page(policy: Option<&PolicyContext>, docs: &Documents) -> String {
    let r = report(policy);
    html::render(&r, policy, docs, 10)
}

#[test]
fn html_escapes_everything_from_the_events() {
    let page = page(None, &Documents::default());
    let elems = elements(&page);
    for tag in ["script", "img", "b", "link", "iframe"] {
        assert!(
            elems.iter().all(|e| e.name != tag),
            "a <{tag}> element came through"
        );
    }
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("eth&lt;1&gt;"));
    // Times to the millisecond, on one line.
    assert!(page.contains("<td class=\"time\">2026-11-22 16:03:25.000Z</td>"));
    // Self-contained: no external resource, no script, inline CSS only.
    assert!(elems.iter().any(|e| e.name == "style"));
    for e in &elems {
        for (k, v) in &e.attrs {
            assert!(!k.starts_with("on"), "event handler attribute {k}");
            if k == "href" || k == "src" {
                assert!(v.starts_with('#'), "{k}={v} leaves the page");
            }
        }
    }
}

#[test]
fn html_matrix_cells_carry_their_status_class() {
    let ctx = thoughtspot();
    let page = page(Some(&ctx), &Documents::default());
    let elems = elements(&page);
    let hosts: Vec<&str> = {
        let start = elems
            .iter()
            .position(|e| e.attrs.get("class").is_some_and(|c| c == "matrix"))
            .expect("a matrix table");
        elems[start..]
            .iter()
            .take_while(|e| e.name != "tbody")
            .filter(|e| e.name == "th")
            .skip(6)
            .map(|e| e.text.as_str())
            .collect()
    };
    assert_eq!(hosts, ["node-a", "node-b"]);
    // Each row: the rule link, then one cell per host.
    let cells = |rule: &str| -> Vec<(String, String)> {
        let at = elems
            .iter()
            .position(|e| e.name == "a" && e.text == rule)
            .unwrap_or_else(|| panic!("no link for {rule}"));
        elems[at..]
            .iter()
            .filter(|e| {
                e.name == "td" && e.attrs.get("class").is_some_and(|c| c.starts_with("st-"))
            })
            .take(2)
            .map(|e| (e.attrs["class"].clone(), e.text.trim().to_string()))
            .collect()
    };
    assert_eq!(
        cells("000-10"),
        [
            ("st-blocked".into(), "blocked reset x4".into()),
            ("st-working".into(), "working".into())
        ]
    );
    assert_eq!(
        cells("000-14"),
        [
            ("st-not-seen".into(), "not-seen".into()),
            (
                "st-blocked".into(),
                "blocked icmp-unreachable x6 [events]".into()
            )
        ]
    );
    assert_eq!(
        cells("000-58"),
        [
            ("st-not-seen".into(), "not-seen".into()),
            ("st-not-seen".into(), "not-seen".into())
        ]
    );
    assert_eq!(cells("x-1")[0], ("st-none".into(), "-".into()));
}

#[test]
fn html_rule_links_resolve_to_quoted_document_lines() {
    let ctx = thoughtspot();
    let r = report(Some(&ctx));
    let c = citations(&r);
    let docs = Documents::load(c.documents(), &[PathBuf::from(SEEDS)]);
    assert!(
        docs.lines("000_2809db0a7820664a.txt").is_some(),
        "seed documents expected in {SEEDS}"
    );
    let page = html::render(&r, Some(&ctx), &docs, 10);
    let elems = elements(&page);
    let ids: BTreeSet<&str> = elems
        .iter()
        .filter_map(|e| e.attrs.get("id").map(String::as_str))
        .collect();
    let links: Vec<&str> = elems
        .iter()
        .filter(|e| e.name == "a")
        .filter_map(|e| e.attrs.get("href").map(String::as_str))
        .collect();
    assert!(links.len() > 70, "{} links", links.len());
    for href in &links {
        let target = href.strip_prefix('#').expect("in-page link");
        assert!(ids.contains(target), "link {href} has no anchor");
    }
    // 000-14 is cited by events and rows alike: one anchor, quoting the
    // document's line 14 (the citation is highlighted) with its rule.
    let anchor = c.anchor("000_2809db0a7820664a.txt:14").unwrap();
    let at = elems
        .iter()
        .position(|e| e.attrs.get("id").is_some_and(|i| *i == anchor))
        .unwrap();
    let section: Vec<&Elem> = elems[at..]
        .iter()
        .take_while(|e| !(e.name == "div" && e.attrs.get("id").is_some_and(|i| *i != anchor)))
        .collect();
    let cited = section
        .iter()
        .find(|e| e.attrs.get("class").is_some_and(|c| c == "cited"))
        .expect("the cited line is highlighted");
    let seed = std::fs::read_to_string(Path::new(SEEDS).join("000_2809db0a7820664a.txt")).unwrap();
    let line14 = seed.lines().nth(13).unwrap();
    assert!(cited.text.contains("14  "), "{}", cited.text);
    assert!(
        cited.text.trim_end().ends_with(line14.trim_end()),
        "{}",
        cited.text
    );
    assert!(
        section
            .iter()
            .any(|e| e.name == "code" && e.text == "000-14"),
        "the rule compiled from line 14 is listed"
    );
    // A source the documents do not have is said so, not linked to nothing.
    assert!(page.contains("custom.md"));
    assert!(page.contains("Text not available: not found in"));
}

#[test]
fn an_empty_or_unreadable_input_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let agg = aggregate(&[empty]);
    assert_eq!(agg.records(), 0);
    let mut agg = Aggregator::new();
    assert!(load::read_file(&dir.path().join("missing.jsonl"), &mut agg).is_err());
}

/// The non-empty columns of a lane's row: (column, flows).
fn columns_of(lane: &Lane, kind: Kind) -> Vec<(usize, u64)> {
    lane.bins(kind)
        .iter()
        .enumerate()
        .filter(|(_, b)| b.flows > 0)
        .map(|(i, b)| (i, b.flows))
        .collect()
}

#[test]
fn timeline_bins_each_hosts_flows_at_their_first_sighting() {
    let r = report(None);
    let t = Timeline::of(&r).expect("flows to place");
    // 16:00:01 to 16:10:50 fits 44 columns of 15 s (10 s would need 66).
    assert_eq!(t.width, Duration::from_secs(15));
    assert_eq!(t.label(t.start), "2026-11-22T16:00:00Z");
    assert_eq!(
        (t.columns, t.label(t.end())),
        (44, "2026-11-22T16:11:00Z".into())
    );
    let hosts: Vec<&str> = t.lanes.iter().map(|l| l.host.as_str()).collect();
    assert_eq!(hosts, ["node-a", "node-b"]);
    let (a, b) = (&t.lanes[0], &t.lanes[1]);
    // ZooKeeper at 16:00:01 (its later sighting does not move it), ICMP at
    // 16:01:05; PostgreSQL blocked at 16:00:50, nginx at 16:02:58.
    assert_eq!(columns_of(a, Kind::Unexpected), [(0, 1), (4, 1)]);
    assert_eq!(columns_of(a, Kind::Blocked), [(3, 1), (11, 1)]);
    assert_eq!(columns_of(b, Kind::Unexpected), [(40, 2)]);
    assert_eq!(columns_of(b, Kind::Blocked), [(43, 1)]);
    assert_eq!((t.max_bin(), t.max_total()), (2, 2));
    // Each column links to its earliest flow, which is the lane's host's
    // and first seen inside the column.
    for lane in &t.lanes {
        for kind in [Kind::Unexpected, Kind::Blocked] {
            for (i, bin) in lane
                .bins(kind)
                .iter()
                .enumerate()
                .filter(|(_, b)| b.flows > 0)
            {
                let (at, index) = bin.earliest.unwrap();
                let (host, first_seen) = match kind {
                    Kind::Unexpected => {
                        let f = &r.unexpected.flows[index];
                        (&f.host, f.first_seen)
                    }
                    Kind::Blocked => {
                        let f = &r.blocked[index];
                        (&f.host, f.first_seen.unwrap())
                    }
                };
                assert_eq!((host, first_seen), (&lane.host, at));
                assert!(t.edge(i) <= at && at < t.edge(i + 1), "{kind:?} column {i}");
                assert!(bin.first_listed.unwrap() <= index);
            }
        }
    }
    // node-b's two unexpected flows share a column: the earliest (6666, at
    // 16:10:00) is also the busiest.
    let both = &b.unexpected[40];
    assert_eq!(r.unexpected.flows[both.earliest.unwrap().1].dport, 6666);
}

#[test]
fn sparklines_scale_every_host_to_the_busiest_column() {
    assert_eq!(terminal::sparkline(&[0, 1, 2, 4, 7, 8], 8), " ▁▂▄▇█");
    // One flow among thousands still shows.
    assert_eq!(terminal::sparkline(&[1, 5000], 5000), "▁█");
    let r = report(None);
    let mut out = Vec::new();
    terminal::write(&mut out, &r, 10).unwrap();
    let text = String::from_utf8(out).unwrap();
    let line = |marks: &[(usize, char)]| {
        let mut cells = vec![' '; 44];
        for &(i, c) in marks {
            cells[i] = c;
        }
        cells.into_iter().collect::<String>()
    };
    let a = format!(
        "  node-a  |{}|  2 unexpected, 2 blocked",
        line(&[(0, '▄'), (3, '▄'), (4, '▄'), (11, '▄')])
    );
    let b = format!(
        "  node-b  |{}|  2 unexpected, 1 blocked",
        line(&[(40, '█'), (43, '▄')])
    );
    assert!(text.contains(&a), "{text}");
    assert!(text.contains(&b), "{text}");
    assert!(
        text.contains(
            "\n  2026-11-22T16:00:00Z to 2026-11-22T16:11:00Z, one column per 15s, █ = 2 flows:\n"
        ),
        "{text}"
    );
    // In the hosts section, before the required flows.
    let at = text.find("  node-a  |").unwrap();
    assert!(text.find("\nHosts").unwrap() < at && at < text.find("\nRequired flows").unwrap());
}

/// The marks of the page's timeline: (lane host, class, href, tooltip).
fn marks(elems: &[Elem]) -> Vec<(String, String, String, String)> {
    let mut host = String::new();
    let mut out = Vec::new();
    for (i, e) in elems.iter().enumerate() {
        if let Some(h) = e.attrs.get("data-host") {
            host = h.clone();
        }
        if e.name == "a" && e.attrs.get("class").is_some_and(|c| c.starts_with("mark")) {
            let title = &elems[i + 1];
            assert_eq!(title.name, "title", "a mark starts with its tooltip");
            out.push((
                host.clone(),
                e.attrs["class"].clone(),
                e.attrs["href"].clone(),
                title.text.clone(),
            ));
        }
    }
    out
}

#[test]
fn html_timeline_comes_first_and_each_mark_links_to_its_flows_row() {
    let page = page(None, &Documents::default());
    let elems = elements(&page);
    let svg = elems.iter().position(|e| e.name == "svg").expect("an SVG");
    let table = elems.iter().position(|e| e.name == "table").unwrap();
    assert!(svg < table, "the timeline comes before the tables");
    let svg_el = &elems[svg];
    assert!(svg_el.attrs["aria-label"].contains("2 hosts"));
    assert!(elems[svg + 1].name == "title" && elems[svg + 2].name == "desc");
    let desc = &elems[svg + 2].text;
    assert!(
        desc.contains("node-a: 2 unexpected flows, 2 blocked flows.")
            && desc.contains("node-b: 2 unexpected flows, 1 blocked flow."),
        "{desc}"
    );
    let marks = marks(&elems);
    assert_eq!(marks.len(), 6, "{marks:?}");
    for (host, class, href, _) in &marks {
        let id = href.strip_prefix('#').expect("in-page link");
        let row = elems
            .iter()
            .position(|e| e.attrs.get("id").is_some_and(|i| i == id))
            .unwrap_or_else(|| panic!("{href} has no target"));
        assert_eq!(elems[row].name, "tr");
        let first_cell = elems[row..].iter().find(|e| e.name == "td").unwrap();
        assert_eq!(&first_cell.text, host, "{href}");
        let section = elems[..row]
            .iter()
            .rev()
            .find(|e| e.name == "section")
            .unwrap();
        let kind = class.strip_prefix("mark ").unwrap();
        assert_eq!(section.attrs["id"], kind, "{href}");
    }
    let (_, _, href, tooltip) = marks
        .iter()
        .find(|(h, c, _, _)| h == "node-b" && c == "mark unexpected")
        .unwrap();
    assert_eq!(
        href, "#flow-u1",
        "the earliest of the column is the busiest flow"
    );
    assert_eq!(
        tooltip,
        "node-b: 2 unexpected flows first seen from 2026-11-22T16:10:00Z to \
         2026-11-22T16:10:15Z UTC; the link goes to the earliest"
    );
}

/// An events file of `n` unexpected flows from one scanner, one port a
/// second, and one blocked flow, in `dir`.
fn scan_events(dir: &Path, host: &str, n: u64) -> PathBuf {
    let template: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(fixture("b-events.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let mut lines = Vec::new();
    for i in 0..n {
        let mut v = template.clone();
        let at =
            crate::events::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(1_795_365_758 + i));
        v["host"] = host.into();
        v["dport"] = (1000 + i).into();
        for key in ["ts", "first_seen", "last_seen"] {
            v[key] = at.clone().into();
        }
        lines.push(v.to_string());
    }
    let blocked = std::fs::read_to_string(fixture("b-events.jsonl"))
        .unwrap()
        .lines()
        .find(|l| l.contains("\"kind\":\"blocked\""))
        .unwrap()
        .replace("\"node-b\"", &serde_json::to_string(host).unwrap());
    lines.push(blocked);
    let path = dir.join("scan.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn html_timeline_stays_small_over_a_scan_and_its_links_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let flows = html::MAX_FLOWS as u64 * 3;
    let r = aggregate(&[scan_events(dir.path(), "scanned", flows)]).finish(None);
    assert_eq!(r.unexpected.flows_total, flows);
    let page = html::render(&r, None, &Documents::default(), 10);
    let elems = elements(&page);
    let marks = marks(&elems);
    assert!(marks.len() <= 2 * COLUMNS, "{} marks", marks.len());
    let svg_at = page.find("<svg").unwrap();
    let svg_len = page[svg_at..].find("</svg>").unwrap();
    assert!(svg_len < 40_000, "the SVG is {svg_len} bytes");
    let ids: BTreeSet<&str> = elems
        .iter()
        .filter_map(|e| e.attrs.get("id").map(String::as_str))
        .collect();
    for (_, _, href, _) in &marks {
        assert!(ids.contains(&href[1..]), "{href} leads nowhere");
    }
    // Flows past the page's list lead to their section, and say why.
    let (_, _, _, tooltip) = marks
        .iter()
        .find(|(_, _, href, _)| href == "#unexpected")
        .expect("columns of flows past the list");
    assert!(tooltip.contains("--format json has all"), "{tooltip}");
    assert!(
        marks
            .iter()
            .any(|(_, _, href, _)| href.starts_with("#flow-u"))
    );
}

#[test]
fn html_timeline_escapes_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "<img src=x onerror=alert(1)>\"'&";
    let r = aggregate(&[scan_events(dir.path(), evil, 3)]).finish(None);
    let page = html::render(&r, None, &Documents::default(), 10);
    let elems = elements(&page);
    assert!(
        elems.iter().all(|e| e.name != "img"),
        "an <img> came through"
    );
    let lane = elems
        .iter()
        .find(|e| e.attrs.contains_key("data-host"))
        .unwrap();
    assert_eq!(lane.attrs["data-host"], evil);
    let svg_at = page.find("<svg").unwrap();
    assert!(page[svg_at..].contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn without_flows_the_timeline_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.jsonl");
    let verdicts: Vec<String> = std::fs::read_to_string(fixture("b-events.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"kind\":\"required\""))
        .map(str::to_string)
        .collect();
    std::fs::write(&path, verdicts.join("\n")).unwrap();
    let r = aggregate(&[path]).finish(None);
    assert!(r.inputs.records > 0);
    assert!(Timeline::of(&r).is_none());
    let page = html::render(&r, None, &Documents::default(), 10);
    assert!(!page.contains("<svg"));
    assert!(page.contains("there is nothing to draw over time"));
    let mut out = Vec::new();
    terminal::write(&mut out, &r, 10).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("No unexpected or blocked flow to show over time."),
        "{text}"
    );
}
