//! Which nftables rule stopped a packet: nftables tracing. A table of our
//! own, hooked before everything else, sets `meta nftrace` on every packet;
//! `nft -a monitor trace` then prints each packet and the rule (with its
//! handle) or chain policy that decided it, which is read back per flow.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::reach::L4;

/// The table that turns tracing on; its name says who added it.
pub const TRACE_TABLE: &str = "portconform_validate_trace";

/// The table, at a priority before any a ruleset would use.
pub fn trace_table() -> String {
    format!(
        "table inet {TRACE_TABLE} {{\n\
         \x20 chain pre {{ type filter hook prerouting priority -1000000; policy accept; meta nftrace set 1; }}\n\
         \x20 chain out {{ type filter hook output priority -1000000; policy accept; meta nftrace set 1; }}\n\
         }}\n"
    )
}

/// A packet that a rule or a chain policy dropped (or rejected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub l4: L4,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// `inet filter input`.
    pub chain: String,
    /// `tcp dport 2181 drop`, or `policy drop`.
    pub rule: String,
    pub handle: Option<u32>,
}

impl Dropped {
    /// "inet filter input: tcp dport 2181 drop (handle 3)".
    pub fn describe(&self) -> String {
        match self.handle {
            Some(h) => format!("{}: {} (handle {h})", self.chain, self.rule),
            None => format!("{}: {}", self.chain, self.rule),
        }
    }
}

/// A running `nft monitor trace`, killed on drop.
pub struct Tracer {
    child: Option<Child>,
    out: PathBuf,
}

impl Tracer {
    /// Starts the monitor in namespace `ns`, writing to `out`.
    pub fn start(ns: &str, out: &Path) -> std::io::Result<Tracer> {
        let file = std::fs::File::create(out)?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-a", "monitor", "trace"])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()?;
        // It has no "ready" line; netlink subscription takes a moment.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Tracer {
            child: Some(child),
            out: out.to_path_buf(),
        })
    }

    /// What it printed so far.
    pub fn snapshot(&self) -> std::io::Result<Vec<Dropped>> {
        Ok(parse(&std::fs::read_to_string(&self.out)?))
    }

    /// Stops the monitor and reads what it printed.
    pub fn finish(mut self) -> std::io::Result<Vec<Dropped>> {
        // Let the last verdicts of the attempts reach the file.
        std::thread::sleep(Duration::from_millis(300));
        self.stop();
        Ok(parse(&std::fs::read_to_string(&self.out)?))
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The word after `key` in `text`.
fn after<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let at = text.find(key)?;
    text[at + key.len()..].split_whitespace().next()
}

/// Parses `nft monitor trace` output into the packets dropped.
pub fn parse(text: &str) -> Vec<Dropped> {
    // trace id -> (l4, src, dst, sport, dport)
    let mut packets: HashMap<&str, (L4, IpAddr, IpAddr, u16, u16)> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("trace id ") else {
            continue;
        };
        let mut words = rest.splitn(5, ' ');
        let (Some(id), Some(family), Some(table), Some(chain), Some(what)) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            continue;
        };
        if table == TRACE_TABLE {
            // Only the packet line matters from our own table.
            if let Some(p) = what.strip_prefix("packet: ")
                && let Some(t) = tuple(p)
            {
                packets.insert(id, t);
            }
            continue;
        }
        if let Some(p) = what.strip_prefix("packet: ") {
            if let Some(t) = tuple(p) {
                packets.entry(id).or_insert(t);
            }
            continue;
        }
        let (rule, handle) = if let Some(policy) = what.strip_prefix("policy ") {
            let verdict = policy.split_whitespace().next().unwrap_or("");
            if verdict != "drop" {
                continue;
            }
            ("policy drop".to_string(), None)
        } else if let Some(rule) = what.strip_prefix("rule ") {
            let Some((body, verdict)) = rule.rsplit_once(" (verdict ") else {
                continue;
            };
            if !verdict.starts_with("drop") {
                continue;
            }
            let (text, handle) = match body.rsplit_once(" # handle ") {
                Some((t, h)) => (t, h.trim().parse().ok()),
                None => (body, None),
            };
            (text.trim().to_string(), handle)
        } else {
            continue;
        };
        let Some(&(l4, src, dst, sport, dport)) = packets.get(id) else {
            continue;
        };
        out.push(Dropped {
            l4,
            src,
            dst,
            sport,
            dport,
            chain: format!("{family} {table} {chain}"),
            rule,
            handle,
        });
    }
    out
}

fn tuple(packet: &str) -> Option<(L4, IpAddr, IpAddr, u16, u16)> {
    let (src, dst) = match (after(packet, "ip saddr "), after(packet, "ip daddr ")) {
        (Some(s), Some(d)) => (s, d),
        _ => (after(packet, "ip6 saddr ")?, after(packet, "ip6 daddr ")?),
    };
    let (l4, proto) = if packet.contains(" tcp dport ") {
        (L4::Tcp, "tcp")
    } else if packet.contains(" udp dport ") {
        (L4::Udp, "udp")
    } else {
        return None;
    };
    Some((
        l4,
        src.parse().ok()?,
        dst.parse().ok()?,
        after(packet, &format!("{proto} sport "))?.parse().ok()?,
        after(packet, &format!("{proto} dport "))?.parse().ok()?,
    ))
}

/// What stopped the attempt `src` → `dst`:`port`: its own packets, or the
/// answers on their way back.
pub fn stopper(
    drops: &[Dropped],
    l4: L4,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
) -> Option<(&Dropped, bool)> {
    drops
        .iter()
        .find(|d| d.l4 == l4 && d.src == src && d.dst == dst && d.dport == port)
        .map(|d| (d, false))
        .or_else(|| {
            drops
                .iter()
                .find(|d| d.l4 == l4 && d.src == dst && d.dst == src && d.sport == port)
                .map(|d| (d, true))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"trace id 62bb9c76 inet portconform_validate_trace pre packet: iif "eth0" ether saddr e2:98:03:d7:89:d7 ether daddr c2:f3:6d:2e:48:11 ip saddr 192.0.2.2 ip daddr 192.0.2.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 42622 ip protocol tcp ip length 60 tcp sport 46440 tcp dport 2181 tcp flags == syn tcp window 64240 
trace id 62bb9c76 inet portconform_validate_trace pre rule meta nftrace set 1 # handle 3 (verdict continue)
trace id 62bb9c76 inet portconform_validate_trace pre policy accept 
trace id 62bb9c76 inet filter input packet: iif "eth0" ether saddr e2:98:03:d7:89:d7 ether daddr c2:f3:6d:2e:48:11 ip saddr 192.0.2.2 ip daddr 192.0.2.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 42622 ip protocol tcp ip length 60 tcp sport 46440 tcp dport 2181 tcp flags == syn tcp window 64240 
trace id 62bb9c76 inet filter input rule tcp dport 2181 drop # handle 3 (verdict drop)
trace id 99bc3034 inet filter input packet: iif "eth0" ip6 saddr 2001:db8::2 ip6 daddr 2001:db8::1 ip6 nexthdr tcp tcp sport 46962 tcp dport 5432 tcp flags == syn
trace id 99bc3034 inet filter input rule tcp dport 5432 reject with tcp reset # handle 4 (verdict drop)
trace id 056163a6 inet filter input packet: iif "eth0" ip saddr 192.0.2.2 ip daddr 192.0.2.1 ip protocol tcp tcp sport 36384 tcp dport 9999 tcp flags == syn
trace id 056163a6 inet filter input policy drop 
trace id 11111111 inet filter output packet: oif "eth0" ip saddr 192.0.2.1 ip daddr 192.0.2.2 ip protocol udp udp sport 53 udp dport 40000
trace id 11111111 inet filter output rule udp sport 53 accept # handle 9 (verdict accept)
"#;

    #[test]
    fn drops_are_named_by_rule_and_handle() {
        let drops = parse(SAMPLE);
        assert_eq!(drops.len(), 3, "{drops:?}");
        assert_eq!(
            drops[0].describe(),
            "inet filter input: tcp dport 2181 drop (handle 3)"
        );
        assert_eq!(drops[0].sport, 46440);
        assert_eq!(
            drops[1].describe(),
            "inet filter input: tcp dport 5432 reject with tcp reset (handle 4)"
        );
        assert!(drops[1].src.is_ipv6());
        assert_eq!(drops[2].describe(), "inet filter input: policy drop");
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let (d, reply) = stopper(&drops, L4::Tcp, a("192.0.2.2"), a("192.0.2.1"), 9999).unwrap();
        assert_eq!((d.rule.as_str(), reply), ("policy drop", false));
        assert!(stopper(&drops, L4::Udp, a("192.0.2.2"), a("192.0.2.1"), 9999).is_none());
        // An answer dropped on its way back is found from the attempt.
        let (d, reply) = stopper(&drops, L4::Tcp, a("192.0.2.1"), a("192.0.2.2"), 46440).unwrap();
        assert!(reply && d.dport == 2181);
    }
}
