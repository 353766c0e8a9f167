//! Headings of a plain-text document. A page copied from a browser loses
//! its heading markup: a heading is then a short line standing alone
//! between blank lines ("Incoming ports"), which Markdown reads as a
//! one-line paragraph. Only in a document with no Markdown heading at all,
//! so that a Markdown author's short paragraphs stay prose.

use super::blocks::{Block, ProseKind};

/// Turns the one-line paragraphs of `blocks` that read as headings into
/// headings: the first line of the document is its title (level 1), the
/// others are sections (level 2).
pub fn headings(text: &str, blocks: &mut [Block]) {
    if blocks.iter().any(|b| matches!(b, Block::Heading { .. })) {
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| !l.trim().is_empty());
    for block in blocks.iter_mut() {
        let Block::Prose {
            kind: ProseKind::Paragraph,
            text,
            line,
            ..
        } = block
        else {
            continue;
        };
        let at = *line as usize - 1;
        let alone = |i: Option<usize>| {
            i.and_then(|i| lines.get(i))
                .is_none_or(|l| l.trim().is_empty())
        };
        if at >= lines.len() || !alone(at.checked_sub(1)) {
            continue;
        }
        if !alone(Some(at + 1)) || !heading_like(text) {
            continue;
        }
        let level = if Some(at) == first { 1 } else { 2 };
        *block = Block::Heading {
            level,
            text: std::mem::take(text),
            line: *line,
        };
    }
}

/// A few words starting with a capital, not a sentence or a list item.
fn heading_like(text: &str) -> bool {
    let t = text.trim();
    let words = t.split_whitespace().count();
    (1..=6).contains(&words)
        && t.len() <= 60
        && t.starts_with(|c: char| c.is_uppercase())
        && !t.ends_with(['.', ',', ';', ':', '!', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document::parse;

    fn headings_of(text: &str) -> Vec<(u8, String, u32)> {
        parse(text)
            .into_iter()
            .filter_map(|b| match b {
                Block::Heading { level, text, line } => Some((level, text, line)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn short_standalone_lines_are_headings() {
        let text = "Cluster node ports\n\nThe cluster needs these ports.\n\nIncoming ports\n\nPort 443\nhas to stay open.\n";
        assert_eq!(
            headings_of(text),
            vec![
                (1, "Cluster node ports".to_string(), 1),
                (2, "Incoming ports".to_string(), 5),
            ]
        );
    }

    #[test]
    fn markdown_documents_keep_their_headings() {
        assert_eq!(
            headings_of("# Ports\n\nShort line\n\nText.\n"),
            vec![(1, "Ports".to_string(), 1)]
        );
    }
}
