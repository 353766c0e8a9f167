//! Tables whose transports are columns ("Description | UDP | TCP"): a port
//! sits in the column of its transport, `--` or an empty cell means none,
//! and a number in both columns is the port over both. The table is
//! rewritten with one row per transport and explicit Port and Protocol
//! columns, so that the row reader sees the shape it knows; each derived
//! row keeps its line. What follows the port in a cell ("443 Note 2
//! Alternate port available", a footnote's link text) moves to a Notes
//! column, where conditions are read.

use crate::policy::document::{Row, Table};

/// The table with its transport columns turned into Port and Protocol, or
/// `None` when no header is a transport name alone.
pub fn split(table: &Table) -> Option<Table> {
    let transports: Vec<(usize, &'static str)> = table
        .header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| transport(h).map(|t| (i, t)))
        .collect();
    if transports.is_empty() {
        return None;
    }
    let kept: Vec<usize> = (0..table.header.len())
        .filter(|i| !transports.iter().any(|(t, _)| t == i))
        .collect();
    let mut header: Vec<String> = kept.iter().map(|&i| table.header[i].clone()).collect();
    header.extend(["Port", "Protocol", "Remarks"].map(String::from));
    let mut rows = Vec::new();
    for row in &table.rows {
        let base: Vec<String> = kept
            .iter()
            .map(|&i| row.cells.get(i).cloned().unwrap_or_default())
            .collect();
        let mut any = false;
        for &(i, name) in &transports {
            let cell = row.cells.get(i).map_or("", |c| c.trim());
            if is_none(cell) {
                continue;
            }
            any = true;
            let (port, rest) = port_and_rest(cell);
            let mut cells = base.clone();
            cells.extend([port, name.to_string(), rest]);
            rows.push(Row {
                line: row.line,
                written_cells: cells.len(),
                cells,
            });
        }
        if !any {
            // No transport holds a port: the row reader skips it, saying so.
            let mut cells = base.clone();
            cells.extend([String::new(), String::new(), String::new()]);
            rows.push(Row {
                line: row.line,
                written_cells: cells.len(),
                cells,
            });
        }
    }
    Some(Table {
        header,
        rows,
        ..table.clone()
    })
}

/// "TCP", "UDP" (a header that is a transport's name alone).
fn transport(header: &str) -> Option<&'static str> {
    match header.trim().to_ascii_uppercase().as_str() {
        "TCP" => Some("TCP"),
        "UDP" => Some("UDP"),
        _ => None,
    }
}

/// A cell that holds no port: empty, or a dash ("--", "-", "—", "n/a").
fn is_none(cell: &str) -> bool {
    let t = cell.trim();
    t.is_empty() || t.chars().all(|c| matches!(c, '-' | '–' | '—')) || t.eq_ignore_ascii_case("n/a")
}

/// The port part of a cell and what follows it: "80 or 8530 Note 3" is
/// "80 or 8530" and "Note 3"; a cell without a number ("DYNAMIC Note 6")
/// keeps its first word as the port, for the row reader to explain.
fn port_and_rest(cell: &str) -> (String, String) {
    let words: Vec<&str> = cell.split_whitespace().collect();
    let is_port_word = |w: &str| {
        let w = w.trim_end_matches(',');
        w.chars().next().is_some_and(|c| c.is_ascii_digit())
            && w.chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == '–')
            || matches!(w.to_ascii_lowercase().as_str(), "and" | "or" | "to")
    };
    let mut end = words.iter().take_while(|w| is_port_word(w)).count();
    // "80 or": a trailing link word is not part of the port.
    while end > 0
        && !words[end - 1]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    {
        end -= 1;
    }
    if end == 0 {
        end = words.len().min(1);
    }
    (words[..end].join(" "), words[end..].join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u32, cells: &[&str]) -> Row {
        Row {
            line,
            cells: cells.iter().map(|c| c.to_string()).collect(),
            written_cells: cells.len(),
        }
    }

    #[test]
    fn one_row_per_transport() {
        let table = Table {
            line: 1,
            header: vec!["Description".into(), "UDP".into(), "TCP".into()],
            rows: vec![
                row(3, &["RPC Endpoint Mapper", "135", "135"]),
                row(4, &["HTTP", "--", "80 or 8530 Note 3"]),
                row(5, &["DHCP", "67 and 68", ""]),
                row(6, &["RPC", "--", "DYNAMIC Note 6"]),
            ],
            header_from_first_row: false,
            caption: None,
        };
        let t = split(&table).unwrap();
        assert_eq!(t.header, vec!["Description", "Port", "Protocol", "Remarks"]);
        let cells: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
        assert_eq!(cells[0], vec!["RPC Endpoint Mapper", "135", "UDP", ""]);
        assert_eq!(cells[1], vec!["RPC Endpoint Mapper", "135", "TCP", ""]);
        assert_eq!(cells[2], vec!["HTTP", "80 or 8530", "TCP", "Note 3"]);
        assert_eq!(cells[3], vec!["DHCP", "67 and 68", "UDP", ""]);
        assert_eq!(cells[4], vec!["RPC", "DYNAMIC", "TCP", "Note 6"]);
        assert_eq!(t.rows[1].line, 3);
        assert!(
            split(&Table {
                header: vec!["Port".into()],
                ..table
            })
            .is_none()
        );
    }
}
