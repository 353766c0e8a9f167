//! The shapes of single lines in a table a browser copy flattened to one
//! cell per line: a header cell, a port cell, the piece of a port cell an
//! inline code span pushed onto the next line, and a footnote mark.

/// A header cell: a few words, no digits, no sentence punctuation
/// ("Port", "Used by", "Required?").
pub fn header_like(line: &str) -> bool {
    let t = line.trim();
    let words = t.split_whitespace().count();
    (1..=4).contains(&words)
        && t.len() <= 32
        && t.chars().next().is_some_and(char::is_alphabetic)
        && !t.chars().any(|c| c.is_ascii_digit())
        && !t.ends_with(['.', ',', ';', ':', '!'])
        && !t.contains(['|', '<', '>', '`'])
}

/// A header cell that names the port column.
pub fn names_port(line: &str) -> bool {
    line.to_ascii_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| w == "port" || w == "ports")
}

/// A cell that holds nothing but ports: `443`, `7000, 7001, 9042`,
/// `5701-5711`, `8472/udp`, `9200 – 9300`.
pub fn port_like(line: &str) -> bool {
    let t = line.trim();
    if !t.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let lower = t.to_ascii_lowercase();
    let rest = lower.replace("tcp", "").replace("udp", "");
    let mut digits = 0usize;
    for c in rest.chars() {
        match c {
            '0'..='9' => {
                digits += 1;
                if digits > 5 {
                    return false;
                }
            }
            ',' | '-' | '–' | '/' | ' ' => digits = 0,
            _ => return false,
        }
    }
    // Every number a port, not a year or a size.
    rest.split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .all(|n| n.parse::<u32>().is_ok_and(|v| v <= 65535))
}

/// The rest of a port cell that a line break split before a separator:
/// `, 8021` after `8020`, `-5711` after `5701`.
pub fn port_continuation(line: &str) -> Option<&str> {
    let t = line.trim();
    let rest = t.strip_prefix([',', '-', '–', '/'])?;
    port_like(rest).then_some(t)
}

/// Joins a port cell and its continuation: a range keeps no space
/// (`5701-5711`), a list does (`8020, 8021`).
pub fn join_port(cell: &str, continuation: &str) -> String {
    if continuation.starts_with([',', '/']) {
        format!("{cell}{continuation}")
    } else {
        format!("{cell}{}", continuation.trim())
    }
}

/// A footnote mark alone on its line: `1` .. `9`, `*`, a run of daggers,
/// a superscript digit.
pub fn mark(line: &str) -> Option<&str> {
    let t = line.trim();
    let single_digit = t.len() == 1 && t.chars().all(|c| ('1'..='9').contains(&c));
    let symbols =
        !t.is_empty() && t.chars().count() <= 3 && t.chars().all(|c| matches!(c, '*' | '†' | '‡'))
            || t.chars().count() == 1 && t.chars().all(|c| "¹²³⁴⁵⁶⁷⁸⁹".contains(c));
    (single_digit || symbols).then_some(t)
}

/// Whether a cell's line continues the one before it rather than starting a
/// new cell: a browser breaks a cell's text at an inline element, and the
/// text after it goes on in lower case or with punctuation.
pub fn continues(line: &str) -> bool {
    line.trim_start()
        .starts_with(|c: char| c.is_lowercase() || matches!(c, ',' | ';' | ')' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(header_like("Used by") && header_like("Required?"));
        assert!(!header_like("Port 443") && !header_like("Keep this port open."));
        assert!(names_port("Port") && names_port("Ports (TCP)") && !names_port("Support"));
        for p in [
            "443",
            "7000, 7001, 9042",
            "5701-5711",
            "8472/udp",
            "9200 – 9300",
        ] {
            assert!(port_like(p), "{p}");
        }
        for not in ["2024 release", "32 GB", "1234567", "70000", "Port"] {
            assert!(!port_like(not), "{not}");
        }
        assert_eq!(port_continuation(", 8021"), Some(", 8021"));
        assert_eq!(port_continuation("-5711"), Some("-5711"));
        assert_eq!(port_continuation("- see below"), None);
        assert_eq!(join_port("8020", ", 8021"), "8020, 8021");
        assert_eq!(join_port("5701", "-5711"), "5701-5711");
        assert_eq!(mark("1"), Some("1"));
        assert_eq!(mark("††"), Some("††"));
        assert_eq!(mark("10"), None);
        assert!(continues("by an iptables rule") && !continues("Nodekeeper"));
    }
}
