//! A vendor document, read and reduced to blocks (`blocks`): Markdown and the
//! HTML embedded in it are parsed by real parsers (`markdown`, `html`) and
//! merged here in document order. Plain text copied from a browser is
//! Markdown without markup: its flattened tables (`cell_lines`) are read
//! before the Markdown parser sees the rest, and its headings (`plain`)
//! after; its tab-separated tables (`tab_rows`) are read first of all,
//! then its boxed grid tables (`grid_rows`, reStructuredText's `+---+`
//! tables, spans and all), then its tables in columns of spaces
//! (`aligned_rows`), which must not see a grid's wrapped cells as rows.
//! Plain text laid out as reStructuredText (`rst`) gives its titles
//! as headings and hides its literal blocks and command lines from Markdown.
//! AsciiDoc source (`asciidoc`) gives its `|===` tables, headings and block
//! titles before anything else reads it.

mod aligned_rows;
mod asciidoc;
pub mod blocks;
mod cell_lines;
mod grid_rows;
mod html;
mod markdown;
mod plain;
mod rst;
pub mod source;
mod tab_rows;

pub use blocks::{Block, ProseKind, Row, Table, collapse_ws};
pub use source::Document;

/// Parses `text` as Markdown (with pipe tables) and the HTML blocks inside it.
pub fn parse(text: &str) -> Vec<Block> {
    if is_html_document(text) {
        // Markdown would read indented lines after a blank line as code and
        // hide the tables in them.
        return html::parse(text);
    }
    let adoc = asciidoc::read(text);
    let text = &mask_lines(text, adoc.lines.iter().cloned());
    let tabbed = tab_rows::find(text);
    let text = &mask_lines(text, tabbed.iter().map(|f| f.lines.clone()));
    let grids = grid_rows::find(text);
    let text = &mask_lines(text, grids.iter().map(|f| f.lines.clone()));
    let aligned = aligned_rows::find(text);
    let text = &mask_lines(text, aligned.iter().map(|f| f.lines.clone()));
    let flattened = cell_lines::find(text);
    let rest = mask_lines(text, flattened.iter().map(|f| f.lines.clone()));
    let rst = rst::read(&rest);
    let rest = mask_lines(&rest, rst.hidden.iter().map(|&i| i..i + 1));
    let md = markdown::parse(&rest);
    let mut blocks = md.blocks;
    blocks.extend(rst.headings);
    blocks.extend(adoc.blocks);
    plain::headings(&rest, &mut blocks);
    if !md.html_ranges.is_empty() {
        blocks.extend(html::parse(&mask_outside(&rest, &md.html_ranges)));
    }
    blocks.extend(flattened.into_iter().map(|f| f.block));
    blocks.extend(tabbed.into_iter().map(|f| Block::Table(f.table)));
    blocks.extend(grids.into_iter().map(|f| Block::Table(f.table)));
    blocks.extend(aligned.into_iter().map(|f| Block::Table(f.table)));
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

/// Blanks the given lines (0-based ranges), keeping every line break so
/// that what is left keeps its line numbers.
fn mask_lines(text: &str, ranges: impl Iterator<Item = std::ops::Range<usize>>) -> String {
    let ranges: Vec<std::ops::Range<usize>> = ranges.collect();
    if ranges.is_empty() {
        return text.to_string();
    }
    text.split('\n')
        .enumerate()
        .map(|(i, l)| {
            if ranges.iter().any(|r| r.contains(&i)) {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
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
