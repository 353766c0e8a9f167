//! Group rows inside a table: a row whose only text spans the table
//! (`<td colspan="3">Inter-node Ports</td>`) or sits alone in its first or
//! port cell, with words where the port should be. Writers use them as
//! sub-headings ("Public Facing Ports", "OpsCenter specific"), so the rows
//! under one are read as if it were a heading below the table's own: its
//! role, direction and "between nodes" words apply to them.

use crate::policy::{
    compile::{
        columns::{Column, Layout},
        normalize::ports,
    },
    document::{Row, Table},
};

/// A sub-heading longer than this is a sentence (a note row), not a group.
const MAX_WORDS: usize = 8;

/// Rows under one group row (or under none, before the first).
pub(super) struct Segment<'t> {
    /// The group row's line and text.
    pub(super) group: Option<(u32, String)>,
    pub(super) rows: Vec<&'t Row>,
}

/// The text of `row` if it is a group row of a table laid out as `layout`.
pub(super) fn group_text(layout: &Layout, row: &Row) -> Option<String> {
    let port_at = layout.get(Column::Port)?;
    if row.cells.len() < 2 {
        return None;
    }
    let filled: Vec<(usize, &str)> = row
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.trim()))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    let (first_at, text) = *filled.first()?;
    // One text, repeated by a colspan or written once.
    if filled.iter().any(|(_, c)| *c != text) {
        return None;
    }
    let spans = filled.len() == row.cells.len();
    if !spans && first_at != 0 && first_at != port_at {
        return None;
    }
    let words = text.split_whitespace().count();
    if words > MAX_WORDS || !text.chars().any(char::is_alphabetic) || ports::parse(text).is_ok() {
        return None;
    }
    Some(
        text.trim_matches(|c: char| c == '*' || c == '_')
            .to_string(),
    )
}

/// Every group row's text, in order: the names they introduce are known
/// before any row is read (a later "OpsCenter specific" names the host of
/// an earlier "OpsCenter public ports").
pub fn all_texts(table: &Table) -> Vec<String> {
    let layout = Layout::of(&table.header);
    table
        .rows
        .iter()
        .filter_map(|r| group_text(&layout, r))
        .collect()
}

/// `table`'s rows cut at its group rows. A later group row replaces the
/// earlier one: writers nest them ("Inter-node Ports" / "Cassandra
/// inter-node ports") with the inner one restating what it is about.
pub(super) fn segments<'t>(table: &'t Table, layout: &Layout) -> Vec<Segment<'t>> {
    let mut out = vec![Segment {
        group: None,
        rows: Vec::new(),
    }];
    for row in &table.rows {
        match group_text(layout, row) {
            Some(text) => out.push(Segment {
                group: Some((row.line, text)),
                rows: Vec::new(),
            }),
            None => {
                if let Some(last) = out.last_mut() {
                    last.rows.push(row);
                }
            }
        }
    }
    out.retain(|s| s.group.is_some() || !s.rows.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Row {
        Row {
            line: 1,
            cells: cells.iter().map(|c| c.to_string()).collect(),
            written_cells: cells.len(),
        }
    }

    #[test]
    fn group_rows() {
        let header: Vec<String> = ["Port", "Description", "Configurable in"]
            .map(String::from)
            .to_vec();
        let layout = Layout::of(&header);
        let spanned = row(&["Inter-node Ports"; 3]);
        assert_eq!(
            group_text(&layout, &spanned).as_deref(),
            Some("Inter-node Ports")
        );
        assert_eq!(
            group_text(&layout, &row(&["**Public**", "", ""])).as_deref(),
            Some("Public")
        );
        assert_eq!(group_text(&layout, &row(&["22", "SSH", ""])), None);
        assert_eq!(group_text(&layout, &row(&["", "a note", ""])), None);
        assert_eq!(group_text(&layout, &row(&["443", "443", "443"])), None);
    }
}
