//! The embedded profiles are the seed documents compiled by this compiler:
//! if either changes, this test says how to regenerate them.

use std::path::Path;

use monitor::policy::{compile_paths, profiles};

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/seeds");

#[test]
fn embedded_profiles_match_a_fresh_compile_of_the_seeds() {
    for profile in profiles::PROFILES {
        let doc = Path::new(SEEDS).join(profile.document);
        assert!(doc.exists(), "seed {} not found", doc.display());
        let fresh = compile_paths(&[&doc]).unwrap().to_toml();
        assert!(
            fresh == profile.toml,
            "profile {} drifted from {}: regenerate it with\n  portconform policy compile {} -o monitor/profiles/{}.toml",
            profile.name,
            profile.document,
            doc.display(),
            profile.name
        );
    }
}

#[test]
fn embedded_profiles_load_and_name_their_roles() {
    let ts = profiles::load("thoughtspot").unwrap();
    assert_eq!(
        ts.roles(),
        vec![
            "nodes",
            "admin",
            "ldap-server",
            "smtp-relay",
            "vendor-support"
        ]
    );
    let a0 = profiles::load("auth0-psaas").unwrap();
    assert_eq!(
        a0.roles(),
        vec![
            "nodes",
            "cli-clients",
            "jump-host",
            "load-balancer",
            "local-dns",
            "monitoring-endpoint"
        ]
    );
    let err = profiles::load("nope").unwrap_err().to_string();
    assert!(err.contains("thoughtspot, auth0-psaas"), "{err}");
}

#[test]
fn policy_files_round_trip() {
    for profile in profiles::PROFILES {
        let policy = profiles::load(profile.name).unwrap();
        let again = monitor::policy::Policy::from_toml(&policy.to_toml(), "round trip").unwrap();
        assert_eq!(policy, again);
    }
}
