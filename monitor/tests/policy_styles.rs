//! Documents in the seeds' styles but with other words and column orders
//! compile too: columns are found by meaning, roles by what they name.

use monitor::policy::{Direction, Proto, Required, compile_paths};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/policy/other-vendor.md"
);

#[test]
fn other_headers_and_no_direction_column() {
    let p = compile_paths(&[FIXTURE]).unwrap();
    let summary: Vec<String> = p
        .rules
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.id,
                r.proto,
                r.ports,
                r.direction,
                r.peer_label()
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "other-5 udp 123 outbound ntp.example.org",
            "other-6a tcp 514 outbound syslog-collector",
            "other-6b udp 514 outbound syslog-collector",
            "other-7a tcp 8443 inbound partner-portal",
            "other-7b tcp 8443 inbound 192.0.2.0/24",
        ]
    );
    let ntp = &p.rules[0];
    assert_eq!(ntp.proto, Proto::Udp);
    assert_eq!(ntp.required, Required::Conditional);
    assert_eq!(ntp.condition.as_deref(), Some("no local clock"));
    assert_eq!(p.rules[1].required, Required::No);
    assert_eq!(p.rules[3].direction, Direction::Inbound);
    assert_eq!(p.rules[3].service, "HTTPS");
    // Reading direction from From/To is a decision, not a guess; the unknown
    // peer phrases are guesses.
    assert!(p.decisions.iter().any(|d| d.message.contains("the Source")));
    let warned: Vec<u32> = p.warnings.iter().map(|w| w.source.line).collect();
    assert_eq!(warned, [6, 7]);
    assert!(
        p.warnings[0]
            .message
            .contains("unrecognised endpoint \"Syslog collector\"")
    );
}

#[test]
fn html_page_with_tables_and_prose() {
    let page = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/policy/vendor-page.html"
    );
    let p = compile_paths(&[page]).unwrap();
    let summary: Vec<String> = p
        .rules
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {}",
                r.id,
                r.proto,
                r.ports,
                r.direction,
                r.peer_label(),
                r.required.name()
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "vendor-10 tcp 5701-5703 bidirectional nodes yes",
            "vendor-11 udp 123 bidirectional nodes conditional",
            "vendor-18 tcp 443 outbound telemetry.example.com, telemetry-eu.example.com yes",
        ]
    );
    assert_eq!(
        p.rules[1].condition.as_deref(),
        Some("no external time source")
    );
    assert_eq!(p.rules[2].service, "Telemetry");
}

#[test]
fn release_change_reaches_a_table_in_a_subsection() {
    let text = "\
## Monitoring

|Port|Protocol|Direction|Destination|
|--|--|--|--|
|8086|TCP|outbound|metrics.example.com|

In version 2.0 and later port 8086 is no longer used; use the following instead.

### New endpoint

|Port|Protocol|Direction|Destination|
|--|--|--|--|
|443|TCP|outbound|metrics.example.com|

## Other

|Port|Protocol|Direction|Destination|
|--|--|--|--|
|8086|TCP|outbound|other.example.com|
";
    let doc =
        monitor::policy::Document::from_bytes("sub.md".into(), text.as_bytes().to_vec()).unwrap();
    let p = monitor::policy::compile(&[doc]).unwrap();
    let r = |id: &str| p.rule(id).unwrap();
    assert_eq!(r("sub-5").superseded_by.as_deref(), Some("sub-13"));
    assert_eq!(
        r("sub-13")
            .since
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("2.0")
    );
    // Later sections are not affected.
    assert_eq!(r("sub-19").since, None);
    assert_eq!(r("sub-19").until, None);
}
