//! Direction cells: `inbound`, `Outbound`, `bidirectional`,
//! `Inbound and Outbound`, `in/out`, `ingress`... relative to the appliance.

use crate::policy::model::Direction;

pub fn parse(cell: &str) -> Result<Direction, String> {
    let lower = cell.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |set: &[&str]| words.iter().any(|w| set.contains(w));
    if has(&["bidirectional", "bidi", "both", "twoway"])
        || lower.contains("bi-directional")
        || lower.contains("two-way")
    {
        return Ok(Direction::Bidirectional);
    }
    let inbound = has(&["inbound", "in", "ingress", "incoming"]);
    let outbound = has(&["outbound", "out", "egress", "outgoing"]);
    match (inbound, outbound) {
        (true, true) => Ok(Direction::Bidirectional),
        (true, false) => Ok(Direction::Inbound),
        (false, true) => Ok(Direction::Outbound),
        (false, false) if cell.trim().is_empty() => Err("no direction given".into()),
        (false, false) => Err(format!("unknown direction {:?}", cell.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(parse("inbound"), Ok(Direction::Inbound));
        assert_eq!(parse("Outbound"), Ok(Direction::Outbound));
        assert_eq!(parse("bidirectional"), Ok(Direction::Bidirectional));
        assert_eq!(parse("Inbound and Outbound"), Ok(Direction::Bidirectional));
        assert_eq!(parse("in/out"), Ok(Direction::Bidirectional));
        assert_eq!(parse("Bi-directional"), Ok(Direction::Bidirectional));
        assert!(parse("sideways").unwrap_err().contains("unknown direction"));
        assert!(parse(" ").is_err());
    }
}
