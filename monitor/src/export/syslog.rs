//! `syslog+tcp://HOST:PORT`: each record as one RFC 5424 message, the JSON
//! record as its MSG, framed by octet counting (RFC 6587 §3.4.1, the
//! framing RFC 5425 mandates for TLS), which any SIEM's syslog input reads
//! and which survives a record holding any byte.
//!
//! The header carries what a SIEM indexes without parsing the JSON: the
//! record's time (to the microsecond: RFC 5424 allows six digits), the
//! host, `portconform` and its pid, the record kind as MSGID, and the
//! record's number as the IANA-registered `[meta sequenceId="N"]`.
//! Facility local0; severity warning for `blocked`, notice for
//! `unexpected` and `flood`, informational for the rest.

use serde::Deserialize;

/// local0 (RFC 5424 §6.2.1).
const FACILITY: u8 = 16;
/// `sequenceId` is 1..2147483647 and wraps (RFC 5424 §7.3.1).
const SEQUENCE_ID_MAX: u64 = 2_147_483_647;

/// The fields of a record the header is made of.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    ts: Option<&'a str>,
    #[serde(borrow)]
    kind: Option<&'a str>,
    #[serde(borrow)]
    host: Option<&'a str>,
    seq: Option<u64>,
}

fn severity(kind: &str) -> u8 {
    match kind {
        "blocked" => 4,
        "unexpected" | "flood" => 5,
        _ => 6,
    }
}

/// A header field: printable US-ASCII without spaces, at most `max`
/// characters, or `-` (RFC 5424's NILVALUE) when nothing is left.
fn field(out: &mut Vec<u8>, value: Option<&str>, max: usize) {
    let start = out.len();
    if let Some(v) = value {
        out.extend(v.bytes().filter(|b| (33..=126).contains(b)).take(max));
    }
    if out.len() == start {
        out.push(b'-');
    }
}

/// RFC 3339 as RFC 5424 takes it: the fraction cut to six digits.
fn timestamp(out: &mut Vec<u8>, ts: Option<&str>) {
    let Some(ts) = ts.filter(|t| t.is_ascii() && t.len() >= 20) else {
        out.push(b'-');
        return;
    };
    match ts.find('.') {
        Some(dot) => {
            let digits = ts[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
            out.extend_from_slice(&ts.as_bytes()[..dot + 1 + digits.min(6)]);
            out.extend_from_slice(&ts.as_bytes()[dot + 1 + digits..]);
        }
        None => out.extend_from_slice(ts.as_bytes()),
    }
}

/// Appends one record (a JSON line without its newline) to `out` as an
/// octet-counted RFC 5424 message.
pub fn frame(line: &[u8], pid: u32, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    let head: Head = serde_json::from_slice(line).unwrap_or(Head {
        ts: None,
        kind: None,
        host: None,
        seq: None,
    });
    let kind = head.kind.unwrap_or("event");
    scratch.clear();
    scratch.extend_from_slice(
        format!(
            "<{}>1 ",
            u16::from(FACILITY) * 8 + u16::from(severity(kind))
        )
        .as_bytes(),
    );
    timestamp(scratch, head.ts);
    scratch.push(b' ');
    field(scratch, head.host, 255);
    scratch.extend_from_slice(format!(" portconform {pid} ").as_bytes());
    field(scratch, Some(kind), 32);
    match head.seq {
        Some(seq) if seq > 0 => scratch.extend_from_slice(
            format!(
                " [meta sequenceId=\"{}\"] ",
                (seq - 1) % SEQUENCE_ID_MAX + 1
            )
            .as_bytes(),
        ),
        _ => scratch.extend_from_slice(b" - "),
    }
    scratch.extend_from_slice(line);
    out.extend_from_slice(format!("{} ", scratch.len()).as_bytes());
    out.extend_from_slice(scratch);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(line: &str) -> String {
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        frame(line.as_bytes(), 42, &mut out, &mut scratch);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_record_is_one_octet_counted_rfc5424_message() {
        let line = r#"{"ts":"2026-11-22T16:42:38.123456789Z","kind":"blocked","host":"node 1","seq":7,"instance":"x"}"#;
        let m = framed(line);
        let (len, msg) = m.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert_eq!(
            msg,
            format!(
                "<132>1 2026-11-22T16:42:38.123456Z node1 portconform 42 blocked [meta sequenceId=\"7\"] {line}"
            )
        );
    }

    #[test]
    fn odd_records_still_make_valid_headers() {
        let m = framed(r#"{"kind":"required"}"#);
        assert!(
            m.ends_with(r#"<134>1 - - portconform 42 required - {"kind":"required"}"#),
            "{m}"
        );
        let m = framed("not json");
        assert!(
            m.ends_with("<134>1 - - portconform 42 event - not json"),
            "{m}"
        );
        // The sequence id wraps as RFC 5424 says.
        let m = framed(r#"{"seq":2147483648,"ts":"2026-11-22T16:42:38Z"}"#);
        assert!(
            m.contains(r#"2026-11-22T16:42:38Z - portconform 42 event [meta sequenceId="1"]"#),
            "{m}"
        );
    }
}
