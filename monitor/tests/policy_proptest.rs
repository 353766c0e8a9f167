//! The compiler never panics, whatever it is given: arbitrary bytes,
//! arbitrary text, and (more to the point) documents that look almost right,
//! built from the vocabulary of real port tables plus noise.

use monitor::policy::{Document, Policy, compile};
use proptest::prelude::*;

fn compile_text(text: String) -> Option<Policy> {
    let doc = Document::from_bytes("fuzz.md".into(), text.into_bytes()).ok()?;
    compile(&[doc]).ok()
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        // Port cells, good and bad.
        Just("80".to_string()),
        Just("9200, 9300-9400".to_string()),
        Just("25 or 587".to_string()),
        Just("80/(443 or 4443)".to_string()),
        Just("((((80".to_string()),
        Just("70000".to_string()),
        Just("ICMP".to_string()),
        Just("53/udp".to_string()),
        (0u32..200_000).prop_map(|n| n.to_string()),
        // Protocols, directions, requirements.
        Just("TCP".to_string()),
        Just("Mem-cached ".to_string()),
        Just("DNS".to_string()),
        Just("Gopher".to_string()),
        Just("Inbound <b>and</b> Outbound".to_string()),
        Just("bidirectional".to_string()),
        Just("Yes".to_string()),
        Just("No".to_string()),
        Just("Required if x is used".to_string()),
        // Endpoints.
        Just("All nodes and SMTP relay (provided by customer)".to_string()),
        Just("https://api.mix  panel.com/x".to_string()),
        Just("apt-mirror.example.com (192.0.2.7)".to_string()),
        Just("2001:db8::/32".to_string()),
        Just("(((".to_string()),
        Just("http://[::1".to_string()),
        // Noise.
        "[ -~]{0,12}",
        "\\PC{0,8}",
    ]
}

fn header() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            Just("Port"),
            Just("Protocol"),
            Just("Service Name"),
            Just("Direction"),
            Just("Source"),
            Just("Dest."),
            Just("IP/DNS"),
            Just("Required?"),
            Just("Notes"),
            Just("Use"),
            Just("Colour"),
        ]
        .prop_map(String::from),
        1..8,
    )
}

fn markdown_table() -> impl Strategy<Value = String> {
    (
        header(),
        prop::collection::vec(prop::collection::vec(cell(), 0..9), 0..8),
    )
        .prop_map(|(header, rows)| {
            let mut t = format!(
                "|{}|\n|{}|\n",
                header.join("|"),
                vec!["--"; header.len()].join("|")
            );
            for row in rows {
                t.push_str(&format!("|{}|\n", row.join("|").replace('\n', " ")));
            }
            t
        })
}

fn html_table() -> impl Strategy<Value = String> {
    (
        header(),
        prop::collection::vec(prop::collection::vec(cell(), 0..9), 0..8),
        any::<bool>(),
    )
        .prop_map(|(header, rows, close)| {
            let mut t = String::from("<table>\n<tr>");
            for h in header {
                t.push_str(&format!("<th>{h}</th>"));
            }
            t.push_str("</tr>\n");
            for row in rows {
                t.push_str("<tr>\n");
                for c in row {
                    t.push_str(&format!("  <td>{c}\n"));
                }
            }
            if close {
                t.push_str("</table>\n");
            }
            t
        })
}

fn prose() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("In releases 4.5.1 and later, port 8086 is not required. Open the following port instead:".to_string()),
        Just("A number of ports are dynamically assigned from the range (20K+).".to_string()),
        Just("1. `s3.example.com`\n2. `s3-alt.example.com`\n\nUploads use https and port 443.".to_string()),
        Just("* If you use X, the cluster must be able to connect to X's endpoints.".to_string()),
        Just("### Heading".to_string()),
        "[ -~]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(doc) = Document::from_bytes("fuzz.bin".into(), bytes) {
            let _ = compile(&[doc]);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,600}") {
        let _ = compile_text(text);
    }

    #[test]
    fn near_miss_documents_never_panic_and_stay_consistent(
        parts in prop::collection::vec(prop_oneof![markdown_table(), html_table(), prose()], 1..6)
    ) {
        let text = parts.join("\n\n");
        let lines = u32::try_from(text.lines().count()).unwrap();
        if let Some(policy) = compile_text(text.clone()) {
            // What the compiler writes, it can read back.
            let toml = policy.to_toml();
            let again = Policy::from_toml(&toml, "fuzz").unwrap();
            prop_assert_eq!(&policy, &again);
            // Same input, same policy: profiles and reviews depend on it.
            prop_assert_eq!(compile_text(text).unwrap().to_toml(), toml);
            // Provenance points into the document.
            for rule in &policy.rules {
                prop_assert!(rule.source.line >= 1 && rule.source.line <= lines, "{}", rule.source);
            }
        }
    }
}
