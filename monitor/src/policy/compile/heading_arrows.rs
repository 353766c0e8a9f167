//! Headings that give the ends of their tables with an arrow: "Client
//! `-->` Management point" (the client connects to the management point),
//! "Management point `<-->` Site server" (either side starts). Documents
//! that write the direction only there leave their rows without ends. A
//! qualifier after the listener ("Distribution point configured for PXE")
//! scopes the rows: they are needed only where it holds.

use super::{Ctx, roles, stated_ends::Ends};
use crate::policy::model::Required;

/// What a heading's arrow says about the tables under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadingEnds {
    pub ends: Ends,
    /// `<-->`: either side opens the connection.
    pub both_ways: bool,
    /// The listener's qualifier, as the rows' condition.
    pub condition: Option<String>,
}

/// Two-way arrows first: `<-->` contains `-->`.
const TWO_WAY: &[&str] = &["<-->", "<==>", "<->", "↔", "⇄", "⟷"];
const ONE_WAY: &[&str] = &["-->", "==>", "->", "→", "⟶"];

/// Words that start a qualifier of the listener.
const QUALIFIERS: &[&str] = &[
    " configured ",
    " enabled ",
    " that ",
    " which ",
    " with ",
    " when ",
    " if ",
    " for ",
    ", ",
    " (",
];

/// The ends a heading's arrow names, if it has one between two names.
pub fn of(heading: &str) -> Option<HeadingEnds> {
    let text = without_tags(heading).replace('`', " ");
    let (left, right, both_ways) = TWO_WAY
        .iter()
        .map(|a| (a, true))
        .chain(ONE_WAY.iter().map(|a| (a, false)))
        .find_map(|(a, both)| {
            let (l, r) = text.split_once(a)?;
            Some((l.trim().to_string(), r.trim().to_string(), both))
        })?;
    let lower = right.to_ascii_lowercase();
    let cut = QUALIFIERS.iter().filter_map(|q| lower.find(q)).min();
    let (listener, qualifier) = match cut {
        Some(at) => (&right[..at], Some(right.trim().to_string())),
        None => (right.as_str(), None),
    };
    let opener = roles::slug(&left)?;
    let listener = roles::slug(listener)?;
    Some(HeadingEnds {
        ends: Ends { opener, listener },
        both_ways,
        condition: qualifier,
    })
}

/// The heading's text without inline HTML (`<a name="x"></a>`).
fn without_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        // An arrow ("<-->") is not a tag.
        let tag = rest[open + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/');
        match rest[open..].find('>') {
            Some(close) if tag => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Makes the required rules of `ids` conditional on the heading's
/// qualifier of the listener.
pub fn apply_condition(ctx: &mut Ctx, ids: &[String], line: u32, condition: &str) {
    for id in ids {
        if let Some(rule) = ctx.rule_mut(id)
            && rule.required == Required::Yes
        {
            rule.required = Required::Conditional;
            rule.condition = Some(condition.to_string());
            rule.notes.push(format!(
                "the heading (line {line}) scopes the listener: only {condition}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrows_in_headings() {
        let h = of("<a name=\"x\"></a> Client `-->` Management point").unwrap();
        assert_eq!(h.ends.opener, "client");
        assert_eq!(h.ends.listener, "management-point");
        assert!(!h.both_ways && h.condition.is_none());
        let h = of("Management point `<-->` Site server").unwrap();
        assert!(h.both_ways);
        assert_eq!(h.ends.listener, "site-server");
        let h = of("Client `-->` Distribution point configured for PXE, both standard and pull")
            .unwrap();
        assert_eq!(h.ends.listener, "distribution-point");
        assert_eq!(
            h.condition.as_deref(),
            Some("Distribution point configured for PXE, both standard and pull")
        );
        assert_eq!(of("Ports used by clients"), None);
        assert_eq!(of("Client to server shares"), None);
    }
}
