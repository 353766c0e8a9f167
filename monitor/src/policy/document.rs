//! A document reduced to what the compiler reads: headings (for context),
//! prose paragraphs and list items (for prose rules), and tables, each with
//! its line. Markdown and the HTML embedded in it are parsed by real parsers
//! (`markdown`, `html`) and merged here in document order.

use super::{html, markdown};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Heading {
        level: u8,
        text: String,
        line: u32,
    },
    /// A paragraph or list item's text, with its inline code spans apart
    /// (documents put endpoint names in code spans).
    Prose {
        kind: ProseKind,
        text: String,
        code: Vec<String>,
        line: u32,
    },
    Table(Table),
    /// Text laid out like a pipe table that the Markdown parser did not read
    /// as one (usually a missing `|---|` delimiter row).
    BrokenTable {
        line: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProseKind {
    Paragraph,
    ListItem,
}

impl Block {
    pub fn line(&self) -> u32 {
        match self {
            Block::Heading { line, .. }
            | Block::Prose { line, .. }
            | Block::BrokenTable { line } => *line,
            Block::Table(t) => t.line,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Line of the header row.
    pub line: u32,
    pub header: Vec<String>,
    pub rows: Vec<Row>,
    /// The table had no header cells (`<th>`, `<thead>`); its first row was
    /// taken as the header.
    pub header_from_first_row: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u32,
    pub cells: Vec<String>,
    /// How many cells the row has as written; the parsers pad or cut rows to
    /// the header's width, and the compiler warns when this differs.
    pub written_cells: usize,
}

/// Parses `text` as Markdown (with pipe tables) and the HTML blocks inside it.
pub fn parse(text: &str) -> Vec<Block> {
    if is_html_document(text) {
        // Markdown would read indented lines after a blank line as code and
        // hide the tables in them.
        return html::parse(text);
    }
    let md = markdown::parse(text);
    let mut blocks = md.blocks;
    if !md.html_ranges.is_empty() {
        blocks.extend(html::parse(&mask_outside(text, &md.html_ranges)));
    }
    // Stable: blocks on one line keep their order.
    blocks.sort_by_key(Block::line);
    blocks
}

/// A whole HTML page rather than Markdown with HTML in it.
fn is_html_document(text: &str) -> bool {
    let start = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let head: String = start
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

/// Keeps the bytes of the HTML ranges and only the line breaks elsewhere, so
/// that the HTML parser sees each tag on its original line, and sees HTML
/// tables split by blank lines (several Markdown HTML blocks) as one.
fn mask_outside(text: &str, ranges: &[std::ops::Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for r in ranges {
        if r.start < pos || r.end > text.len() {
            continue;
        }
        out.extend(text[pos..r.start].chars().filter(|&c| c == '\n'));
        out.push_str(&text[r.start..r.end]);
        pos = r.end;
    }
    out.extend(text[pos..].chars().filter(|&c| c == '\n'));
    out
}

/// Collapses runs of whitespace into one space and trims, as a browser shows
/// cell text.
pub fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_pages_are_read_as_html() {
        let page = "<!DOCTYPE html>\n<html><body>\n<h2>Ports</h2>\n\n    <table>\n\n        <tr><th>Port</th></tr>\n        <tr><td>443</td></tr>\n    </table>\n</body></html>\n";
        let blocks = parse(page);
        assert!(matches!(&blocks[0], Block::Heading { line: 3, text, .. } if text == "Ports"));
        assert!(matches!(&blocks[1], Block::Table(t) if t.rows[0].line == 8));
    }

    #[test]
    fn mixed_document_keeps_order_and_lines() {
        let text = "# Title\n\n|Port|Protocol|\n|--|--|\n|80|TCP|\n\n<table>\n<tr><th>Port</th></tr>\n\n<tr>\n<td>22</td></tr>\n</table>\n";
        let blocks = parse(text);
        let tables: Vec<&Table> = blocks
            .iter()
            .filter_map(|b| match b {
                Block::Table(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].line, 3);
        assert_eq!(tables[0].rows[0].line, 5);
        assert_eq!(tables[1].line, 8);
        assert_eq!(tables[1].rows[0].line, 10);
        assert_eq!(tables[1].rows[0].cells, vec!["22"]);
    }
}
