//! The Prometheus rules portconform ships (issue 19, item 4): valid for
//! Debian's Prometheus (`promtool check rules`), and each alert fires on
//! the series that should fire it and on no other (`promtool test rules`
//! with monitor/tests/fixtures/prometheus/rules_test.yml).

use std::{path::Path, process::Command};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/prometheus/portconform.rules.yml"
);
const TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/prometheus/rules_test.yml"
);

fn promtool(args: &[&str]) -> String {
    let bin = Path::new("/usr/bin/promtool");
    assert!(
        bin.exists(),
        "promtool is required for this test: install Debian's prometheus (cargo xtask setup)"
    );
    let out = Command::new(bin).args(args).output().expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_shipped_rules_check_and_their_alerts_fire_as_tested() {
    let out = promtool(&["check", "rules", RULES]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(&["test", "rules", TESTS]);
    assert!(out.contains("SUCCESS"), "{out}");
}
