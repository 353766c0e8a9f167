//! Footnotes: the text behind the markers that documents glue to ports and
//! names (`8600[^1]`, `30000-32767†`, `8092<sup>1</sup>`, `Search head*`),
//! which often states the condition under which a port is needed.
//!
//! Markdown footnotes are read from the raw text (`[^1]: ...`, a paragraph
//! starting with `†` or `\*`, numbered items after a "Footnotes:" line);
//! HTML ones from a table row or paragraph that starts with "Notes:" and
//! numbers its items; plain-text ones from the document reader, which
//! finds a lone mark on its line followed by the note.

use std::collections::HashMap;

use crate::policy::document::{Block, Table};

/// Footnote id (without brackets, carets or parentheses) to its text.
#[derive(Debug, Default, Clone)]
pub struct Footnotes(HashMap<String, String>);

/// Markers are at most this long: `[^note-about-tls]`, not a sentence.
const MAX_ID: usize = 24;

impl Footnotes {
    pub fn get(&self, marker: &str) -> Option<&str> {
        self.0.get(&id(marker)).map(String::as_str)
    }

    fn add(&mut self, marker: &str, text: &str) {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let key = id(marker);
        if !key.is_empty() && !text.is_empty() {
            self.0.entry(key).or_insert(text);
        }
    }

    /// Reads the footnotes of a document: its raw text for Markdown ones,
    /// its blocks for HTML ones.
    pub fn of(text: &str, blocks: &[Block]) -> Footnotes {
        let mut notes = Footnotes::default();
        notes.read_markdown(text);
        for block in blocks {
            match block {
                Block::Table(t) => notes.read_table(t),
                Block::Footnote { mark, text, .. } => notes.add(mark, text),
                Block::Prose { text, .. } => {
                    notes.read_numbered(text);
                    // A legend item "* Optional service": the parser took
                    // no bullet from it, so the star is a mark.
                    if let Some(rest) = text.trim().strip_prefix("* ") {
                        notes.add("\\*", rest);
                    }
                    // HTML notes: "<p><sup>††</sup> text</p>" is prose.
                    if let Some((m, t)) = footnote_start(text.trim(), false) {
                        notes.add(&m, &t);
                    }
                }
                _ => {}
            }
        }
        notes
    }

    fn read_markdown(&mut self, text: &str) {
        let mut current: Option<(String, String)> = None;
        let mut numbered = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                if let Some((m, t)) = current.take() {
                    self.add(&m, &t);
                }
                continue;
            }
            if trimmed.to_lowercase().trim_matches('*').trim() == "footnotes:" {
                numbered = true;
                continue;
            }
            if let Some(start) = footnote_start(trimmed, numbered) {
                if let Some((m, t)) = current.take() {
                    self.add(&m, &t);
                }
                current = Some(start);
            } else if let Some((_, t)) = current.as_mut() {
                t.push(' ');
                t.push_str(trimmed);
            } else if trimmed.starts_with('#') {
                numbered = false;
            }
        }
        if let Some((m, t)) = current {
            self.add(&m, &t);
        }
    }

    /// A table row whose first cell starts with "Notes:" (the last row of a
    /// matrix), with items "1. ..." split by line breaks.
    fn read_table(&mut self, table: &Table) {
        for row in &table.rows {
            if let Some(first) = row.cells.first() {
                self.read_numbered(first);
            }
        }
    }

    fn read_numbered(&mut self, text: &str) {
        let lower = text.to_ascii_lowercase();
        if !(lower.starts_with("notes:") || lower.starts_with("footnotes:")) {
            return;
        }
        for item in text.split(';') {
            if let Some((m, t)) = numbered_item(item.trim()) {
                self.add(&m, &t);
            }
        }
    }
}

/// The longest run of `symbol` in `text`, if any.
fn longest_run(text: &str, symbol: char) -> Option<String> {
    let mut best = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == symbol { run + 1 } else { 0 };
        best = best.max(run);
    }
    (best > 0).then(|| symbol.to_string().repeat(best))
}

/// The digit a superscript digit stands for.
fn superscript(c: char) -> Option<char> {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    SUP.iter()
        .position(|s| *s == c)
        .and_then(|d| char::from_digit(d as u32, 10))
}

/// The id a marker refers to: `[^1]`, `(1)`, `^1`, `¹` and `1` are one id.
fn id(marker: &str) -> String {
    let marker: String = marker
        .chars()
        .map(|c| superscript(c).unwrap_or(c))
        .collect();
    marker
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_start_matches('^')
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim_start_matches('\\')
        .to_lowercase()
}

fn footnote_start(line: &str, numbered: bool) -> Option<(String, String)> {
    if let Some(rest) = line.strip_prefix("[^")
        && let Some((m, text)) = rest.split_once("]:")
        && m.len() <= MAX_ID
    {
        return Some((m.to_string(), text.trim().to_string()));
    }
    // "†† text" (a run of daggers), "¹ text" (a superscript digit).
    for symbol in ['†', '‡'] {
        let run: String = line.chars().take_while(|c| *c == symbol).collect();
        if !run.is_empty() {
            return Some((run.clone(), line[run.len()..].trim().to_string()));
        }
    }
    if let Some(text) = line.strip_prefix("\\*") {
        return Some(("\\*".to_string(), text.trim().to_string()));
    }
    let sup: String = line
        .chars()
        .take_while(|c| superscript(*c).is_some())
        .collect();
    if !sup.is_empty() && line[sup.len()..].starts_with(' ') {
        return Some((sup.clone(), line[sup.len()..].trim().to_string()));
    }
    if numbered {
        return numbered_item(line);
    }
    None
}

/// What a footnote says about the rows that point to it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effect {
    /// "Only required if ...", "Only when ...": the row is conditional.
    pub condition: Option<String>,
    /// "Local traffic from the node to itself": no rule.
    pub local_only: bool,
    /// "Here GitLab is the client: it connects out": outbound.
    pub outbound: bool,
    /// "Sent over UDP".
    pub udp: bool,
    /// "Optional service, disabled until you switch it on": not required,
    /// whatever condition the note also names.
    pub optional: bool,
}

pub fn effect(text: &str) -> Effect {
    let lower = text.to_ascii_lowercase();
    let condition = super::normalize::required::condition_of(text).or_else(|| {
        let cut = |marker: &str| {
            lower.find(marker).map(|i| {
                let rest = &text[i + marker.len()..];
                let end = rest.find(['.', ';', ':']).unwrap_or(rest.len());
                rest[..end].trim().to_string()
            })
        };
        // "Only opened when set", "only for NodePort"; not "port 80 only
        // redirects to 443", which says what the port does.
        cut("only ")
            .filter(|_| !port_does_only(&lower))
            .or_else(|| cut(" until "))
            .or_else(|| trailing_only(text))
            .filter(|c| !c.is_empty())
    });
    Effect {
        condition,
        local_only: lower.contains("itself") || lower.contains("local traffic"),
        outbound: lower.contains("is the client")
            || lower.contains("connects out")
            || lower.starts_with("sent ")
            || lower.contains(" sent to "),
        udp: lower.contains("over udp"),
        optional: super::normalize::required::says_optional(text)
            || lower.starts_with("optional")
            || lower.contains("disabled until"),
    }
}

/// "port 80 only redirects to 443": the port, named just before "only", is
/// what the sentence is about, and "only" limits what it does, not when it
/// is needed. ("It only has to be reachable if ..." is a condition.)
fn port_does_only(lower: &str) -> bool {
    let Some(i) = lower.find(" only ") else {
        return false;
    };
    let before = lower[..i].split_whitespace().last().unwrap_or("");
    !before.is_empty() && before.chars().all(|c| c.is_ascii_digit())
}

/// "use it in development environments only.": the clause before a
/// trailing "only" ("in development environments").
fn trailing_only(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let end = lower.find(" only.").or_else(|| lower.find(" only;"))?;
    let start = lower[..end]
        .rfind([';', '.', ':', ','])
        .map_or(0, |i| i + 1);
    let clause = text[start..end].trim();
    // The place or case the clause names, without its verb ("use it").
    let at = [" in ", " on ", " for ", " with "]
        .iter()
        .filter_map(|k| clause.to_ascii_lowercase().find(k))
        .min()
        .unwrap_or(0);
    Some(clause[at..].trim().to_string())
}

/// "1. text" or "(1) text".
fn numbered_item(item: &str) -> Option<(String, String)> {
    let digits: String = item
        .trim_start_matches('(')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() || digits.len() > 3 {
        return None;
    }
    let rest = item.trim_start_matches('(')[digits.len()..]
        .trim_start_matches([')', '.'])
        .trim();
    Some((digits, rest.to_string()))
}

/// Splits the footnote markers off a cell: `8600[^1]` is `8600` and `1`,
/// `30000-32767†` is `30000-32767` and `†`, `Search head*` is `Search head`
/// and `*`.
pub fn split_markers(cell: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(cell.len());
    let mut markers = Vec::new();
    let mut rest = cell;
    while let Some(i) = rest.find("[^") {
        let Some(close) = rest[i..].find(']').map(|c| i + c) else {
            break;
        };
        out.push_str(&rest[..i]);
        markers.push(rest[i + 2..close].trim().to_string());
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    // A run of daggers is its own marker: "††" points to the second note.
    for symbol in ['†', '‡'] {
        if let Some(run) = longest_run(&out, symbol) {
            markers.push(run);
            out = out.replace(symbol, "");
        }
    }
    // "5353¹": a superscript digit glued to a value.
    let sup: String = out.chars().filter(|c| superscript(*c).is_some()).collect();
    if !sup.is_empty() {
        markers.push(sup);
        out = out.chars().filter(|c| superscript(*c).is_none()).collect();
    }
    let trimmed = out.trim_end();
    if trimmed.len() > 1 && trimmed.ends_with('*') && !trimmed.ends_with("**") {
        markers.push("\\*".to_string());
        out = trimmed.trim_end_matches('*').to_string();
    }
    (out.trim().to_string(), markers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_port_only_does_is_no_condition() {
        let redirect =
            effect("Ports 80 and 443 belong to the portal; port 80 only redirects to 443.");
        assert_eq!(redirect.condition, None);
        let reachable = effect("It only has to be reachable if you publish NodePort Services.");
        assert!(reachable.condition.is_some());
        assert!(effect("Only opened when set.").condition.is_some());
    }

    #[test]
    fn markers() {
        assert_eq!(split_markers("8600[^1]"), ("8600".into(), vec!["1".into()]));
        assert_eq!(
            split_markers("30000-32767†"),
            ("30000-32767".into(), vec!["†".into()])
        );
        assert_eq!(
            split_markers("Search head*"),
            ("Search head".into(), vec!["\\*".into()])
        );
        assert_eq!(split_markers("443 TCP [^(3)]").1, vec!["(3)".to_string()]);
        assert_eq!(split_markers("*").0, "*");
        assert_eq!(split_markers("moxi††").1, vec!["††".to_string()]);
        assert_eq!(split_markers("5353¹"), ("5353".into(), vec!["¹".into()]));
    }

    #[test]
    fn dagger_runs_and_superscripts() {
        let notes = Footnotes::of("† One.\n\n†† Only if two.\n\n¹ Only for tests.\n", &[]);
        assert_eq!(notes.get("††"), Some("Only if two."));
        assert_eq!(notes.get("†"), Some("One."));
        assert_eq!(notes.get("¹"), Some("Only for tests."));
    }

    #[test]
    fn effects() {
        let e = effect("Only when no external load balancer sits in front of Rancher.");
        assert_eq!(
            e.condition.as_deref(),
            Some("no external load balancer sits in front of Rancher")
        );
        assert!(effect("Local traffic from the node to itself").local_only);
        let e = effect("Here GitLab is the client: it connects out on this port.");
        assert!(e.outbound && e.condition.is_none());
        assert!(effect("Sent over UDP to your syslog server.").udp);
        assert!(effect("Optional service, disabled until you switch it on.").optional);
        let e = effect("Not supported; use it in test labs only.");
        assert_eq!(e.condition.as_deref(), Some("in test labs"));
        let e = effect("The registry stays off until `registry_external_url` is set.");
        assert_eq!(
            e.condition.as_deref(),
            Some("`registry_external_url` is set")
        );
    }

    #[test]
    fn markdown_and_html_footnotes() {
        let text = "| a |\n\n[^1]: Only required if applications\n    resolve names.\n[^fed]: Only when federated.\n\n† Only if NodePort.\n\n\\* Only in clusters.\n\n**Footnotes:**\n\n1. Only opened when set.\n2. Client side.\n";
        let notes = Footnotes::of(text, &[]);
        assert_eq!(
            notes.get("[^1]"),
            Some("Only required if applications resolve names.")
        );
        assert_eq!(notes.get("2"), Some("Client side."));
        assert_eq!(notes.get("†"), Some("Only if NodePort."));
        assert_eq!(notes.get("\\*"), Some("Only in clusters."));
        let mut html = Footnotes::default();
        html.read_numbered("Notes:; 1. Machines.; 3. Only when no balancer.");
        assert_eq!(html.get("(3)"), Some("Only when no balancer."));
    }
}
