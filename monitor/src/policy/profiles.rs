//! The seed documents, compiled and embedded, so that the product works out
//! of the box. The TOML files under `monitor/profiles/` are the output of
//! `portconform policy compile` on the seeds; a test recompiles the seeds and
//! fails if they drift.

use super::{error::PolicyError, model::Policy};

pub struct Profile {
    pub name: &'static str,
    /// File name of the document it was compiled from.
    pub document: &'static str,
    pub toml: &'static str,
}

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "thoughtspot",
        document: "000_2809db0a7820664a.txt",
        toml: include_str!("../../profiles/thoughtspot.toml"),
    },
    Profile {
        name: "auth0-psaas",
        document: "004_f8af2c70398e4594.txt",
        toml: include_str!("../../profiles/auth0-psaas.toml"),
    },
];

pub fn find(name: &str) -> Result<&'static Profile, PolicyError> {
    PROFILES
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| PolicyError::UnknownProfile {
            name: name.to_string(),
            known: names(),
        })
}

pub fn load(name: &str) -> Result<Policy, PolicyError> {
    let profile = find(name)?;
    Policy::from_toml(profile.toml, &format!("profile {}", profile.name))
}

pub fn names() -> String {
    PROFILES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}
