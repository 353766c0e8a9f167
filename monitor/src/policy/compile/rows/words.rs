//! Peers a row names in its words, for a row whose cells name only the
//! listening side (or nothing): the service, description, comment and
//! unrecognised cells ("Purpose") are read together. A row whose listener
//! comes from a Component column is read for who connects to it, and
//! without one it is no rule: nothing says whom to allow. Words that
//! restrict the port to some peers ("only the cluster nodes need it")
//! name them for any row.

use crate::policy::compile::{
    columns::{Column, Layout},
    normalize::{
        allowed,
        endpoints::{Endpoint, Known},
        initiators, mentions, restricted,
    },
};

/// The peers named in `cells`; `component` is the row's listener when a
/// Component column gives it. Empty when the words name none.
pub(super) fn peers(
    layout: &Layout,
    cells: &[String],
    component: Option<&str>,
    known: Known,
) -> Result<Vec<Endpoint>, String> {
    let words = words_of(layout, cells);
    // "ALLOW controller(s) to reach the Receptor port": the instruction
    // names who connects, whatever else the words mention.
    let allowed = allowed::openers(&words, known);
    if !allowed.is_empty() {
        return Ok(allowed);
    }
    if let Some(listener) = component {
        let named = initiators::of(&words, known);
        if named.is_empty() {
            return Err(format!(
                "the row names who listens ({listener}) but not who connects: no rule"
            ));
        }
        return Ok(named);
    }
    if known.roles.is_empty() && known.local.is_none() {
        return Ok(Vec::new());
    }
    Ok(mentions::peers(&without_conditions(&words), known))
}

/// The words without their "only when ..." / "only if ..." clauses: what a
/// condition mentions ("used together with another component") is the
/// setup it depends on, not who connects.
fn without_conditions(words: &str) -> String {
    words
        .split_inclusive(['.', ';'])
        .map(|clause| {
            let lower = clause.to_ascii_lowercase();
            match ["only when ", "only if "]
                .iter()
                .filter_map(|m| lower.find(m))
                .min()
            {
                Some(at) => &clause[..at],
                None => clause,
            }
        })
        .collect()
}

/// The service, description, notes and unrecognised cells, as one text.
fn words_of(layout: &Layout, cells: &[String]) -> String {
    cells
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            layout.get(Column::Service) == Some(*i)
                || layout.get(Column::Description) == Some(*i)
                || layout.get(Column::Notes) == Some(*i)
                || !layout.is_recognised(*i) && !layout.more_ports.contains(i)
        })
        .map(|(_, c)| c.as_str())
        .collect::<Vec<_>>()
        .join(". ")
}

/// The peers the row's words restrict the port to ("only the cluster nodes
/// need it"), which take the place of any Source or peer cell.
pub(super) fn restricted(layout: &Layout, cells: &[String], known: Known) -> Option<Vec<Endpoint>> {
    restricted::peers(&words_of(layout, cells), known)
}
