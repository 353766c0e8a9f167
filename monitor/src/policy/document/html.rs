//! HTML side of a document, read with html5ever's spec-compliant tokenizer,
//! which reports the line of every token: the line of a `<tr>` is the
//! provenance of its row. Tables are rebuilt from the tokens with the
//! implied-end-tag rules that matter for tables (a new `<tr>` or `<td>`
//! closes the previous one), so sloppy real-world markup still reads right.

use std::cell::RefCell;

use html5ever::{
    TokenizerResult, local_name,
    tendril::StrTendril,
    tokenizer::{
        BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
        states::RawKind,
    },
};

use super::blocks::{Block, ITEM_MARK_STR, ProseKind, Row, Table, collapse_ws, tidy_cell};

/// Tables of the HTML in `text`, plus its headings (section context).
pub fn parse(text: &str) -> Vec<Block> {
    let sink = Sink::default();
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(text));
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    // The sink never blocks on scripts, so `feed` only returns `Script` if
    // the tokenizer changes; feed until the queue is drained either way.
    while let TokenizerResult::Script(()) = tokenizer.feed(&input) {}
    tokenizer.end();
    let state = tokenizer.sink.state.into_inner();
    state.blocks
}

#[derive(Default)]
struct Sink {
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    blocks: Vec<Block>,
    /// Open tables, innermost last (tables may nest).
    tables: Vec<TableBuilder>,
    heading: Option<(u8, u32, String)>,
    /// Paragraph or list item outside tables, for prose rules in HTML pages.
    prose: Option<ProseBuilder>,
}

struct ProseBuilder {
    kind: ProseKind,
    line: u32,
    text: String,
    code: Vec<String>,
    /// Text of an open `<code>` element.
    in_code: Option<String>,
    /// An open `<sup>` that starts the paragraph: a footnote's mark.
    note_mark: bool,
}

impl ProseBuilder {
    fn new(kind: ProseKind, line: u32) -> Self {
        ProseBuilder {
            kind,
            line,
            text: String::new(),
            code: Vec::new(),
            in_code: None,
            note_mark: false,
        }
    }
}

#[derive(Default)]
struct TableBuilder {
    /// Cells of earlier rows that span down: per column, rows left and text.
    carried: Vec<Option<(usize, String)>>,
    header: Option<(u32, Vec<String>)>,
    rows: Vec<Row>,
    row: Option<RowBuilder>,
    in_thead: bool,
    caption: Option<String>,
    in_caption: bool,
}

struct RowBuilder {
    line: u32,
    /// Cells as written, with their (colspan, rowspan).
    cells: Vec<(String, usize, usize)>,
    all_th: bool,
    cell: Option<String>,
    span: (usize, usize),
}

/// Spans past this are clamped: a hostile `colspan="100000"` must not make
/// a row of a hundred thousand cells.
const MAX_SPAN: usize = 64;

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, line_number: u64) -> TokenSinkResult<()> {
        let line = u32::try_from(line_number).unwrap_or(u32::MAX);
        let mut state = self.state.borrow_mut();
        match token {
            Token::TagToken(tag) => {
                let start = tag.kind == TagKind::StartTag;
                match tag.name {
                    local_name!("script") if start => {
                        return TokenSinkResult::RawData(RawKind::ScriptData);
                    }
                    local_name!("style") if start => {
                        return TokenSinkResult::RawData(RawKind::Rawtext);
                    }
                    local_name!("textarea") | local_name!("title") if start => {
                        return TokenSinkResult::RawData(RawKind::Rcdata);
                    }
                    local_name!("table") if start => {
                        state.close_prose();
                        state.tables.push(TableBuilder::default());
                    }
                    local_name!("table") => state.close_table(),
                    local_name!("thead") => {
                        if let Some(t) = state.tables.last_mut() {
                            t.in_thead = start;
                        }
                    }
                    local_name!("caption") => {
                        if let Some(t) = state.tables.last_mut() {
                            t.in_caption = start;
                            if start {
                                t.caption = Some(String::new());
                            }
                        }
                    }
                    // Inside a cell, list items and line breaks separate
                    // items, and `<sup>n</sup>` is a footnote marker `[^n]`.
                    local_name!("br") | local_name!("li")
                        if state.in_cell() && (start || tag.name == local_name!("li")) =>
                    {
                        state.push_text(ITEM_MARK_STR);
                    }
                    // `</br>`: nothing to separate.
                    local_name!("br") if state.in_cell() => {}
                    local_name!("sup") if state.in_cell() => {
                        state.push_text(if start { "[^" } else { "]" });
                    }
                    // "<p><sup>3</sup> A profiling port is open only when
                    // ...": a paragraph that opens with a superscript is
                    // the note of the cells marked with it, `[^3]: ...`.
                    local_name!("sup") if state.tables.is_empty() => {
                        if let Some(p) = state.prose.as_mut() {
                            if start && p.text.trim().is_empty() && p.in_code.is_none() {
                                p.note_mark = true;
                                p.text.push_str("[^");
                            } else if !start && p.note_mark {
                                p.note_mark = false;
                                p.text.push_str("]: ");
                            }
                        }
                    }
                    local_name!("tr") if start => {
                        if let Some(t) = state.tables.last_mut() {
                            t.close_row();
                            t.row = Some(RowBuilder::new(line));
                        }
                    }
                    local_name!("tr") => {
                        if let Some(t) = state.tables.last_mut() {
                            t.close_row();
                        }
                    }
                    local_name!("td") | local_name!("th") if start => {
                        let is_th = tag.name == local_name!("th");
                        let span = |name: &str| {
                            tag.attrs
                                .iter()
                                .find(|a| &*a.name.local == name)
                                .and_then(|a| a.value.trim().parse::<usize>().ok())
                                .map_or(1, |n| n.clamp(1, MAX_SPAN))
                        };
                        let (colspan, rowspan) = (span("colspan"), span("rowspan"));
                        if let Some(t) = state.tables.last_mut() {
                            let row = t.row.get_or_insert_with(|| RowBuilder::new(line));
                            row.close_cell();
                            row.all_th &= is_th;
                            row.cell = Some(String::new());
                            row.span = (colspan, rowspan);
                        }
                    }
                    local_name!("td") | local_name!("th") => {
                        if let Some(row) = state.tables.last_mut().and_then(|t| t.row.as_mut()) {
                            row.close_cell();
                        }
                    }
                    local_name!("p") | local_name!("li") if state.tables.is_empty() => {
                        state.close_prose();
                        if start {
                            let kind = if tag.name == local_name!("li") {
                                ProseKind::ListItem
                            } else {
                                ProseKind::Paragraph
                            };
                            state.prose = Some(ProseBuilder::new(kind, line));
                        }
                    }
                    // A definition list: "term: definition", read like a
                    // list item (categories of traffic a table names).
                    local_name!("dt") if state.tables.is_empty() => {
                        if start {
                            state.close_prose();
                            state.prose = Some(ProseBuilder::new(ProseKind::ListItem, line));
                        }
                    }
                    local_name!("dd") if state.tables.is_empty() => {
                        if start {
                            match state.prose.as_mut() {
                                Some(p) => p.text.push_str(": "),
                                None => {
                                    state.prose = Some(ProseBuilder::new(ProseKind::ListItem, line))
                                }
                            }
                        } else {
                            state.close_prose();
                        }
                    }
                    local_name!("ul") | local_name!("ol") | local_name!("dl")
                        if state.tables.is_empty() =>
                    {
                        state.close_prose();
                    }
                    local_name!("code") => {
                        if let Some(p) = state.prose.as_mut() {
                            if start {
                                p.in_code = Some(String::new());
                            } else if let Some(code) = p.in_code.take() {
                                p.code.push(code.trim().to_string());
                            }
                        }
                    }
                    local_name!("br")
                    | local_name!("p")
                    | local_name!("div")
                    | local_name!("li") => {
                        state.push_text(" ");
                    }
                    local_name!("h1")
                    | local_name!("h2")
                    | local_name!("h3")
                    | local_name!("h4")
                    | local_name!("h5")
                    | local_name!("h6") => {
                        if start && state.tables.is_empty() {
                            state.close_prose();
                            let level = tag.name.as_bytes()[1] - b'0';
                            state.heading = Some((level, line, String::new()));
                        } else if let Some((level, hline, text)) = state.heading.take() {
                            state.blocks.push(Block::Heading {
                                level,
                                text: collapse_ws(&text),
                                line: hline,
                            });
                        }
                    }
                    _ => {}
                }
            }
            Token::CharacterTokens(text) => state.push_text(&text),
            Token::EOFToken => {
                while !state.tables.is_empty() {
                    state.close_table();
                }
                state.close_prose();
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

impl State {
    fn in_cell(&self) -> bool {
        self.tables
            .last()
            .and_then(|t| t.row.as_ref())
            .is_some_and(|r| r.cell.is_some())
    }

    fn push_text(&mut self, text: &str) {
        if let Some(caption) = self
            .tables
            .last_mut()
            .filter(|t| t.in_caption)
            .and_then(|t| t.caption.as_mut())
        {
            caption.push_str(text);
        } else if let Some(cell) = self
            .tables
            .last_mut()
            .and_then(|t| t.row.as_mut())
            .and_then(|r| r.cell.as_mut())
        {
            cell.push_str(text);
        } else if let Some((_, _, heading)) = self.heading.as_mut() {
            heading.push_str(text);
        } else if let Some(p) = self.prose.as_mut() {
            p.text.push_str(text);
            if let Some(code) = p.in_code.as_mut() {
                code.push_str(text);
            }
        }
    }

    fn close_prose(&mut self) {
        let Some(p) = self.prose.take() else {
            return;
        };
        let text = collapse_ws(&p.text);
        if !text.is_empty() {
            self.blocks.push(Block::Prose {
                kind: p.kind,
                text,
                code: p.code,
                line: p.line,
            });
        }
    }

    fn close_table(&mut self) {
        let Some(mut t) = self.tables.pop() else {
            return;
        };
        t.close_row();
        let (line, header, header_from_first_row) = match t.header {
            Some((line, header)) => (line, header, false),
            // Without header cells the first row is taken as the header, as
            // many hand-written tables do with bold <td>s.
            None if !t.rows.is_empty() => {
                let first = t.rows.remove(0);
                (first.line, first.cells, true)
            }
            None => return,
        };
        self.blocks.push(Block::Table(Table {
            line,
            header,
            rows: t.rows,
            header_from_first_row,
            caption: t.caption.map(|c| collapse_ws(&c)).filter(|c| !c.is_empty()),
        }));
    }
}

impl TableBuilder {
    fn close_row(&mut self) {
        let Some(mut row) = self.row.take() else {
            return;
        };
        row.close_cell();
        if row.cells.is_empty() {
            return;
        }
        let written = row.cells.len();
        let spanned = row.cells.iter().any(|(_, c, r)| *c > 1 || *r > 1)
            || self.carried.iter().any(Option::is_some);
        let cells: Vec<String> = if spanned {
            self.lay_out(std::mem::take(&mut row.cells))
        } else {
            row.cells.drain(..).map(|(t, _, _)| t).collect()
        };
        let mut row = RowDone {
            line: row.line,
            cells,
            all_th: row.all_th,
        };
        if self.header.is_none() && (self.in_thead || row.all_th) {
            self.header = Some((row.line, std::mem::take(&mut row.cells)));
            return;
        }
        // A second header row ("Type of installation" over "All" and
        // "Distributed"): each column's name is both rows' words.
        if self.rows.is_empty()
            && row.all_th
            && let Some((_, header)) = self.header.as_mut()
        {
            for (i, more) in row.cells.iter().enumerate() {
                match header.get_mut(i) {
                    Some(h) if h != more => *h = format!("{h} {more}"),
                    Some(_) => {}
                    None => header.push(more.clone()),
                }
            }
            return;
        }
        // A row spread by spans counts as complete.
        let written = if spanned { row.cells.len() } else { written };
        self.rows.push(Row {
            line: row.line,
            cells: row.cells,
            written_cells: written,
        });
    }

    /// Places a row's cells in the grid: columns still covered by a
    /// `rowspan` from above take that cell's text, a `colspan` repeats its
    /// text in every column it covers.
    fn lay_out(&mut self, written: Vec<(String, usize, usize)>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut cells = written.into_iter();
        let mut col = 0;
        loop {
            if let Some(Some((left, text))) = self.carried.get_mut(col) {
                out.push(text.clone());
                *left -= 1;
                if *left == 0 {
                    self.carried[col] = None;
                }
                col += 1;
                continue;
            }
            let Some((text, colspan, rowspan)) = cells.next() else {
                break;
            };
            for _ in 0..colspan {
                if self.carried.len() <= col {
                    self.carried.resize(col + 1, None);
                }
                if rowspan > 1 {
                    self.carried[col] = Some((rowspan - 1, text.clone()));
                }
                out.push(text.clone());
                col += 1;
            }
        }
        // Spans that reach past the cells written on this row.
        while col < self.carried.len() {
            if let Some((left, text)) = self.carried[col].as_mut() {
                out.push(text.clone());
                *left -= 1;
                if *left == 0 {
                    self.carried[col] = None;
                }
            } else {
                break;
            }
            col += 1;
        }
        out
    }
}

/// A finished row before it is filed as header or body.
struct RowDone {
    line: u32,
    cells: Vec<String>,
    all_th: bool,
}

impl RowBuilder {
    fn new(line: u32) -> Self {
        RowBuilder {
            line,
            cells: Vec::new(),
            all_th: true,
            cell: None,
            span: (1, 1),
        }
    }

    fn close_cell(&mut self) {
        if let Some(cell) = self.cell.take() {
            self.cells
                .push((tidy_cell(&cell), self.span.0, self.span.1));
            self.span = (1, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Vec<Table> {
        parse(text)
            .into_iter()
            .filter_map(|b| match b {
                Block::Table(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_paragraph_opening_with_a_superscript_is_a_note() {
        let blocks =
            parse("<p><sup>3</sup> Open only when the probe is on.</p><p>See <sup>3</sup>.</p>");
        let texts: Vec<&str> = blocks
            .iter()
            .filter_map(|b| match b {
                Block::Prose { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts[0], "[^3]: Open only when the probe is on.");
        assert_eq!(texts[1], "See 3.");
    }

    #[test]
    fn rows_carry_the_line_of_their_tr() {
        let t = &tables(
            "<table>\n<thead><tr>\n<th>Port</th><th>Use</th></tr></thead>\n<tbody>\n<tr>\n <td>80/(443 or 4443)</td>\n <td>Inbound <b>and</b> Outbound &amp; more</td>\n</tr>\n</tbody></table>",
        )[0];
        assert_eq!(t.line, 2);
        assert_eq!(t.header, vec!["Port", "Use"]);
        assert_eq!(t.rows[0].line, 5);
        assert_eq!(
            t.rows[0].cells,
            vec!["80/(443 or 4443)", "Inbound and Outbound & more"]
        );
    }

    #[test]
    fn implied_end_tags_and_unclosed_table() {
        let t = &tables("<table><tr><th>Port<th>Use\n<tr><td>22<td>ssh\n<tr><td>53<td>dns")[0];
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[1].cells, vec!["53", "dns"]);
        assert_eq!(t.rows[1].line, 3);
    }

    #[test]
    fn definition_lists_are_term_colon_definition_items() {
        let blocks = parse("<dl>\n<dt>Edge</dt><dd>From the edge hosts.</dd>\n</dl>");
        assert!(matches!(
            &blocks[0],
            Block::Prose { kind: ProseKind::ListItem, text, line: 2, .. }
                if text == "Edge: From the edge hosts."
        ));
    }

    #[test]
    fn paragraphs_and_list_items_with_code() {
        let blocks = parse(
            "<p>Uploads use\n<code>https</code> on port 443.</p>\n<ul>\n<li><code>s3.example.com</code></li>\n<li>b</li></ul>",
        );
        assert_eq!(
            blocks[0],
            Block::Prose {
                kind: ProseKind::Paragraph,
                text: "Uploads use https on port 443.".into(),
                code: vec!["https".into()],
                line: 1
            }
        );
        assert!(
            matches!(&blocks[1], Block::Prose { kind: ProseKind::ListItem, code, line: 4, .. } if code == &["s3.example.com"])
        );
        assert_eq!(blocks.len(), 3);
    }

    #[test]
    fn spans_and_two_header_rows() {
        let t = &tables(
            "<table><tr><th rowspan=\"2\">Port</th><th colspan=\"2\">Type</th></tr>\n<tr><th>All</th><th>Distributed</th></tr>\n<tr><td rowspan=\"2\">80</td><td>X</td><td></td></tr>\n<tr><td></td><td>X</td></tr></table>",
        )[0];
        assert_eq!(t.header, vec!["Port", "Type All", "Type Distributed"]);
        assert_eq!(t.rows[1].cells, vec!["80", "", "X"]);
        assert_eq!(t.rows[1].line, 4);
    }

    #[test]
    fn script_content_is_not_a_table() {
        assert!(
            tables("<script>var s = '<table><tr><td>1</td></tr></table>';</script>").is_empty()
        );
    }
}
