//! Compiles documents into a [`Policy`]: walks each document's blocks in
//! order, keeping the section context (headings, pending prose rules) that
//! tables and prose need, then links rules across the document (duplicates,
//! supersession). Its children read one kind of block each (`rows` for
//! tables, `prose` for sentences), with `columns` and `normalize` for the
//! cells; they share the compiler's state through [`Ctx`].

use std::collections::{HashMap, HashSet};

mod arrows;
mod categories;
mod cell_items;
mod columns;
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
    model::{DocumentInfo, FORMAT_VERSION, Note, Policy, Rule, Skipped, Source},
};
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

/// Past this many warnings a document is not a port document; the rest are
/// counted, not kept, so that garbage input cannot flood memory or stderr.
const MAX_NOTES_PER_DOC: usize = 200;

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
                ctx.stated_ends = ends_above
                    .take()
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

/// What one document compiles to, and the helpers that record provenance.
pub struct Ctx {
    doc: String,
    prefix: String,
    pub rules: Vec<Rule>,
    pub skipped: Vec<Skipped>,
    pub decisions: Vec<Note>,
    pub warnings: Vec<Note>,
    /// Rule id to its index in `rules`.
    ids: HashMap<String, usize>,
    suppressed: usize,
    /// The document's first top-level heading.
    pub title: Option<String>,
    /// Host roles the document's headings and captions name (slugs).
    pub roles: Vec<String>,
    /// The kind of server the document names most ("domain controllers"):
    /// who a "Server Port" column is on when nothing else says.
    pub main_server: Option<String>,
    pub footnotes: footnotes::Footnotes,
    /// What the prose says about kinds of traffic ("health monitoring is
    /// optional").
    pub topics: Vec<topics::Topic>,
    /// "Term: definition" list items read so far: the categories of
    /// traffic a later table names.
    pub definitions: Vec<(String, String)>,
    /// Roles the sentences named so far ("the Ceph Monitors"), so that a
    /// later short name ("the monitors") is the same role.
    pub named: Vec<String>,
    /// Both ends of the rows of the table being read, as the sentence
    /// above it states them.
    pub stated_ends: Option<stated_ends::Ends>,
    /// The stated ends both open connections ("A <--> B").
    pub stated_both_ways: bool,
    /// The paragraph above the table being read says its ports are on the
    /// loopback interface.
    pub stated_loopback: bool,
    /// The host the section's prose names as the destination of the rows
    /// of the table being read.
    pub stated_destination: Option<String>,
}

impl Ctx {
    fn new(doc: &str, prefix: &str) -> Self {
        Ctx {
            doc: doc.to_string(),
            prefix: prefix.to_string(),
            rules: Vec::new(),
            skipped: Vec::new(),
            decisions: Vec::new(),
            warnings: Vec::new(),
            ids: HashMap::new(),
            suppressed: 0,
            title: None,
            roles: Vec::new(),
            main_server: None,
            footnotes: footnotes::Footnotes::default(),
            topics: Vec::new(),
            definitions: Vec::new(),
            named: Vec::new(),
            stated_ends: None,
            stated_both_ways: false,
            stated_loopback: false,
            stated_destination: None,
        }
    }

    pub fn source(&self, line: u32) -> Source {
        Source {
            doc: self.doc.clone(),
            line,
        }
    }

    pub fn warn(&mut self, line: u32, message: String) {
        if self.warnings.len() >= MAX_NOTES_PER_DOC {
            self.suppressed += 1;
            return;
        }
        let source = self.source(line);
        self.warnings.push(Note { source, message });
    }

    pub fn decide(&mut self, line: u32, message: String) {
        if self.decisions.len() >= MAX_NOTES_PER_DOC {
            self.suppressed += 1;
            return;
        }
        let source = self.source(line);
        self.decisions.push(Note { source, message });
    }

    /// Records a row or prose rule that yields no rule, and warns about it.
    pub fn skip(&mut self, line: u32, what: String, reason: String) {
        self.warn(line, format!("{what}: skipped: {reason}"));
        if self.skipped.len() >= MAX_NOTES_PER_DOC {
            return;
        }
        let source = self.source(line);
        self.skipped.push(Skipped {
            source,
            what,
            reason,
        });
    }

    /// Adds rules read from `line`, giving them ids: `prefix-line`, with a
    /// letter per rule when the line yields several. Returns the ids.
    pub fn add_rules(&mut self, line: u32, rules: Vec<Rule>) -> Vec<String> {
        let base = format!("{}-{}", self.prefix, line);
        let lettered = rules.len() > 1 || self.ids.contains_key(&base);
        let mut next = 0usize;
        let mut ids = Vec::with_capacity(rules.len());
        for mut rule in rules {
            let id = if lettered {
                loop {
                    let candidate = format!("{base}{}", letters(next));
                    next += 1;
                    if !self.ids.contains_key(&candidate) {
                        break candidate;
                    }
                }
            } else {
                base.clone()
            };
            self.ids.insert(id.clone(), self.rules.len());
            rule.id = id.clone();
            rule.source = self.source(line);
            ids.push(id);
            self.rules.push(rule);
        }
        ids
    }

    /// Where the record stands, to go back to with [`Ctx::undo`].
    pub fn mark(&self) -> Mark {
        Mark {
            rules: self.rules.len(),
            warnings: self.warnings.len(),
            decisions: self.decisions.len(),
            named: self.named.len(),
        }
    }

    /// Forgets the rules and notes added since `mark`: a reading tried and
    /// given up.
    pub fn undo(&mut self, mark: Mark) {
        for rule in self.rules.drain(mark.rules..) {
            self.ids.remove(&rule.id);
        }
        self.warnings.truncate(mark.warnings);
        self.decisions.truncate(mark.decisions);
        self.named.truncate(mark.named);
    }

    /// Removes rules another reading of the same lines replaced.
    pub fn remove_rules(&mut self, ids: &[String]) {
        self.rules.retain(|r| !ids.contains(&r.id));
        self.ids = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
    }

    pub fn rule_mut(&mut self, id: &str) -> Option<&mut Rule> {
        let index = *self.ids.get(id)?;
        self.rules.get_mut(index)
    }

    /// Marks rules that allow exactly the traffic of an earlier rule of the
    /// same document (the 4853 RPC/HTTP pair, a table repeated under another
    /// heading). Both stay, so every row remains visible; the later one
    /// points at the first.
    fn flag_duplicates(&mut self) {
        type Key = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        );
        let mut first: HashMap<Key, (String, u32, String)> = HashMap::new();
        let mut found = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let key: Key = (
                rule.proto.to_string(),
                rule.ports.to_string(),
                rule.direction.to_string(),
                rule.local_role.clone(),
                rule.peer_label(),
                rule.since
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                rule.until
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                rule.condition.clone().unwrap_or_default(),
            );
            match first.get(&key) {
                Some((id, line, service)) => found.push((i, id.clone(), *line, service.clone())),
                None => {
                    first.insert(
                        key,
                        (rule.id.clone(), rule.source.line, rule.service.clone()),
                    );
                }
            }
        }
        for (i, first_id, first_line, first_service) in found {
            let rule = &mut self.rules[i];
            let same_service = first_service == rule.service;
            let what = if same_service {
                "the same service".to_string()
            } else {
                format!("another service ({first_service})")
            };
            rule.duplicate_of = Some(first_id.clone());
            rule.notes.push(format!(
                "duplicate of {first_id} (line {first_line}, {what}): same traffic, kept for the record"
            ));
            let message = format!(
                "{} {} {} {} {} is listed again (first at line {first_line} for {what}); flagged \
                 as a duplicate of {first_id}",
                rule.proto,
                rule.ports,
                rule.direction,
                rule.local_role,
                rule.peer_label(),
            );
            let line = rule.source.line;
            self.warn(line, message);
        }
    }
}

/// How far a [`Ctx`]'s record went, for [`Ctx::undo`].
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    rules: usize,
    warnings: usize,
    decisions: usize,
    named: usize,
}

/// a, b, ..., z, aa, ab, ...
fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_suffixes() {
        assert_eq!(letters(0), "a");
        assert_eq!(letters(25), "z");
        assert_eq!(letters(26), "aa");
        assert_eq!(letters(27), "ab");
    }

    #[test]
    fn prefixes_are_short_and_unique() {
        let mut taken = HashSet::new();
        assert_eq!(id_prefix("000_2809db0a7820664a.txt", &mut taken), "000");
        assert_eq!(id_prefix("000_other.md", &mut taken), "000_2");
        assert_eq!(id_prefix("ThoughtSpot-ports.md", &mut taken), "thoughtspot");
        assert_eq!(id_prefix("_.md", &mut taken), "doc");
    }
}
