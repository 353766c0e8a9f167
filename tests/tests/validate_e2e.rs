//! `portconform validate` against real nftables rulesets for the thoughtspot
//! profile (issue 7, item 4): a known-good ruleset passes; one dropping 2181,
//! one rejecting 5432, one opening an extra port, one nft refuses, an
//! iptables-save one, a baseline diff; and Ctrl-C mid-run leaves nothing
//! behind. validate builds its own lab of namespaces (`pcv-<pid>-...`,
//! documentation addresses from the inventory below) and removes it.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use portconform_tests::{kernel, lab::TempDir, portconform_bin};
use serde_json::Value;

/// The site: the appliance and another node in 192.0.2.0/24, the other
/// roles on single documentation addresses.
const INVENTORY: &str = "nodes = [\"192.0.2.0/24\"]\nadmin = [\"198.51.100.10\"]\n\
vendor-support = [\"203.0.113.7\"]\nsmtp-relay = [\"198.51.100.25\"]\nldap-server = [\"198.51.100.89\"]\n";

/// Inbound ports the thoughtspot document requires from other nodes, from
/// admin hosts and from vendor support (release 4.6), the dynamic range
/// aside: validate takes that from this host's ip_local_port_range, as
/// shipped, so the ruleset reads it from there too.
const NODE_PORTS: &str = "80, 443, 2100, 2101, 2181, 2200, 2201, 2210, 2211, 2230, 2231, 2240, \
2888, 3888, 4000, 4001, 4021, 4201, 4231, 4232, 4233, 4241, 4242, 4243, 4251, 4405, 4500, 4501, \
4851, 4852, 4853, 5432, 8020, 8080, 8787, 8888, 11211, 12345, 50070, 50075";

/// This host's dynamic port range as nft writes it (`LO-HI`).
fn dynamic_ports() -> String {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .expect("ip_local_port_range");
    let ends: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(ends.len(), 2, "ip_local_port_range: {text:?}");
    format!("{}-{}", ends[0], ends[1])
}
const ADMIN_PORTS: &str = "2101, 2201, 2211, 2231, 4001, 4021, 4201, 4231, 4241, 4501, 4852, 4853";
const SUPPORT_PORTS: &str = "22, 80, 443, 12345";

/// A stateful ruleset allowing exactly the required inbound flows, with
/// `extra` rules placed before the allow rules.
fn ruleset(extra: &str) -> String {
    let dynamic = dynamic_ports();
    format!(
        "table inet filter {{\n\
         \x20 chain input {{\n\
         \x20   type filter hook input priority 0; policy drop;\n\
         \x20   ct state established,related accept\n\
         \x20   iif \"lo\" accept\n\
         {extra}\
         \x20   ip saddr 192.0.2.0/24 tcp dport {{ {NODE_PORTS}, {dynamic} }} accept\n\
         \x20   ip saddr 198.51.100.10 tcp dport {{ {ADMIN_PORTS} }} accept\n\
         \x20   ip saddr 203.0.113.7 tcp dport {{ {SUPPORT_PORTS} }} accept\n\
         \x20 }}\n\
         \x20 chain output {{\n\
         \x20   type filter hook output priority 0; policy accept;\n\
         \x20 }}\n\
         }}\n"
    )
}

struct Case {
    dir: TempDir,
}

impl Case {
    fn new(label: &str) -> Case {
        let dir = TempDir::new(label).expect("scratch");
        std::fs::write(dir.path().join("inventory.toml"), INVENTORY).expect("inventory");
        Case { dir }
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(name), text).expect("ruleset");
        self.dir.file(name)
    }

    /// `portconform validate` with the case's profile and inventory.
    fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(portconform_bin());
        cmd.args([
            "validate",
            "--profile",
            "thoughtspot",
            "--release",
            "4.6",
            "--timeout",
            "1s",
            "--inventory",
            &self.dir.file("inventory.toml"),
        ])
        .args(extra)
        .stdin(Stdio::null());
        cmd
    }

    /// Runs it to completion (killed after 4 minutes).
    fn validate(&self, extra: &[&str]) -> Output {
        let cmd = self.command(extra);
        let mut bounded = Command::new("timeout");
        bounded
            .args(["-s", "KILL", "240"])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::null());
        let out = bounded.output().expect("portconform validate");
        assert_no_lab_left();
        out
    }
}

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

/// Namespaces of validate's labs (`pcv-...`) still present.
fn lab_namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("pcv-"))
        .map(String::from)
        .collect()
}

fn assert_no_lab_left() {
    assert_eq!(
        lab_namespaces(),
        Vec::<String>::new(),
        "validate left its lab behind"
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

fn rule<'v>(report: &'v Value, id: &str) -> &'v Value {
    report["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no rule {id}"))
}

#[test]
fn known_good_ruleset_passes() {
    let case = Case::new("v-good");
    let good = case.write("good.nft", &ruleset(""));
    let out = case.validate(&["--ruleset", &good, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let v = json(&out);
    let report = &v["report"];
    assert_eq!(report["blocked"], 0, "{}", show(&out));
    assert_eq!(report["let_through"], 0, "{}", show(&out));
    assert_eq!(rule(report, "000-14")["status"], "working");
    // Rules towards literal endpoints cannot be played by the lab.
    assert_eq!(rule(report, "000-83")["status"], "untested");
    // Every attempt the monitor saw agrees with the client.
    let attempts = report["attempts"].as_array().unwrap();
    assert!(attempts.len() > 60, "{}", attempts.len());
    for a in attempts {
        assert_ne!(a["monitor_agrees"], false, "{a}");
    }
    // The unexpected sample was tried and stopped by the ruleset, and the
    // monitor flagged each of those SYNs.
    let stopped: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["status"] == "stopped")
        .collect();
    assert!(stopped.len() >= 10, "{}", show(&out));
    assert!(stopped.iter().all(|a| a["monitor"]["kind"] == "unexpected"));
    assert!(
        stopped
            .iter()
            .all(|a| a["nft_rule"] == "inet filter input: policy drop")
    );
    // The lab used the inventory's addresses.
    let lab: Vec<String> = v["lab"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["addrs"][0].to_string())
        .collect();
    assert_eq!(lab[0], "\"192.0.2.1\"");
    assert!(lab.contains(&"\"203.0.113.7\"".to_string()), "{lab:?}");
}

#[test]
fn dropping_2181_is_reported_with_the_rule() {
    let case = Case::new("v-2181");
    let bad = case.write("drop2181.nft", &ruleset("    tcp dport 2181 drop\n"));
    let out = case.validate(&["--ruleset", &bad]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("BLOCKED 000-14 tcp 2181 both nodes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no-reply 2181/tcp nodes 192.0.2.2 -> 192.0.2.1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nft: inet filter input: tcp dport 2181 drop (handle"),
        "{stdout}"
    );
    // The appliance's own input chain dropped it: the monitor names that
    // where the kernel reports drops.
    let reason = if kernel::names_drop_reasons() {
        "local-firewall"
    } else {
        "no-reply"
    };
    assert!(
        stdout.contains(&format!("monitor: blocked ({reason})")),
        "{stdout}"
    );
    assert!(stdout.contains(": 1 required rules blocked"), "{stdout}");
}

/// The appliance's own output chain drops an outbound required flow: its
/// SYNs never reach the egress hook, and the monitor still reports the
/// flow, from the kernel's drop (issue 15, item 3). Run with the host's
/// own dynamic port range (no `--dynamic-ports`).
#[test]
fn an_output_chain_drop_is_reported_by_the_monitor() {
    let case = Case::new("v-out5432");
    let ruleset = ruleset("").replace(
        "policy accept;\n",
        "policy accept;\n    tcp dport 5432 drop\n",
    );
    assert!(ruleset.contains("tcp dport 5432 drop"), "{ruleset}");
    let bad = case.write("out5432.nft", &ruleset);
    let cmd = case.command(&["--ruleset", &bad, "--format", "json"]);
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let out = Command::new("timeout")
        .args(["-s", "KILL", "240"])
        .arg(cmd.get_program())
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("portconform validate");
    assert_no_lab_left();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report = &json(&out)["report"];
    assert_eq!(rule(report, "000-42")["status"], "blocked");
    let attempts = report["attempts"].as_array().unwrap();
    let outbound = attempts
        .iter()
        .find(|a| a["port"] == 5432 && a["direction"] == "outbound")
        .unwrap();
    assert_eq!(outbound["client"]["outcome"], "no-reply", "{outbound}");
    assert!(
        outbound["nft_rule"]
            .as_str()
            .unwrap_or_default()
            .contains("tcp dport 5432 drop"),
        "{outbound}"
    );
    if kernel::names_drop_reasons() {
        assert_eq!(outbound["monitor"]["kind"], "blocked", "{outbound}");
        assert_eq!(
            outbound["monitor"]["reason"], "local-firewall",
            "{outbound}"
        );
        assert!(
            outbound["monitor"]["note"]
                .as_str()
                .unwrap_or_default()
                .contains("NETFILTER_DROP"),
            "{outbound}"
        );
    }
    // Inbound 5432 (another node to the appliance) still works.
    let inbound = attempts
        .iter()
        .find(|a| a["port"] == 5432 && a["direction"] == "inbound")
        .unwrap();
    assert_eq!(inbound["status"], "working", "{inbound}");
}

#[test]
fn rejecting_5432_is_a_reset() {
    let case = Case::new("v-5432");
    let bad = case.write(
        "reject5432.nft",
        &ruleset("    tcp dport 5432 reject with tcp reset\n"),
    );
    let out = case.validate(&["--ruleset", &bad, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report = &json(&out)["report"];
    let pg = rule(report, "000-42");
    assert_eq!(pg["status"], "blocked");
    assert_eq!(pg["reason"], "reset");
    let attempts = report["attempts"].as_array().unwrap();
    let inbound = attempts
        .iter()
        .find(|a| a["port"] == 5432 && a["direction"] == "inbound")
        .unwrap();
    assert_eq!(inbound["client"]["outcome"], "reset");
    assert_eq!(inbound["monitor"]["kind"], "blocked");
    assert_eq!(inbound["monitor"]["reason"], "reset");
    assert!(
        inbound["nft_rule"]
            .as_str()
            .unwrap()
            .contains("tcp dport 5432 reject with tcp reset"),
        "{inbound}"
    );
    // Outbound 5432 (the appliance to another node) still works.
    let outbound = attempts
        .iter()
        .find(|a| a["port"] == 5432 && a["direction"] == "outbound")
        .unwrap();
    assert_eq!(outbound["status"], "working");
    assert_eq!(report["blocked"], 1);
}

#[test]
fn an_extra_open_port_is_unexpected_allowed() {
    let case = Case::new("v-extra");
    let open = case.write("extra.nft", &ruleset("    tcp dport 6379 accept\n"));
    let out = case.validate(&["--ruleset", &open]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("UNEXPECTED-ALLOWED 6379/tcp admin 198.51.100.10 -> 192.0.2.1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no rule allows tcp 6379 inbound"),
        "{stdout}"
    );
    assert!(stdout.contains(": 0 required rules blocked"), "{stdout}");
    // Nothing but 6379 is let through.
    for line in stdout.lines().filter(|l| l.contains("UNEXPECTED-ALLOWED")) {
        assert!(line.contains(" 6379/tcp "), "{line}");
    }
}

#[test]
fn a_ruleset_nft_rejects_is_an_error_with_its_line() {
    let case = Case::new("v-syntax");
    let broken = ruleset("    tcp dport 2181 acept\n");
    let path = case.write("broken.nft", &broken);
    let line = broken.lines().position(|l| l.contains("acept")).unwrap() + 1;
    let out = case.validate(&["--ruleset", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nft rejected the ruleset"), "{stderr}");
    assert!(stderr.contains(&format!("{path}:{line}:")), "{stderr}");
    assert!(stderr.contains("Error:"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "no report on an error");
}

#[test]
fn baseline_diff_reports_only_the_change() {
    let case = Case::new("v-diff");
    let baseline = case.write("baseline.nft", &ruleset(""));
    let candidate = case.write(
        "candidate.nft",
        &ruleset("    tcp dport 2181 drop\n    tcp dport 6379 accept\n"),
    );
    let out = case.validate(&[
        "--ruleset",
        &candidate,
        "--baseline",
        &baseline,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let diff = &json(&out)["diff"];
    let rules = diff["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{diff}");
    assert_eq!(rules[0]["after"]["id"], "000-14");
    assert_eq!(rules[0]["before"]["status"], "working");
    assert_eq!(rules[0]["after"]["status"], "blocked");
    assert_eq!(diff["newly_blocked"], 1);
    let unexpected = diff["unexpected"].as_array().unwrap();
    assert!(!unexpected.is_empty(), "{diff}");
    for c in unexpected {
        assert_eq!(c["after"]["port"], 6379, "{c}");
        assert_eq!(c["before"]["status"], "stopped");
        assert_eq!(c["after"]["status"], "let-through");
    }
    // The same diff as a table, and a candidate equal to its baseline
    // changes nothing and passes.
    let same = case.validate(&["--ruleset", &baseline, "--baseline", &baseline]);
    assert_eq!(same.status.code(), Some(0), "{}", show(&same));
    assert!(
        text(&same.stdout).contains("0 required rules, 0 unexpected ports"),
        "{}",
        show(&same)
    );
}

#[test]
fn iptables_save_input_is_translated() {
    let case = Case::new("v-ipt");
    let save = "# Generated by iptables-save\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n\
-A INPUT -p tcp -m tcp --dport 2181 -j DROP\n-A INPUT -s 192.0.2.0/24 -j ACCEPT\n\
-A INPUT -s 198.51.100.10/32 -j ACCEPT\n-A INPUT -s 203.0.113.7/32 -j ACCEPT\nCOMMIT\n";
    let path = case.write("rules.v4", save);
    let out = case.validate(&["--ruleset", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("BLOCKED 000-14"), "{stdout}");
    assert!(
        stdout.contains("nft: ip filter INPUT: tcp dport 2181"),
        "{stdout}"
    );
    // iptables has no IPv6 rules here, and the lab is IPv4 (the inventory).
    // Accepting every port from the admin host lets the sample through.
    assert!(stdout.contains("UNEXPECTED-ALLOWED"), "{stdout}");
}

#[test]
fn sigint_mid_run_removes_the_lab() {
    let case = Case::new("v-sigint");
    // Everything dropped: each attempt waits out its timeout.
    let path = case.write(
        "dropall.nft",
        "table inet filter {\n  chain input {\n    type filter hook input priority 0; policy drop;\n  }\n}\n",
    );
    let mut child = case
        .command(&["--ruleset", &path])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("validate");
    // Wait for the lab, then let a few attempts run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab_namespaces().len() < 3 {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("validate exited ({status}) before its lab was up");
        }
        assert!(Instant::now() < deadline, "no lab appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "validate ended too early"
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "validate ignored SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_no_lab_left();
    // No veth of the lab is left in this namespace either, and no monitor
    // keeps running.
    let links = text(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!links.contains(": pv"), "{links}");
    let procs = text(
        &Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!procs.contains("portconform-validate-"), "{procs}");
}
