//! The HTML page: one self-contained file (inline CSS, no script, no
//! external resource) that can be attached to a ticket or mailed to a
//! vendor. Built with maud, which escapes every spliced value: the events
//! carry text from packets and DNS, and a page built by hand would be one
//! forgotten escape away from running a stranger's `<script>`.
//!
//! Every rule mentioned links to an anchor in the page's "Documents"
//! section, where the cited document line is quoted with a little context
//! (when `--docs` provided the text) and the rules compiled from it are
//! listed (when a policy was given): a link out to a file would break as
//! soon as the page leaves the machine.
//!
//! The page opens with a timeline of each host's flows ([`super::svg`])
//! whose marks link to rows of the blocked and unexpected-flow tables: those
//! rows carry ids ([`row_id`]) for it.

use std::{collections::BTreeMap, fmt::Write as _, net::IpAddr};

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{
    context::PolicyContext,
    documents::Documents,
    model::{Basis, Report, RequiredCell, service_label},
    svg::{self, row_id},
    terminal::{cell_text, flow_text},
    timeline::{Kind, Timeline},
};
use crate::{events::RequiredState, events::rfc3339, policy::Source};

/// Unexpected flows listed in the page; all of them are in `--format json`.
pub const MAX_FLOWS: usize = 2000;
/// Lines quoted around each cited document line.
const CONTEXT_LINES: u32 = 2;

const CSS: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em 2em;color:#1d1d1f}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
nav a{margin-right:1em}
table{border-collapse:collapse;margin:.5em 0 1.2em}
th,td{border:1px solid #c8c8c8;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.rule,td[class^=st-],.time{white-space:nowrap}
td.peer{max-width:22em;overflow-wrap:anywhere}
code,pre,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}
.st-working{background:#cdeccd}
.st-blocked{background:#f6c1c1;font-weight:600}
.st-not-seen{background:#ececec;color:#555}
.st-none{color:#999}
.recovered{color:#2a6f2a}
.legend span{display:inline-block;padding:.1em .6em;margin-right:.5em;border:1px solid #c8c8c8}
.citation{border-left:4px solid #c8c8c8;padding:.2em .8em;margin:.8em 0}
.citation:target{border-left-color:#3367d6;background:#f3f7ff}
pre.doc{background:#f7f7f7;padding:.4em .6em;margin:.3em 0;overflow-x:auto;white-space:pre-wrap}
pre.doc .cited{background:#fff1a8}
.muted{color:#666}
tr:target{outline:2px solid #3367d6;outline-offset:-1px}
tr:target td{background:#e8f0fe}
svg.timeline{display:block;max-width:100%;height:auto;margin:.5em 0 1em}
svg.timeline text{font:11px ui-monospace,Menlo,Consolas,monospace;fill:#333}
svg.timeline a:focus{outline:2px solid #3367d6}
";

/// Anchors for the document lines the page cites: `d{doc}-l{line}`, the
/// document numbered in order of first citation, so that ids are unique and
/// valid whatever characters a document name has.
#[derive(Debug, Default)]
pub struct Citations {
    /// doc name → (its number, cited lines).
    docs: BTreeMap<String, (usize, BTreeMap<u32, ()>)>,
}

impl Citations {
    fn cite(&mut self, source: &str) {
        if let Ok(s) = source.parse::<Source>() {
            let n = self.docs.len();
            self.docs
                .entry(s.doc)
                .or_insert_with(|| (n, BTreeMap::new()))
                .1
                .insert(s.line, ());
        }
    }

    /// The anchor of a cited `doc:line`, if it is one.
    pub fn anchor(&self, source: &str) -> Option<String> {
        let s = source.parse::<Source>().ok()?;
        let (n, lines) = self.docs.get(&s.doc)?;
        lines
            .contains_key(&s.line)
            .then(|| format!("d{n}-l{}", s.line))
    }

    /// Names of the cited documents.
    pub fn documents(&self) -> impl Iterator<Item = &str> {
        self.docs.keys().map(String::as_str)
    }
}

/// Every `doc:line` the page will show, so that each gets its anchor.
pub fn citations(report: &Report) -> Citations {
    let mut c = Citations::default();
    for row in &report.required {
        if let Some(s) = &row.source {
            c.cite(s);
        }
    }
    for f in &report.blocked {
        if let Some(s) = &f.source {
            c.cite(s);
        }
    }
    for g in &report.unexpected.by_port {
        if let Some(s) = &g.source {
            c.cite(s);
        }
    }
    for f in report.unexpected.flows.iter().take(MAX_FLOWS) {
        if let Some(s) = &f.source {
            c.cite(s);
        }
    }
    c
}

/// A rule (or a bare source) as a link to its cited document line.
fn rule_link(c: &Citations, rule: Option<&str>, source: Option<&str>) -> Markup {
    let text = match (rule, source) {
        (Some(r), _) => r.to_string(),
        (None, Some(s)) => s.to_string(),
        (None, None) => return html! { span.muted { "-" } },
    };
    let title = source.unwrap_or_default();
    match source.and_then(|s| c.anchor(s)) {
        Some(a) => html! { a href=(format!("#{a}")) title=(title) { (text) } },
        None => html! { span title=(title) { (text) } },
    }
}

/// `2026-11-22 16:02:58.000Z`: milliseconds are enough to read a page by;
/// `--format json` keeps the nanoseconds.
fn short_time(t: std::time::SystemTime) -> String {
    let full = rfc3339(t);
    match full.get(..23) {
        Some(head) => format!("{}Z", head.replacen('T', " ", 1)),
        None => full,
    }
}

fn status_class(cell: Option<&RequiredCell>) -> &'static str {
    match cell.map(|c| c.status) {
        Some(RequiredState::Working) => "st-working",
        Some(RequiredState::Blocked) => "st-blocked",
        Some(RequiredState::NotSeen) => "st-not-seen",
        None => "st-none",
    }
}

fn cell_title(cell: &RequiredCell) -> String {
    let mut t = String::new();
    let _ = write!(
        t,
        "{} answered, {} blocked flows, {} failed attempts",
        cell.working, cell.blocked_flows, cell.failed_attempts
    );
    match cell.basis {
        Basis::RequiredLine => {
            if let Some(at) = cell.as_of {
                let _ = write!(t, "; verdict of {}", rfc3339(at));
            }
        }
        Basis::Events => t.push_str("; no verdict line: from blocked/recovered events"),
        Basis::Policy => t.push_str("; required by the policy, not mentioned by this host"),
    }
    t
}

fn peer_of(direction: crate::events::ConnDir, src: IpAddr, dst: IpAddr) -> IpAddr {
    match direction {
        crate::events::ConnDir::Inbound => src,
        crate::events::ConnDir::Outbound => dst,
    }
}

/// The whole page.
pub fn render(
    report: &Report,
    policy: Option<&PolicyContext>,
    docs: &Documents,
    top: usize,
) -> String {
    let c = citations(report);
    let i = &report.inputs;
    let missing: Vec<String> = i
        .sequences
        .iter()
        .filter_map(super::sequence::problem_text)
        .collect();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "portconform conformance report" }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "portconform conformance report" }
                p {
                    (i.files.len()) " events files, " (i.records) " records, "
                    (report.hosts.len()) " hosts. "
                    @if let Some(p) = &i.policy { "Policy: " code { (p) } ". " }
                    @else { "No policy given: required rules appear only as the events report them. " }
                    @if i.bad_lines > 0 {
                        a href="#problems" {
                            (i.bad_lines) @if i.bad_lines == 1 { " line" } @else { " lines" }
                            " could not be used"
                        } "."
                    }
                    @if !missing.is_empty() {
                        " " a href="#missing" { "Lines are missing" } " from "
                        (missing.len()) @if missing.len() == 1 { " instance" } @else { " instances" } "."
                    } @else if !i.sequences.is_empty() {
                        " Every numbered line is there."
                    }
                }
                nav {
                    a href="#timeline" { "Timeline" }
                    a href="#hosts" { "Hosts" }
                    a href="#required" { "Required flows" }
                    a href="#blocked" { "Blocked flows" }
                    a href="#unexpected" { "Unexpected flows" }
                    a href="#documents" { "Documents" }
                    @if i.bad_lines > 0 { a href="#problems" { "Problems" } }
                }
                (svg::section(Timeline::of(report).as_ref(), MAX_FLOWS))
                (hosts(report))
                (required(report, &c))
                (blocked(report, &c))
                (unexpected(report, &c, top))
                (problems(report))
                @if !missing.is_empty() {
                    section id="missing" {
                        h2 { "Missing lines" }
                        p { "Each line a monitor writes is numbered (" code { "seq" } ") per daemon instance; these numbers were not in the files read." }
                        ul { @for m in &missing { li.mono { (m) } } }
                    }
                }
                (documents(&c, policy, docs))
            }
        }
    };
    page.into_string()
}

fn hosts(report: &Report) -> Markup {
    html! {
        section id="hosts" {
            h2 { "Hosts" }
            table {
                thead { tr {
                    th { "host" } th { "unexpected flows" } th { "packets" }
                    th { "blocked flows" } th { "recovered" }
                    th { "required: working" } th { "blocked" } th { "not seen" }
                } }
                tbody {
                    @for h in &report.hosts {
                        tr {
                            td { (h.host) }
                            td.num { (h.unexpected_flows) } td.num { (h.unexpected_packets) }
                            td.num { (h.blocked_flows) } td.num { (h.recovered_flows) }
                            td.num { (h.required_working) } td.num { (h.required_blocked) }
                            td.num { (h.required_not_seen) }
                        }
                    }
                }
            }
            p.muted { "Files read:" }
            ul.muted {
                @for f in &report.inputs.files {
                    li {
                        code { (f.path.display()) } " (host " (f.host) "): " (f.lines) " lines, "
                        (f.records) " records"
                        @if f.bad_lines > 0 { ", " (f.bad_lines) " bad" }
                        @if f.unknown_kinds > 0 { ", " (f.unknown_kinds) " of unknown kinds" }
                        @if let Some(s) = &f.stopped { "; " (s) }
                    }
                }
            }
        }
    }
}

fn required(report: &Report, c: &Citations) -> Markup {
    html! {
        section id="required" {
            h2 { "Required flows" }
            @if report.required.is_empty() {
                p { "No required rule was reported"
                    @if report.inputs.policy.is_some() { " and the policy requires none" } "." }
            } @else {
                p.legend {
                    span.st-working { "working" } span.st-blocked { "blocked" }
                    span.st-not-seen { "not seen" } span.st-none { "no data" }
                }
                table.matrix {
                    thead { tr {
                        th { "rule" } th { "service" } th { "proto" } th { "ports" }
                        th { "direction" } th { "peer" }
                        @for h in &report.hosts { th { (h.host) } }
                    } }
                    tbody {
                        @for row in &report.required {
                            tr {
                                td.rule { (rule_link(c, Some(&row.rule), row.source.as_deref())) }
                                td { (row.service) } td { (row.proto) }
                                td.mono { (row.ports) } td { (row.direction) } td.peer { (row.peer) }
                                @for h in &report.hosts {
                                    @let cell = row.hosts.get(&h.host);
                                    td class=(status_class(cell)) title=[cell.map(cell_title)] {
                                        @match cell {
                                            Some(cell) => (cell_text(cell)),
                                            None => "-",
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn blocked(report: &Report, c: &Citations) -> Markup {
    html! {
        section id="blocked" {
            h2 { "Blocked required flows" }
            @if report.blocked.is_empty() {
                p { "None reported." }
            } @else {
                table {
                    thead { tr {
                        th { "host" } th { "rule" } th { "flow" } th { "reason" }
                        th { "attempts" } th { "first failure" } th { "last failure" }
                        th { "recovered" }
                    } }
                    tbody {
                        @for (i, f) in report.blocked.iter().enumerate() {
                            tr id=(row_id(Kind::Blocked, i)) class=(if f.recovered { "recovered" } else { "st-blocked" }) {
                                td { (f.host) }
                                td { (rule_link(c, Some(&f.rule), f.source.as_deref())) }
                                td.mono { (flow_text(f.proto, &f.src, &f.dst, f.dport, f.direction)) }
                                td { (f.reason.as_deref().unwrap_or("-")) }
                                td.num { (f.attempts) }
                                td.time { (f.first_seen.map(short_time).unwrap_or_default()) }
                                td.time { (f.last_seen.map(short_time).unwrap_or_default()) }
                                td {
                                    @match (f.recovered, f.recovered_at) {
                                        (true, Some(at)) => { "yes, " span.time { (short_time(at)) } },
                                        (false, Some(at)) => { "worked at " span.time { (short_time(at)) } ", failed again" },
                                        _ => "no",
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn unexpected(report: &Report, c: &Citations, top: usize) -> Markup {
    let u = &report.unexpected;
    html! {
        section id="unexpected" {
            h2 { "Unexpected flows" }
            @if u.flows.is_empty() {
                p { "None reported." }
            } @else {
                p { (u.flows_total) " flows, " (u.packets_total) " packets from initiator to responder." }
                h3 { "By service port" @if u.by_port.len() > top { " (top " (top) " of " (u.by_port.len()) ")" } }
                table {
                    thead { tr {
                        th { "service" } th { "flows" } th { "peers" } th { "packets" }
                        th { "replies" } th { "bytes" } th { "hosts" } th { "nearest rule" }
                    } }
                    tbody {
                        @for g in u.by_port.iter().take(top) {
                            tr {
                                td.mono { (service_label(g.proto, g.dport, g.direction)) }
                                td.num { (g.flows) } td.num { (g.peers) } td.num { (g.packets) }
                                td.num { (g.reply_packets) } td.num { (g.bytes) }
                                td { (g.hosts.join(", ")) }
                                td { (rule_link(c, g.rule.as_deref(), g.source.as_deref())) }
                            }
                        }
                    }
                }
                h3 { "By peer" @if u.by_peer.len() > top { " (top " (top) " of " (u.by_peer.len()) ")" } }
                table {
                    thead { tr {
                        th { "peer" } th { "flows" } th { "packets" } th { "replies" }
                        th { "bytes" } th { "hosts" } th { "services" }
                    } }
                    tbody {
                        @for g in u.by_peer.iter().take(top) {
                            tr {
                                td.mono { (g.peer) }
                                td.num { (g.flows) } td.num { (g.packets) }
                                td.num { (g.reply_packets) } td.num { (g.bytes) }
                                td { (g.hosts.join(", ")) }
                                td.mono { (g.ports.join(", ")) }
                            }
                        }
                    }
                }
                h3 { "All flows"
                    @if u.flows.len() > MAX_FLOWS { " (first " (MAX_FLOWS) " of " (u.flows.len()) "; all are in --format json)" } }
                table.flows {
                    thead { tr {
                        th { "host" } th { "iface" } th { "peer" } th { "flow" } th { "packets" }
                        th { "replies" } th { "bytes" } th { "first seen" } th { "last seen" }
                        th { "reason" } th { "nearest rule" } th { "peer roles" } th { "note" }
                    } }
                    tbody {
                        @for (i, f) in u.flows.iter().take(MAX_FLOWS).enumerate() {
                            tr id=(row_id(Kind::Unexpected, i)) {
                                td { (f.host) } td { (f.iface) }
                                td.mono { (peer_of(f.direction, f.src, f.dst)) }
                                td.mono { (flow_text(f.proto, &f.src, &f.dst, f.dport, f.direction)) }
                                td.num { (f.count) } td.num { (f.reply_packets) } td.num { (f.bytes) }
                                td.time { (short_time(f.first_seen)) } td.time { (short_time(f.last_seen)) }
                                td { (f.reason.as_deref().unwrap_or("-")) }
                                td { (rule_link(c, f.rule.as_deref(), f.source.as_deref())) }
                                td { (f.peer_roles.join(", ")) }
                                td { (f.note.as_deref().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn problems(report: &Report) -> Markup {
    let i = &report.inputs;
    html! {
        @if i.bad_lines > 0 {
            section id="problems" {
                h2 { "Lines that could not be used" }
                p { (i.bad_lines) " in all"
                    @if (i.bad_lines as usize) > i.bad_line_samples.len() {
                        "; the first " (i.bad_line_samples.len()) " are listed"
                    } "." }
                ul {
                    @for b in &i.bad_line_samples { li.mono { (b) } }
                }
            }
        }
    }
}

fn documents(c: &Citations, policy: Option<&PolicyContext>, docs: &Documents) -> Markup {
    html! {
        section id="documents" {
            h2 { "Documents" }
            @if c.docs.is_empty() {
                p { "No document line is cited." }
            }
            @for (name, (_, lines)) in &c.docs {
                h3 { code { (name) } }
                @if let Some(why) = docs.missing.get(name) {
                    p.muted { "Text not available: " (why) "." }
                } @else if docs.lines(name).is_none() {
                    p.muted { "Text not shown: give --docs DIR with the document to quote its lines." }
                }
                @for line in lines.keys() {
                    @let source = format!("{name}:{line}");
                    div.citation id=[c.anchor(&source)] {
                        h4 { code { (source) } }
                        @if let Some(excerpt) = docs.excerpt(name, *line, CONTEXT_LINES) {
                            @if excerpt.iter().all(|(n, _)| n != line) {
                                p.muted { "Line " (line) " is past the end of the document ("
                                    (docs.lines(name).unwrap_or(0)) " lines)." }
                            }
                            pre.doc {
                                @for (n, text) in &excerpt {
                                    @if n == line {
                                        span.cited { (format!("{n:>4}  ")) (text) }
                                    } @else {
                                        (format!("{n:>4}  ")) (text)
                                    }
                                    "\n"
                                }
                            }
                        }
                        @if let Some(ctx) = policy {
                            @let rules: Vec<_> = ctx.rules_at(&source).collect();
                            @if rules.is_empty() {
                                p.muted { "The policy has no rule from this line." }
                            } @else {
                                ul {
                                    @for r in rules {
                                        li {
                                            code { (r.id) } ": " (r.service) ", " (r.proto) " "
                                            span.mono { (r.ports) } ", " (r.direction) " with " (r.peer)
                                            ", required: " (r.required)
                                            @if let Some(cond) = &r.condition { " (if " (cond) ")" }
                                            @if let Some(why) = &r.inactive { " - not applied: " (why) }
                                            @for n in &r.notes { br; span.muted { (n) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
