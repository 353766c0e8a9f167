//! A vendor document, read and reduced to blocks (`blocks`): Markdown and the
//! HTML embedded in it are parsed by real parsers (`markdown`, `html`) and
//! merged here in document order.

pub mod blocks;
mod html;
mod markdown;
pub mod source;

pub use blocks::{Block, ProseKind, Row, Table, collapse_ws};
pub use source::Document;

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
