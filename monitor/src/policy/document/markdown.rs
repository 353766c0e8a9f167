//! Markdown side of a document, read with pulldown-cmark (GFM tables on).
//! Byte ranges from its offset iterator give every block its source line.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::blocks::{Block, ITEM_MARK_STR, ProseKind, Row, Table, collapse_ws, tidy_cell};
use crate::policy::lines::LineIndex;

pub struct Parsed {
    pub blocks: Vec<Block>,
    /// Source ranges of raw HTML, for the HTML parser.
    pub html_ranges: Vec<Range<usize>>,
}

/// Text being collected for a block that is still open.
struct Capture {
    kind: CaptureKind,
    line: u32,
    text: String,
    code: Vec<String>,
}

#[derive(PartialEq)]
enum CaptureKind {
    Heading(u8),
    Paragraph,
    Item,
    Cell,
}

#[derive(Default)]
struct TableBuilder {
    line: u32,
    header: Vec<String>,
    rows: Vec<Row>,
    row: Vec<String>,
    row_line: u32,
    row_written: usize,
}

pub fn parse(text: &str) -> Parsed {
    let lines = LineIndex::new(text);
    let options = Options::ENABLE_TABLES | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut blocks = Vec::new();
    let mut html_ranges: Vec<Range<usize>> = Vec::new();
    let mut stack: Vec<Capture> = Vec::new();
    let mut table: Option<TableBuilder> = None;
    let mut in_metadata = false;

    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        let line = lines.line(range.start);
        match event {
            Event::Start(tag) => match tag {
                Tag::Heading { level, .. } => {
                    stack.push(Capture::new(CaptureKind::Heading(level as u8), line))
                }
                // Paragraphs inside list items belong to the item.
                Tag::Paragraph if !matches!(stack.last(), Some(c) if c.kind == CaptureKind::Item) =>
                {
                    if looks_like_pipe_row(&text[range.clone()]) {
                        blocks.push(Block::BrokenTable { line });
                    }
                    stack.push(Capture::new(CaptureKind::Paragraph, line));
                }
                Tag::Item => stack.push(Capture::new(CaptureKind::Item, line)),
                Tag::Table(_) => {
                    table = Some(TableBuilder {
                        line,
                        ..TableBuilder::default()
                    })
                }
                Tag::TableHead | Tag::TableRow => {
                    if let Some(t) = table.as_mut() {
                        t.row.clear();
                        t.row_line = line;
                        t.row_written = written_cells(&text[range.clone()]);
                    }
                }
                Tag::TableCell => stack.push(Capture::new(CaptureKind::Cell, line)),
                Tag::MetadataBlock(_) => in_metadata = true,
                Tag::HtmlBlock => html_ranges.push(range.clone()),
                _ => {}
            },
            Event::End(end) => match end {
                TagEnd::Heading(_) | TagEnd::Paragraph | TagEnd::Item => {
                    let expected = match end {
                        TagEnd::Heading(_) => None,
                        TagEnd::Paragraph => Some(CaptureKind::Paragraph),
                        _ => Some(CaptureKind::Item),
                    };
                    let top_matches = match (&expected, stack.last()) {
                        (None, Some(c)) => matches!(c.kind, CaptureKind::Heading(_)),
                        (Some(k), Some(c)) => c.kind == *k,
                        _ => false,
                    };
                    if top_matches && let Some(c) = stack.pop() {
                        blocks.push(c.into_block());
                    }
                }
                TagEnd::TableCell => {
                    if let (Some(c), Some(t)) = (stack.pop(), table.as_mut()) {
                        t.row.push(tidy_cell(&c.text));
                    }
                }
                TagEnd::TableHead => {
                    if let Some(t) = table.as_mut() {
                        t.header = std::mem::take(&mut t.row);
                    }
                }
                TagEnd::TableRow => {
                    if let Some(t) = table.as_mut() {
                        let cells = std::mem::take(&mut t.row);
                        t.rows.push(Row {
                            line: t.row_line,
                            cells,
                            written_cells: t.row_written,
                        });
                    }
                }
                TagEnd::Table => {
                    if let Some(t) = table.take() {
                        blocks.push(Block::Table(Table {
                            line: t.line,
                            header: t.header,
                            rows: t.rows,
                            header_from_first_row: false,
                            caption: None,
                        }));
                    }
                }
                TagEnd::MetadataBlock(_) => in_metadata = false,
                _ => {}
            },
            Event::Text(t) => {
                if !in_metadata && let Some(c) = stack.last_mut() {
                    c.text.push_str(&t);
                }
            }
            Event::Code(code) => {
                if let Some(c) = stack.last_mut() {
                    c.text.push_str(&code);
                    c.code.push(code.to_string());
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(c) = stack.last_mut() {
                    c.text.push(' ');
                }
            }
            // HTML inside a pipe-table cell is read here, not by the HTML
            // parser: list items and line breaks separate the cell's items,
            // `<sup>n</sup>` is a footnote marker like `[^n]`.
            Event::InlineHtml(tag) if matches!(stack.last(), Some(c) if c.kind == CaptureKind::Cell) => {
                if let Some(c) = stack.last_mut() {
                    c.text.push_str(cell_html(&tag));
                }
            }
            Event::Html(_) | Event::InlineHtml(_) => {
                // Consecutive HTML lines of one block come as separate events
                // inside an HtmlBlock whose range is already recorded.
                let covered = html_ranges
                    .last()
                    .is_some_and(|r| r.start <= range.start && range.end <= r.end);
                if !covered {
                    html_ranges.push(range.clone());
                }
            }
            _ => {}
        }
    }
    Parsed {
        blocks,
        html_ranges,
    }
}

/// What an inline HTML tag inside a cell stands for in the cell's text.
fn cell_html(tag: &str) -> &'static str {
    let name: String = tag
        .trim_start_matches('<')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect::<String>()
        .to_ascii_lowercase();
    match name.as_str() {
        "li" | "br" | "br/" | "p" => ITEM_MARK_STR,
        "sup" => "[^",
        "/sup" => "]",
        _ => "",
    }
}

impl Capture {
    fn new(kind: CaptureKind, line: u32) -> Self {
        Capture {
            kind,
            line,
            text: String::new(),
            code: Vec::new(),
        }
    }

    fn into_block(self) -> Block {
        let text = collapse_ws(&self.text);
        match self.kind {
            CaptureKind::Heading(level) => Block::Heading {
                level,
                text,
                line: self.line,
            },
            CaptureKind::Item => Block::Prose {
                kind: ProseKind::ListItem,
                text,
                code: self.code,
                line: self.line,
            },
            CaptureKind::Paragraph | CaptureKind::Cell => Block::Prose {
                kind: ProseKind::Paragraph,
                text,
                code: self.code,
                line: self.line,
            },
        }
    }
}

/// A paragraph whose first line is `|a|b|`: a pipe table the parser did not
/// accept.
fn looks_like_pipe_row(source: &str) -> bool {
    let first = source.lines().next().unwrap_or("").trim();
    first.starts_with('|') && first.matches('|').count() >= 3
}

/// Cells of a pipe-table row as written: unescaped pipes, minus the optional
/// leading and trailing ones.
fn written_cells(source: &str) -> usize {
    let row = source.lines().next().unwrap_or("").trim();
    let mut pipes = 0usize;
    let mut escaped = false;
    for c in row.chars() {
        match c {
            '\\' if !escaped => {
                escaped = true;
                continue;
            }
            '|' if !escaped => pipes += 1,
            _ => {}
        }
        escaped = false;
    }
    let leading = usize::from(row.starts_with('|'));
    let trailing = usize::from(row.len() > 1 && row.ends_with('|') && !row.ends_with("\\|"));
    (pipes + 1).saturating_sub(leading + trailing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_written_cells() {
        assert_eq!(written_cells("|a|b|c|"), 3);
        assert_eq!(written_cells("a|b"), 2);
        assert_eq!(written_cells("|a|b\\|c|"), 2);
        assert_eq!(written_cells("|a|b|c|  "), 3);
    }

    #[test]
    fn table_rows_have_lines_and_prose_has_code() {
        let text = "intro `a.example.com` x\n\n|Port|Use|\n|-|-|\n|1|a|\n|2|b|c|\n\n- item `s3.example.com`\n";
        let parsed = parse(text);
        let table = parsed
            .blocks
            .iter()
            .find_map(|b| match b {
                Block::Table(t) => Some(t),
                _ => None,
            })
            .unwrap();
        assert_eq!(table.header, vec!["Port", "Use"]);
        assert_eq!(table.rows[1].line, 6);
        assert_eq!(table.rows[1].written_cells, 3);
        assert!(parsed.blocks.iter().any(|b| matches!(b,
            Block::Prose { kind: ProseKind::ListItem, code, line: 8, .. } if code == &["s3.example.com"])));
    }

    #[test]
    fn pipe_text_without_delimiter_is_flagged() {
        let parsed = parse("|Port|Protocol|\n|80|TCP|\n");
        assert!(matches!(parsed.blocks[0], Block::BrokenTable { line: 1 }));
    }
}
