//! The seed documents compile to the rules a person reads in them. The
//! expected lists under fixtures/policy/*.golden were written by hand from
//! the documents, not produced by the compiler.

use std::path::{Path, PathBuf};

use monitor::policy::{Policy, Ports, Rule, compile_paths};

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/seeds");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/policy");

fn seed(name: &str) -> PathBuf {
    let path = Path::new(SEEDS).join(name);
    assert!(
        path.exists(),
        "seed document {} not found (expected ../shared/seeds beside the repository)",
        path.display()
    );
    path
}

/// The golden line of a rule: `rule ID PROTO PORTS DIRECTION LOCAL PEER
/// REQUIRED [key=value...]`.
fn project(rule: &Rule) -> String {
    let ports = match &rule.ports {
        Ports::Dynamic => "dynamic".to_string(),
        Ports::List(list) if list.is_empty() => "-".to_string(),
        Ports::List(list) => list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(if rule.alternatives { "|" } else { "," }),
    };
    let peer = match &rule.peer_role {
        Some(role) => role.clone(),
        None => format!(
            "={}",
            rule.peer
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    let mut line = format!(
        "rule {} {} {} {} {} {} {}",
        rule.id,
        rule.proto,
        ports,
        rule.direction,
        rule.local_role,
        peer,
        rule.required.name()
    );
    let extras = [
        ("condition", rule.condition.clone()),
        ("since", rule.since.as_ref().map(ToString::to_string)),
        ("until", rule.until.as_ref().map(ToString::to_string)),
        ("superseded_by", rule.superseded_by.clone()),
        ("duplicate_of", rule.duplicate_of.clone()),
    ];
    for (key, value) in extras {
        if let Some(v) = value {
            line.push_str(&format!(" {key}={v}"));
        }
    }
    line
}

struct Golden {
    rules: Vec<String>,
    warnings: Vec<(u32, String)>,
    skips: Vec<u32>,
}

fn golden(name: &str) -> Golden {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap();
    let mut g = Golden {
        rules: Vec::new(),
        warnings: Vec::new(),
        skips: Vec::new(),
    };
    for line in text.lines() {
        let normalized = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if normalized.starts_with("rule ") {
            g.rules.push(normalized);
        } else if let Some(rest) = normalized.strip_prefix("warn ") {
            let (n, text) = rest.split_once(' ').unwrap();
            g.warnings.push((n.parse().unwrap(), text.to_string()));
        } else if let Some(rest) = normalized.strip_prefix("skip ") {
            g.skips.push(rest.parse().unwrap());
        }
    }
    g
}

fn check(doc: &str, golden_file: &str) -> Policy {
    let policy = compile_paths(&[seed(doc)]).unwrap();
    let expected = golden(golden_file);
    let actual: Vec<String> = policy.rules.iter().map(project).collect();

    let missing: Vec<&String> = expected
        .rules
        .iter()
        .filter(|r| !actual.contains(r))
        .collect();
    let unexpected: Vec<&String> = actual
        .iter()
        .filter(|r| !expected.rules.contains(r))
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{doc} differs from {golden_file}\nexpected but not compiled:\n  {}\ncompiled but not expected:\n  {}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        unexpected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
    );
    assert_eq!(actual, expected.rules, "{doc}: same rules, different order");

    for (line, text) in &expected.warnings {
        assert!(
            policy
                .warnings
                .iter()
                .any(|w| w.source.line == *line && w.message.contains(text.as_str())),
            "{doc}:{line}: expected a warning containing {text:?}; warnings there: {:?}",
            policy
                .warnings
                .iter()
                .filter(|w| w.source.line == *line)
                .map(|w| &w.message)
                .collect::<Vec<_>>()
        );
    }
    let skipped: Vec<u32> = policy.skipped.iter().map(|s| s.source.line).collect();
    assert_eq!(skipped, expected.skips, "{doc}: skipped rows and prose");
    for rule in &policy.rules {
        assert_eq!(
            rule.source.doc, doc,
            "provenance names the file, not a path"
        );
    }
    policy
}

/// Every table row of the document, found by a plain scan of the text
/// (independent of the compiler's parsers), yields a rule or a skip.
fn every_row_accounted_for(doc: &str, policy: &Policy) {
    let text = std::fs::read_to_string(seed(doc)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut rows = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let md_row = t.starts_with('|') && t[1..].starts_with(|c: char| c.is_ascii_digit());
        let html_row = t == "<tr>"
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("<td>"));
        if md_row || html_row {
            rows.push(u32::try_from(i + 1).unwrap());
        }
    }
    assert!(!rows.is_empty());
    for row in rows {
        let covered = policy.rules.iter().any(|r| r.source.line == row)
            || policy.skipped.iter().any(|s| s.source.line == row);
        assert!(
            covered,
            "{doc}:{row}: table row with neither a rule nor a skip"
        );
    }
}

#[test]
fn thoughtspot_matches_the_hand_written_rules() {
    let doc = "000_2809db0a7820664a.txt";
    let policy = check(doc, "thoughtspot.golden");
    every_row_accounted_for(doc, &policy);
}

#[test]
fn auth0_psaas_matches_the_hand_written_rules() {
    let doc = "004_f8af2c70398e4594.txt";
    let policy = check(doc, "auth0-psaas.golden");
    every_row_accounted_for(doc, &policy);
}

#[test]
fn every_compiled_decision_is_recorded_on_the_rule() {
    let policy = compile_paths(&[seed("000_2809db0a7820664a.txt")]).unwrap();
    let rule = |id: &str| policy.rule(id).unwrap();
    // Application protocol to L4.
    assert!(
        rule("000-12")
            .notes
            .iter()
            .any(|n| n.contains("RPC over TCP"))
    );
    // Contradicting columns.
    assert!(
        rule("000-67")
            .notes
            .iter()
            .any(|n| n.contains("named as Source"))
    );
    // URL reduced, space repaired.
    assert!(
        rule("000-66")
            .notes
            .iter()
            .any(|n| n.contains("reduced to its host"))
    );
    assert!(
        rule("000-66")
            .notes
            .iter()
            .any(|n| n.contains("stray space"))
    );
    // Supersession on both sides.
    assert!(rule("000-69").notes.iter().any(|n| n.contains("000-76")));
    assert!(rule("000-76").notes.iter().any(|n| n.contains("4.5.1")));
    // Role notes only on the rule for that peer.
    assert!(
        rule("000-13b")
            .notes
            .iter()
            .any(|n| n.contains("role admin"))
    );
    assert!(
        !rule("000-13a")
            .notes
            .iter()
            .any(|n| n.contains("role admin"))
    );
}
