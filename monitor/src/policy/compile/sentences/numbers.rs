//! The port numbers a sentence states, and their ranges.

use crate::policy::model::PortRange;

/// Port numbers in a sentence: after "port(s)", "TCP", "UDP" or glued to
/// "/tcp"; "N through M" and "N-M" are ranges; further numbers joined by
/// "or"/"and" to an anchored one count too ("3306 for MySQL or 5432").
pub(super) fn ports_of(lower: &str) -> Vec<PortRange> {
    let mut ports: Vec<PortRange> = Vec::new();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut anchored = false;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let (num, glued) = match w.split_once('/') {
            Some((n, p)) if p.starts_with("tcp") || p.starts_with("udp") => (n, true),
            _ => (w.trim_end_matches(['.', ';', ':']), false),
        };
        let prev = if i > 0 { words[i - 1] } else { "" };
        // "ports in the 6800-7300 range": a range the next word calls one.
        let range_word = num.contains('-')
            && lower.contains("port")
            && words.get(i + 1).is_some_and(|n| n.starts_with("range"));
        if range_word
            && let Some((a, b)) = num.split_once('-')
            && let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>())
            && a > 0
            && b >= a
        {
            if !ports.contains(&PortRange { lo: a, hi: b }) {
                ports.push(PortRange { lo: a, hi: b });
            }
            i += 1;
            continue;
        }
        let keyword = matches!(prev, "port" | "ports" | "tcp" | "udp");
        // "connects to the upstream cluster on 5672": a registered port
        // after "on" in a sentence that connects (not "on 3 nodes").
        let on_port = prev == "on" && lower.contains(" connect");
        if let Ok(n) = num.parse::<u32>()
            && (1..=65535).contains(&n)
            && (keyword
                || glued
                || (on_port && n >= 1024)
                || (anchored && matches!(prev, "or" | "and")))
            && !words.get(i + 1).is_some_and(|n| n.starts_with('%'))
        {
            anchored = true;
            let lo = n as u16;
            let mut hi = lo;
            if matches!(
                words.get(i + 1),
                Some(&"through") | Some(&"to") | Some(&"-")
            ) && let Some(Ok(m)) = words
                .get(i + 2)
                .map(|m| m.trim_end_matches(['.', ';']).parse::<u32>())
                && m >= n
                && m <= 65535
            {
                hi = m as u16;
                i += 2;
            } else if let Some((a, b)) = num.split_once('-')
                && let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>())
                && a > 0
                && b >= a
            {
                ports.push(PortRange { lo: a, hi: b });
                i += 1;
                continue;
            }
            let r = PortRange { lo, hi };
            if !ports.contains(&r) {
                ports.push(r);
            }
        } else if !matches!(w, "or" | "and" | "for") && prev != "for" {
            // "3306 for MySQL or 5432": the chain of ports goes on across
            // "for X" and "or"; any other word ends it.
            anchored = false;
        }
        i += 1;
    }
    ports
}
