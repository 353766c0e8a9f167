//! Inventories bind the policy's roles to addresses, networks and names;
//! every mistake in one is reported with its line.

use std::path::{Path, PathBuf};

use monitor::policy::{Inventory, InventoryError, Policy, profiles};

const INVENTORIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/policy/inventory"
);

fn path(name: &str) -> PathBuf {
    Path::new(INVENTORIES).join(name)
}

fn thoughtspot() -> Policy {
    profiles::load("thoughtspot").unwrap()
}

fn issues(name: &str) -> Vec<(u32, String)> {
    match Inventory::load(&path(name), &thoughtspot()) {
        Err(InventoryError::Invalid(list)) => {
            for i in &list {
                assert!(i.origin.ends_with(name), "{i}");
            }
            list.into_iter().map(|i| (i.line, i.message)).collect()
        }
        other => panic!("{name}: expected issues, got {other:?}"),
    }
}

#[test]
fn binds_roles_to_networks_and_names() {
    let policy = thoughtspot();
    let inv = Inventory::load(&path("site.toml"), &policy).unwrap();
    let nodes = inv.binding("nodes").unwrap();
    let nets: Vec<String> = nodes.nets.iter().map(ToString::to_string).collect();
    assert_eq!(
        nets,
        [
            "192.0.2.11/32",
            "192.0.2.12/32",
            "192.0.2.13/32",
            "2001:db8:1::/64"
        ]
    );
    assert_eq!(
        inv.binding("smtp-relay").unwrap().names,
        ["mail.example.com"]
    );
    let ldap = inv.binding("ldap-server").unwrap();
    assert_eq!(ldap.nets.len(), 1);
    assert_eq!(ldap.names, ["ldap.example.com"]);
    assert_eq!(ldap.line, 5);
    // Roles the policy needs and the inventory leaves out are reported.
    assert_eq!(inv.unbound(&policy), ["vendor-support"]);
}

#[test]
fn unknown_role_names_its_line() {
    let found = issues("unknown-role.toml");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, 3);
    assert!(
        found[0].1.starts_with("unknown role \"smpt-relay\""),
        "{found:?}"
    );
    assert!(
        found[0].1.contains("smtp-relay"),
        "the message lists the real roles: {found:?}"
    );
}

#[test]
fn bad_addresses_name_their_lines() {
    let found = issues("bad-cidr.toml");
    let lines: Vec<u32> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 3, 4], "{found:?}");
    assert!(
        found[0].1.contains("bad CIDR \"198.51.100.0/33\""),
        "{found:?}"
    );
    assert!(
        found[1]
            .1
            .contains("host bits set; the network is 203.0.113.0/24"),
        "{found:?}"
    );
    assert!(
        found[2].1.contains("not an address, a CIDR or a DNS name"),
        "{found:?}"
    );
}

#[test]
fn duplicate_key_names_its_line() {
    let found = issues("duplicate-key.toml");
    assert_eq!(found[0].0, 3, "{found:?}");
    assert!(found[0].1.to_lowercase().contains("duplicate"), "{found:?}");
    let text = InventoryError::Invalid(vec![]).to_string();
    assert!(text.is_empty());
}

#[test]
fn error_text_is_file_colon_line() {
    let err = Inventory::load(&path("unknown-role.toml"), &thoughtspot()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown-role.toml:3: unknown role"), "{text}");
}
