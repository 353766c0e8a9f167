//! Other vendors' port documents, compiled as a new user would: nineteen
//! fixtures written after public port references (Kubernetes, Rancher,
//! Consul, Vault, Nomad, Cilium, GitLab, MongoDB Ops Manager, Tableau,
//! Confluent, vCenter, Zabbix, Elastic, Splunk, Wazuh, Redis Enterprise,
//! Couchbase, RabbitMQ; see the fixtures' README), each with a golden list of facts a reviewer wrote by hand: who
//! opens a connection to whom, on which port and protocol, and whether it
//! is required. The test prints, per document, the share of facts the
//! compiled policy states exactly, and fails below the floor, or when a
//! document compiles to nothing, a row it must skip is not skipped with a
//! reason, or a line that is no rule becomes one.
//!
//! `vendors-unseen/` (Cloudera Manager, DataStax Enterprise, Dynatrace
//! Managed) and `vendors-blind/` (Veeam for Proxmox, Citrix Linux VDA,
//! Ceph, Puppet Enterprise) hold documents written by someone who had read
//! neither the compiler nor its tuning, each measured first as it arrived:
//! the share then said how far the compiler generalises to the next
//! document a user brings (0% and 39.4%; the later blind sets
//! `vendors-blind2/` to `vendors-blind4/` arrived at 0% each). Tuning on
//! them since raises their floors; a document moves to the first set once its share reaches
//! the target there.
//!
//! Roles are compared after folding case, plurals and words such as
//! "node" and "host", because a reviewer writes "Worker nodes" where the
//! compiler writes `worker`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use monitor::policy::{self, Direction, Peer, Policy, Proto, Required, Rule};
use serde::Deserialize;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vendors");
const UNSEEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vendors-unseen");
const BLIND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vendors-blind");
const BLIND2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vendors-blind2");
const BLIND3: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vendors-blind3");
const BLIND4: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vendors-blind4");

/// Share of all facts that must hold. The target is 95%; the floor
/// is what the compiler reaches today, so that it can only go up.
const FLOOR: f64 = 0.95;

/// The second blind set (`vendors-blind2/`: Checkmk, OpenShift, Exchange),
/// measured as it arrived, on the compiler tuned on every set above: 0.0%
/// held, and the Exchange page (a browser copy with tab-separated cells)
/// compiled to nothing. Since: 4.0% once tab-separated tables were read
/// (Exchange compiles); 10.7% once the sentence above a table gave both
/// ends of its rows; 25.3% with "can be enabled optionally" read as
/// optional, "HTTP over SSL/TLS (HTTPS)" and "over TLS or in plain text"
/// no longer read as TLS variants, and ping rows without a port read;
/// 29.3% once an endpoint's qualifying clause ("Mailbox servers in the
/// subscribed Active Directory site") no longer decided its role; 46.7%
/// once a caption naming both ends ("Ports used for all-machine to control
/// plane communications") gave them to its rows; 52.0% once a section's
/// notes saying where its connections go ("the destination ... is ... on a
/// Mailbox server") and come from ("the source can be any location") did;
/// 53.3% with "(POP3)" in a port cell read as a comment; 58.7% once a
/// bullet list under a paragraph announcing the host's "outgoing
/// connections" ("DNS (port 53 UDP)") gave one outbound rule per item, to
/// the server of its service; 64.0% once "open the following ports for
/// inbound and outbound traffic on both nodes" under "The ... appliance
/// cluster" made the table's rows two-way traffic among the cluster's
/// members. Only ever raised.
const BLIND2_FLOOR: f64 = 0.64;

/// The third blind set (`vendors-blind3/`: Configuration Manager, Pexip
/// Infinity, Ansible Automation Platform, Active Directory), measured as
/// it arrived on the compiler of commit 46584b6: 0.0% of 110 facts held,
/// and the Ansible page (AsciiDoc source as text) compiled to nothing.
/// Since: 20.9% once a Device column named the peer whose side the
/// Inbound/Outbound heading gives, a legend's "*" made rows optional, and
/// a Server Port column won over the Client Port(s) beside it (Pexip);
/// 30.0% once AsciiDoc tables, block titles and links were read, URLs
/// without a Port column gave their ports (https 443), "ALLOW X to reach"
/// named the opener and short captions named their hosts (Ansible
/// compiles); 52.7% once arrows in headings ("Client `-->` Management
/// point", `<-->` both ways) gave the ends of the tables under them, with
/// the listener's qualifier ("configured for PXE") as their condition, and
/// "Description | UDP | TCP" tables gave each port the transport of its
/// column; 55.5% with "While you install ..., also open these ports" read
/// as the condition of the table below; 62.7% once space-aligned tables
/// were read and "Client Port(s) | Server Port" tables connected a client
/// to the server the document names most (Active Directory, ends 0% ->
/// 91%); 63.6% with "Remote access while installing" read as needed
/// during installation only. Only ever raised.
const BLIND3_FLOOR: f64 = 0.63;

/// The fourth blind set (`vendors-blind4/`: SCOM, Cisco ISE, HDP/HDFS,
/// HashiCorp Boundary), measured as it arrived on the compiler of commit
/// 624c62c: 0.0% of 138 facts held, ports were found for 2.2%, and three
/// of the four documents compiled to nothing. Since: 30.4% once port cells
/// listing items ("TCP: 22 (SSH)", "UDP 9996, from NetFlow exporters")
/// were read item by item and arrows glued to ports ("1433/TCP --->")
/// named which column opens the connection (SCOM and ISE compile); 34.1%
/// with "A -> B port is :9200" and "Outbound connectivity (TCP-9201) to
/// X" list items read; grid tables with row spans read (HDP compiles);
/// 40.6% once a note's sentences about some of a row's ports ("Ports 135
/// and 445 only have to be open while ...") bore on those ports only;
/// 42.0% with "53 (DNS)" in an item giving DNS's transports; 44.2% once
/// an item's remarks ("disabled by default") were its row's notes; 46.4%
/// once an HTML paragraph opening with `<sup>3</sup>` was read as note 3
/// and "port 80 only redirects to 443" no longer as a condition; 59.4% once
/// a "Need End User Access?" column named who connects (Yes: end users and
/// the cluster's hosts, No: the cluster's hosts) and "Service | Servers"
/// rows took the daemon as their role (HDP 0% -> 69%); 64.5% once a note
/// scoping named parts or ports to a setup ("JournalNode and ZKFC ... only
/// when NameNode High Availability is enabled", "ports 1019 and 1022 are
/// used only on a DataNode that runs in secure mode") made their rows
/// conditional; 65.9% once an endpoint cell's activity clause ("Windows
/// agent installed using MOMAgent.msi", "... agent for installing,
/// upgrading ...") no longer named the host, "for <doing>" becoming the
/// row's condition. Only ever raised.
const BLIND4_FLOOR: f64 = 0.65;

/// The same for the unseen documents: today's share (44 of 62 facts,
/// 70.97%, after group rows, Component columns, initiators in words,
/// plain-text tables with one cell per line, peers restricted in words,
/// "not needed for" and "over SSL" conditions, daemon names and client
/// ports were read), rounded down: 0.71 was above the share itself.
const UNSEEN_FLOOR: f64 = 0.70;

/// The blind documents (`vendors-blind/`): measured on the compiler as it
/// stood when they arrived, before anyone tuned it to them, 39.4% held
/// (how far it generalises to the next document; see the README there).
/// Since: 53.0% once plain text laid out as reStructuredText and ports
/// stated in its sentences were read (Ceph 0% -> 100%); 77.3% once the
/// sentences of a "Port | Use" table's cells were read (Puppet 0% -> 80%);
/// 81.8% once a condition in the paragraph above a table applied to its
/// rows; 84.8% with ", when ..." clauses read as conditions; 86.4% once
/// port cells listing items were read item by item. Only ever raised.
const BLIND_FLOOR: f64 = 0.86;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Facts {
    document: String,
    roles: Vec<String>,
    #[serde(default)]
    not_rules: Vec<u32>,
    #[serde(default)]
    fact: Vec<Fact>,
    #[serde(default)]
    skip: Vec<Skip>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Fact {
    line: u32,
    port: String,
    proto: String,
    from: String,
    to: String,
    required: String,
    #[serde(default)]
    condition: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Skip {
    line: u32,
    why: String,
}

/// A role or peer name folded for comparison: lower case, words joined by
/// `-`, generic trailing words dropped, the last word singular.
fn fold(name: &str) -> String {
    const GENERIC: &[&str] = &["node", "nodes", "host", "hosts", "machine", "machines"];
    let lower = name.to_lowercase().replace("(s)", "");
    let mut words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '/' && c != ':')
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1 && words.last().is_some_and(|w| GENERIC.contains(w)) {
        words.pop();
    }
    // The seeds' one role, and what a document about one kind of host means.
    if matches!(words.as_slice(), ["node" | "nodes"]) {
        return "nodes".into();
    }
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    if let Some(last) = out.last_mut()
        && last.len() > 3
        && last.ends_with('s')
        && !last.ends_with("ss")
    {
        last.pop();
    }
    out.join("-")
}

fn is_anyone(name: &str) -> bool {
    matches!(
        fold(name).as_str(),
        "any" | "all" | "anywhere" | "anyone" | "internet" | "0.0.0.0/0" | "::/0" | "everyone"
    )
}

/// One end of a connection as the policy states it.
enum End<'a> {
    Role(&'a str),
    Literals(&'a [Peer]),
}

struct Reading<'d> {
    facts: &'d Facts,
    /// The document's product roles, folded.
    product: BTreeSet<String>,
}

impl Reading<'_> {
    /// Whether the policy's name for a product role stands for `want`. A
    /// document about one kind of host may leave it unnamed (`nodes`).
    fn same_role(&self, have: &str, want: &str) -> bool {
        let (have, want) = (fold(have), fold(want));
        have == want || (have == "nodes" && self.product.len() == 1 && self.product.contains(&want))
    }

    fn end_matches(&self, end: &End, want: &str) -> bool {
        match end {
            End::Role(role) => {
                if self.product.contains(&fold(want)) || fold(want) == "nodes" {
                    return self.same_role(role, want);
                }
                let (have, want_f) = (fold(role), fold(want));
                have == want_f
                    || (is_anyone(role) && is_anyone(want))
                    || (have.len() > 3 && want_f.contains(&have))
                    || (want_f.len() > 3 && have.contains(&want_f))
            }
            End::Literals(peers) => {
                if is_anyone(want) {
                    return peers.iter().any(|p| is_anyone(&p.to_string()));
                }
                let want = want.to_lowercase();
                peers.iter().any(|p| {
                    let p = p.to_string().to_lowercase();
                    p == want || want.contains(&p) || p.contains(&want)
                })
            }
        }
    }

    /// Whether `rule` states traffic opened by `from` to `to`.
    fn states(&self, rule: &Rule, from: &str, to: &str) -> bool {
        let peer = match &rule.peer_role {
            Some(role) => End::Role(role),
            None => End::Literals(&rule.peer),
        };
        let local = End::Role(&rule.local_role);
        let inbound = self.end_matches(&peer, from) && self.end_matches(&local, to);
        let outbound = self.end_matches(&local, from) && self.end_matches(&peer, to);
        match rule.direction {
            Direction::Inbound => inbound,
            Direction::Outbound => outbound,
            Direction::Bidirectional => inbound || outbound,
        }
    }
}

fn proto_of(s: &str) -> Proto {
    match s {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "icmp" => Proto::Icmp,
        other => panic!("facts: unknown proto {other:?}"),
    }
}

fn required_of(s: &str) -> Required {
    match s {
        "yes" => Required::Yes,
        "no" => Required::No,
        "conditional" => Required::Conditional,
        other => panic!("facts: unknown required {other:?}"),
    }
}

/// The fact's ports: one, a range `LO-HI`, or alternatives `A,B,C`.
fn ports_of(s: &str) -> Vec<(u16, u16)> {
    s.split(',')
        .map(|p| {
            let p = p.trim();
            let (lo, hi) = p.split_once('-').unwrap_or((p, p));
            (lo.parse().unwrap(), hi.parse().unwrap())
        })
        .collect()
}

fn covers(rule: &Rule, lo: u16, hi: u16) -> bool {
    match &rule.ports {
        policy::Ports::List(ranges) => ranges.iter().any(|r| r.lo <= lo && hi <= r.hi),
        policy::Ports::Dynamic => false,
    }
}

/// How far the policy gets a fact right.
#[derive(Default, Clone, Copy)]
struct Score {
    facts: usize,
    /// Port and protocol found in some rule.
    found: usize,
    /// ...between the right ends, the right way.
    ends: usize,
    /// ...and required as the document says: the fact holds.
    holds: usize,
}

fn score(policy: &Policy, facts: &Facts, misses: &mut Vec<String>) -> Score {
    let reading = Reading {
        facts,
        product: facts.roles.iter().map(|r| fold(r)).collect(),
    };
    let mut s = Score::default();
    for f in &reading.facts.fact {
        s.facts += 1;
        let proto = proto_of(&f.proto);
        let ports = ports_of(&f.port);
        let rules_for = |lo: u16, hi: u16| {
            policy
                .rules
                .iter()
                .filter(move |r| r.proto == proto && (proto == Proto::Icmp || covers(r, lo, hi)))
        };
        let found = ports
            .iter()
            .all(|&(lo, hi)| rules_for(lo, hi).next().is_some());
        let ends = found
            && ports
                .iter()
                .all(|&(lo, hi)| rules_for(lo, hi).any(|r| reading.states(r, &f.from, &f.to)));
        let holds = ends
            && ports.iter().all(|&(lo, hi)| {
                rules_for(lo, hi).any(|r| {
                    reading.states(r, &f.from, &f.to) && r.required == required_of(&f.required)
                })
            });
        s.found += usize::from(found);
        s.ends += usize::from(ends);
        s.holds += usize::from(holds);
        if !holds {
            let what = if !found {
                "no rule"
            } else if !ends {
                "wrong ends or direction"
            } else {
                "wrong requiredness"
            };
            misses.push(format!(
                "{}:{} {} {} {} -> {} ({}{}): {what}",
                facts.document,
                f.line,
                f.proto,
                f.port,
                f.from,
                f.to,
                f.required,
                f.condition
                    .as_deref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default()
            ));
        }
    }
    s
}

fn fixtures(dir: &str) -> Vec<(PathBuf, Facts)> {
    let mut out: Vec<(PathBuf, Facts)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.strip_suffix(".facts.toml")?;
            let text = std::fs::read_to_string(&path).unwrap();
            let facts: Facts =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                facts.document.starts_with(name),
                "{}: names {}",
                path.display(),
                facts.document
            );
            Some((Path::new(dir).join(&facts.document), facts))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// What a set of documents compiles to, against its facts.
struct Measured {
    total: Score,
    problems: Vec<String>,
}

impl Measured {
    fn share(&self) -> f64 {
        self.total.holds as f64 / self.total.facts.max(1) as f64
    }
}

#[test]
fn vendor_documents_compile_to_the_facts_a_reviewer_expects() {
    let m = measure(DIR, 8);
    assert!(
        m.share() >= FLOOR,
        "{:.1}% of the facts hold, below the floor of {:.1}%",
        100.0 * m.share(),
        100.0 * FLOOR
    );
    assert!(m.problems.is_empty(), "{}", m.problems.join("\n"));
}

#[test]
fn unseen_vendor_documents_compile_to_the_facts_a_reviewer_expects() {
    holds_above_floor(UNSEEN, 3, UNSEEN_FLOOR);
}

#[test]
fn blind_vendor_documents_compile_to_the_facts_a_reviewer_expects() {
    holds_above_floor(BLIND, 4, BLIND_FLOOR);
}

#[test]
fn second_blind_vendor_documents_compile_to_the_facts_a_reviewer_expects() {
    holds_above_floor(BLIND2, 3, BLIND2_FLOOR);
}

#[test]
fn third_blind_vendor_documents_compile_to_the_facts_a_reviewer_expects() {
    holds_above_floor(BLIND3, 4, BLIND3_FLOOR);
}

#[test]
fn fourth_blind_vendor_documents_compile_to_the_facts_a_reviewer_expects() {
    holds_above_floor(BLIND4, 4, BLIND4_FLOOR);
}

/// A set being tuned on: each document gives rules (even where the
/// compiler cannot yet read them right), and the share holds its floor.
fn holds_above_floor(dir: &str, least: usize, floor: f64) {
    let m = measure(dir, least);
    let nothing: Vec<&String> = m
        .problems
        .iter()
        .filter(|p| p.contains("compiles to nothing"))
        .collect();
    assert!(nothing.is_empty(), "{nothing:?}");
    assert!(
        m.share() >= floor,
        "{:.1}% of the facts hold, below the floor of {:.1}%",
        100.0 * m.share(),
        100.0 * floor
    );
}

/// Compiles every document of `dir` (at least `least`), prints the shares,
/// misses and problems.
fn measure(dir: &str, least: usize) -> Measured {
    let fixtures = fixtures(dir);
    assert!(fixtures.len() >= least, "{} fixtures", fixtures.len());
    let mut total = Score::default();
    let mut misses = Vec::new();
    let mut problems = Vec::new();
    println!(
        "{:<34} {:>5} {:>6} {:>6} {:>6}",
        "document", "facts", "found", "ends", "holds"
    );
    for (path, facts) in &fixtures {
        let policy = match policy::compile_paths(&[path]) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{}: compiles to nothing: {e}", facts.document));
                total.facts += facts.fact.len();
                continue;
            }
        };
        let s = score(&policy, facts, &mut misses);
        println!(
            "{:<34} {:>5} {:>5.0}% {:>5.0}% {:>5.0}%",
            facts.document,
            s.facts,
            100.0 * s.found as f64 / s.facts.max(1) as f64,
            100.0 * s.ends as f64 / s.facts.max(1) as f64,
            100.0 * s.holds as f64 / s.facts.max(1) as f64,
        );
        total.facts += s.facts;
        total.found += s.found;
        total.ends += s.ends;
        total.holds += s.holds;
        // Rows that must not become rules.
        for line in &facts.not_rules {
            if let Some(r) = policy.rules.iter().find(|r| r.source.line == *line) {
                problems.push(format!(
                    "{}:{line}: must not be a rule, became {}",
                    facts.document, r.id
                ));
            }
        }
        // Rows that must be skipped, with a reason.
        for skip in &facts.skip {
            if !policy.skipped.iter().any(|s| s.source.line == skip.line) {
                problems.push(format!(
                    "{}:{}: not listed as skipped ({})",
                    facts.document, skip.line, skip.why
                ));
            }
        }
    }
    let share = |n: usize| n as f64 / total.facts.max(1) as f64;
    println!(
        "{:<34} {:>5} {:>5.1}% {:>5.1}% {:>5.1}%",
        "all",
        total.facts,
        100.0 * share(total.found),
        100.0 * share(total.ends),
        100.0 * share(total.holds)
    );
    for m in &misses {
        println!("miss: {m}");
    }
    for p in &problems {
        println!("problem: {p}");
    }
    Measured { total, problems }
}

#[test]
fn the_folding_of_role_names() {
    assert_eq!(fold("Worker nodes"), "worker");
    assert_eq!(fold("Worker node(s)"), "worker");
    assert_eq!(fold("control plane"), "control-plane");
    assert_eq!(fold("Vault servers"), "vault-server");
    assert_eq!(fold("etcd nodes"), "etcd");
    assert_eq!(fold("nodes"), "nodes");
    assert_eq!(fold("Ops Manager host"), "ops-manager");
    assert!(is_anyone("Any") && is_anyone("0.0.0.0/0") && !is_anyone("admin"));
}
