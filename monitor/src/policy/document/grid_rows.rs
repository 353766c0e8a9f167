//! Grid tables: reStructuredText's boxed tables, which is also how many
//! "Reference guide" pages look once saved as text:
//!
//! ```text
//! +-----------+---------+----------+
//! | Service   | Default | Protocol |
//! |           | Ports   |          |
//! +===========+=========+==========+
//! | NameNode  | 50070   | http     |
//! | WebUI     +---------+----------+
//! |           | 50470   | https    |
//! +-----------+---------+----------+
//! ```
//!
//! A table starts at a border (`+` then runs of `-` or `=`, each closed by
//! a `+`) and goes on over lines framed by `|` or `+` at the same columns,
//! up to its last full border. Its cells are traced corner to corner, as
//! docutils does: a cell is the box from a `+` right along `-`, down along
//! `|`, left along `-` and up along `|` back to where it began. A separator
//! that runs under only some columns so ends a cell there and lets the cells
//! beside it go on: a row span, whose text may even sit on that separator's
//! line. A cell that no `|` splits covers several columns: a column span.
//!
//! Rows are the finest the separators give; a cell spanning rows gives its
//! text to each, a cell spanning columns to each column, as HTML `rowspan`
//! and `colspan` are filled. A cell's lines are joined by spaces. The rows
//! above the `+===+` border are the header (a column's header is its cells'
//! words top to bottom); with no such border, the first row is. Read as
//! prose or as columns of spaces, the borders would be noise and a wrapped
//! cell several rows.

use std::collections::BTreeSet;
use std::ops::Range;

use super::blocks::{Row, Table, tidy_cell};

/// A grid table and the lines (0-based) it takes.
pub struct Found {
    pub lines: Range<usize>,
    pub table: Table,
}

/// Every grid table of `text`.
pub fn find(text: &str) -> Vec<Found> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        match table_at(&lines, i) {
            Some(found) => {
                i = found.lines.end.max(i + 1);
                out.push(found);
            }
            None => i += 1,
        }
    }
    out
}

/// The grid table whose top border is line `start`, if there is one.
fn table_at(lines: &[&str], start: usize) -> Option<Found> {
    let (indent, top) = top_border(lines[start])?;
    let width = top.len();
    let mut block = vec![top];
    let mut last_border = 0;
    for line in &lines[start + 1..] {
        let Some(chars) = framed(line, indent, width) else {
            break;
        };
        if is_border(&chars) {
            last_border = block.len();
        }
        block.push(chars);
    }
    // A ragged or unframed line ends the table at the border above it.
    block.truncate(last_border + 1);
    if block.len() < 3 {
        return None;
    }
    let table = read_table(block, start)?;
    Some(Found {
        lines: start..start + last_border + 1,
        table,
    })
}

/// A border line: its indentation and its chars from the first `+` on.
fn top_border(line: &str) -> Option<(usize, Vec<char>)> {
    if line.contains('\t') {
        return None;
    }
    let indent = line.chars().take_while(|&c| c == ' ').count();
    let chars: Vec<char> = line.trim_end().chars().skip(indent).collect();
    is_border(&chars).then_some((indent, chars))
}

/// `+` then one or more runs of `-` or `=`, each closed by a `+`.
fn is_border(chars: &[char]) -> bool {
    chars.len() >= 3
        && chars[0] == '+'
        && chars[chars.len() - 1] == '+'
        && chars.iter().all(|&c| matches!(c, '+' | '-' | '='))
        && !chars.windows(2).any(|w| w == ['+', '+'])
}

/// A line of the table: `indent` spaces, then `width` chars that start and
/// end on the frame (`|` or `+`).
fn framed(line: &str, indent: usize, width: usize) -> Option<Vec<char>> {
    if line.contains('\t') {
        return None;
    }
    let mut chars = line.trim_end().chars();
    if !chars.by_ref().take(indent).all(|c| c == ' ') {
        return None;
    }
    let rest: Vec<char> = chars.collect();
    let frame = |c: Option<&char>| matches!(c, Some('|' | '+'));
    (rest.len() == width && frame(rest.first()) && frame(rest.last())).then_some(rest)
}

/// A cell's box: the lines of its top and bottom borders and the columns of
/// its left and right ones, within the table.
#[derive(Debug, Clone, Copy)]
struct Cell {
    top: usize,
    left: usize,
    bottom: usize,
    right: usize,
}

/// The table of `block` (its lines, from the top border to the bottom one;
/// `start` is the top border's line in the text).
fn read_table(mut block: Vec<Vec<char>>, start: usize) -> Option<Table> {
    let last = block.len() - 1;
    let header_sep = (1..last).find(|&k| is_border(&block[k]) && block[k].contains(&'='));
    for line in block.iter_mut().filter(|l| is_border(l)) {
        for c in line.iter_mut().filter(|c| **c == '=') {
            *c = '-';
        }
    }
    let cells = trace(&block)?;
    let texts: Vec<String> = cells.iter().map(|c| cell_text(&block, c)).collect();

    let row_edges: Vec<usize> = cells
        .iter()
        .flat_map(|c| [c.top, c.bottom])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let col_edges: Vec<usize> = cells
        .iter()
        .flat_map(|c| [c.left, c.right])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (rows, cols) = (
        row_edges.len().checked_sub(1)?,
        col_edges.len().checked_sub(1)?,
    );
    // Which cell covers each row and column of the finest grid.
    let mut grid: Vec<Vec<Option<usize>>> = vec![vec![None; cols]; rows];
    for (k, c) in cells.iter().enumerate() {
        let (Ok(r0), Ok(r1), Ok(c0), Ok(c1)) = (
            row_edges.binary_search(&c.top),
            row_edges.binary_search(&c.bottom),
            col_edges.binary_search(&c.left),
            col_edges.binary_search(&c.right),
        ) else {
            return None;
        };
        for row in grid.get_mut(r0..r1)? {
            for slot in row.get_mut(c0..c1)? {
                *slot = Some(k);
            }
        }
    }
    let text = |slot: &Option<usize>| slot.and_then(|k| texts.get(k).cloned()).unwrap_or_default();

    // A full border closes every cell, so the `+===+` line is a row edge.
    let header_rows = match header_sep {
        Some(k) => row_edges.binary_search(&k).ok()?,
        None => 1,
    };
    if header_rows == 0 || header_rows >= rows {
        return None;
    }
    let header = (0..cols)
        .map(|col| {
            let mut seen: Vec<usize> = Vec::new();
            for row in &grid[..header_rows] {
                if let Some(k) = row[col]
                    && !seen.contains(&k)
                {
                    seen.push(k);
                }
            }
            let words: Vec<&str> = seen
                .iter()
                .filter_map(|&k| texts.get(k).map(String::as_str))
                .filter(|t| !t.is_empty())
                .collect();
            words.join(" ")
        })
        .collect();
    let body: Vec<Row> = (header_rows..rows)
        .map(|r| Row {
            line: line_no(start + row_edges[r] + 1),
            cells: grid[r].iter().map(text).collect(),
            written_cells: cols,
        })
        .filter(|row| row.cells.iter().any(|c| !c.is_empty()))
        .collect();
    if body.is_empty() {
        return None;
    }
    Some(Table {
        line: line_no(start + 1),
        header,
        rows: body,
        header_from_first_row: header_sep.is_none(),
        caption: None,
    })
}

/// The text inside a cell's box, its lines joined by spaces.
fn cell_text(block: &[Vec<char>], cell: &Cell) -> String {
    let lines = block.get(cell.top + 1..cell.bottom).unwrap_or_default();
    let parts: Vec<String> = lines
        .iter()
        .filter_map(|l| l.get(cell.left + 1..cell.right))
        .map(|cs| cs.iter().collect::<String>())
        .collect();
    tidy_cell(&parts.join(" "))
}

/// The table's cells, traced from the top-left corner the way docutils'
/// grid table parser does; `None` unless they tile the whole table.
fn trace(block: &[Vec<char>]) -> Option<Vec<Cell>> {
    let bottom = block.len().checked_sub(1)?;
    let right = block.first()?.len().checked_sub(1)?;
    if block.iter().any(|l| l.len() != right + 1) {
        return None;
    }
    let at = |r: usize, c: usize| block[r][c];
    // For each column of chars, the last line that cells cover so far.
    let mut done: Vec<Option<usize>> = vec![None; right];
    let mut corners = BTreeSet::from([(0usize, 0usize)]);
    let mut cells = Vec::new();
    while let Some((top, left)) = corners.pop_first() {
        if top >= bottom || left >= right || done[left].is_some_and(|d| top <= d) {
            continue;
        }
        if at(top, left) != '+' {
            continue;
        }
        let Some((cell_bottom, cell_right)) = scan_right(&at, top, left, bottom, right) else {
            continue;
        };
        for d in &mut done[left..cell_right] {
            if *d != top.checked_sub(1) {
                return None;
            }
            *d = Some(cell_bottom - 1);
        }
        cells.push(Cell {
            top,
            left,
            bottom: cell_bottom,
            right: cell_right,
        });
        corners.insert((top, cell_right));
        corners.insert((cell_bottom, left));
    }
    done.iter().all(|&d| d == Some(bottom - 1)).then_some(cells)
}

/// Along a cell's top border to each `+`, trying the box that closes there.
fn scan_right(
    at: &impl Fn(usize, usize) -> char,
    top: usize,
    left: usize,
    bottom: usize,
    right: usize,
) -> Option<(usize, usize)> {
    for c in left + 1..=right {
        match at(top, c) {
            '+' => {
                if let Some(b) = scan_down(at, top, left, c, bottom) {
                    return Some((b, c));
                }
            }
            '-' => {}
            _ => return None,
        }
    }
    None
}

/// Down a cell's right border to each `+`, trying the bottom there.
fn scan_down(
    at: &impl Fn(usize, usize) -> char,
    top: usize,
    left: usize,
    right: usize,
    bottom: usize,
) -> Option<usize> {
    for r in top + 1..=bottom {
        match at(r, right) {
            '+' => {
                if closes(at, top, left, r, right) {
                    return Some(r);
                }
            }
            '|' => {}
            _ => return None,
        }
    }
    None
}

/// Whether the bottom border runs back left to a corner under `left`, and
/// the left border up from it to the top.
fn closes(
    at: &impl Fn(usize, usize) -> char,
    top: usize,
    left: usize,
    bottom: usize,
    right: usize,
) -> bool {
    (left + 1..right).all(|c| matches!(at(bottom, c), '+' | '-'))
        && at(bottom, left) == '+'
        && (top + 1..bottom).all(|r| matches!(at(r, left), '+' | '|'))
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDP: &str = "\
HDFS Ports

+--------------+------------+---------+----------------+-------------------+
| Service      | Servers    | Default | Protocol       | Need End User     |
|              |            | Ports   |                | Access?           |
|              |            | Used    |                |                   |
+==============+============+=========+================+===================+
| NameNode     | Master     | 50070   | http           | Yes (typically    |
| WebUI        | Nodes      |         |                | admins, and       |
|              |            +---------+----------------+ users outside     |
|              |            | 50470   | https          | the cluster)      |
+--------------+------------+---------+----------------+-------------------+
| DataNode     | All Slave  | 50075   | http           | Yes               |
|              | Nodes      +---------+----------------+-------------------+
|              |            | 1019    | IPC            | No                |
|              |            | Priv.   |                |                   |
+--------------+------------+---------+----------------+-------------------+

After the table.
";

    fn cells(t: &Table) -> Vec<(u32, Vec<&str>)> {
        t.rows
            .iter()
            .map(|r| (r.line, r.cells.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn row_spans_are_repeated_and_wrapped_cells_joined() {
        let found = find(HDP);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].lines, 2..17);
        let t = &found[0].table;
        assert_eq!(t.line, 4);
        assert!(!t.header_from_first_row);
        assert_eq!(
            t.header,
            vec![
                "Service",
                "Servers",
                "Default Ports Used",
                "Protocol",
                "Need End User Access?"
            ]
        );
        let access = "Yes (typically admins, and users outside the cluster)";
        assert_eq!(
            cells(t),
            vec![
                (
                    8,
                    vec!["NameNode WebUI", "Master Nodes", "50070", "http", access]
                ),
                (
                    11,
                    vec!["NameNode WebUI", "Master Nodes", "50470", "https", access]
                ),
                (
                    13,
                    vec!["DataNode", "All Slave Nodes", "50075", "http", "Yes"]
                ),
                (
                    15,
                    vec!["DataNode", "All Slave Nodes", "1019 Priv.", "IPC", "No"]
                ),
            ]
        );
        assert!(t.rows.iter().all(|r| r.written_cells == 5));
    }

    #[test]
    fn without_a_header_border_the_first_row_is_the_header() {
        let text = "  +------+----------+\n  | Port | Use      |\n  +------+----------+\n  | 22   | SSH      |\n  +------+----------+\n  | 443  | HTTPS    |\n  |      | (web UI) |\n  +------+----------+\n";
        let found = find(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].lines, 0..8);
        let t = &found[0].table;
        assert!(t.header_from_first_row);
        assert_eq!(t.line, 2);
        assert_eq!(t.header, vec!["Port", "Use"]);
        assert_eq!(
            cells(t),
            vec![(4, vec!["22", "SSH"]), (6, vec!["443", "HTTPS (web UI)"])]
        );
    }

    #[test]
    fn column_spans_repeat_their_text() {
        let text = "+------+-------+\n| Port | Proto |\n+======+=======+\n| Cluster ports|\n+------+-------+\n| 80   | TCP   |\n+------+-------+\n";
        let t = &find(text)[0].table;
        assert_eq!(
            cells(t),
            vec![
                (4, vec!["Cluster ports", "Cluster ports"]),
                (6, vec!["80", "TCP"])
            ]
        );
    }

    #[test]
    fn multibyte_text_is_counted_in_chars() {
        let text = "+-------+--------+\n| Port  | Use    |\n+=======+========+\n| 8443† | A → B  |\n+-------+--------+\n";
        let t = &find(text)[0].table;
        assert_eq!(cells(t), vec![(4, vec!["8443†", "A → B"])]);
    }

    #[test]
    fn malformed_grids_are_no_tables() {
        for text in [
            // Borders alone, or a box with no body.
            "+----+----+\n+----+----+\n",
            "+------+\n| Note |\n+------+\n",
            // Boxes side by side in a diagram.
            "+--------+      +--------+\n| client | ---> | server |\n+--------+      +--------+\n",
            // No bottom border.
            "+----+----+\n| a  | b  |\n+====+====+\n| 1  | 2  |\n",
            // A ragged line before the bottom border ends the table above it.
            "+----+----+\n| a  | b  |\n+====+====+\n| 1  | 2   |\n+----+----+\n",
            // A tab, a missing right border.
            "+----+----+\n| a\t| b  |\n+====+====+\n| 1  | 2  |\n+----+----+\n",
            "+----+----+\n| a  | b  \n+====+====+\n| 1  | 2  |\n+----+----+\n",
            "+----+----+\n| é  | b  |\n+====+=+==+\n| 1  |2| 3|\n+---++----+\n",
            // Unicode and stray corners.
            "+-é-+\n| x |\n+---+\n| y |\n+---+\n",
            "+\n|\n+\n",
            "++\n||\n++\n||\n++\n",
        ] {
            assert!(find(text).is_empty(), "{text}");
        }
    }
}
