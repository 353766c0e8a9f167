//! Protocol cells name L4 protocols (`TCP`), both (`TCP/UDP`), or, very
//! often, the application protocol carried (`RPC`, `Postgres`, `Mem-cached`).
//! The kernel matches L4, so application names are mapped to the transport
//! they use, and the mapping is recorded on the rule.

use crate::policy::model::Proto;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoReading {
    pub protos: Vec<Proto>,
    /// Set when the cell named an application protocol.
    pub note: Option<String>,
}

const TCP: &[Proto] = &[Proto::Tcp];
const UDP: &[Proto] = &[Proto::Udp];
const BOTH: &[Proto] = &[Proto::Udp, Proto::Tcp];

/// Application protocols and their transports. Keys are lowercase with
/// punctuation removed, so `Mem-cached` and `memcached` are one entry.
const APPLICATION: &[(&str, &[Proto])] = &[
    ("rpc", TCP),
    // Hadoop's RPC ("IPC" in its port tables) runs over TCP.
    ("ipc", TCP),
    ("grpc", TCP),
    ("thrift", TCP),
    ("http", TCP),
    ("https", TCP),
    ("http2", TCP),
    ("tls", TCP),
    ("ssl", TCP),
    ("websocket", TCP),
    ("ssh", TCP),
    ("scp", TCP),
    ("sftp", TCP),
    ("ftp", TCP),
    ("ftps", TCP),
    ("telnet", TCP),
    ("rdp", TCP),
    ("vnc", TCP),
    ("smtp", TCP),
    ("smtps", TCP),
    ("securesmtp", TCP),
    ("submission", TCP),
    ("imap", TCP),
    ("imaps", TCP),
    ("pop3", TCP),
    ("pop3s", TCP),
    ("ldap", TCP),
    ("ldaps", TCP),
    ("postgres", TCP),
    ("postgresql", TCP),
    ("mysql", TCP),
    ("mariadb", TCP),
    ("mongodb", TCP),
    ("mongo", TCP),
    ("redis", TCP),
    ("memcached", TCP),
    ("memcache", TCP),
    ("odbc", TCP),
    ("jdbc", TCP),
    ("zookeeper", TCP),
    ("kafka", TCP),
    ("amqp", TCP),
    ("mqtt", TCP),
    ("elasticsearch", TCP),
    ("smb", TCP),
    ("cifs", TCP),
    ("nfs", TCP),
    ("bgp", TCP),
    ("ntp", UDP),
    ("snmp", UDP),
    ("syslog", UDP),
    ("tftp", UDP),
    ("dhcp", UDP),
    ("statsd", UDP),
    ("radius", UDP),
    ("dns", BOTH),
    ("kerberos", BOTH),
];

fn key(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Reads a Protocol cell. `Err` names the part that is not a protocol.
pub fn parse(cell: &str) -> Result<ProtoReading, String> {
    let trimmed = cell.trim();
    if trimmed.is_empty() {
        return Err("no protocol given".into());
    }
    let mut protos: Vec<Proto> = Vec::new();
    let mut apps: Vec<(String, &[Proto])> = Vec::new();
    for part in trimmed
        .split(['/', ',', '&', '+'])
        .flat_map(|p| p.split(" and "))
        .flat_map(|p| p.split(" or "))
    {
        let k = key(part);
        let found: &[Proto] = match k.as_str() {
            "" => continue,
            "tcp" => TCP,
            "udp" => UDP,
            "icmp" | "icmpv6" | "ping" => &[Proto::Icmp],
            "both" | "tcpudp" | "any" => BOTH,
            _ => match APPLICATION.iter().find(|(name, _)| *name == k) {
                Some((_, p)) => {
                    apps.push((part.trim().to_string(), p));
                    p
                }
                None => return Err(format!("unknown protocol {:?}", part.trim())),
            },
        };
        for p in found {
            if !protos.contains(p) {
                protos.push(*p);
            }
        }
    }
    if protos.is_empty() {
        return Err(format!("unknown protocol {trimmed:?}"));
    }
    let note = (!apps.is_empty()).then(|| {
        let described: Vec<String> = apps
            .iter()
            .map(|(name, p)| format!("{name} over {}", names(p)))
            .collect();
        format!(
            "application protocol read as its transport: {}",
            described.join(", ")
        )
    });
    Ok(ProtoReading { protos, note })
}

/// Guesses the transport from a service name when the table has no Protocol
/// column: only names that settle it (DNS, NTP...) count.
pub fn from_service(service: &str) -> Option<ProtoReading> {
    let words: Vec<String> = service
        .split(|c: char| !c.is_alphanumeric())
        .map(key)
        .collect();
    for w in &words {
        if w == "icmp" || w == "ping" {
            return Some(ProtoReading {
                protos: vec![Proto::Icmp],
                note: Some(format!("protocol from the service name {service:?}: ICMP")),
            });
        }
        if let Some((_, p)) = APPLICATION.iter().find(|(name, _)| name == w)
            && p.contains(&Proto::Udp)
        {
            return Some(ProtoReading {
                protos: p.to_vec(),
                note: Some(format!(
                    "protocol from the service name {service:?}: {}",
                    names(p)
                )),
            });
        }
    }
    None
}

fn names(protos: &[Proto]) -> String {
    protos
        .iter()
        .map(|p| p.name().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_protocols_map_to_transport() {
        for app in [
            "RPC",
            "HTTP",
            "HTTPS",
            "Postgres",
            "Mem-cached ",
            "ODBC",
            "SCP",
            "SMTP",
        ] {
            let r = parse(app).unwrap();
            assert_eq!(r.protos, vec![Proto::Tcp], "{app}");
            assert!(r.note.is_some(), "{app}");
        }
        assert_eq!(parse("DNS").unwrap().protos, vec![Proto::Udp, Proto::Tcp]);
        assert_eq!(
            parse("TCP/UDP").unwrap().protos,
            vec![Proto::Tcp, Proto::Udp]
        );
        assert_eq!(parse("tcp").unwrap().note, None);
    }

    #[test]
    fn unknown_protocol_is_an_error() {
        assert_eq!(parse("Gopher+").unwrap_err(), "unknown protocol \"Gopher\"");
        assert!(parse("").is_err());
    }

    #[test]
    fn service_names_settle_only_udp_users() {
        assert_eq!(
            from_service("DNS").unwrap().protos,
            vec![Proto::Udp, Proto::Tcp]
        );
        assert_eq!(
            from_service("Healthcheck ICMP").unwrap().protos,
            vec![Proto::Icmp]
        );
        assert!(from_service("Database").is_none());
        assert!(from_service("HTTP").is_none());
    }
}
