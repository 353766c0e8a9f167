//! The `--metrics` flag value.
//!
//! A bare port binds loopback: the endpoint reveals which flows a host runs,
//! so exposing it beyond the host must be asked for with an explicit address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --metrics address {input:?}: {problem}; \
     expected PORT, :PORT, ADDR:PORT or [IPv6]:PORT, e.g. 9464, 0.0.0.0:9464 or [::1]:9464"
)]
pub struct MetricsAddrError {
    input: String,
    problem: String,
}

/// Parses `PORT`, `:PORT` (both on 127.0.0.1), `ADDR:PORT` or `[V6]:PORT`.
/// Host names are refused rather than resolved: which address a name picks
/// would be a guess about what the operator meant to expose.
pub fn parse_metrics_addr(input: &str) -> Result<SocketAddr, MetricsAddrError> {
    let err = |problem: String| MetricsAddrError {
        input: input.to_owned(),
        problem,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty".into()));
    }
    let (host, port) = if let Some(port) = s.strip_prefix(':').filter(|p| !p.contains(':')) {
        (None, port)
    } else if s.bytes().all(|b| b.is_ascii_digit()) {
        (None, s)
    } else if let Some(rest) = s.strip_prefix('[') {
        let Some((host, port)) = rest.split_once("]:") else {
            return Err(err(
                "a bracketed IPv6 address must be followed by :PORT".into()
            ));
        };
        (Some(host), port)
    } else {
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(err("the port is missing".into()));
        };
        if host.contains(':') {
            return Err(err(
                "an IPv6 address needs brackets around it, as in [::1]:9464".into(),
            ));
        }
        (Some(host), port)
    };
    let port = parse_port(port).map_err(err)?;
    let ip = match host {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(host) => host.parse::<IpAddr>().map_err(|_| {
            err(format!(
                "{host:?} is not an IP address (host names are not resolved)"
            ))
        })?,
    };
    if host.is_some_and(|h| input.trim().starts_with('[') && !h.contains(':')) {
        return Err(err("brackets are only for IPv6 addresses".into()));
    }
    Ok(SocketAddr::new(ip, port))
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() {
        return Err("the port is missing".into());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {s:?} is not a number"));
    }
    match s.parse::<u16>() {
        Ok(0) => Err("port 0 would pick a random port nobody could scrape".into()),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("port {s} is out of range 1-65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        for (input, want) in [
            ("9464", "127.0.0.1:9464"),
            (":9464", "127.0.0.1:9464"),
            (" 9464 ", "127.0.0.1:9464"),
            ("0.0.0.0:9464", "0.0.0.0:9464"),
            ("192.0.2.1:80", "192.0.2.1:80"),
            ("[::1]:9464", "[::1]:9464"),
            ("[2001:db8::1]:65535", "[2001:db8::1]:65535"),
            ("[::]:1", "[::]:1"),
        ] {
            assert_eq!(
                parse_metrics_addr(input).unwrap(),
                want.parse::<SocketAddr>().unwrap(),
                "{input}"
            );
        }
    }

    #[test]
    fn rejected_forms_say_why() {
        for (input, why) in [
            ("", "empty"),
            (":", "port is missing"),
            ("0", "port 0"),
            ("65536", "out of range"),
            ("99999999999999999999", "out of range"),
            (":http", "not a number"),
            ("127.0.0.1", "port is missing"),
            ("127.0.0.1:", "port is missing"),
            ("localhost:9464", "not an IP address"),
            ("::1:9464", "needs brackets"),
            ("2001:db8::1:9464", "needs brackets"),
            ("[::1]", "followed by :PORT"),
            ("[::1]:x", "not a number"),
            ("[127.0.0.1]:9464", "only for IPv6"),
            ("1.2.3.4:-1", "not a number"),
            ("300.1.1.1:80", "not an IP address"),
        ] {
            let e = parse_metrics_addr(input).unwrap_err().to_string();
            assert!(e.contains(why), "{input:?}: {e}");
            assert!(e.contains("expected PORT"), "{e}");
        }
    }
}
