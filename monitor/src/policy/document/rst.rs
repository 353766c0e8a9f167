//! Plain text laid out as reStructuredText, as documentation sites built
//! with Sphinx give it when copied or downloaded as source: section titles
//! underlined (or over- and underlined) with a run of one punctuation
//! character, and literal blocks (command and configuration examples)
//! introduced by `::` and indented. Markdown misreads both: `~~~~` under a
//! title opens a fenced code block that swallows the prose after it, and a
//! literal block indented by less than four spaces reads as a paragraph. So
//! the titles become headings here, and the titles, underlines and literal
//! blocks are blanked before the Markdown parser sees the text.
//!
//! Command lines (`$ …`, `sudo …`) are examples to type, never statements
//! of what the network needs; they are blanked in any plain text.

use super::blocks::Block;

/// What the reStructuredText reading found.
pub struct Rst {
    /// Section titles as headings, level by the order their adornment
    /// style first appears (as reStructuredText defines it).
    pub headings: Vec<Block>,
    /// Lines (0-based) to hide from the Markdown parser.
    pub hidden: Vec<usize>,
}

/// Characters reStructuredText documents underline titles with.
const ADORNMENT: &[char] = &['=', '-', '~', '^', '"', '\'', '*', '+', '#', ':', '.', '_'];

/// Reads the titles and literal blocks of `text`. Only a document with at
/// least one title underlined in a style Markdown has no heading for (`~`,
/// `^`, ...) is read as reStructuredText: `===` and `---` underlines are
/// Markdown headings already, and a Markdown document keeps its reading.
/// Command lines are found in any plain text.
pub fn read(text: &str) -> Rst {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut hidden = command_lines(&lines);
    let titles = titles(&lines);
    if !titles.iter().any(|t| !matches!(t.style.1, '=' | '-')) {
        return Rst {
            headings: Vec::new(),
            hidden,
        };
    }
    let mut styles: Vec<(bool, char)> = Vec::new();
    let mut headings = Vec::new();
    for t in &titles {
        let level = match styles.iter().position(|s| *s == t.style) {
            Some(i) => i + 1,
            None => {
                styles.push(t.style);
                styles.len()
            }
        };
        headings.push(Block::Heading {
            level: level.min(6) as u8,
            text: lines[t.line].trim().to_string(),
            line: t.line as u32 + 1,
        });
        hidden.extend(t.line.saturating_sub(usize::from(t.style.0))..=t.line + 1);
    }
    hidden.extend(literal_blocks(&lines));
    hidden.sort_unstable();
    hidden.dedup();
    Rst { headings, hidden }
}

struct Title {
    /// 0-based line of the title text.
    line: usize,
    /// Overlined too, and the underline character.
    style: (bool, char),
}

/// A line made of one adornment character repeated, at least three times.
fn adornment(line: &str) -> Option<(char, usize)> {
    let t = line.trim_end();
    let c = t.chars().next()?;
    (ADORNMENT.contains(&c) && t.len() >= 3 && t.chars().all(|x| x == c))
        .then_some((c, t.chars().count()))
}

/// Section titles: a short line standing after a blank line (or an
/// overline), underlined at least as long as itself, a blank line after.
fn titles(lines: &[&str]) -> Vec<Title> {
    let blank =
        |i: Option<usize>| i.is_none_or(|i| lines.get(i).is_none_or(|l| l.trim().is_empty()));
    let mut out = Vec::new();
    for i in 0..lines.len() {
        let text = lines[i];
        let Some((c, len)) = lines.get(i + 1).and_then(|l| adornment(l)) else {
            continue;
        };
        let words = text.trim().chars().count();
        if text.trim().is_empty()
            || text.starts_with(char::is_whitespace)
            || adornment(text).is_some()
            || len < words
            || words > 80
            || !blank(Some(i + 2))
        {
            continue;
        }
        let over = i
            .checked_sub(1)
            .and_then(|p| adornment(lines[p]))
            .is_some_and(|(o, _)| o == c);
        let before = if over {
            i.checked_sub(2)
        } else {
            i.checked_sub(1)
        };
        if !blank(before) {
            continue;
        }
        out.push(Title {
            line: i,
            style: (over, c),
        });
    }
    out
}

/// The lines of literal blocks: after a paragraph ending in `::` (or a
/// line that is only `::`), the indented lines that follow, blank lines
/// between them included.
fn literal_blocks(lines: &[&str]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].trim_end().ends_with("::") {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        while j < lines.len() && (lines[j].trim().is_empty() || lines[j].starts_with([' ', '\t'])) {
            if !lines[j].trim().is_empty() {
                out.push(j);
            }
            j += 1;
        }
        i = j.max(i + 1);
    }
    out
}

/// Shell command lines: a prompt (`$ `) or `sudo` starting the line.
fn command_lines(lines: &[&str]) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            t.starts_with("$ ") || t.starts_with("sudo ")
        })
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_take_levels_in_order_of_their_style() {
        let text = "Guide\n=====\n\nIntro.\n\nRules\n-----\n\nMonitor rules\n~~~~~~~~~~~~~\n\nText.\n\nOther\n-----\n";
        let r = read(text);
        let got: Vec<(u8, String, u32)> = r
            .headings
            .into_iter()
            .filter_map(|b| match b {
                Block::Heading { level, text, line } => Some((level, text, line)),
                _ => None,
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "Guide".into(), 1),
                (2, "Rules".into(), 6),
                (3, "Monitor rules".into(), 9),
                (2, "Other".into(), 14),
            ]
        );
        assert!(r.hidden.contains(&8) && r.hidden.contains(&9) && !r.hidden.contains(&10));
    }

    #[test]
    fn markdown_setext_headings_are_left_to_markdown() {
        let r = read("Title\n=====\n\nText.\n\nPart\n----\n\nMore.\n");
        assert!(r.headings.is_empty() && r.hidden.is_empty());
        // A tilde fence after a paragraph line is code, not a title.
        assert!(read("Run this:\n~~~\nls\n~~~\n").headings.is_empty());
    }

    #[test]
    fn literal_blocks_and_commands_are_hidden() {
        let text = "Rules\n~~~~~\n\nFor example::\n\n  open 80\n\n  open 81\nBack to text.\n\n$ curl host:443\n";
        let r = read(text);
        assert!(r.hidden.contains(&5) && r.hidden.contains(&7));
        assert!(!r.hidden.contains(&8));
        assert!(r.hidden.contains(&10));
    }
}
