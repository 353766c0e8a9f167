//! What the report knows from the policy (`--policy` / `--profile`): every
//! rule's description and provenance, and which rules are required under
//! the resolution options, so that a required rule no host mentioned still
//! gets its row (as not seen).

use std::collections::HashMap;

use crate::policy::{Resolved, model::Rule, show};

/// A rule as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    pub id: String,
    /// `doc:line`.
    pub source: String,
    pub service: String,
    pub proto: String,
    pub ports: String,
    pub direction: String,
    pub peer: String,
    /// `yes`, `no` or `conditional`.
    pub required: String,
    pub condition: Option<String>,
    /// Active and required under the resolution options.
    pub is_required: bool,
    /// Why the rule does not apply, when it does not.
    pub inactive: Option<String>,
    pub notes: Vec<String>,
}

impl PolicyRule {
    fn new(r: &Resolved) -> Self {
        let rule: &Rule = r.rule;
        PolicyRule {
            id: rule.id.clone(),
            source: rule.source.to_string(),
            service: rule.service.clone(),
            proto: rule.proto.to_string(),
            ports: show::ports_text(rule.proto, &r.ports, rule.alternatives),
            direction: rule.direction.to_string(),
            peer: rule.peer_label(),
            required: rule.required.name().to_string(),
            condition: rule.condition.clone(),
            is_required: r.is_required(),
            inactive: (!r.is_active()).then(|| r.state.to_string()),
            notes: rule.notes.clone(),
        }
    }
}

/// The policy, reduced to what the report needs.
#[derive(Debug, Clone, Default)]
pub struct PolicyContext {
    /// How the policy was chosen (`--profile thoughtspot`), for the header.
    pub label: String,
    /// Every rule, in policy order.
    pub rules: Vec<PolicyRule>,
    by_id: HashMap<String, usize>,
}

impl PolicyContext {
    pub fn new(label: impl Into<String>, resolved: &[Resolved]) -> Self {
        Self::from_rules(label, resolved.iter().map(PolicyRule::new).collect())
    }

    pub fn from_rules(label: impl Into<String>, rules: Vec<PolicyRule>) -> Self {
        let by_id = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        PolicyContext {
            label: label.into(),
            rules,
            by_id,
        }
    }

    pub fn rule(&self, id: &str) -> Option<&PolicyRule> {
        self.by_id.get(id).map(|&i| &self.rules[i])
    }

    /// Position of a rule in the policy, for ordering rows.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The rules a run under these options checks, in policy order.
    pub fn required(&self) -> impl Iterator<Item = &PolicyRule> {
        self.rules.iter().filter(|r| r.is_required)
    }

    /// The rules compiled from the document line `source` (`doc:line`).
    pub fn rules_at<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a PolicyRule> {
        self.rules.iter().filter(move |r| r.source == source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PortRange, ResolveOptions, profiles, resolve};

    #[test]
    fn a_profile_gives_its_required_rules_with_provenance() {
        let policy = profiles::load("thoughtspot").unwrap();
        let options = ResolveOptions::all_releases(PortRange {
            lo: 20000,
            hi: 29999,
        });
        let resolved = resolve(&policy, &options).unwrap();
        let ctx = PolicyContext::new("--profile thoughtspot", &resolved);
        assert_eq!(ctx.rules.len(), policy.rules.len());
        let nginx = ctx.rule("000-10").unwrap();
        assert_eq!(nginx.source, "000_2809db0a7820664a.txt:10");
        assert_eq!((nginx.proto.as_str(), nginx.ports.as_str()), ("tcp", "80"));
        assert!(nginx.is_required);
        assert_eq!(ctx.rules_at("000_2809db0a7820664a.txt:10").count(), 1);
        let dynamic = ctx.rule("000-6").unwrap();
        assert_eq!(dynamic.ports, "20000-29999");
        // Conditional rules are required only when their condition is on.
        let required: Vec<&str> = ctx.required().map(|r| r.id.as_str()).collect();
        for r in &policy.rules {
            let listed = required.contains(&r.id.as_str());
            match r.required {
                crate::policy::Required::Yes => assert!(listed, "{}", r.id),
                _ => assert!(!listed, "{}", r.id),
            }
        }
        assert!(ctx.position("000-10") < ctx.position("000-11"));
    }
}
