//! AsciiDoc source read as plain text: vendors (Red Hat, many Antora sites)
//! publish their port pages from `.adoc` files, and a user who saves the
//! source gets `|===` tables, `= Title` headings, `.Title` block titles and
//! `[attribute]` lines. Read as Markdown they are one paragraph of pipes.
//!
//! A table's cells start with `|` (or a cell spec such as `a|`, `2+|`),
//! one or several to a line; a line that starts with none continues the
//! cell before it (the paragraphs of an `a|` cell). Rows are as wide as the
//! header, whatever the line breaks. The block title above a table is its
//! caption (the hosts it is about); `link:URL[text]` reads as its text.

use std::ops::Range;

use super::blocks::{Block, Row, Table, collapse_ws};

/// What the AsciiDoc reader found, and the lines (0-based) it took.
#[derive(Default)]
pub struct Read {
    pub blocks: Vec<Block>,
    pub lines: Vec<Range<usize>>,
}

/// Whether `text` is AsciiDoc source: it has a `|===` table delimiter.
pub fn is_asciidoc(text: &str) -> bool {
    text.lines().any(|l| l.trim_end() == "|===")
}

/// Reads the tables, headings, block titles and attribute lines of an
/// AsciiDoc text; everything else is left to the Markdown reader.
pub fn read(text: &str) -> Read {
    let mut out = Read::default();
    if !is_asciidoc(text) {
        return out;
    }
    let lines: Vec<&str> = text.lines().collect();
    // The block title above the next table, and whether it was an attribute.
    let mut title: Option<(String, bool)> = None;
    // Header lines of the tables titled by an unresolved attribute.
    let mut attribute_titles: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_end();
        if t == "|===" {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim_end() == "|===")
                .unwrap_or(lines.len());
            let caption = title.take();
            if let Some((_, true)) = caption {
                attribute_titles.push(i as u32 + 2);
            }
            if let Some(table) = table(&lines, i, end, caption.map(|(t, _)| t)) {
                out.blocks.push(Block::Table(table));
            }
            out.lines.push(i..(end + 1).min(lines.len()));
            i = end + 1;
            continue;
        }
        if let Some((level, text)) = heading(t) {
            out.blocks.push(Block::Heading {
                level,
                text,
                line: i as u32 + 1,
            });
            out.lines.push(i..i + 1);
            title = None;
        } else if let Some(text) = block_title(t) {
            title = Some((text, t.starts_with(".{")));
            out.lines.push(i..i + 1);
        } else if is_attribute_line(t) {
            out.lines.push(i..i + 1);
        } else if !t.trim().is_empty() {
            title = None;
        }
        i += 1;
    }
    resolve_attribute_titles(&mut out.blocks, &attribute_titles);
    out
}

/// A title read from an unresolved attribute ("Hub" from `{HubNameStart}`)
/// stands for the literal title of the document that ends with its words
/// (".Automation Hub"): the same component, named in full.
fn resolve_attribute_titles(blocks: &mut [Block], from_attributes: &[u32]) {
    let literal: Vec<String> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Table(t) if !from_attributes.contains(&t.line) => t.caption.clone(),
            _ => None,
        })
        .collect();
    for block in blocks.iter_mut() {
        let Block::Table(t) = block else { continue };
        if !from_attributes.contains(&t.line) {
            continue;
        }
        let Some(short) = t.caption.as_deref().map(str::to_lowercase) else {
            continue;
        };
        let full = literal.iter().find(|l| {
            let l = l.to_lowercase();
            l != short && l.ends_with(&format!(" {short}"))
        });
        if let Some(full) = full {
            t.caption = Some(full.clone());
        }
    }
}

/// `= Title` (level 1), `== Section` (level 2)...
fn heading(line: &str) -> Option<(u8, String)> {
    let level = line.chars().take_while(|c| *c == '=').count();
    let rest = &line[level..];
    if (1..=6).contains(&level) && rest.starts_with(' ') && !rest.trim().is_empty() {
        Some((level as u8, collapse_ws(rest)))
    } else {
        None
    }
}

/// `.Title`, not `..` nor `. item` (an ordered list item).
fn block_title(line: &str) -> Option<String> {
    let rest = line.strip_prefix('.')?;
    let first = rest.chars().next()?;
    (!first.is_whitespace() && first != '.').then(|| title_text(rest))
}

/// A block title's text; an unresolved attribute (`{HubNameStart}`) reads
/// as the words of its name ("Hub"), without the naming convention's
/// suffixes, so that the role it names can be recognised.
fn title_text(title: &str) -> String {
    let t = title.trim();
    let Some(name) = t.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return collapse_ws(t);
    };
    const SUFFIXES: &[&str] = &["Name", "Start", "Short", "Long", "Full", "Title"];
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in name.chars() {
        if (c.is_uppercase() || c == '_' || c == '-') && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c.is_alphanumeric() {
            word.push(c);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    while words.len() > 1 && words.last().is_some_and(|w| SUFFIXES.contains(&w.as_str())) {
        words.pop();
    }
    words.join(" ")
}

/// `[options="header"]`, `[id=...]`, `[NOTE]`, `[role="_abstract"]`.
fn is_attribute_line(line: &str) -> bool {
    let t = line.trim();
    t.len() > 2 && t.starts_with('[') && t.ends_with(']') && !t.starts_with("[[")
        || t.starts_with("[[") && t.ends_with("]]")
}

/// The table between the delimiters at `open` and `close` (0-based lines).
fn table(lines: &[&str], open: usize, close: usize, caption: Option<String>) -> Option<Table> {
    // Each cell with the 1-based line it starts on.
    let mut cells: Vec<(u32, String)> = Vec::new();
    let mut header_width = 0;
    for (j, line) in lines.iter().enumerate().take(close).skip(open + 1) {
        let t = line.trim_end();
        match split_cells(t) {
            Some(parts) => {
                if j == open + 1 {
                    header_width = parts.len();
                }
                cells.extend(parts.into_iter().map(|p| (j as u32 + 1, p)));
            }
            None if t.trim().is_empty() => {
                // A paragraph break inside an `a|` cell, or between rows.
                if let Some((_, last)) = cells.last_mut()
                    && !last.is_empty()
                    && !last.ends_with('\n')
                {
                    last.push('\n');
                }
            }
            None => {
                if let Some((_, last)) = cells.last_mut() {
                    if !last.is_empty() && !last.ends_with('\n') {
                        last.push(' ');
                    }
                    last.push_str(t.trim());
                }
            }
        }
    }
    if header_width < 2 {
        return None;
    }
    let mut cells = cells.into_iter().map(|(l, c)| (l, tidy(&c)));
    let header: Vec<String> = cells.by_ref().take(header_width).map(|(_, c)| c).collect();
    let rest: Vec<(u32, String)> = cells.collect();
    let rows = rest
        .chunks(header_width)
        .map(|chunk| Row {
            line: chunk[0].0,
            written_cells: chunk.len(),
            cells: chunk.iter().map(|(_, c)| c.clone()).collect(),
        })
        .collect();
    Some(Table {
        line: open as u32 + 2,
        header,
        rows,
        header_from_first_row: false,
        caption,
    })
}

/// The cells a line starts, or `None` when it continues the cell before.
fn split_cells(line: &str) -> Option<Vec<String>> {
    let t = line.trim_start();
    let bar = t.find('|')?;
    if !t[..bar]
        .chars()
        .all(|c| "0123456789.+*^<>aehlmsdv".contains(c))
        || bar > 6
    {
        return None;
    }
    Some(
        t[bar + 1..]
            .split('|')
            .map(|c| c.trim().to_string())
            .collect(),
    )
}

/// A cell's text: paragraphs kept apart by "; " (the cell readers split
/// on it), `link:URL[text]` read as its text, inline marks dropped.
fn tidy(cell: &str) -> String {
    let text = links(cell);
    // "Open *only* when": bold and monospace marks, in pairs.
    let text = if text.matches('*').count().is_multiple_of(2) {
        text.replace('*', "")
    } else {
        text
    };
    text.split('\n')
        .map(collapse_ws)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `link:https://h:443[https://h:443]` and `https://h[text]` as the text
/// the page shows (the target when the text is empty).
fn links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("link:").or_else(|| rest.find("http")) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let target_start = from.strip_prefix("link:").map_or(0, |_| "link:".len());
        let Some(open) = from.find('[') else {
            out.push_str(from);
            return out;
        };
        let Some(close) = from[open..].find(']').map(|c| open + c) else {
            out.push_str(from);
            return out;
        };
        let target = &from[target_start..open];
        if target.contains(char::is_whitespace) {
            // Not a macro: "http" in a sentence followed later by "[".
            out.push_str(&from[..open]);
            rest = &from[open..];
            continue;
        }
        let shown = from[open + 1..close].trim();
        out.push_str(if shown.is_empty() { target } else { shown });
        rest = &from[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "= Ports\n\n.{HubNameStart}\n[options=\"header\"]\n|===\n|Port |Protocol |Required for\n|22\n|TCP\n|Installation\n\n|5432\n|TCP\na|Default port\n\nALLOW controller(s) to connect\n|===\n\n.Automation Hub\n|===\n|URL |Required for\n|link:https://a.example.com:44[https://a.example.com:443] |Sync\n|===\n";

    #[test]
    fn tables_titles_and_links() {
        let read = read(DOC);
        let tables: Vec<&Table> = read
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Table(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(tables.len(), 2);
        // The attribute {HubNameStart} is the component ".Automation Hub" names.
        assert_eq!(tables[0].caption.as_deref(), Some("Automation Hub"));
        assert_eq!(tables[0].header, vec!["Port", "Protocol", "Required for"]);
        assert_eq!(tables[0].rows[0].line, 7);
        assert_eq!(tables[0].rows[1].line, 11);
        assert_eq!(
            tables[0].rows[1].cells[2],
            "Default port; ALLOW controller(s) to connect"
        );
        assert_eq!(tables[1].rows[0].cells[0], "https://a.example.com:443");
        assert!(matches!(
            &read.blocks[0],
            Block::Heading {
                level: 1,
                line: 1,
                ..
            }
        ));
    }

    #[test]
    fn not_asciidoc() {
        assert!(read("| a | b |\n|---|---|\n| 1 | 2 |\n").blocks.is_empty());
    }
}
