//! From a row's reading to rules: one per peer, per group of ports, per
//! protocol; the protocols a row implies; the service name.

use crate::policy::{
    compile::normalize::{
        endpoints, ports, protocol,
        sides::{self, PeerSpec},
    },
    model::{PortRange, Ports, Proto, Rule},
};

/// Service names longer than this are sentences; they are cut at a word.
const MAX_SERVICE: usize = 48;

/// Without a service column, an application protocol (HTTPS, SSH) names the
/// service well enough; a bare transport does not.
pub(super) fn service_name(service: Option<&str>, protocol_cell: Option<&str>) -> String {
    let app_protocol = protocol_cell.filter(|p| protocol::parse(p).is_ok_and(|r| r.note.is_some()));
    shorten(service.or(app_protocol).unwrap_or("unnamed service"))
}

/// The first clause of a description ("OpsCenter web site: browsers send
/// ..."): it names the service, the rest says how it is used.
pub(super) fn first_clause(text: &str) -> &str {
    let end = text
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | ';' | ':')
                && text[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map_or(text.len(), |(i, _)| i);
    text[..end].trim()
}

/// One rule per peer, per group of ports, per protocol, each with the notes
/// that concern it.
pub(super) fn expand(
    template: &Rule,
    port_cell: &ports::PortCell,
    protos: &[Proto],
    assignments: &[sides::Assignment],
    remarks: &[endpoints::Remark],
) -> Result<Vec<Rule>, String> {
    let groups: Vec<(Vec<PortRange>, bool)> = if port_cell.groups.is_empty() {
        vec![(Vec::new(), false)]
    } else {
        port_cell
            .groups
            .iter()
            .map(|g| (g.ranges.clone(), g.alternatives && g.ranges.len() > 1))
            .collect()
    };
    let mut rules = Vec::new();
    for a in assignments {
        let (peer_role, peer) = match &a.peer {
            PeerSpec::Role(r) => (Some(r.clone()), Vec::new()),
            PeerSpec::Literals(l) => (None, l.clone()),
        };
        let mut notes = template.notes.clone();
        notes.extend(
            remarks
                .iter()
                .filter(|r| r.concerns(peer_role.as_deref(), &peer))
                .map(|r| r.text.clone()),
        );
        notes.extend(a.notes.iter().cloned());
        notes.extend(a.warnings.iter().cloned());
        for (ranges, alternatives) in &groups {
            for &proto in protos {
                if proto.has_ports() && ranges.is_empty() {
                    return Err(format!("{proto} needs ports and the row gives none"));
                }
                let ports = if proto.has_ports() {
                    ranges.clone()
                } else {
                    Vec::new()
                };
                rules.push(Rule {
                    proto,
                    ports: Ports::List(ports),
                    alternatives: *alternatives && proto.has_ports(),
                    direction: a.direction,
                    peer_role: peer_role.clone(),
                    peer: peer.clone(),
                    notes: notes.clone(),
                    ..template.clone()
                });
            }
        }
    }
    Ok(rules)
}

/// The row's L4 protocols, from (in order of trust) an ICMP port cell, the
/// Protocol cell, a protocol written in the port cell, a service name that
/// settles it, and finally TCP, warned as a guess.
pub(super) fn protocols(
    port_cell: &ports::PortCell,
    protocol_cell: Option<&str>,
    service: Option<&str>,
    notes: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Proto>, String> {
    if port_cell.icmp {
        return Ok(vec![Proto::Icmp]);
    }
    if let Some(text) = protocol_cell {
        let reading = protocol::parse(text)?;
        if let Some(n) = reading.note {
            notes.push(n);
        }
        if !port_cell.protos.is_empty() && port_cell.protos != reading.protos {
            warnings.push(format!(
                "the port cell names {} but the Protocol column says {text:?}: the Protocol column wins",
                port_cell.protos.iter().map(|p| p.name()).collect::<Vec<_>>().join("/")
            ));
        }
        return Ok(reading.protos);
    }
    if !port_cell.protos.is_empty() {
        return Ok(port_cell.protos.clone());
    }
    if let Some(reading) = service.and_then(protocol::from_service) {
        if let Some(n) = reading.note {
            notes.push(n);
        }
        return Ok(reading.protos);
    }
    let guess = "no protocol given: TCP assumed".to_string();
    warnings.push(guess.clone());
    notes.push(guess);
    Ok(vec![Proto::Tcp])
}

/// Cuts a long service cell at a word boundary: the cell names the service,
/// the rest is prose that belongs in the document, not the policy.
pub(super) fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_SERVICE {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.chars().count() + word.chars().count() + 1 > MAX_SERVICE - 1 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = text.chars().take(MAX_SERVICE - 1).collect();
    }
    out.push('…');
    out
}

pub(in crate::policy::compile) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_clauses() {
        assert_eq!(
            first_clause("OpsCenter web site: browsers send"),
            "OpsCenter web site"
        );
        assert_eq!(first_clause("Client port. Job submissions"), "Client port");
        assert_eq!(first_clause("SSH (default)"), "SSH (default)");
        assert_eq!(first_clause("mapred.job.tracker"), "mapred.job.tracker");
    }

    #[test]
    fn shortens_sentences_at_a_word() {
        assert_eq!(shorten("nginx"), "nginx");
        let s = shorten("Zookeeper servers listen on this RPC port for client connections");
        assert!(s.ends_with('…') && s.chars().count() <= MAX_SERVICE, "{s}");
        assert_eq!(s, "Zookeeper servers listen on this RPC port for…");
    }
}
