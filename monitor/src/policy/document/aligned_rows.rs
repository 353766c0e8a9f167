//! Tables laid out in columns of spaces, as plain-text exports and old
//! knowledge-base articles print them:
//!
//! ```text
//! Client Port(s)              Server Port             Service
//! 1024-65535/TCP              139/TCP                 NetBIOS Session
//! 138/UDP                     138/UDP                 NetBIOS Netlogon and
//!                                                     Browsing
//! ```
//!
//! The header line gives the columns: two or more header cells, one naming
//! a port, apart by two or more spaces. A row is cut where the header's
//! cells start, and only where the cut falls in a gap; a line whose
//! first column is blank goes on the cells of the row above. The table ends
//! at a blank line or at a line that does not fit the columns. Read as
//! prose, each row would be a sentence of numbers.

use std::ops::Range;

use super::blocks::{Row, Table, tidy_cell};
use super::cell_lines::shapes::{header_like, names_port};

/// A space-aligned table and the lines (0-based) it takes.
pub struct Found {
    pub lines: Range<usize>,
    pub table: Table,
}

/// Every space-aligned table of `text`.
pub fn find(text: &str) -> Vec<Found> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((header, starts)) = header(lines[i]) else {
            i += 1;
            continue;
        };
        let (end, rows) = read_rows(&lines, i + 1, &starts);
        if rows.is_empty() {
            i += 1;
            continue;
        }
        out.push(Found {
            lines: i..end,
            table: Table {
                line: line_no(i),
                header,
                rows,
                header_from_first_row: false,
                caption: None,
            },
        });
        i = end;
    }
    out
}

/// The cells of a header line and the column (in chars) where each starts.
fn header(line: &str) -> Option<(Vec<String>, Vec<usize>)> {
    if line.contains('\t') || line.starts_with(' ') {
        return None;
    }
    let pieces = pieces(line);
    let ok = pieces.len() >= 2
        && pieces.iter().all(|(_, c)| header_like(c))
        && pieces.iter().any(|(_, c)| names_port(c));
    ok.then(|| {
        let starts = pieces.iter().map(|&(s, _)| s).collect();
        (pieces.into_iter().map(|(_, c)| c).collect(), starts)
    })
}

/// The runs of a line separated by two or more spaces: (start column, text).
fn pieces(line: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        if chars[at] == ' ' {
            at += 1;
            continue;
        }
        let start = at;
        while at < chars.len() && !(chars[at] == ' ' && chars.get(at + 1).is_none_or(|&c| c == ' '))
        {
            at += 1;
        }
        out.push((start, chars[start..at].iter().collect()));
    }
    out
}

/// `line` cut at `starts`, when every cut falls in a gap (or past the
/// line's end) and nothing stands before the first column.
fn cut(line: &str, starts: &[usize]) -> Option<Vec<String>> {
    let chars: Vec<char> = line.chars().collect();
    if chars[..starts[0].min(chars.len())]
        .iter()
        .any(|&c| c != ' ')
    {
        return None;
    }
    let mut cells = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        // A column starts after a gap of two spaces, as in the header: one
        // space is a gap between words of the cell before.
        let gap = |i: usize| chars.get(i).is_none_or(|&c| c == ' ');
        if s > 0 && !(gap(s - 1) && (s < 2 || gap(s - 2))) {
            return None;
        }
        let e = starts
            .get(k + 1)
            .copied()
            .unwrap_or(chars.len())
            .min(chars.len());
        let text: String = chars
            .get(s..e)
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        cells.push(text.trim().to_string());
    }
    Some(cells)
}

/// Reads rows from `start` until a blank or ill-fitting line; returns the
/// end (exclusive) and the rows.
fn read_rows(lines: &[&str], start: usize, starts: &[usize]) -> (usize, Vec<Row>) {
    let mut rows: Vec<(usize, Vec<Vec<String>>)> = Vec::new();
    let mut end = start;
    while end < lines.len() && !lines[end].trim().is_empty() {
        let Some(cells) = cut(lines[end], starts) else {
            break;
        };
        match rows.last_mut() {
            Some((_, row)) if cells[0].is_empty() => {
                for (k, text) in cells.into_iter().enumerate() {
                    if !text.is_empty() {
                        row[k].push(text);
                    }
                }
            }
            _ if cells[0].is_empty() => break,
            _ => rows.push((end, cells.into_iter().map(|c| vec![c]).collect())),
        }
        end += 1;
    }
    // One line of cells is no table: a sentence may happen to hold wide gaps.
    if rows.len() < 2 {
        return (start, Vec::new());
    }
    let rows = rows
        .into_iter()
        .map(|(line, cells)| Row {
            line: line_no(line),
            written_cells: cells.len(),
            cells: cells
                .iter()
                .map(|parts| tidy_cell(&parts.join(" ")))
                .collect(),
        })
        .collect();
    (end, rows)
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "Intro line.\nClient Port(s)              Server Port             Service\n137/UDP                     137/UDP                 NetBIOS Name\n138/UDP                     138/UDP                 NetBIOS Netlogon and\n                                                    Browsing\n53, 1024-65535/TCP/UDP      53/TCP/UDP              DNS\n\nAfter.\n";

    #[test]
    fn rows_are_cut_at_the_header_columns_and_continue_below() {
        let found = find(TABLE);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].lines, 1..6);
        let t = &found[0].table;
        assert_eq!(t.header, vec!["Client Port(s)", "Server Port", "Service"]);
        let rows: Vec<(u32, Vec<&str>)> = t
            .rows
            .iter()
            .map(|r| (r.line, r.cells.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (3, vec!["137/UDP", "137/UDP", "NetBIOS Name"]),
                (
                    4,
                    vec!["138/UDP", "138/UDP", "NetBIOS Netlogon and Browsing"]
                ),
                (6, vec!["53, 1024-65535/TCP/UDP", "53/TCP/UDP", "DNS"]),
            ]
        );
    }

    #[test]
    fn prose_with_wide_gaps_is_no_table() {
        assert!(find("Port  numbers  below\nare  listed  here.\n").is_empty());
        // A header without a second row.
        assert!(find("Port        Service\n80          HTTP\n").is_empty());
        // Cells that straddle the columns.
        assert!(
            find("Port        Service\n80 and more words here\n443         HTTPS\n").is_empty()
        );
    }
}
