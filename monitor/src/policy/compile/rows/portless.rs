//! Why a row whose Port cell holds no number gives no rule, in words a
//! reviewer can act on: an IP protocol that has no ports at all (ESP, GRE),
//! a destination port left open ("<any>"), or ports the operating system
//! picks ("DYNAMIC"). The generic "is not a port" would hide which.

use super::super::columns::{Column, Layout};

/// The reason to skip a row whose Port cell the port reader refused, when
/// the row says why it has no number.
pub(super) fn reason(layout: &Layout, cells: &[String]) -> Option<String> {
    let port = layout.cell(cells, Column::Port).unwrap_or("");
    let bare = port
        .trim()
        .trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace());
    let word = bare
        .split(|c: char| !c.is_alphanumeric() && c != '/')
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_lowercase();
    if let Some(ip) = ip_protocol(layout, cells) {
        return Some(format!(
            "{ip} is an IP protocol without ports: a port rule cannot state it (allow the \
             protocol in the firewall by hand)"
        ));
    }
    match word.as_str() {
        "any" | "all" => Some(format!(
            "the port is {:?}: the document leaves it to the far end, so there is no port to \
             allow",
            port.trim()
        )),
        "dynamic" | "ephemeral" => Some(format!(
            "the port is {:?}: ports the operating system picks, with no number given here \
             (allow the host's dynamic range by hand if needed)",
            port.trim()
        )),
        _ => None,
    }
}

/// The IP protocol a row names in its Protocol cell or words: "ESP",
/// "IP Protocol 50", "GRE".
fn ip_protocol(layout: &Layout, cells: &[String]) -> Option<String> {
    let proto = layout
        .cell(cells, Column::Protocol)
        .map(str::trim)
        .unwrap_or("")
        .to_ascii_uppercase();
    if let Some(name) = named(&proto) {
        return Some(name);
    }
    cells.iter().find_map(|c| numbered(c))
}

/// "ESP", "AH", "GRE" as a protocol name.
fn named(word: &str) -> Option<String> {
    let (name, number) = match word {
        "ESP" => ("ESP", 50),
        "AH" => ("AH", 51),
        "GRE" => ("GRE", 47),
        _ => return None,
    };
    Some(format!("IP protocol {number} ({name})"))
}

/// "IP protocol 50", "IP PROTOCOL 47 (GRE)" in a text.
pub fn numbered(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("ip protocol ")?;
    let digits: String = lower[at + "ip protocol ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let n: u8 = digits.parse().ok()?;
    let name = match n {
        50 => " (ESP)",
        51 => " (AH)",
        47 => " (GRE)",
        _ => "",
    };
    Some(format!("IP protocol {n}{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::of(&["Protocol", "Dest-Port", "Description"].map(String::from))
    }

    fn cells(c: [&str; 3]) -> Vec<String> {
        c.map(String::from).to_vec()
    }

    #[test]
    fn reasons() {
        let l = layout();
        let esp = reason(&l, &cells(["ESP", "n/a", "IPsec"])).unwrap();
        assert!(esp.contains("IP protocol 50 (ESP)"), "{esp}");
        let any = reason(&l, &cells(["TCP", "<any>", "H.245"])).unwrap();
        assert!(any.contains("\"<any>\""), "{any}");
        let dynamic = reason(&l, &cells(["TCP", "DYNAMIC", "RPC"])).unwrap();
        assert!(dynamic.contains("operating system"), "{dynamic}");
        assert_eq!(reason(&l, &cells(["TCP", "n/a", "web"])), None);
        assert_eq!(
            numbered("allow IP PROTOCOL 47 (GRE).").as_deref(),
            Some("IP protocol 47 (GRE)")
        );
    }
}
