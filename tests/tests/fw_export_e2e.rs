//! `policy export` round trips (issue 20, items 3 and 4): the ruleset it
//! writes for a profile, loaded as written by `validate`'s lab of
//! namespaces, lets every required flow through and no port that no rule
//! allows, in nft (both families at once), iptables (IPv4) and ip6tables
//! (IPv6) syntax. A ruleset with one allow line taken out fails the same
//! round trip, so a pass means something. Syntax is also checked by the
//! tools themselves (`nft -c -f`, `iptables-restore --test`) inside a
//! namespace of our own.

use std::{
    process::{Command, Output, Stdio},
    time::Duration,
};

use portconform_tests::{
    lab::{Netns, TempDir},
    portconform_bin,
};
use serde_json::Value;

/// thoughtspot's site on both families, with a DNS name the export must
/// leave to the site (the lab has no DNS either).
const DUAL: &str = "nodes = [\"192.0.2.0/24\", \"2001:db8:1::/64\"]\n\
admin = [\"198.51.100.10\", \"2001:db8:2::10\"]\nvendor-support = [\"203.0.113.7\"]\n\
smtp-relay = [\"198.51.100.25\"]\nldap-server = [\"198.51.100.89\", \"ldap.example.com\"]\n";
/// The same site on IPv4 only, and on IPv6 only: an iptables-save file
/// holds one family, so the lab of each plays that family alone.
const V4: &str = "nodes = [\"192.0.2.0/24\"]\nadmin = [\"198.51.100.10\"]\n\
vendor-support = [\"203.0.113.7\"]\nsmtp-relay = [\"198.51.100.25\"]\n\
ldap-server = [\"198.51.100.89\"]\n";
const V6: &str = "nodes = [\"2001:db8:1::/64\"]\nadmin = [\"2001:db8:2::10\"]\n\
vendor-support = [\"2001:db8:3::7\"]\nsmtp-relay = [\"2001:db8:4::25\"]\n\
ldap-server = [\"2001:db8:4::89\"]\n";
/// auth0-psaas: every role bound, both families for some.
const AUTH0: &str = "nodes = [\"192.0.2.0/24\", \"2001:db8:1::/64\"]\n\
load-balancer = [\"198.51.100.20\", \"2001:db8:2::20\"]\n\
local-dns = [\"198.51.100.53\", \"2001:db8:2::53\"]\njump-host = [\"203.0.113.22\"]\n\
monitoring-endpoint = [\"203.0.113.91\"]\ncli-clients = [\"198.51.100.128/25\"]\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

struct Case {
    dir: TempDir,
}

impl Case {
    fn new(label: &str, inventory: &str) -> Case {
        let dir = TempDir::new(label).expect("scratch");
        std::fs::write(dir.path().join("inventory.toml"), inventory).expect("inventory");
        Case { dir }
    }

    fn inventory(&self) -> String {
        self.dir.file("inventory.toml")
    }

    /// `policy export` to `name`; returns the ruleset's text.
    fn export(&self, name: &str, args: &[&str]) -> String {
        let path = self.dir.file(name);
        let out = Command::new(portconform_bin())
            .args([
                "policy",
                "export",
                "--inventory",
                &self.inventory(),
                "-o",
                &path,
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("portconform policy export");
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        std::fs::read_to_string(&path).expect("the exported ruleset")
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(name), text).expect("ruleset");
        self.dir.file(name)
    }

    /// `validate --format json` of `ruleset` (killed after 4 minutes).
    fn validate(&self, ruleset: &str, args: &[&str]) -> (Output, Value) {
        let out = Command::new("timeout")
            .args(["-s", "KILL", "240"])
            .arg(portconform_bin())
            .args(["validate", "--ruleset", &self.dir.file(ruleset)])
            .args(["--inventory", &self.inventory(), "--timeout", "1s"])
            .args(["--format", "json"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("portconform validate");
        assert_no_lab_left();
        let v =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
        (out, v)
    }
}

fn assert_no_lab_left() {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    let left: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("pcv-"))
        .map(String::from)
        .collect();
    assert!(left.is_empty(), "validate left its lab behind: {left:?}");
}

/// The tool's own check of the file, in a namespace of ours: nothing is
/// loaded on the host.
fn syntax_check(program: &str, args: &[&str]) {
    let ns = Netns::new("fwx").expect("namespace");
    if let Err(e) = ns.run(Duration::from_secs(30), program, args) {
        panic!("{program} refused the export: {e:#}");
    }
}

/// A passing round trip: exit 0, nothing blocked, nothing let through,
/// every required rule working except those towards literal endpoints
/// (which the lab cannot play), and the ports no rule allows stopped by
/// the export's own default drop (`chain`), so the ruleset was the judge.
fn assert_round_trip(out: &Output, v: &Value, chain: &str) {
    assert_eq!(out.status.code(), Some(0), "{}", show(out));
    let report = &v["report"];
    assert_eq!(report["blocked"], 0, "{}", show(out));
    assert_eq!(report["let_through"], 0, "{}", show(out));
    for rule in report["rules"].as_array().expect("rules") {
        match rule["status"].as_str() {
            Some("working") => {}
            Some("untested") => assert!(
                rule["untested"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("named literally"),
                "{rule}"
            ),
            _ => panic!("{rule}\n{}", show(out)),
        }
    }
    let stopped: Vec<&Value> = report["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["status"] == "stopped")
        .collect();
    assert!(stopped.len() >= 10, "{}", show(out));
    for a in &stopped {
        assert_eq!(a["nft_rule"], format!("{chain}: policy drop"), "{a}");
    }
}

#[test]
fn nft_export_of_thoughtspot_passes_validate() {
    let case = Case::new("fx-nft", DUAL);
    let args = [
        "--profile",
        "thoughtspot",
        "--release",
        "4.6",
        "--format",
        "nft",
    ];
    let ruleset = case.export("ts.nft", &args);
    assert_eq!(ruleset, case.export("again.nft", &args), "deterministic");
    assert!(
        ruleset.contains("# to add: the addresses of ldap.example.com"),
        "{ruleset}"
    );
    syntax_check("nft", &["-c", "-f", &case.dir.file("ts.nft")]);
    let (out, v) = case.validate("ts.nft", &["--profile", "thoughtspot", "--release", "4.6"]);
    assert_round_trip(&out, &v, "inet portconform input");
    // Both families were tried and worked.
    let attempts = v["report"]["attempts"].as_array().unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a["status"] == "working" && a["src"].as_str().unwrap().contains(':')),
        "{}",
        show(&out)
    );
}

#[test]
fn iptables_exports_pass_validate_one_family_each() {
    let args = ["--profile", "thoughtspot", "--release", "4.6"];
    for (inventory, format, restore, chain) in [
        (V4, "iptables", "iptables-restore", "ip filter INPUT"),
        (V6, "ip6tables", "ip6tables-restore", "ip6 filter INPUT"),
    ] {
        let case = Case::new(&format!("fx-{format}"), inventory);
        let name = format!("ts.{format}");
        let ruleset = case.export(&name, &[&args[..], &["--format", format]].concat());
        assert!(
            ruleset.contains("\n*filter\n:INPUT DROP [0:0]\n"),
            "{ruleset}"
        );
        syntax_check(restore, &["--test", &case.dir.file(&name)]);
        let (out, v) = case.validate(&name, &args);
        assert_round_trip(&out, &v, chain);
        // Nothing was left untranslated.
        let notes = v["notes"].to_string();
        assert!(!notes.contains("could not translate"), "{notes}");
    }
}

/// The same round trip fails when the export is missing a rule: one
/// allow line taken out of the nft file blocks its required flow.
#[test]
fn a_ruleset_missing_a_rule_fails_the_round_trip() {
    let case = Case::new("fx-miss", V4);
    let args = ["--profile", "thoughtspot", "--release", "4.6"];
    let ruleset = case.export("ts.nft", &[&args[..], &["--format", "nft"]].concat());
    let without: String = ruleset
        .lines()
        .filter(|l| !(l.contains("saddr @nodes_v4 tcp dport 2181 ")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without.lines().count() + 1, ruleset.lines().count());
    case.write("missing.nft", &without);
    let (out, v) = case.validate("missing.nft", &args);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let zk = v["report"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "000-14")
        .expect("000-14");
    assert_eq!(zk["status"], "blocked", "{zk}");
}

/// auth0-psaas with its optional and conditional rules in: ICMP, UDP and
/// TCP DNS, a port list with a range (9200, 9300-9400).
#[test]
fn auth0_export_with_every_rule_passes_validate() {
    let case = Case::new("fx-auth0", AUTH0);
    let args = ["--profile", "auth0-psaas", "--enable-condition", "all"];
    let ruleset = case.export(
        "a.nft",
        &[&args[..], &["--include-optional", "--format", "nft"]].concat(),
    );
    assert!(
        ruleset.contains("tcp dport { 9200, 9300-9400 } accept"),
        "{ruleset}"
    );
    assert!(
        ruleset.contains("meta l4proto icmp accept comment \"004-83 "),
        "{ruleset}"
    );
    assert!(
        ruleset.contains("udp dport 53 accept comment \"004-188a "),
        "{ruleset}"
    );
    syntax_check("nft", &["-c", "-f", &case.dir.file("a.nft")]);
    for (format, restore) in [
        ("iptables", "iptables-restore"),
        ("ip6tables", "ip6tables-restore"),
    ] {
        let name = format!("a.{format}");
        case.export(
            &name,
            &[&args[..], &["--include-optional", "--format", format]].concat(),
        );
        syntax_check(restore, &["--test", &case.dir.file(&name)]);
    }
    let (out, v) = case.validate("a.nft", &args);
    assert_round_trip(&out, &v, "inet portconform input");
    let report = &v["report"];
    let rate = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "004-47")
        .expect("the conditional rule, enabled");
    assert_eq!(rate["status"], "working", "{rate}");
}
