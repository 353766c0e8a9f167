//! Port cells as vendors write them: `443`, `9200, 9300-9400`, `25 or 587`,
//! `80/(443 or 4443)`, `80/443`, `53/udp`, `ICMP`.
//!
//! `,` `/` `and` `&` join ports that are all needed; `or` joins alternatives
//! (the site uses one). A cell becomes groups: consecutive needed ports form
//! one group, each set of alternatives its own, so `80/(443 or 4443)` is
//! "80" plus "one of 443, 4443".

use crate::policy::model::{PortRange, Proto};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortCell {
    pub groups: Vec<PortGroup>,
    /// The cell names ICMP instead of ports.
    pub icmp: bool,
    /// Protocols written next to the ports (`53/udp`).
    pub protos: Vec<Proto>,
    /// Readings worth recording (e.g. how a `/` was understood).
    pub notes: Vec<String>,
    /// Readings that are guesses: also warned about.
    pub guesses: Vec<String>,
    /// Footnote markers glued to the ports (`8600[^1]`, `7450†`).
    pub markers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    pub ranges: Vec<PortRange>,
    pub alternatives: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Num(u64),
    Dash,
    /// `20000+`: from that port up.
    Plus,
    And,
    Slash,
    Or,
    Open,
    Close,
    Word(String),
}

/// A cell longer than this is prose, not a port list; refusing it bounds the
/// work per cell.
const MAX_CELL: usize = 512;

pub fn parse(cell: &str) -> Result<PortCell, String> {
    let (bare, markers) = super::super::footnotes::split_markers(cell);
    let strict = parse_strict(&bare);
    let mut read = match strict {
        Ok(read) => read,
        Err(e) => loose(&bare).ok_or(e)?,
    };
    read.markers = markers;
    Ok(read)
}

/// Cells the strict grammar refuses but whose ports are plain once the
/// protocol words are taken out: `TCP/8089`, `1514/UDP`, `30000-32767 TCP /
/// UDP`, `Port (5432)`, `[9300:9400]/TCP`, `ICMP 8/0` (an ICMP type).
fn loose(cell: &str) -> Option<PortCell> {
    let lower = cell.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.first().is_some_and(|w| is_icmp(w)) {
        let rest = words[1..].join("/");
        let mut notes = Vec::new();
        if !rest.is_empty() {
            notes.push(format!(
                "ICMP {rest}: type/code; the rule allows ICMP (types are not matched)"
            ));
        }
        return Some(PortCell {
            groups: Vec::new(),
            icmp: true,
            protos: vec![Proto::Icmp],
            notes,
            guesses: Vec::new(),
            markers: Vec::new(),
        });
    }
    let mut protos = Vec::new();
    let mut kept = String::with_capacity(cell.len());
    let mut word = String::new();
    let flush = |word: &mut String, kept: &mut String, protos: &mut Vec<Proto>| {
        match word.to_lowercase().as_str() {
            "tcp" => protos.push(Proto::Tcp),
            "udp" => protos.push(Proto::Udp),
            "port" | "ports" => {}
            _ => kept.push_str(word),
        }
        word.clear();
    };
    for c in cell.chars() {
        if c.is_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut kept, &mut protos);
            kept.push(c);
        }
    }
    flush(&mut word, &mut kept, &mut protos);
    // The separators the protocol words leave behind: "8089", not "/8089".
    let cleaned: String = kept
        .split('/')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    if cleaned == cell.trim() || cleaned.is_empty() {
        return None;
    }
    let mut read = parse_strict(&cleaned).ok()?;
    protos.dedup();
    for p in protos {
        if !read.protos.contains(&p) {
            read.protos.push(p);
        }
    }
    read.notes.push(format!(
        "ports {cell:?} read as {cleaned:?} with its protocols"
    ));
    Some(read)
}

fn parse_strict(cell: &str) -> Result<PortCell, String> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Err("no port given".into());
    }
    if cell.len() > MAX_CELL {
        return Err(format!(
            "port cell is {} characters long; not a port list",
            cell.len()
        ));
    }
    let (cell, comments) = strip_comments(cell);
    let cell = cell.as_str();
    let toks = lex(cell)?;
    if let [Tok::Word(w)] = toks.as_slice() {
        if is_icmp(w) {
            return Ok(PortCell {
                groups: Vec::new(),
                icmp: true,
                protos: vec![Proto::Icmp],
                notes: Vec::new(),
                guesses: Vec::new(),
                markers: Vec::new(),
            });
        }
        return Err(format!("{cell:?} names no port"));
    }
    let mut parser = Parser {
        toks: &toks,
        pos: 0,
        protos: Vec::new(),
        slash_seen: false,
        open_ended: false,
        depth: 0,
    };
    let items = parser.seq()?;
    if parser.pos != toks.len() {
        return Err(format!(
            "cannot read {cell:?} as ports (stray {:?})",
            toks[parser.pos]
        ));
    }
    let mut groups: Vec<PortGroup> = Vec::new();
    for item in items {
        match item {
            Item::All(ranges) => match groups.last_mut() {
                Some(g) if !g.alternatives => g.ranges.extend(ranges),
                _ => groups.push(PortGroup {
                    ranges,
                    alternatives: false,
                }),
            },
            Item::Any(ranges) => groups.push(PortGroup {
                ranges,
                alternatives: true,
            }),
        }
    }
    let mut notes: Vec<String> = comments
        .iter()
        .map(|c| format!("({c}) in the port cell is a comment: ignored"))
        .collect();
    if parser.open_ended {
        notes.push(format!("ports {cell:?}: 'N+' read as N-65535"));
    }
    let mut guesses = Vec::new();
    if parser.slash_seen {
        // "80/443" may mean either; allowing both is the reading that cannot
        // break the service.
        guesses.push(format!(
            "ports {cell:?}: '/' read as 'and' (every port listed is allowed)"
        ));
    }
    if groups.iter().any(|g| g.alternatives) {
        notes.push(format!(
            "ports {cell:?}: 'or' read as alternatives: all are allowed, the site uses one"
        ));
    }
    if groups.is_empty() {
        return Err(format!("{cell:?} names no port"));
    }
    Ok(PortCell {
        groups,
        icmp: false,
        protos: parser.protos,
        notes,
        guesses,
        markers: Vec::new(),
    })
}

/// Splits off parenthesised words that name no port (`443 (HTTPS)`).
fn strip_comments(cell: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(cell.len());
    let mut comments = Vec::new();
    let mut rest = cell;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        out.push_str(&rest[..open]);
        // "(5432)", "(8080-8090)" hold ports; "(POP3)", "(secure IMAP4)"
        // name a protocol whose name has a digit in it.
        let holds_number = inner
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|w| w.starts_with(|c: char| c.is_ascii_digit()));
        if holds_number || inner.trim().is_empty() {
            out.push_str(&rest[open..=close]);
        } else {
            comments.push(inner.trim().to_string());
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    (out.trim().to_string(), comments)
}

fn is_icmp(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "icmp" | "icmpv6" | "ping"
    )
}

fn lex(cell: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = cell.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '0'..='9' => {
                let mut end = i;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_digit() {
                        end = j + 1;
                        chars.next();
                    } else {
                        break;
                    }
                }
                let digits = &cell[i..end];
                // More than 6 digits cannot be a port; say so without overflow.
                let n = if digits.len() > 6 {
                    u64::MAX
                } else {
                    digits.parse().unwrap_or(u64::MAX)
                };
                toks.push(Tok::Num(n));
            }
            '-' | '\u{2013}' | '\u{2014}' | ':' => {
                toks.push(Tok::Dash);
                chars.next();
            }
            '+' => {
                chars.next();
                // "8200 + 8201" joins two ports; "20000+" is open-ended.
                let joins = cell[i + 1..]
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_digit());
                let open_ended = matches!(toks.last(), Some(Tok::Num(_)))
                    && !joins
                    && chars
                        .peek()
                        .is_none_or(|&(_, n)| n.is_whitespace() || matches!(n, ',' | ';' | ')'));
                toks.push(if open_ended { Tok::Plus } else { Tok::And });
            }
            ',' | ';' | '&' => {
                toks.push(Tok::And);
                chars.next();
            }
            '/' => {
                toks.push(Tok::Slash);
                chars.next();
            }
            '|' => {
                toks.push(Tok::Or);
                chars.next();
            }
            '(' | '[' => {
                toks.push(Tok::Open);
                chars.next();
            }
            ')' | ']' => {
                toks.push(Tok::Close);
                chars.next();
            }
            c if c.is_alphabetic() => {
                let mut end = i;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_alphanumeric() {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = cell[i..end].to_lowercase();
                toks.push(match word.as_str() {
                    "or" => Tok::Or,
                    "and" => Tok::And,
                    "to" | "through" => Tok::Dash,
                    _ => Tok::Word(word),
                });
            }
            other => return Err(format!("unexpected {other:?} in port list {cell:?}")),
        }
    }
    Ok(toks)
}

enum Item {
    All(Vec<PortRange>),
    Any(Vec<PortRange>),
}

struct Parser<'t> {
    toks: &'t [Tok],
    pos: usize,
    protos: Vec<Proto>,
    slash_seen: bool,
    open_ended: bool,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// item (sep item)*
    fn seq(&mut self) -> Result<Vec<Item>, String> {
        let mut items = vec![self.alt()?];
        loop {
            match self.peek() {
                Some(Tok::And) => self.pos += 1,
                Some(Tok::Slash) => {
                    self.pos += 1;
                    // `53/udp`: a protocol, not another port.
                    if let Some(Tok::Word(w)) = self.peek() {
                        let proto = match w.as_str() {
                            "tcp" => Proto::Tcp,
                            "udp" => Proto::Udp,
                            _ => return Err(format!("unexpected {w:?} after '/'")),
                        };
                        if !self.protos.contains(&proto) {
                            self.protos.push(proto);
                        }
                        self.pos += 1;
                        continue;
                    }
                    self.slash_seen = true;
                }
                _ => return Ok(items),
            }
            items.push(self.alt()?);
        }
    }

    /// atom ('or' atom)*
    fn alt(&mut self) -> Result<Item, String> {
        let first = self.atom()?;
        if self.peek() != Some(&Tok::Or) {
            return Ok(first);
        }
        let mut any = first.into_ranges();
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            any.extend(self.atom()?.into_ranges());
        }
        Ok(Item::Any(any))
    }

    /// A port, a range, or a parenthesised list; `(443 or 4443)` stays a
    /// set of alternatives.
    fn atom(&mut self) -> Result<Item, String> {
        match self.peek().cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > 8 {
                    return Err("port list nested too deeply".into());
                }
                let mut items = self.seq()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("unbalanced parenthesis in port list".into());
                }
                self.pos += 1;
                self.depth -= 1;
                if items.len() == 1 {
                    return Ok(items.remove(0));
                }
                Ok(Item::All(
                    items.into_iter().flat_map(Item::into_ranges).collect(),
                ))
            }
            Some(Tok::Num(lo)) => {
                self.pos += 1;
                let lo = port(lo)?;
                if self.peek() == Some(&Tok::Plus) {
                    self.pos += 1;
                    self.open_ended = true;
                    return Ok(Item::All(vec![PortRange { lo, hi: u16::MAX }]));
                }
                if self.peek() == Some(&Tok::Dash) {
                    self.pos += 1;
                    let Some(Tok::Num(hi)) = self.peek().cloned() else {
                        return Err("port range without an upper bound".into());
                    };
                    self.pos += 1;
                    let hi = port(hi)?;
                    if hi < lo {
                        return Err(format!("port range {lo}-{hi} is backwards"));
                    }
                    return Ok(Item::All(vec![PortRange { lo, hi }]));
                }
                Ok(Item::All(vec![PortRange::single(lo)]))
            }
            Some(Tok::Word(w)) if w == "tcp" || w == "udp" => {
                // `TCP 80`: protocol written before the port.
                self.pos += 1;
                let proto = if w == "tcp" { Proto::Tcp } else { Proto::Udp };
                if !self.protos.contains(&proto) {
                    self.protos.push(proto);
                }
                self.atom()
            }
            Some(Tok::Word(w)) => Err(format!("{w:?} is not a port")),
            Some(t) => Err(format!("expected a port, found {t:?}")),
            None => Err("port list ends early".into()),
        }
    }
}

impl Item {
    fn into_ranges(self) -> Vec<PortRange> {
        match self {
            Item::All(r) | Item::Any(r) => r,
        }
    }
}

fn port(n: u64) -> Result<u16, String> {
    match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ if n == u64::MAX => Err("port number too long (ports are 1-65535)".into()),
        _ => Err(format!("port {n} is out of range (ports are 1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(lo: u16, hi: u16) -> PortRange {
        PortRange { lo, hi }
    }

    fn groups(cell: &str) -> Vec<(Vec<PortRange>, bool)> {
        parse(cell)
            .unwrap()
            .groups
            .into_iter()
            .map(|g| (g.ranges, g.alternatives))
            .collect()
    }

    #[test]
    fn vendor_spellings() {
        assert_eq!(groups("443"), vec![(vec![r(443, 443)], false)]);
        assert_eq!(
            groups("8200 + 8201"),
            vec![(vec![r(8200, 8200), r(8201, 8201)], false)]
        );
        assert_eq!(groups("TCP/8089"), vec![(vec![r(8089, 8089)], false)]);
        assert_eq!(
            groups("[9300:9400]/TCP"),
            vec![(vec![r(9300, 9400)], false)]
        );
        assert_eq!(groups("Port (5432)"), vec![(vec![r(5432, 5432)], false)]);
        assert_eq!(groups("8600[^1]"), vec![(vec![r(8600, 8600)], false)]);
        assert_eq!(parse("30000-32767 TCP / UDP").unwrap().protos.len(), 2);
        assert!(parse("ICMP 8/0").unwrap().icmp);
        assert!(parse("Provider dependent").is_err());
        assert_eq!(
            groups("9200, 9300-9400"),
            vec![(vec![r(9200, 9200), r(9300, 9400)], false)]
        );
        assert_eq!(
            groups("25 or 587"),
            vec![(vec![r(25, 25), r(587, 587)], true)]
        );
        assert_eq!(
            groups("80/(443 or 4443)"),
            vec![
                (vec![r(80, 80)], false),
                (vec![r(443, 443), r(4443, 4443)], true)
            ]
        );
        assert_eq!(
            groups("80/443"),
            vec![(vec![r(80, 80), r(443, 443)], false)]
        );
        assert_eq!(groups("9300–9400"), vec![(vec![r(9300, 9400)], false)]);
        assert_eq!(groups("443 (HTTPS)"), vec![(vec![r(443, 443)], false)]);
        assert_eq!(groups("20000+"), vec![(vec![r(20000, 65535)], false)]);
        assert_eq!(
            groups("80+443"),
            vec![(vec![r(80, 80), r(443, 443)], false)]
        );
        let dns = parse("53/udp").unwrap();
        assert_eq!(dns.protos, vec![Proto::Udp]);
        assert!(parse("ICMP").unwrap().icmp);
        assert!(parse("110/TCP (POP3), 995/TCP (secure POP3)").is_ok());
    }

    #[test]
    fn bad_cells_say_why() {
        assert!(
            parse("70000")
                .unwrap_err()
                .contains("70000 is out of range")
        );
        assert!(parse("0").unwrap_err().contains("out of range"));
        assert!(
            parse("99999999999999999999")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse("400-300").unwrap_err().contains("backwards"));
        assert!(parse("").unwrap_err().contains("no port"));
        assert!(parse("All").unwrap_err().contains("names no port"));
        assert!(parse("(80").unwrap_err().contains("unbalanced"));
        assert!(parse("80 http").is_err());
    }
}
