//! The compiled policy: what `policy compile` writes and every other command
//! reads. The TOML form is meant to be reviewed by a person, so each rule
//! carries its provenance (`doc:line`) and the normalisation decisions taken
//! on the way from the document's wording to the rule.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::PolicyError;
pub use super::values::{Direction, Peer, PortRange, Ports, Proto, Release, Required, Source};

/// Bumped when a change to the file layout would make an older reader
/// misinterpret a newer file.
pub const FORMAT_VERSION: u32 = 1;

/// The role of the monitored appliance host in every vendor document: it is
/// one of the cluster's nodes (DESIGN.md: "All nodes" is `nodes`).
pub const NODES: &str = "nodes";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub format: u32,
    #[serde(default)]
    pub documents: Vec<DocumentInfo>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Rows and prose that the documents state but no rule implements, each
    /// with its reason, so that a reviewer can account for every row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Decisions that concern a whole table or section (column meanings,
    /// defaults for missing columns) rather than one rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Note>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Note>,
}

/// A document the policy was compiled from, by the stable name used in every
/// `source` (the file name, never a path that differs between machines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentInfo {
    pub name: String,
    /// Prefix of the ids of this document's rules.
    pub id_prefix: String,
    pub lines: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable across recompiles of an unchanged document: prefix, line, and a
    /// letter when one row yields several rules.
    pub id: String,
    pub service: String,
    pub proto: Proto,
    pub ports: Ports,
    /// The ports are alternatives ("25 or 587"): the site uses one of them.
    /// All are allowed; a probe needs only one to answer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub alternatives: bool,
    pub direction: Direction,
    pub local_role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_role: Option<String>,
    /// Literal peers (addresses, networks, DNS names) when the document names
    /// endpoints instead of a role. Exactly one of `peer_role`/`peer` is set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer: Vec<Peer>,
    pub required: Required,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// First release the rule applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Release>,
    /// First release the rule no longer applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Release>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Same traffic as an earlier rule; kept so that the row stays visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Where the compiler had to guess (a peer no cell names, a protocol
    /// the row leaves out, a rule read from a sentence): what a reviewer
    /// should check against the document's line before trusting the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review: Vec<String>,
}

impl Rule {
    /// Roles the rule needs bound to addresses (its local role and its peer
    /// role, if any).
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.local_role.as_str()).chain(self.peer_role.as_deref())
    }

    /// How the peer is shown to people: the role, or the literal endpoints.
    pub fn peer_label(&self) -> String {
        match &self.peer_role {
            Some(role) => role.clone(),
            None => self
                .peer
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skipped {
    pub source: Source,
    pub what: String,
    pub reason: String,
}

/// A decision or warning tied to a place in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub source: Source,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

impl Policy {
    pub fn from_toml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse {
            origin: origin.to_string(),
            line: e
                .span()
                .map(|s| super::lines::line_of(text, s.start))
                .unwrap_or(0),
            message: e.message().to_string(),
        })?;
        if policy.format != FORMAT_VERSION {
            return Err(PolicyError::Format {
                origin: origin.to_string(),
                found: policy.format,
                supported: FORMAT_VERSION,
            });
        }
        policy.validate(origin)?;
        Ok(policy)
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a policy always serialises to TOML");
        format!(
            "# portconform policy, compiled from vendor documents: review it, then use it\n\
             # with --policy. Each rule names its source (doc:line) and the decisions\n\
             # taken to read it.\n\n{body}"
        )
    }

    /// Invariants that serde cannot express: unique ids, one kind of peer,
    /// references to existing rules.
    fn validate(&self, origin: &str) -> Result<(), PolicyError> {
        let invalid = |id: &str, why: String| PolicyError::Invalid {
            origin: origin.to_string(),
            rule: id.to_string(),
            why,
        };
        let mut ids = std::collections::HashSet::new();
        for rule in &self.rules {
            if !ids.insert(rule.id.as_str()) {
                return Err(invalid(&rule.id, "duplicate rule id".into()));
            }
        }
        let docs: std::collections::HashSet<&str> =
            self.documents.iter().map(|d| d.name.as_str()).collect();
        for rule in &self.rules {
            if !docs.contains(rule.source.doc.as_str()) {
                return Err(invalid(
                    &rule.id,
                    format!(
                        "source {} names a document missing from [[documents]]",
                        rule.source
                    ),
                ));
            }
            if rule.peer_role.is_some() != rule.peer.is_empty() {
                return Err(invalid(
                    &rule.id,
                    "exactly one of peer_role and peer must be set".into(),
                ));
            }
            if (rule.required == Required::Conditional) != rule.condition.is_some() {
                return Err(invalid(
                    &rule.id,
                    "a condition goes with required = \"conditional\" and only with it".into(),
                ));
            }
            for target in [&rule.superseded_by, &rule.duplicate_of]
                .into_iter()
                .flatten()
            {
                if !ids.contains(target.as_str()) {
                    return Err(invalid(
                        &rule.id,
                        format!("refers to unknown rule {target:?}"),
                    ));
                }
            }
            if rule.proto.has_ports() == matches!(&rule.ports, Ports::List(l) if l.is_empty()) {
                return Err(invalid(
                    &rule.id,
                    "tcp and udp rules need ports; icmp rules have none".into(),
                ));
            }
        }
        Ok(())
    }

    /// Every role the policy refers to, sorted, `nodes` first.
    pub fn roles(&self) -> Vec<&str> {
        let mut roles: Vec<&str> = self.rules.iter().flat_map(Rule::roles).collect();
        roles.sort_by_key(|r| (*r != NODES, *r));
        roles.dedup();
        roles
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
format = 1
[[documents]]
name = "d.md"
id_prefix = "d"
lines = 9
[[rules]]
id = "d-3"
service = "web"
proto = "tcp"
ports = [[443, 443]]
direction = "inbound"
local_role = "nodes"
peer_role = "admin"
required = "yes"
source = "d.md:3"
"#;

    fn error_of(text: &str) -> String {
        Policy::from_toml(text, "p.toml").unwrap_err().to_string()
    }

    #[test]
    fn hand_edited_policies_are_checked() {
        assert!(Policy::from_toml(MINIMAL, "p.toml").is_ok());
        let e = error_of(&MINIMAL.replace("source = \"d.md:3\"", "source = \"x.md:3\""));
        assert!(e.contains("missing from [[documents]]"), "{e}");
        let e = error_of(&format!("{MINIMAL}peer = [\"192.0.2.1\"]\n"));
        assert!(e.contains("exactly one of peer_role and peer"), "{e}");
        let e = error_of(&MINIMAL.replace("required = \"yes\"", "required = \"conditional\""));
        assert!(e.contains("condition"), "{e}");
        let e = error_of(&format!("{MINIMAL}superseded_by = \"d-9\"\n"));
        assert!(e.contains("unknown rule \"d-9\""), "{e}");
        let e = error_of(&MINIMAL.replace("[[443, 443]]", "[[443, 80]]"));
        assert!(e.starts_with("p.toml:"), "{e}");
        let e = error_of(&MINIMAL.replace("format = 1", "format = 2"));
        assert!(e.contains("format 2 is not supported"), "{e}");
    }

    #[test]
    fn releases_compare_numerically() {
        let r = |s: &str| s.parse::<Release>().unwrap();
        assert!(r("4.10") > r("4.9"));
        assert_eq!(r("4.5"), r("4.5.0"));
        assert!(r("4.5.1") > r("4.5"));
        assert!("4.x".parse::<Release>().is_err());
    }

    #[test]
    fn peers_and_sources_parse_back() {
        for p in ["192.0.2.1", "2001:db8::/32", "api.example.com"] {
            assert_eq!(p.parse::<Peer>().unwrap().to_string(), p);
        }
        assert!("not a host!".parse::<Peer>().is_err());
        let s: Source = "a:b.md:12".parse().unwrap();
        assert_eq!((s.doc.as_str(), s.line), ("a:b.md", 12));
    }
}
