//! Sentences in the cells of a port table that names neither end of its
//! connections: a "Port | Use" table whose Use cell is a list of sentences
//! ("The primary server uses this port to accept requests from agents",
//! "The console sends requests to the primary server on this port"). Each
//! sentence is about its row's port ("this port", "here", or no port at
//! all) and names who connects to whom, so each becomes rules of its own
//! at its line, and they replace the row's rule (any peer to the
//! document's hosts). Only rows whose own reading found no peer: a row
//! whose words already named its peers keeps that reading, and so does a
//! row whose sentences name no opener.

use super::{
    super::{Ctx, normalize::endpoints::ANY},
    RowPort, read_about,
};
use crate::policy::{
    compile::columns::{Column, Layout},
    document::Table,
    model::{Ports, Proto},
};

/// Reads the sentences of `table`'s cells, whose row rules are `ids`;
/// returns the ids of the table's rules afterwards.
pub fn read(ctx: &mut Ctx, table: &Table, ids: &[String], lines: &[String]) -> Vec<String> {
    let layout = Layout::of(&table.header);
    let ends_given = [
        Column::Source,
        Column::Destination,
        Column::Peer,
        Column::Direction,
        Column::Component,
    ]
    .iter()
    .any(|&c| layout.has(c));
    if ends_given || !layout.has(Column::Port) {
        return ids.to_vec();
    }
    let mut out = ids.to_vec();
    for row in &table.rows {
        let own: Vec<String> = ids
            .iter()
            .filter(|id| {
                ctx.rule_mut(id)
                    .is_some_and(|r| r.source.line == row.line && r.duplicate_of.is_none())
            })
            .cloned()
            .collect();
        let found_peers = own.iter().any(|id| {
            ctx.rule_mut(id)
                .is_some_and(|r| r.peer_role.as_deref() != Some(ANY) || !r.peer.is_empty())
        });
        if found_peers {
            continue;
        }
        let Some(port) = row_port(ctx, &own) else {
            continue;
        };
        let mark = ctx.mark();
        let mut read = Vec::new();
        for (i, cell) in row.cells.iter().enumerate() {
            let about = [Column::Service, Column::Notes, Column::Description]
                .iter()
                .any(|&c| layout.get(c) == Some(i));
            if !about {
                continue;
            }
            for item in cell.split("; ") {
                read.extend(read_about(ctx, item, row.line, lines, &port));
            }
        }
        let named = read.iter().any(|id| {
            ctx.rule_mut(id)
                .is_some_and(|r| r.peer_role.as_deref() != Some(ANY))
        });
        if !named {
            ctx.undo(mark);
            continue;
        }
        ctx.decide(
            row.line,
            format!(
                "the row's sentences name who connects to whom: {} rules read from them replace \
                 the row's {}",
                read.len(),
                own.join(", ")
            ),
        );
        ctx.remove_rules(&own);
        out.retain(|id| !own.contains(id));
        out.extend(read);
    }
    out
}

/// The row's port and transports, from the rules the row gave.
fn row_port(ctx: &mut Ctx, own: &[String]) -> Option<RowPort> {
    let mut ranges = Vec::new();
    let mut protos: Vec<Proto> = Vec::new();
    for id in own {
        let rule = ctx.rule_mut(id)?;
        let Ports::List(list) = &rule.ports else {
            return None;
        };
        for r in list {
            if !ranges.contains(r) {
                ranges.push(*r);
            }
        }
        if !protos.contains(&rule.proto) {
            protos.push(rule.proto);
        }
    }
    (!ranges.is_empty()).then_some((ranges, protos))
}
