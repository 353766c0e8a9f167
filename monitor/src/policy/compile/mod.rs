//! Compiles documents into a [`Policy`]: walks each document's blocks in
//! order, keeping the section context (headings, pending prose rules) that
//! tables and prose need, then links rules across the document (duplicates,
//! supersession). Its children read one kind of block each (`rows` for
//! tables, `prose` for sentences), with `columns` and `normalize` for the
//! cells; they share the compiler's state through [`Ctx`].

use std::collections::HashSet;

mod arrows;
mod categories;
mod cell_items;
mod cluster_section;
mod columns;
mod ctx;
mod daemons;
mod footnotes;
mod heading_arrows;
mod list_ends;
mod matrix;
pub mod normalize;
mod outgoing_list;
mod port_list;
mod preamble;
mod prose;
mod roles;
mod rows;
mod sentences;
mod stated_ends;
mod topics;
mod transport_columns;
mod urls;

use super::{
    document::{self, Block, Document},
    error::CompileError,
    model::{DocumentInfo, FORMAT_VERSION, Note, Policy, Rule, Source},
};
pub use ctx::{Ctx, Mark};
use prose::SectionProse;

/// What a rule the compiler reads starts as: read at `line` of the
/// document being compiled (its name is set when the rule is added), tied
/// to no release and duplicating nothing. Every reader states the traffic
/// over it with struct update syntax; the placeholders (TCP, no port,
/// inbound, `nodes`, required) are always overwritten or what it means.
fn read_at(line: u32) -> Rule {
    Rule {
        id: String::new(),
        service: String::new(),
        proto: super::Proto::Tcp,
        ports: super::Ports::List(Vec::new()),
        alternatives: false,
        direction: super::Direction::Inbound,
        local_role: super::model::NODES.into(),
        peer_role: None,
        peer: Vec::new(),
        required: super::Required::Yes,
        condition: None,
        since: None,
        until: None,
        superseded_by: None,
        duplicate_of: None,
        source: Source {
            doc: String::new(),
            line,
        },
        notes: Vec::new(),
        review: Vec::new(),
    }
}

/// Compiles `docs` into one policy. Only document-level problems are errors;
/// row-level problems become warnings and skipped entries.
pub fn compile(docs: &[Document]) -> Result<Policy, CompileError> {
    if docs.is_empty() {
        return Err(CompileError::NoDocuments);
    }
    let mut policy = Policy {
        format: FORMAT_VERSION,
        documents: Vec::new(),
        rules: Vec::new(),
        skipped: Vec::new(),
        decisions: Vec::new(),
        warnings: Vec::new(),
    };
    let mut prefixes = HashSet::new();
    let mut names = HashSet::new();
    for doc in docs {
        if !names.insert(doc.name.as_str()) {
            return Err(CompileError::DuplicateDocument(doc.name.clone()));
        }
        let prefix = id_prefix(&doc.name, &mut prefixes);
        let ctx = compile_one(doc, &prefix);
        if ctx.rules.is_empty() {
            return Err(match ctx.skipped.first() {
                Some(first) => CompileError::AllSkipped {
                    name: doc.name.clone(),
                    skipped: ctx.skipped.len(),
                    first_line: first.source.line,
                    first_reason: first.reason.clone(),
                },
                None => CompileError::NoRules {
                    name: doc.name.clone(),
                },
            });
        }
        policy.documents.push(DocumentInfo {
            name: doc.name.clone(),
            id_prefix: prefix,
            lines: doc.lines(),
        });
        policy.rules.extend(ctx.rules);
        policy.skipped.extend(ctx.skipped);
        policy.decisions.extend(ctx.decisions);
        policy.warnings.extend(ctx.warnings);
    }
    Ok(policy)
}

fn compile_one(doc: &Document, prefix: &str) -> Ctx {
    let mut ctx = Ctx::new(&doc.name, prefix);
    let mut section = SectionProse::default();
    // The condition the paragraph just above the next table sets.
    let mut above: Option<(u32, String)> = None;
    // The ends of its rows the paragraph just above the next table states.
    let mut ends_above: Option<stated_ends::Ends> = None;
    let mut loopback_above = false;
    // Where the section's prose says its table's connections go.
    let mut section_destination: Option<String> = None;
    let mut section_source: Option<String> = None;
    // The ends the last heading's arrow names ("Client --> Management point").
    let mut heading_ends: Option<heading_arrows::HeadingEnds> = None;
    // The section's members, when a paragraph above the next table says
    // its rows run both ways among them (a note may come in between).
    let mut members_above: Option<String> = None;
    // The paragraph announcing a list of the host's outgoing connections.
    let mut outgoing: Option<outgoing_list::Intro> = None;
    let mut headings: Vec<(u8, String)> = Vec::new();
    let blocks = document::parse(&doc.text);
    let lines: Vec<String> = doc.text.lines().map(document::collapse_ws).collect();
    learn_roles(&mut ctx, &blocks);
    ctx.main_server = roles::most_named_server(&doc.text);
    ctx.footnotes = footnotes::Footnotes::of(&doc.text, &blocks);
    for block in blocks {
        match block {
            Block::Heading { level, text, line } => {
                let next = section.next(level, line);
                prose::finish_section(&mut ctx, &mut section, &headings);
                while headings.last().is_some_and(|(l, _)| *l >= level) {
                    headings.pop();
                }
                heading_ends = heading_arrows::of(&text);
                headings.push((level, text));
                section = next;
                above = None;
                outgoing = None;
                members_above = None;
                ends_above = None;
                loopback_above = false;
                section_destination = None;
                section_source = None;
            }
            Block::Prose {
                kind,
                text,
                code,
                line,
            } => {
                // A list item that starts with its ports is one rule; the
                // sentence reader would read its description a second time.
                if kind == document::ProseKind::ListItem
                    && let Some(d) = normalize::definitions::definition(&text)
                {
                    ctx.definitions.push(d);
                }
                above = (kind == document::ProseKind::Paragraph)
                    .then(|| preamble::condition(&text).map(|c| (line, c)))
                    .flatten();
                if let Some(host) = stated_ends::destination(&text) {
                    section_destination = Some(host);
                }
                if let Some(host) = stated_ends::source(&text) {
                    section_source = Some(host);
                }
                if kind == document::ProseKind::Paragraph {
                    outgoing = outgoing_list::intro(&ctx, &text, line, &headings);
                    ends_above = stated_ends::of_paragraph(&text);
                    // "Open the following ports for inbound and outbound
                    // traffic on both nodes" under "The appliance cluster".
                    if cluster_section::among_members(&text) {
                        members_above = headings.last().and_then(|(_, h)| {
                            cluster_section::members(h, ctx.title.as_deref())
                                .or_else(|| roles::of_heading(h, ctx.title.as_deref()))
                        });
                    }
                    loopback_above = stated_ends::loopback(&text);
                }
                let listed = kind == document::ProseKind::ListItem
                    && (list_ends::read(&mut ctx, &text, line, &headings)
                        || port_list::read(&mut ctx, &text, line)
                        || outgoing
                            .as_ref()
                            .is_some_and(|i| outgoing_list::read(&mut ctx, i, &text, line)));
                if !listed {
                    prose::read(&mut ctx, &mut section, &headings, kind, &text, &code, line);
                    sentences::read(&mut ctx, &text, line, &lines);
                }
            }
            Block::Table(table) => {
                outgoing = None;
                let among = members_above.take().map(|role| stated_ends::Ends {
                    opener: role.clone(),
                    listener: role,
                });
                ctx.stated_both_ways = among.is_some();
                ctx.stated_ends = among
                    .or_else(|| ends_above.take())
                    .or_else(|| table.caption.as_deref().and_then(stated_ends::of_caption))
                    .or_else(|| {
                        // The section's notes: "the destination ... is ... on
                        // a Mailbox server", "the source can be any location".
                        Some(stated_ends::Ends {
                            opener: section_source.clone()?,
                            listener: section_destination.clone()?,
                        })
                    });
                let by_arrow = ctx.stated_ends.is_none() && heading_ends.is_some();
                if by_arrow && let Some(h) = &heading_ends {
                    ctx.decide(
                        table.line,
                        format!(
                            "the heading's arrow names the ends: {} {} {}",
                            h.ends.opener,
                            if h.both_ways { "<-->" } else { "-->" },
                            h.ends.listener
                        ),
                    );
                    ctx.stated_ends = Some(h.ends.clone());
                    ctx.stated_both_ways = h.both_ways;
                }
                ctx.stated_loopback = std::mem::take(&mut loopback_above);
                ctx.stated_destination = section_destination.clone();
                let ids = if matrix::is_matrix(&table) {
                    matrix::compile(&mut ctx, &table)
                } else if let Some(ids) = categories::compile(&mut ctx, &table) {
                    ids
                } else {
                    let ids = rows::compile(&mut ctx, &table, &headings);
                    sentences::cells::read(&mut ctx, &table, &ids, &lines)
                };
                ctx.stated_ends = None;
                ctx.stated_both_ways = false;
                ctx.stated_loopback = false;
                if by_arrow
                    && let Some(h) = &heading_ends
                    && let Some(cond) = &h.condition
                {
                    heading_arrows::apply_condition(&mut ctx, &ids, table.line, cond);
                }
                ctx.stated_destination = None;
                if let Some((line, cond)) = above.take() {
                    preamble::apply(&mut ctx, &ids, line, &cond);
                }
                section.tables += 1;
                prose::after_table(&mut ctx, &mut section, &ids, table.line);
            }
            // Read into `ctx.footnotes` for the rows that carry its mark.
            Block::Footnote { .. } => {}
            Block::BrokenTable { line } => ctx.warn(
                line,
                "text laid out like a pipe table is not a table (missing the |---| delimiter \
                 row?): ignored"
                    .into(),
            ),
        }
    }
    prose::finish_section(&mut ctx, &mut section, &headings);
    ctx.flag_duplicates();
    // Stable: warnings about one line stay in the order they were found.
    ctx.warnings.sort_by_key(|w| w.source.line);
    ctx.decisions.sort_by_key(|d| d.source.line);
    if ctx.suppressed > 0 {
        let n = ctx.suppressed;
        ctx.warnings.push(Note {
            source: ctx.source(doc.lines()),
            message: format!("{n} more warnings and decisions not shown"),
        });
    }
    ctx
}

/// The document's title and the host roles its headings and captions name,
/// known before any table is read: an early table may name a role whose own
/// section comes later ("controlplane nodes" as the source of an etcd port).
fn learn_roles(ctx: &mut Ctx, blocks: &[Block]) {
    for block in blocks {
        let named = match block {
            Block::Heading { level: 1, text, .. } if ctx.title.is_none() => {
                ctx.title = Some(text.clone());
                continue;
            }
            Block::Heading { text, .. } => roles::all_of_heading(text, ctx.title.as_deref()),
            // A caption, and the group rows that act as sub-headings.
            Block::Table(t) => t
                .caption
                .iter()
                .filter_map(|c| roles::of_caption(c, ctx.title.as_deref()))
                .chain(
                    t.caption
                        .iter()
                        .cloned()
                        .chain(rows::group_rows(t))
                        .flat_map(|c| roles::all_of_heading(&c, ctx.title.as_deref())),
                )
                .chain(rows::component_roles(t))
                .collect(),
            Block::Prose { text, .. } => {
                let learned = topics::learn(text);
                ctx.topics.extend(learned);
                sentences::learn_parts(text)
            }
            _ => continue,
        };
        for role in named {
            if !ctx.roles.contains(&role) {
                ctx.roles.push(role);
            }
        }
    }
}

/// A short, stable prefix for rule ids: the file name's first word.
fn id_prefix(name: &str, taken: &mut HashSet<String>) -> String {
    let stem = name.split('.').next().unwrap_or(name);
    let base: String = stem
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let base = if base.is_empty() {
        "doc".to_string()
    } else {
        base
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_short_and_unique() {
        let mut taken = HashSet::new();
        assert_eq!(id_prefix("000_2809db0a7820664a.txt", &mut taken), "000");
        assert_eq!(id_prefix("000_other.md", &mut taken), "000_2");
        assert_eq!(id_prefix("ThoughtSpot-ports.md", &mut taken), "thoughtspot");
        assert_eq!(id_prefix("_.md", &mut taken), "doc");
    }
}
