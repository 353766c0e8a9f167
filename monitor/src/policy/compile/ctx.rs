//! The compiler's state for one document: the rules, skipped rows,
//! warnings and decisions read so far, with the provenance helpers every
//! reader records through, and the context (roles, footnotes, topics,
//! stated ends) that tables and prose pass on to each other.

use std::collections::HashMap;

use super::{footnotes, stated_ends, topics};
use crate::policy::model::{Note, Rule, Skipped, Source};

/// Past this many warnings a document is not a port document; the rest are
/// counted, not kept, so that garbage input cannot flood memory or stderr.
const MAX_NOTES_PER_DOC: usize = 200;

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
    pub(super) suppressed: usize,
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
    pub(super) fn new(doc: &str, prefix: &str) -> Self {
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
    pub(super) fn flag_duplicates(&mut self) {
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
}
