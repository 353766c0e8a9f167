//! The terminal summary: hosts (each with a sparkline of its flows over
//! time), the required-flow matrix, blocked flows and the top unexpected
//! flows by port, by peer and by packets. Fields that
//! come from packets or DNS (a note quoting a name, an interface) are made
//! safe for a terminal: a control character in them is shown escaped, never
//! sent to the terminal to act on.

use std::io::{self, Write};

use super::{
    model::{Basis, BlockedFlow, Report, RequiredCell, UnexpectedFlow, service_label},
    timeline::{Kind, Timeline},
};
use crate::events::{ConnDir, IpProto, RequiredState, rfc3339};

/// Escapes control characters (ESC, CR, BEL, ...) so that text from the
/// events cannot move the cursor, rewrite lines or retitle the terminal.
pub fn terminal_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Column alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A plain text table sized to its content.
struct Table {
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str], align: &[Align]) -> Self {
        Table {
            align: align.to_vec(),
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| terminal_safe(&c)).collect());
    }

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.align.len();
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::from("  ");
            for (i, cell) in row.iter().enumerate().take(columns) {
                let pad = widths[i] - cell.chars().count();
                let last = i + 1 == columns;
                match self.align[i] {
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                    Align::Left => {
                        line.push_str(cell);
                        if !last {
                            line.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                }
                if !last {
                    line.push_str("  ");
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

use Align::{Left as L, Right as R};

/// `tcp 192.0.2.9:40000 -> 192.0.2.1:80 inbound` without the client port:
/// it is one of many and not part of the flow.
pub fn flow_text(
    proto: IpProto,
    src: &std::net::IpAddr,
    dst: &std::net::IpAddr,
    dport: u16,
    direction: ConnDir,
) -> String {
    let dst = match (proto, dst) {
        (IpProto::Tcp | IpProto::Udp, std::net::IpAddr::V6(a)) => format!("[{a}]:{dport}"),
        (IpProto::Tcp | IpProto::Udp, a) => format!("{a}:{dport}"),
        (IpProto::Icmp | IpProto::Icmpv6, a) => format!("{a} type {dport}"),
        (_, a) => a.to_string(),
    };
    format!("{proto} {src} -> {dst} {direction}")
}

/// A matrix cell in a few words: `blocked no-reply x5`, `working`.
pub fn cell_text(cell: &RequiredCell) -> String {
    let mut s = cell.status.to_string();
    if cell.status == RequiredState::Blocked {
        if let Some(reason) = &cell.reason {
            s.push(' ');
            s.push_str(reason);
        }
        if cell.failed_attempts > 0 {
            s.push_str(&format!(" x{}", cell.failed_attempts));
        }
    }
    if cell.recovered_flows > 0 {
        s.push_str(&format!(" ({} recovered)", cell.recovered_flows));
    }
    match cell.basis {
        Basis::RequiredLine => {}
        Basis::Events => s.push_str(" [events]"),
        Basis::Policy => {}
    }
    s
}

fn rule_ref(rule: &Option<String>, source: &Option<String>) -> String {
    match (rule, source) {
        (Some(r), Some(s)) => format!("{r} ({s})"),
        (Some(r), None) => r.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => "-".into(),
    }
}

/// Width of the matrix's service and peer columns: documents describe
/// services in sentences and list literal peers by the dozen.
const SERVICE_WIDTH: usize = 32;

fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Writes the summary; `top` bounds each unexpected-flow list.
pub fn write(out: &mut dyn Write, report: &Report, top: usize) -> io::Result<()> {
    header(out, report)?;
    hosts(out, report)?;
    required(out, report)?;
    blocked(out, &report.blocked)?;
    unexpected(out, report, top)
}

fn header(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let i = &report.inputs;
    let mut line = format!(
        "portconform report: {}, {}, {}",
        plural(i.files.len() as u64, "file", "files"),
        plural(i.records, "record", "records"),
        plural(report.hosts.len() as u64, "host", "hosts"),
    );
    if i.bad_lines > 0 {
        line.push_str(&format!(
            "; {} left out (listed on stderr)",
            plural(i.bad_lines, "bad line", "bad lines")
        ));
    }
    if !i.unknown_kinds.is_empty() {
        let kinds: Vec<String> = i
            .unknown_kinds
            .iter()
            .map(|(k, n)| format!("{n} {k:?}"))
            .collect();
        line.push_str(&format!(
            "; lines of unknown kinds skipped: {}",
            kinds.join(", ")
        ));
    }
    match &i.policy {
        Some(p) => line.push_str(&format!("; policy {p}")),
        None => line
            .push_str("; no policy (give --policy or --profile to list required rules never seen)"),
    }
    writeln!(out, "{}", terminal_safe(&line))?;
    sequences(out, report)
}

/// Whether every numbered line of every host is there: one line when so,
/// one per instance with something missing otherwise.
fn sequences(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let i = &report.inputs;
    if i.sequences.is_empty() {
        return Ok(());
    }
    let problems: Vec<String> = i
        .sequences
        .iter()
        .filter_map(crate::report::sequence::problem_text)
        .collect();
    let lines: u64 = i.sequences.iter().map(|s| s.lines).sum();
    if problems.is_empty() && i.instances_not_checked == 0 {
        return writeln!(
            out,
            "Lines: all there ({} numbered lines in {}, none missing)",
            lines,
            plural(i.sequences.len() as u64, "instance", "instances")
        );
    }
    writeln!(out, "Lines missing:")?;
    for p in &problems {
        writeln!(out, "  {}", terminal_safe(p))?;
    }
    if i.instances_not_checked > 0 {
        writeln!(
            out,
            "  {} lines of instances past {} per host not checked",
            i.instances_not_checked,
            crate::report::sequence::MAX_INSTANCES
        )?;
    }
    Ok(())
}

fn hosts(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(out, "\nHosts")?;
    let mut t = Table::new(
        &[
            "host",
            "unexpected flows",
            "packets",
            "blocked flows",
            "recovered",
            "required: working",
            "blocked",
            "not seen",
        ],
        &[L, R, R, R, R, R, R, R],
    );
    for h in &report.hosts {
        t.row(vec![
            h.host.clone(),
            h.unexpected_flows.to_string(),
            h.unexpected_packets.to_string(),
            h.blocked_flows.to_string(),
            h.recovered_flows.to_string(),
            h.required_working.to_string(),
            h.required_blocked.to_string(),
            h.required_not_seen.to_string(),
        ]);
    }
    t.write(out)?;
    activity(out, report)
}

/// Block characters, one eighth to full height.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per column: a space where there is nothing, else a block
/// as tall as `count / max`, rounded up so that one flow still shows.
pub fn sparkline(counts: &[u64], max: u64) -> String {
    counts
        .iter()
        .map(|&n| match n {
            0 => ' ',
            _ => {
                let level = (n.saturating_mul(8).div_ceil(max.max(1))).clamp(1, 8);
                BLOCKS[level as usize - 1]
            }
        })
        .collect()
}

/// Each host's unexpected and blocked flows over time, one sparkline per
/// host over the same columns and the same scale, so hosts compare.
fn activity(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let Some(t) = Timeline::of(report) else {
        return writeln!(out, "\n  No unexpected or blocked flow to show over time.");
    };
    let max = t.max_total();
    writeln!(
        out,
        "\n  Over time: unexpected + blocked flows (recovered too) per column, by first sighting,\n  \
         {} to {}, one column per {}, █ = {}:",
        t.label(t.start),
        t.label(t.end()),
        t.width_text(),
        plural(max, "flow", "flows")
    )?;
    let names: Vec<String> = t.lanes.iter().map(|l| terminal_safe(&l.host)).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    for (lane, name) in t.lanes.iter().zip(&names) {
        writeln!(
            out,
            "  {name:<width$}  |{}|  {} unexpected, {} blocked",
            sparkline(&lane.totals(), max),
            lane.flows(Kind::Unexpected),
            lane.flows(Kind::Blocked),
        )?;
    }
    Ok(())
}

fn required(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    if report.required.is_empty() {
        return writeln!(
            out,
            "\nRequired flows: none reported{}",
            if report.inputs.policy.is_some() {
                " and none required by the policy"
            } else {
                ""
            }
        );
    }
    writeln!(out, "\nRequired flows (rule x host)")?;
    let mut header = vec![
        "rule",
        "source",
        "service",
        "proto",
        "ports",
        "direction",
        "peer",
    ];
    header.extend(report.hosts.iter().map(|h| h.host.as_str()));
    let mut align = vec![L; 7];
    align.extend(report.hosts.iter().map(|_| L));
    // Host names come from the files: escape them like any other field.
    let header: Vec<String> = header.iter().map(|h| terminal_safe(h)).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header, &align);
    for row in &report.required {
        let mut cells = vec![
            row.rule.clone(),
            row.source.clone().unwrap_or_else(|| "-".into()),
            shorten(&row.service, SERVICE_WIDTH),
            row.proto.clone(),
            row.ports.clone(),
            row.direction.clone(),
            shorten(&row.peer, SERVICE_WIDTH),
        ];
        for h in &report.hosts {
            cells.push(row.hosts.get(&h.host).map_or_else(|| "-".into(), cell_text));
        }
        t.row(cells);
    }
    t.write(out)?;
    if report
        .required
        .iter()
        .any(|r| r.hosts.values().any(|c| c.basis == Basis::Events))
    {
        writeln!(
            out,
            "  [events]: no verdict line from that host; status taken from its blocked/recovered events"
        )?;
    }
    Ok(())
}

fn blocked(out: &mut dyn Write, flows: &[BlockedFlow]) -> io::Result<()> {
    if flows.is_empty() {
        return writeln!(out, "\nBlocked required flows: none");
    }
    let recovered = flows.iter().filter(|f| f.recovered).count() as u64;
    writeln!(
        out,
        "\nBlocked required flows ({}, {recovered} recovered since)",
        flows.len()
    )?;
    let mut t = Table::new(
        &[
            "host",
            "rule",
            "flow",
            "reason",
            "attempts",
            "last failure",
            "recovered",
        ],
        &[L, L, L, L, R, L, L],
    );
    for f in flows {
        t.row(vec![
            f.host.clone(),
            rule_ref(&Some(f.rule.clone()), &f.source),
            flow_text(f.proto, &f.src, &f.dst, f.dport, f.direction),
            f.reason.clone().unwrap_or_else(|| "-".into()),
            f.attempts.to_string(),
            f.last_seen.map_or_else(|| "-".into(), rfc3339),
            match (f.recovered, f.recovered_at) {
                (true, Some(at)) => format!("yes, {}", rfc3339(at)),
                (false, Some(at)) => format!("no (worked at {}, failed again)", rfc3339(at)),
                _ => "no".into(),
            },
        ]);
    }
    t.write(out)
}

fn unexpected(out: &mut dyn Write, report: &Report, top: usize) -> io::Result<()> {
    let u = &report.unexpected;
    if u.flows.is_empty() {
        return writeln!(out, "\nUnexpected flows: none");
    }
    writeln!(
        out,
        "\nUnexpected flows: {}, {}",
        plural(u.flows_total, "flow", "flows"),
        plural(u.packets_total, "packet", "packets")
    )?;
    let shown = |n: usize| {
        if n > top {
            format!(" (top {top} of {n})")
        } else {
            String::new()
        }
    };
    writeln!(out, "\n By service port{}", shown(u.by_port.len()))?;
    let mut t = Table::new(
        &[
            "service",
            "flows",
            "peers",
            "packets",
            "replies",
            "bytes",
            "hosts",
            "nearest rule",
        ],
        &[L, R, R, R, R, R, L, L],
    );
    for g in u.by_port.iter().take(top) {
        t.row(vec![
            service_label(g.proto, g.dport, g.direction),
            g.flows.to_string(),
            g.peers.to_string(),
            g.packets.to_string(),
            g.reply_packets.to_string(),
            g.bytes.to_string(),
            g.hosts.join(","),
            rule_ref(&g.rule, &g.source),
        ]);
    }
    t.write(out)?;
    writeln!(out, "\n By peer{}", shown(u.by_peer.len()))?;
    let mut t = Table::new(
        &[
            "peer", "flows", "packets", "replies", "bytes", "hosts", "services",
        ],
        &[L, R, R, R, R, L, L],
    );
    for g in u.by_peer.iter().take(top) {
        t.row(vec![
            g.peer.to_string(),
            g.flows.to_string(),
            g.packets.to_string(),
            g.reply_packets.to_string(),
            g.bytes.to_string(),
            g.hosts.join(","),
            g.ports.join(", "),
        ]);
    }
    t.write(out)?;
    writeln!(out, "\n By packets{}", shown(u.flows.len()))?;
    let mut t = Table::new(
        &[
            "host",
            "flow",
            "packets",
            "replies",
            "bytes",
            "reason",
            "nearest rule",
            "note",
        ],
        &[L, L, R, R, R, L, L, L],
    );
    for f in u.flows.iter().take(top) {
        t.row(flow_row(f));
    }
    t.write(out)
}

fn flow_row(f: &UnexpectedFlow) -> Vec<String> {
    vec![
        f.host.clone(),
        flow_text(f.proto, &f.src, &f.dst, f.dport, f.direction),
        f.count.to_string(),
        f.reply_packets.to_string(),
        f.bytes.to_string(),
        f.reason.clone().unwrap_or_else(|| "-".into()),
        rule_ref(&f.rule, &f.source),
        f.note.clone().unwrap_or_default(),
    ]
}
