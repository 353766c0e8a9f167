//! Tables that a browser copy gives as tab-separated lines: a header line
//! (`Purpose<TAB>Ports<TAB>Comments`), then one line per row, except that a
//! cell which held line breaks or a bulleted list spills over lines of its
//! own. A row's first cell may so start several lines above the line with
//! its tabs, and its last cell go on for several lines after it. Read as
//! prose, such a table would be a paragraph of tabs.
//!
//! A tab-less line goes to the cell being written. The one ambiguity, lines
//! between a finished row and the next tab line, is settled by the shape a
//! list takes: when the next row's first cell is a bullet, its list (and
//! the line introducing it) began above, and moves to the new row.

use std::ops::Range;

use super::blocks::{ITEM_MARK_STR, Row, Table, tidy_cell};
use super::cell_lines::shapes::{header_like, names_port};

/// A tab-separated table and the lines (0-based) it takes.
pub struct Found {
    pub lines: Range<usize>,
    pub table: Table,
}

/// Every tab-separated table of `text`.
pub fn find(text: &str) -> Vec<Found> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        match header(lines[i]) {
            Some(cols) => {
                let (end, rows) = read_rows(&lines, i + 1, cols.len());
                if !rows.is_empty() {
                    out.push(Found {
                        lines: i..end,
                        table: Table {
                            line: line_no(i),
                            header: cols,
                            rows,
                            header_from_first_row: false,
                            caption: None,
                        },
                    });
                }
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
    out
}

/// The cells of a header line: two or more tab-separated header cells, one
/// of them naming the port column.
fn header(line: &str) -> Option<Vec<String>> {
    if !line.contains('\t') {
        return None;
    }
    let cells: Vec<String> = line.split('\t').map(|c| c.trim().to_string()).collect();
    let ok = cells.len() >= 2
        && cells.iter().all(|c| header_like(c))
        && cells.iter().any(|c| names_port(c));
    ok.then_some(cells)
}

/// One cell's pieces: (0-based line, text) of each line it spills over.
type Cell = Vec<(usize, String)>;

/// Reads rows from `start` until a blank line; returns the end (exclusive)
/// and the rows.
fn read_rows(lines: &[&str], start: usize, ncols: usize) -> (usize, Vec<Row>) {
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut end = start;
    while end < lines.len() && !lines[end].trim().is_empty() {
        let line = lines[end];
        let parts: Vec<&str> = line.split('\t').collect();
        let open = rows.last().is_some_and(|r| r.len() < ncols);
        if parts.len() == 1 {
            match rows.last_mut().and_then(|r| r.last_mut()) {
                Some(cell) => cell.push((end, line.trim().to_string())),
                None => rows.push(vec![vec![(end, line.trim().to_string())]]),
            }
        } else if open {
            let row = rows.last_mut().expect("open row");
            if let Some(cell) = row.last_mut() {
                cell.push((end, parts[0].trim().to_string()));
            }
            row.extend(parts[1..].iter().map(|p| vec![(end, p.trim().to_string())]));
        } else {
            let mut first: Cell = Vec::new();
            if is_bullet(parts[0])
                && let Some(cell) = rows.last_mut().and_then(|r| r.last_mut())
            {
                first = take_list(cell);
            }
            first.push((end, parts[0].trim().to_string()));
            let mut row = vec![first];
            row.extend(parts[1..].iter().map(|p| vec![(end, p.trim().to_string())]));
            rows.push(row);
        }
        end += 1;
    }
    let rows = rows
        .into_iter()
        .filter_map(|cells| {
            let line = cells.first()?.first()?.0;
            let written = cells.len();
            let mut texts: Vec<String> = cells.iter().map(cell_text).collect();
            texts.resize(ncols, String::new());
            Some(Row {
                line: line_no(line),
                cells: texts,
                written_cells: written,
            })
        })
        .collect();
    (end, rows)
}

/// Moves the trailing bulleted lines of `cell`, and the line introducing
/// them, out of it: they begin the next row's first cell. The cell keeps at
/// least its first piece (the one on its own tab line).
fn take_list(cell: &mut Cell) -> Cell {
    let mut at = cell.len();
    while at > 1 && is_bullet(&cell[at - 1].1) {
        at -= 1;
    }
    if at > 1 && cell[at - 1].1.ends_with(':') {
        at -= 1;
    }
    if at == cell.len() || at == 0 {
        return Vec::new();
    }
    cell.split_off(at)
}

fn is_bullet(text: &str) -> bool {
    text.trim_start().starts_with(['•', '◦', '▪', '-', '*'])
}

/// A cell's text: its lines as list items (bullets dropped), joined as
/// `tidy_cell` joins items.
fn cell_text(cell: &Cell) -> String {
    let items: Vec<&str> = cell
        .iter()
        .map(|(_, t)| t.trim_start_matches(['•', '◦', '▪', ' ']).trim())
        .collect();
    tidy_cell(&items.join(ITEM_MARK_STR))
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_cells_join_their_rows() {
        let text = "Purpose\tPorts\tComments\nWeb, used by:\n• A\n• B\t443/TCP\tSee:\n• Doc A\nPlain web, used by:\n• C\t80/TCP\tAvoid.\nMail\t25/TCP\tInbound.\nMore on mail.\n\nAfter.\n";
        let found = find(text);
        assert_eq!(found.len(), 1);
        let t = &found[0].table;
        assert_eq!(found[0].lines, 0..9);
        let rows: Vec<(u32, Vec<&str>)> = t
            .rows
            .iter()
            .map(|r| (r.line, r.cells.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (2, vec!["Web, used by:; A; B", "443/TCP", "See:; Doc A"]),
                (6, vec!["Plain web, used by:; C", "80/TCP", "Avoid."]),
                (8, vec!["Mail", "25/TCP", "Inbound.; More on mail."]),
            ]
        );
    }

    #[test]
    fn tabs_without_a_port_header_are_no_table() {
        assert!(find("Name\tValue\nx\t1\n").is_empty());
    }
}
