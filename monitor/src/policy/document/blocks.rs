//! What the compiler reads of a document, whatever its format: headings (for
//! context), prose paragraphs and list items (for prose rules), and tables,
//! each with its line.

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
    /// A footnote set apart from the text, as a plain-text copy gives it:
    /// its mark alone on a line, then its text. Read for the rows that
    /// carry the mark, never as prose of its own.
    Footnote {
        mark: String,
        text: String,
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
            | Block::BrokenTable { line }
            | Block::Footnote { line, .. } => *line,
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
    /// An HTML `<caption>`: it often names the hosts the table is about.
    pub caption: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u32,
    pub cells: Vec<String>,
    /// How many cells the row has as written; the parsers pad or cut rows to
    /// the header's width, and the compiler warns when this differs.
    pub written_cells: usize,
}

/// Marks, while a cell is read, where one item of a list (`<li>`, `<br>`)
/// ends, so that "etcd nodes" and "worker nodes" stay two endpoints.
pub const ITEM_MARK: char = '\u{1f}';
/// [`ITEM_MARK`] as text, to push into a cell.
pub const ITEM_MARK_STR: &str = "\u{1f}";

/// A cell's text, whitespace collapsed; list items written as `<li>` or
/// split by `<br>` are joined by "; ", which the cell readers split on.
pub fn tidy_cell(s: &str) -> String {
    if !s.contains(ITEM_MARK) {
        return collapse_ws(s);
    }
    s.split(ITEM_MARK)
        .map(collapse_ws)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collapses runs of whitespace into one space and trims, as a browser shows
/// cell text.
pub fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
