//! Tables whose Component column names the part of the product that
//! listens ("Component | Service | Port | ... | Comment"): each component
//! is a host role, a blank Component cell continues the one above (a
//! merged cell, as Markdown cannot write one), and who connects is named
//! only in the row's words ("Agents send their heartbeats here", "Queried
//! by the Server").

use crate::policy::{
    compile::{
        columns::{Column, Layout},
        roles,
    },
    document::{Row, Table},
};

/// `rows` with each blank Component cell filled from the row above.
pub(super) fn fill_merged(layout: &Layout, rows: &[&Row]) -> Vec<Row> {
    let Some(at) = layout.get(Column::Component) else {
        return rows.iter().map(|r| (*r).clone()).collect();
    };
    let mut above: Option<String> = None;
    rows.iter()
        .map(|r| {
            let mut row = (*r).clone();
            match row.cells.get_mut(at) {
                Some(cell) if cell.trim().is_empty() => {
                    if let Some(text) = &above {
                        cell.clone_from(text);
                    }
                }
                Some(cell) => above = Some(cell.clone()),
                None => {}
            }
            row
        })
        .collect()
}

/// The roles a table's Component column names, in order, for recognising
/// them in the rows' words ("the Event Server hands alerts to ...").
pub fn roles_of(table: &Table) -> Vec<String> {
    let layout = Layout::of(&table.header);
    let Some(at) = layout
        .get(Column::Component)
        .or_else(|| super::super::columns::host_column(&table.header))
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for row in &table.rows {
        if let Some(slug) = row.cells.get(at).and_then(|c| roles::slug(c))
            && !out.contains(&slug)
        {
            out.push(slug);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_component_cells() {
        let header: Vec<String> = ["Component", "Service", "Port"].map(String::from).to_vec();
        let layout = Layout::of(&header);
        let row = |c: &str, p: &str| Row {
            line: 1,
            cells: vec![c.into(), "HTTP".into(), p.into()],
            written_cells: 3,
        };
        let (a, b, c) = (
            row("Event Server", "7184"),
            row("", "7185"),
            row("Alerts", "1"),
        );
        let filled = fill_merged(&layout, &[&a, &b, &c]);
        assert_eq!(filled[1].cells[0], "Event Server");
        assert_eq!(filled[2].cells[0], "Alerts");
    }
}
