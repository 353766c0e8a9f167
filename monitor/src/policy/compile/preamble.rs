//! A condition stated in the paragraph just above a table, for all its
//! rows: "Required only when the Rendezvous policy is enabled.", "The rows
//! below apply only once you enable the HDX Direct policy." Port pages put
//! a feature's optional ports under its own heading and say once, above
//! the table, when they are needed, rather than in every row.

use super::{Ctx, normalize::required};
use crate::policy::model::Required;

/// The condition a paragraph sets on the table after it: a sentence that
/// names no port, states a condition, and is about the rows ("below",
/// "following", "these ports") or is a bare requirement ("Required only
/// when ...").
pub fn condition(text: &str) -> Option<String> {
    text.split(". ").find_map(|sentence| {
        let lower = sentence.trim().to_ascii_lowercase();
        let names_port = lower
            .split(|c: char| !c.is_ascii_digit())
            .any(|n| n.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n)));
        let about_rows = ["required", "needed", "only "]
            .iter()
            .any(|w| lower.starts_with(w))
            || [
                " below",
                "following",
                "these ports",
                "this table",
                "the rows",
            ]
            .iter()
            .any(|w| lower.contains(w));
        // "If the hosts run a firewall, open the ports below": a
        // condition on needing any rule at all, not on these rows.
        if names_port || !about_rows || lower.starts_with("if ") {
            return None;
        }
        required::condition_of(sentence.trim()).or_else(|| during(sentence.trim()))
    })
}

/// "While you install a site ..., also open these ports": the rows are
/// needed only during what the leading clause names.
fn during(sentence: &str) -> Option<String> {
    let lower = sentence.to_ascii_lowercase();
    let lead = ["while ", "during "]
        .iter()
        .find(|w| lower.starts_with(*w))?;
    let end = sentence.find(',')?;
    let clause = sentence[lead.len()..end].trim();
    (!clause.is_empty()).then(|| format!("{}{clause}", lead))
}

/// Makes the table's required rules conditional on `cond` (from the
/// paragraph at `line`); rows that say otherwise keep what they say.
pub fn apply(ctx: &mut Ctx, ids: &[String], line: u32, cond: &str) {
    let mut n = 0;
    for id in ids {
        if let Some(rule) = ctx.rule_mut(id)
            && rule.required == Required::Yes
        {
            rule.required = Required::Conditional;
            rule.condition = Some(cond.to_string());
            rule.notes.push(format!(
                "the paragraph above the table (line {line}) sets its condition"
            ));
            n += 1;
        }
    }
    if n > 0 {
        ctx.decide(
            line,
            format!(
                "the paragraph makes the {n} required rules of the table below conditional: {cond}"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_above_a_table() {
        assert!(condition("HDX Direct is disabled by default. The rows below apply only once you enable the HDX Direct policy.").is_some());
        assert!(condition("Required only when the Rendezvous policy is enabled.").is_some());
        assert_eq!(
            condition("While you install a remote site, also open these ports:").as_deref(),
            Some("while you install a remote site")
        );
        assert!(condition("Port 443 is needed only if you use TLS.").is_none());
        assert!(condition("The agent sends its data only to the server.").is_none());
        assert!(
            condition("If the hosts run a firewall, open the ports below on every node.").is_none()
        );
    }
}
