//! Tables of URLs without a Port column ("URL | Required for"): the hosts a
//! product must reach, each port given by its URL (`https://h:8443`) or
//! implied by its scheme (`https://h` is 443). The table is rewritten with
//! a Port column, the host alone in the peer column and a Direction column
//! saying outbound (a list of addresses to reach is traffic going out), so
//! that the row reader sees the shape it knows. Every row keeps its line.

use crate::policy::document::{Row, Table};

/// The table with ports taken from the URLs of column `peer`, or `None`
/// when no cell there holds a URL.
pub fn with_ports(table: &Table, peer: usize) -> Option<Table> {
    if !table
        .rows
        .iter()
        .any(|r| r.cells.get(peer).is_some_and(|c| url(c).is_some()))
    {
        return None;
    }
    let mut header = table.header.clone();
    header.push("Port".into());
    header.push("Direction".into());
    let rows = table
        .rows
        .iter()
        .map(|row| {
            let mut cells = row.cells.clone();
            cells.resize(table.header.len(), String::new());
            let (host, port) = cells.get(peer).and_then(|c| url(c)).unwrap_or_default();
            if !host.is_empty() {
                cells[peer] = host;
            }
            cells.push(port.map(|p| format!("{p}/TCP")).unwrap_or_default());
            cells.push("Outbound".into());
            Row {
                line: row.line,
                cells,
                written_cells: row.written_cells + 2,
            }
        })
        .collect();
    Some(Table {
        header,
        rows,
        ..table.clone()
    })
}

/// The host of the first URL in `text` and its port: the one written after
/// the host, else the scheme's (`https` 443, `http` 80); `None` for a
/// scheme without a known port.
fn url(text: &str) -> Option<(String, Option<u16>)> {
    let lower = text.to_ascii_lowercase();
    let (at, scheme) = ["https://", "http://"]
        .iter()
        .filter_map(|s| lower.find(s).map(|i| (i, *s)))
        .min_by_key(|(i, _)| *i)?;
    let rest = &text[at + scheme.len()..];
    let end = rest
        .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == ']')
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
            (h, p.parse::<u16>().ok().filter(|p| *p > 0))
        }
        _ => (authority, Some(if scheme == "https://" { 443 } else { 80 })),
    };
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_urls() {
        assert_eq!(
            url("https://galaxy.ansible.com"),
            Some(("galaxy.ansible.com".into(), Some(443)))
        );
        assert_eq!(
            url("http://api.example.com:443/x"),
            Some(("api.example.com".into(), Some(443)))
        );
        assert_eq!(
            url("http://h.example.com"),
            Some(("h.example.com".into(), Some(80)))
        );
        assert_eq!(url("no url here"), None);
        let table = Table {
            line: 1,
            header: vec!["URL".into(), "Required for".into()],
            rows: vec![Row {
                line: 2,
                cells: vec!["https://sso.example.com:8443".into(), "Login".into()],
                written_cells: 2,
            }],
            header_from_first_row: false,
            caption: None,
        };
        let t = with_ports(&table, 0).unwrap();
        assert_eq!(
            t.rows[0].cells,
            vec!["sso.example.com", "Login", "8443/TCP", "Outbound"]
        );
    }
}
