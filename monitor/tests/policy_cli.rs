//! The `portconform policy` command line, as users and scripts see it: exit
//! codes, stderr warnings, the JSON contract of DESIGN.md, and a table that
//! fits 100 columns.

mod common;

use std::process::Command;

use serde_json::Value;

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/seeds");
const TS: &str = "000_2809db0a7820664a.txt";
const A0: &str = "004_f8af2c70398e4594.txt";

/// The command with logging off, so that stderr holds only what the command
/// itself says (whatever RUST_LOG the test runs with).
fn quiet(args: &[&str]) -> Command {
    let mut cmd = common::command(args);
    cmd.env("RUST_LOG", "off");
    cmd
}

fn ok(args: &[&str]) -> (String, String) {
    common::succeeds(&mut quiet(args))
}

fn fails(args: &[&str]) -> String {
    common::fails(&mut quiet(args))
}

#[test]
fn compile_writes_a_policy_and_warns_with_doc_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policy.toml");
    let (stdout, stderr) = ok(&[
        "policy",
        "compile",
        &format!("{SEEDS}/{TS}"),
        &format!("{SEEDS}/{A0}"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(&format!("warning: {TS}:66: stray space")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("warning: {A0}:71: Required? says No")),
        "{stderr}"
    );
    assert!(
        stderr.contains("compiled 2 documents: 88 rules (53 to review), 1 skipped"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(SEEDS), "no absolute paths in the policy");
    let (shown, _) = ok(&[
        "policy",
        "show",
        "--policy",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["rules"].as_array().unwrap().len(), 88);
    // The file may also be named directly, as `compile -o` wrote it.
    let (direct, _) = ok(&["policy", "show", out.to_str().unwrap(), "--format", "json"]);
    assert_eq!(direct, shown);
    let err = fails(&[
        "policy",
        "show",
        out.to_str().unwrap(),
        "--profile",
        "thoughtspot",
    ]);
    assert!(err.contains("cannot be used with"), "{err}");
}

/// Rules the compiler had to guess at are marked for the reviewer, with
/// what to check; rules the document states in full are not.
#[test]
fn guessed_rules_are_marked_for_review() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("ports.md");
    std::fs::write(
        &doc,
        "# Ports\n\n\
         | Port | Protocol | Direction | Source | Destination |\n\
         |------|----------|-----------|--------|-------------|\n\
         | 8443 | TCP | Inbound | admin | nodes |\n\
         | 9000 | | Inbound | admin | nodes |\n\n\
         The agent also listens on port 7070 (TCP).\n",
    )
    .unwrap();
    let out = dir.path().join("policy.toml");
    let (_, stderr) = ok(&[
        "policy",
        "compile",
        doc.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("compiled 1 document: 3 rules (2 to review)"),
        "{stderr}"
    );
    let (json, _) = ok(&["policy", "show", out.to_str().unwrap(), "--format", "json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let review = |line: u32| -> Vec<String> {
        let rule = v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source"] == format!("ports.md:{line}"))
            .unwrap_or_else(|| panic!("no rule from line {line}: {json}"));
        serde_json::from_value(rule["review"].clone()).unwrap()
    };
    assert!(review(5).is_empty(), "{json}");
    assert_eq!(review(6), vec!["no protocol given: TCP assumed"], "{json}");
    assert!(review(8)[0].contains("read from a sentence"), "{json}");
    let (table, _) = ok(&["policy", "show", out.to_str().unwrap()]);
    assert!(table.contains("(3 rules, 3 active, 2 to review"), "{table}");
    let marked: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("? ports-"))
        .collect();
    assert_eq!(marked.len(), 2, "{table}");
    assert!(
        table.contains("└ review: no protocol given: TCP assumed"),
        "{table}"
    );
    let (only, _) = ok(&["policy", "show", out.to_str().unwrap(), "--review"]);
    assert!(
        only.contains("only the 2 of 3 rules the compiler had to guess at"),
        "{only}"
    );
    assert!(
        only.contains("ports-6") && only.contains("ports-8"),
        "{only}"
    );
    assert!(!only.contains("ports-5 "), "{only}");
    let (json, _) = ok(&[
        "policy",
        "show",
        out.to_str().unwrap(),
        "--review",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["rules"].as_array().unwrap().len(), 2, "{json}");
}

#[test]
fn show_json_has_the_contract_fields() {
    for profile in ["thoughtspot", "auth0-psaas"] {
        let (stdout, _) = ok(&["policy", "show", "--profile", profile, "--format", "json"]);
        let v: Value = serde_json::from_str(&stdout).unwrap();
        let rules = v["rules"].as_array().unwrap();
        assert!(!rules.is_empty());
        for r in rules {
            for key in [
                "id",
                "proto",
                "ports",
                "direction",
                "local_role",
                "peer_role",
                "required",
                "condition",
                "service",
                "source",
                "superseded_by",
            ] {
                assert!(r.get(key).is_some(), "{profile}: {key} missing in {r}");
            }
            assert!(["tcp", "udp", "icmp"].contains(&r["proto"].as_str().unwrap()));
            assert!(
                ["inbound", "outbound", "bidirectional"]
                    .contains(&r["direction"].as_str().unwrap())
            );
            assert!(["yes", "no", "conditional"].contains(&r["required"].as_str().unwrap()));
            for pair in r["ports"].as_array().unwrap() {
                let pair = pair.as_array().unwrap();
                assert_eq!(pair.len(), 2);
                assert!(pair[0].as_u64().unwrap() <= pair[1].as_u64().unwrap());
            }
            let source = r["source"].as_str().unwrap();
            let (doc, line) = source.rsplit_once(':').unwrap();
            assert!(doc == TS || doc == A0, "{source}");
            assert!(line.parse::<u32>().unwrap() > 0);
            // A role, or literal peers.
            assert!(r["peer_role"].is_string() == r["peer"].as_array().unwrap().is_empty());
        }
        assert!(v["roles"].as_array().unwrap().iter().any(|r| r == "nodes"));
    }
}

#[test]
fn show_table_fits_100_columns_and_lists_roles_and_skips() {
    for profile in ["thoughtspot", "auth0-psaas"] {
        let (stdout, _) = ok(&["policy", "show", "--profile", profile]);
        for line in stdout.lines() {
            assert!(line.chars().count() <= 100, "{profile}: too wide: {line}");
        }
        assert!(stdout.contains("roles (bind them in the inventory): nodes"));
    }
    let (notes, _) = ok(&["policy", "show", "--profile", "thoughtspot", "--notes"]);
    assert!(
        notes.contains(&format!("  {TS}:67: Direction is outbound")),
        "{notes}"
    );
    assert!(notes.lines().all(|l| l.chars().count() <= 100), "{notes}");
    let (stdout, _) = ok(&["policy", "show", "--profile", "auth0-psaas"]);
    assert!(
        stdout.contains(&format!("skipped (1):\n  {A0}:201: prose requirement if")),
        "{stdout}"
    );
}

#[test]
fn release_picks_between_superseded_rules() {
    let (old, _) = ok(&[
        "policy",
        "explain",
        "8086/tcp",
        "--profile",
        "thoughtspot",
        "--release",
        "4.4",
    ]);
    assert!(
        old.contains("8086/tcp: 1 rule (1 active, 1 required)"),
        "{old}"
    );
    assert!(old.contains(&format!("from {TS}:69")), "{old}");
    let (new, _) = ok(&[
        "policy",
        "explain",
        "8086/tcp",
        "--profile",
        "thoughtspot",
        "--release",
        "4.5.1",
    ]);
    assert!(
        new.contains("(0 active, 0 required)") && new.contains("superseded by 000-76"),
        "{new}"
    );
    let (json, _) = ok(&[
        "policy",
        "show",
        "--profile",
        "thoughtspot",
        "--release",
        "4.4",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let r76 = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "000-76")
        .unwrap();
    assert_eq!(r76["active"], false);
    let r69 = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "000-69")
        .unwrap();
    assert_eq!(r69["superseded_by"], "000-76");
    assert_eq!(r69["active"], true);
}

#[test]
fn conditions_are_off_until_enabled() {
    // Off, the rule still allows the port (the vendor lists it); it is only
    // not required.
    let (off, _) = ok(&["policy", "explain", "9001", "--profile", "auth0-psaas"]);
    assert!(
        off.contains("(1 active, 0 required)") && off.contains("required if rate limiting is used"),
        "{off}"
    );
    let (on, _) = ok(&[
        "policy",
        "explain",
        "9001",
        "--profile",
        "auth0-psaas",
        "--enable-condition",
        "rate limiting",
    ]);
    assert!(on.contains("(1 active, 1 required)"), "{on}");
    let err = fails(&[
        "policy",
        "explain",
        "9001",
        "--profile",
        "auth0-psaas",
        "--enable-condition",
        "quantum",
    ]);
    assert!(
        err.contains("no conditional rule matches \"quantum\""),
        "{err}"
    );
}

#[test]
fn explain_says_which_peers_and_why() {
    let (out, _) = ok(&["policy", "explain", "25", "--profile", "thoughtspot"]);
    assert!(
        out.contains("000-67") && out.contains("outbound to smtp-relay"),
        "{out}"
    );
    assert!(out.contains(&format!("from {TS}:67")), "{out}");
    let (dyn_out, _) = ok(&[
        "policy",
        "explain",
        "40000/tcp",
        "--profile",
        "thoughtspot",
        "--dynamic-ports",
        "20000-65535",
    ]);
    assert!(
        dyn_out.contains("000-6 ") && dyn_out.contains("20000-65535 from --dynamic-ports"),
        "{dyn_out}"
    );
    let (none, _) = ok(&["policy", "explain", "53/udp", "--profile", "thoughtspot"]);
    assert!(none.starts_with("no rule allows 53/udp"), "{none}");
    let (icmp, _) = ok(&["policy", "explain", "icmp", "--profile", "auth0-psaas"]);
    assert!(icmp.contains("004-83"), "{icmp}");
}

#[test]
fn errors_are_one_clear_line() {
    let err = fails(&["policy", "compile", "/nonexistent/ports.md"]);
    assert!(
        err.starts_with("portconform: /nonexistent/ports.md: cannot read"),
        "{err}"
    );
    let err = fails(&["policy", "show", "--profile", "nope"]);
    assert!(
        err.contains("unknown profile \"nope\"; the profiles are: thoughtspot, auth0-psaas"),
        "{err}"
    );
    let err = fails(&["policy", "show"]);
    assert!(
        err.contains("give --policy FILE or --profile NAME"),
        "{err}"
    );
    let err = fails(&["policy", "explain", "70000", "--profile", "thoughtspot"]);
    assert!(err.contains("not a port"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "format = 1\n[[rules]]\nid = 3\n").unwrap();
    let err = fails(&["policy", "show", "--policy", bad.to_str().unwrap()]);
    assert!(err.contains("bad.toml:3:"), "{err}");
}

/// `policy export` for one role of a two-role product: the host's share,
/// its peers' rules turned round, to stdout or `-o` alike.
#[test]
fn export_writes_one_roles_share() {
    let roles = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/roles");
    let policy = format!("{roles}/cluster.toml");
    let inventory = format!("{roles}/inventory.toml");
    let base = [
        "policy",
        "export",
        "--policy",
        &policy,
        "--inventory",
        &inventory,
        "--dynamic-ports",
        "40000-40100",
    ];
    let err = fails(&[&base[..], &["--format", "nft"]].concat());
    assert!(err.contains("several host roles (agent, server)"), "{err}");
    let err = fails(&[&base[..], &["--format", "nft", "--role", "worker"]].concat());
    assert!(err.contains("its roles: agent, server"), "{err}");

    let args = [&base[..], &["--role", "agent", "--format", "iptables"]].concat();
    let (stdout, stderr) = ok(&args);
    assert!(stderr.contains("exported 1 rules"), "{stderr}");
    // The servers' inbound agent channel is the agent's outbound rule.
    assert!(
        stdout.contains(
            "-A OUTPUT -d 192.0.2.1/32 -p tcp -m tcp --dport 9440 -m comment --comment \"c-5 cluster.md:5 agent channel\" -j ACCEPT\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("-A INPUT -s"), "{stdout}");
    // The optional update mirror only when asked for.
    assert!(
        stdout.contains("c-12 (cluster.md:12): optional"),
        "{stdout}"
    );
    assert!(!stdout.contains("--dport 443"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("server.nft");
    let args = [
        &base[..],
        &["--role", "server", "--format", "nft", "--include-optional"],
    ]
    .concat();
    let (stdout, _) = ok(&args);
    ok(&[&args[..], &["-o", out.to_str().unwrap()]].concat());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), stdout);
    assert!(
        stdout.contains("\t\tip saddr @agent_v4 tcp dport 9440 accept comment \"c-5 cluster.md:5 agent channel\"\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\t\tip daddr @server_v4 tcp dport 7000 accept comment \"c-6 cluster.md:6 replication\"\n"),
        "{stdout}"
    );
    assert!(stdout.contains("elements = { 192.0.2.16/28 }"), "{stdout}");
    // The agent's update rule is not the server's.
    assert!(!stdout.contains("c-12"), "{stdout}");
}
