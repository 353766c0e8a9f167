//! Tables that a browser copy flattened into plain text, one cell per line:
//! a run of short header lines (`Port` / `Used by` / `Notes`), then each
//! row's cells one after another. Users paste port pages this way from
//! their browser; read as prose, the rows would be one long paragraph.
//!
//! Rows are found by their port cells, which look like nothing else. A
//! cell's text may be broken over lines where the page had an inline code
//! span or link (`8020` then `, 8021`; `Forwarded to port 8022` then `by a
//! rule...`), and a footnote mark that the page set as a superscript sits
//! alone on the line after the port (`8443` then `1`): the reader joins
//! them back, and reads the paragraph that starts with the same lone mark
//! as the footnote's text.

pub(super) mod shapes;

use std::ops::Range;

use super::blocks::{Block, Row, Table, collapse_ws};

/// A table or footnote found in the text, and the lines (0-based) it takes,
/// which the Markdown reader must then not read as prose.
pub struct Found {
    pub lines: Range<usize>,
    pub block: Block,
}

/// Lines of the text grouped into paragraphs (runs of non-blank lines),
/// outside fenced code blocks.
fn paragraphs(lines: &[&str]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut fenced = false;
    let mut start: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            if let Some(s) = start.take() {
                out.push(s..i);
            }
            continue;
        }
        if fenced || t.is_empty() {
            if let Some(s) = start.take() {
                out.push(s..i);
            }
            continue;
        }
        start.get_or_insert(i);
    }
    if let Some(s) = start {
        out.push(s..lines.len());
    }
    out
}

/// Every cell-per-line table of `text`, and the footnotes their marks point
/// to.
pub fn find(text: &str) -> Vec<Found> {
    let lines: Vec<&str> = text.lines().collect();
    let paragraphs = paragraphs(&lines);
    // "1" alone, then the note: a footnote, if some table uses the mark.
    let notes: Vec<(&str, Range<usize>)> = paragraphs
        .iter()
        .filter(|p| p.len() >= 2)
        .filter_map(|p| shapes::mark(lines[p.start]).map(|m| (m, p.clone())))
        .collect();
    let known_marks: Vec<&str> = notes.iter().map(|(m, _)| *m).collect();
    let mut found = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for p in &paragraphs {
        if let Some((range, table, marks)) = table_in(&lines, p.clone(), &known_marks) {
            used.extend(marks);
            found.push(Found {
                lines: range,
                block: Block::Table(table),
            });
        }
    }
    for (mark, p) in notes {
        if !used.iter().any(|u| u == mark) {
            continue;
        }
        let text = collapse_ws(&lines[p.start + 1..p.end].join(" "));
        found.push(Found {
            block: Block::Footnote {
                mark: mark.to_string(),
                text,
                line: line_no(p.start),
            },
            lines: p,
        });
    }
    found
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// A header run inside a paragraph: its lines and the port column.
struct Header {
    start: usize,
    len: usize,
    port: usize,
}

/// The first table in paragraph `p`: the lines it takes, the table, and the
/// footnote marks its rows carry.
fn table_in(
    lines: &[&str],
    p: Range<usize>,
    marks: &[&str],
) -> Option<(Range<usize>, Table, Vec<String>)> {
    if lines[p.clone()]
        .iter()
        .any(|l| l.contains('|') || l.trim_start().starts_with('<'))
    {
        return None;
    }
    let header = find_header(lines, p.clone())?;
    let ncols = header.len;
    let mut rows = Vec::new();
    let mut used = Vec::new();
    let mut pos = header.start + header.len;
    while let Some((row, next, mark)) = read_row(lines, pos, p.end, &header, marks) {
        rows.push(row);
        used.extend(mark);
        pos = next;
    }
    if rows.is_empty() {
        return None;
    }
    let table = Table {
        line: line_no(header.start),
        header: lines[header.start..header.start + ncols]
            .iter()
            .map(|l| collapse_ws(l))
            .collect(),
        rows,
        header_from_first_row: false,
        caption: None,
    };
    Some((header.start..pos, table, used))
}

/// The header run whose first row reads best: among the runs of header-like
/// lines (at least two, one naming the port), the one after which the port
/// cell is where it should be and the next row starts where the column
/// count says. A heading just above the header ("Incoming ports") makes a
/// longer run whose rows would not line up.
fn find_header(lines: &[&str], p: Range<usize>) -> Option<Header> {
    let mut i = p.start;
    while i < p.end {
        if !shapes::header_like(lines[i]) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < p.end && shapes::header_like(lines[end]) {
            end += 1;
        }
        let mut fallback = None;
        for start in i..end.saturating_sub(1) {
            let len = end - start;
            let Some(port) = (start..end).position(|j| shapes::names_port(lines[j])) else {
                continue;
            };
            let first = end + port;
            if first >= p.end || !shapes::port_like(lines[first]) {
                continue;
            }
            let header = Header { start, len, port };
            let next = end + len;
            if next >= p.end || lines.get(next + port).is_some_and(|l| shapes::port_like(l)) {
                return Some(header);
            }
            fallback.get_or_insert(header);
        }
        if fallback.is_some() {
            return fallback;
        }
        i = end;
    }
    None
}

/// The row at `pos`: its cells, where the next row starts, and the
/// footnote mark it carries. `None` when no row starts there.
fn read_row(
    lines: &[&str],
    pos: usize,
    end: usize,
    header: &Header,
    marks: &[&str],
) -> Option<(Row, usize, Option<String>)> {
    let at = pos + header.port;
    if at >= end || !shapes::port_like(lines[at]) {
        return None;
    }
    let mut cells: Vec<String> = lines[pos..at].iter().map(|l| collapse_ws(l)).collect();
    let mut port = collapse_ws(lines[at]);
    let mut q = at + 1;
    while q < end
        && let Some(rest) = shapes::port_continuation(lines[q])
    {
        port = shapes::join_port(&port, rest);
        q += 1;
    }
    let mut mark = None;
    if q < end
        && let Some(m) = shapes::mark(lines[q])
        && marks.contains(&m)
    {
        port = format!("{port}[^{m}]");
        mark = Some(m.to_string());
        q += 1;
    }
    cells.push(port);
    let rest = header.len - header.port - 1;
    let next = next_row(lines, q, end, rest, header.port);
    let written = cells.len() + (next - q).min(rest);
    cells.extend(rest_cells(&lines[q..next], rest));
    let row = Row {
        line: line_no(pos),
        cells,
        written_cells: written,
    };
    Some((row, next, mark))
}

/// Where the row whose cells after the port start at `q` ends: where the
/// column count says, if a row starts there; otherwise at the next line
/// that starts a row (a cell broken over lines, or one missing).
fn next_row(lines: &[&str], q: usize, end: usize, rest: usize, port: usize) -> usize {
    let starts = |t: usize| t + port < end && shapes::port_like(lines[t + port]);
    let expected = q + rest;
    if expected >= end {
        return end.max(q);
    }
    if starts(expected) {
        return expected;
    }
    (q + 1..end).find(|&t| starts(t)).unwrap_or(end)
}

/// The cells after the port from their lines: a line that continues the one
/// before (lower case, punctuation) joins it; lines beyond the column count
/// join the last cell, which is usually the long notes.
fn rest_cells(lines: &[&str], want: usize) -> Vec<String> {
    let mut cells: Vec<String> = Vec::new();
    let mut extra = lines.len().saturating_sub(want);
    for line in lines {
        let line = collapse_ws(line);
        let full = cells.len() >= want;
        match cells.last_mut() {
            Some(last) if extra > 0 && (shapes::continues(&line) || full) => {
                last.push(' ');
                last.push_str(&line);
                extra -= 1;
            }
            _ => cells.push(line),
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Vec<Table> {
        find(text)
            .into_iter()
            .filter_map(|f| match f.block {
                Block::Table(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_cell_per_line() {
        let text = "Incoming ports\n\nPort\nUsed by\nNotes\n443\nUI\nForwarded to port 8022\nby a rule. Keep it open.\n8443\n1\nAgents\nOnly for agents.\n8020\n, 8021\nAPI\nInternal.\n5701\n-5711\nGrid\nBetween nodes.\n\n1\nOnly while agents use 8443.\n";
        let found = find(text);
        let t = tables(text).remove(0);
        assert_eq!(t.line, 3);
        assert_eq!(t.header, vec!["Port", "Used by", "Notes"]);
        let rows: Vec<(u32, Vec<&str>)> = t
            .rows
            .iter()
            .map(|r| (r.line, r.cells.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    6,
                    vec![
                        "443",
                        "UI",
                        "Forwarded to port 8022 by a rule. Keep it open."
                    ]
                ),
                (10, vec!["8443[^1]", "Agents", "Only for agents."]),
                (14, vec!["8020, 8021", "API", "Internal."]),
                (18, vec!["5701-5711", "Grid", "Between nodes."]),
            ]
        );
        assert!(found.iter().any(|f| matches!(&f.block,
            Block::Footnote { mark, line: 23, text } if mark == "1" && text == "Only while agents use 8443.")));
    }

    #[test]
    fn a_heading_above_the_header_is_not_a_column() {
        let t = tables("Outgoing ports\nPort\nUsed by\n443\nLicensing\n80\nUpdates\n").remove(0);
        assert_eq!(t.header, vec!["Port", "Used by"]);
        assert_eq!(t.rows.len(), 2);
    }

    #[test]
    fn prose_and_pipe_tables_are_not_read() {
        assert!(tables("Port 443 has to stay open.\nIt serves the UI.\n").is_empty());
        assert!(tables("|Port|Use|\n|-|-|\n|1|a|\n").is_empty());
        assert!(tables("Hardware\nMemory\n32 GB\n").is_empty());
        assert!(tables("```\nPort\nUse\n80\nweb\n```\n").is_empty());
    }
}
