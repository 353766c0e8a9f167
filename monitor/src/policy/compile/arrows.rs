//! Cells that name both ends with an arrow: "Load balancer → Vault servers",
//! "Vault servers ↔ Vault servers", or several such lines in one cell
//! ("Elastic Agent → Logstash<br>Beats → Logstash"). The table is rewritten
//! with one row per line and explicit Source and Destination columns, so
//! that the row reader sees the shape it knows. Every derived row keeps its
//! line.

use crate::policy::document::{Row, Table};

const ARROWS: &[&str] = &["<->", "↔", "⇄", "->", "→", "⟶"];

/// The table with its arrow column split into Source and Destination, or
/// `None` when no cell holds an arrow. `port` is the Port column's index,
/// never split.
pub fn split(table: &Table, port: Option<usize>) -> Option<Table> {
    // In a Direction or "node-to-node" column, "vCenter Server to PSC" is an
    // arrow too; elsewhere "to" is just a word.
    let words_arrow: Vec<bool> = table
        .header
        .iter()
        .map(|h| {
            let lower = h.to_ascii_lowercase();
            ["direction", "node-to-node", "communication"]
                .iter()
                .any(|k| lower.contains(k))
        })
        .collect();
    // A cell whose arrow has nothing on one side ("1433/TCP --->") names
    // no ends: splitting on it would leave the table as it was, and read
    // again, split again without end.
    let column = (0..table.header.len()).find(|&i| {
        Some(i) != port
            && table.rows.iter().any(|r| {
                r.cells
                    .get(i)
                    .is_some_and(|c| c.split(';').any(|l| ends(l, words_arrow[i]).is_some()))
            })
    })?;
    let to_word = words_arrow[column];
    // "Required for": the hosts that listen, for rows without arrows.
    let listeners = table
        .header
        .iter()
        .position(|h| h.to_lowercase().starts_with("required for"));
    let mut header = table.header.clone();
    header[column] = "Ends".into();
    if let Some(i) = listeners {
        header[i] = "Hosts".into();
    }
    header.push("Source".into());
    header.push("Destination".into());
    let mut rows = Vec::new();
    for row in &table.rows {
        let cell = row.cells.get(column).map_or("", String::as_str);
        let lines: Vec<(String, String)> =
            cell.split(';').filter_map(|l| ends(l, to_word)).collect();
        if lines.is_empty() {
            let hosts: Vec<String> = listeners
                .and_then(|i| row.cells.get(i))
                .map(|c| {
                    c.split(';')
                        .map(|h| h.trim().to_string())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let hosts = if hosts.is_empty() {
                vec![String::new()]
            } else {
                hosts
            };
            for host in hosts {
                let mut cells = row.cells.clone();
                cells.resize(table.header.len(), String::new());
                cells.extend([String::new(), host]);
                rows.push(Row {
                    line: row.line,
                    written_cells: cells.len(),
                    cells,
                });
            }
            continue;
        }
        for (from, to) in lines {
            let mut cells = row.cells.clone();
            cells.resize(table.header.len(), String::new());
            // The arrows now live in Source and Destination only.
            cells[column] = String::new();
            cells.extend([from, to]);
            rows.push(Row {
                line: row.line,
                written_cells: cells.len(),
                cells,
            });
        }
        // "vCenter Server listens here for the vSphere Client and for SDK
        // clients": besides the node-to-node arrows, the listener named in
        // the row's words is reached by the peers those words name.
        for host in stated_listeners(row, listeners, column) {
            let mut cells = row.cells.clone();
            cells.resize(table.header.len(), String::new());
            cells[column] = String::new();
            cells.extend([String::new(), host]);
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

/// The hosts of the "Required for" cell that another cell says "listens".
fn stated_listeners(row: &Row, listeners: Option<usize>, arrows: usize) -> Vec<String> {
    let Some(hosts) = listeners.and_then(|i| row.cells.get(i)) else {
        return Vec::new();
    };
    let said = row
        .cells
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != listeners && *i != arrows)
        .find_map(|(_, c)| {
            let lower = c.to_ascii_lowercase();
            lower.find(" listens").map(|i| lower[..i].to_string())
        });
    let Some(subject) = said else {
        return Vec::new();
    };
    hosts
        .split(';')
        .map(str::trim)
        .filter(|h| !h.is_empty() && subject.contains(&h.to_lowercase()))
        .map(String::from)
        .collect()
}

fn arrow_in(text: &str, to_word: bool) -> Option<(usize, &'static str)> {
    let words: &[&'static str] = if to_word { &[" to "] } else { &[] };
    ARROWS
        .iter()
        .chain(words)
        .filter_map(|a| text.find(a).map(|i| (i, *a)))
        .min_by_key(|(i, a)| (*i, std::cmp::Reverse(a.len())))
}

/// "A → B" as (A, B). A two-way arrow ("A ↔ B") names A on both sides, so
/// that the row reads as traffic both ways between B (the local end) and A.
fn ends(line: &str, to_word: bool) -> Option<(String, String)> {
    let (i, arrow) = arrow_in(line, to_word)?;
    let from = line[..i].trim();
    let to = line[i + arrow.len()..].trim();
    if from.is_empty() || to.is_empty() {
        return None;
    }
    let two_way = matches!(arrow, "<->" | "↔" | "⇄");
    let to = if two_way {
        format!("{to}; {from}")
    } else {
        to.to_string()
    };
    Some((from.to_string(), to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(header: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            line: 1,
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, r)| Row {
                    line: i as u32 + 2,
                    cells: r.iter().map(|s| s.to_string()).collect(),
                    written_cells: r.len(),
                })
                .collect(),
            header_from_first_row: false,
            caption: None,
        }
    }

    #[test]
    fn arrow_lines_become_rows() {
        let t = table(
            &["Port", "Component"],
            &[
                &["5044", "Elastic Agent → Logstash; Beats -> Logstash"],
                &["9", "x"],
            ],
        );
        let s = split(&t, Some(0)).unwrap();
        assert_eq!(s.header, vec!["Port", "Ends", "Source", "Destination"]);
        assert_eq!(s.rows.len(), 3);
        assert_eq!(
            s.rows[1].cells[2..],
            ["Beats".to_string(), "Logstash".into()]
        );
        assert_eq!(s.rows[1].line, 2);
        assert!(split(&table(&["Port"], &[&["1"]]), Some(0)).is_none());
        // An arrow with one side empty names no ends: no split.
        assert!(split(&table(&["Port", "Via"], &[&["1", "161 <--->"]]), Some(0)).is_none());
        assert_eq!(ends("a <-> b", false), Some(("a".into(), "b; a".into())));
        assert_eq!(ends("a to b", false), None);
        let t = table(
            &[
                "Port",
                "Required for",
                "Used for node-to-node communication",
            ],
            &[&["80", "A; B", "A to B"], &["22", "A; B", "No"]],
        );
        let s = split(&t, Some(0)).unwrap();
        let ends: Vec<(&str, &str)> = s
            .rows
            .iter()
            .map(|r| (r.cells[3].as_str(), r.cells[4].as_str()))
            .collect();
        assert_eq!(ends, vec![("A", "B"), ("", "A"), ("", "B")]);
        let t = table(
            &["Port", "Description", "Required for", "node-to-node"],
            &[&["443", "A listens here for clients.", "A; B", "A to B"]],
        );
        let s = split(&t, Some(0)).unwrap();
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[1].cells[5], "A");
    }
}
