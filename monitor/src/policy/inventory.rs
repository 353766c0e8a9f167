//! The site inventory: which addresses, networks and DNS names play each role
//! of the policy. Errors point at the line, because the file is hand-written.
//!
//! ```toml
//! nodes = ["192.0.2.1", "192.0.2.2", "2001:db8::/64"]
//! smtp-relay = ["mail.example.com"]
//! ```

use std::{
    collections::BTreeMap,
    io::{self, Read as _, Write},
    net::IpAddr,
    path::Path,
};

use ipnet::IpNet;
use serde_json::{Value, json};
use toml::de::{DeTable, DeValue};

use super::{
    error::{InventoryError, InventoryIssue},
    lines::{line_of, toml_syntax_error},
    model::Policy,
    values::is_dns_name,
};

const MAX_INVENTORY_BYTES: u64 = 16 * 1024 * 1024;

/// What one role is bound to. Names are resolved by the daemon, not here:
/// their addresses change, the inventory does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// Line of the role's key, for messages about the binding.
    pub line: u32,
    /// Addresses as host networks (/32, /128) and CIDRs, host bits clear.
    pub nets: Vec<IpNet>,
    /// DNS names, lowercase.
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub origin: String,
    roles: BTreeMap<String, Binding>,
}

impl Inventory {
    /// Reads and checks `path` against the roles of `policy`.
    pub fn load(path: &Path, policy: &Policy) -> Result<Inventory, InventoryError> {
        let read_err = |source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        };
        let origin = path.display().to_string();
        // Bounded read: the limit holds for pipes and devices too.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read_err)?
            .take(MAX_INVENTORY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        let invalid = |line: u32, message: String| {
            InventoryError::Invalid(vec![InventoryIssue {
                origin: origin.clone(),
                line,
                message,
            }])
        };
        if bytes.len() as u64 > MAX_INVENTORY_BYTES {
            return Err(invalid(
                0,
                format!("larger than {MAX_INVENTORY_BYTES} bytes: not an inventory"),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            invalid(
                line_of(&String::from_utf8_lossy(&e.as_bytes()[..offset]), offset),
                "not UTF-8 text".into(),
            )
        })?;
        let inventory = Inventory::parse(&text, &origin)?;
        inventory.check_roles(policy)?;
        Ok(inventory)
    }

    /// Parses an inventory, reporting every problem with its line: TOML
    /// syntax (duplicate keys included), values that are not lists of
    /// strings, bad addresses and CIDRs, invalid names.
    pub fn parse(text: &str, origin: &str) -> Result<Inventory, InventoryError> {
        let (root, errors) = DeTable::parse_recoverable(text);
        let mut issues: Vec<InventoryIssue> = Vec::new();
        let issue = |offset: usize, message: String| InventoryIssue {
            origin: origin.to_string(),
            line: line_of(text, offset),
            message,
        };
        for e in errors {
            let (offset, message) = toml_syntax_error(text, &e);
            issues.push(issue(offset, message));
        }
        let mut roles = BTreeMap::new();
        for (key, value) in root.get_ref() {
            let name = key.get_ref().to_string();
            let key_at = key.span().start;
            if !valid_role_name(&name) {
                issues.push(issue(
                    key_at,
                    format!("{name:?} is not a role name (lowercase letters, digits and '-')"),
                ));
                continue;
            }
            let mut binding = Binding {
                line: line_of(text, key_at),
                ..Binding::default()
            };
            let DeValue::Array(items) = value.get_ref() else {
                issues.push(issue(
                    value.span().start,
                    format!(
                        "role {name}: expected a list of addresses, CIDRs or DNS names, found a {}",
                        value.get_ref().type_str()
                    ),
                ));
                continue;
            };
            for item in items.iter() {
                let at = item.span().start;
                let Some(entry) = item.get_ref().as_str() else {
                    issues.push(issue(
                        at,
                        format!(
                            "role {name}: expected a string, found a {}",
                            item.get_ref().type_str()
                        ),
                    ));
                    continue;
                };
                match parse_entry(entry) {
                    Ok(Entry::Net(net)) if !binding.nets.contains(&net) => binding.nets.push(net),
                    Ok(Entry::Name(n)) if !binding.names.contains(&n) => binding.names.push(n),
                    Ok(_) => {
                        issues.push(issue(at, format!("role {name}: {entry:?} is listed twice")))
                    }
                    Err(why) => issues.push(issue(at, format!("role {name}: {why}"))),
                }
            }
            roles.insert(name, binding);
        }
        if issues.is_empty() {
            Ok(Inventory {
                origin: origin.to_string(),
                roles,
            })
        } else {
            issues.sort_by_key(|i| i.line);
            Err(InventoryError::Invalid(issues))
        }
    }

    /// Fails on roles the policy does not use: a typo there would leave the
    /// intended role unbound without a word.
    pub fn check_roles(&self, policy: &Policy) -> Result<(), InventoryError> {
        let known = policy.roles();
        let issues: Vec<InventoryIssue> = self
            .roles
            .iter()
            .filter(|(name, _)| !known.contains(&name.as_str()))
            .map(|(name, b)| InventoryIssue {
                origin: self.origin.clone(),
                line: b.line,
                message: format!(
                    "unknown role {name:?} (the policy's roles are: {})",
                    known.join(", ")
                ),
            })
            .collect();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(InventoryError::Invalid(issues))
        }
    }

    pub fn binding(&self, role: &str) -> Option<&Binding> {
        self.roles.get(role)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Binding)> {
        self.roles.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Roles of `policy` this inventory leaves unbound; the daemon reports
    /// them at start (for `nodes` it falls back to the interfaces' subnets).
    pub fn unbound<'p>(&self, policy: &'p Policy) -> Vec<&'p str> {
        policy
            .roles()
            .into_iter()
            .filter(|r| !self.roles.contains_key(*r))
            .collect()
    }

    pub fn bindings_json(&self, policy: &Policy) -> Value {
        let roles: serde_json::Map<String, Value> = policy
            .roles()
            .into_iter()
            .map(|r| {
                let v = match self.binding(r) {
                    Some(b) => json!({
                        "nets": b.nets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "names": b.names,
                        "line": b.line,
                    }),
                    None => Value::Null,
                };
                (r.to_string(), v)
            })
            .collect();
        json!({ "origin": self.origin, "roles": roles })
    }

    pub fn write_bindings(&self, out: &mut dyn Write, policy: &Policy) -> io::Result<()> {
        writeln!(out, "inventory {}:", self.origin)?;
        for role in policy.roles() {
            match self.binding(role) {
                Some(b) => {
                    let all: Vec<String> = b
                        .nets
                        .iter()
                        .map(ToString::to_string)
                        .chain(b.names.iter().cloned())
                        .collect();
                    writeln!(
                        out,
                        "  {role:<20} {}",
                        if all.is_empty() {
                            "(nothing)".into()
                        } else {
                            all.join(", ")
                        }
                    )?;
                }
                None => writeln!(out, "  {role:<20} UNBOUND")?,
            }
        }
        Ok(())
    }
}

enum Entry {
    Net(IpNet),
    Name(String),
}

fn parse_entry(entry: &str) -> Result<Entry, String> {
    let e = entry.trim();
    if e.contains('/') {
        let net: IpNet = e.parse().map_err(|_| {
            format!("bad CIDR {entry:?} (expected e.g. 192.0.2.0/24 or 2001:db8::/32)")
        })?;
        if net.trunc() != net {
            return Err(format!(
                "CIDR {entry:?} has host bits set; the network is {}",
                net.trunc()
            ));
        }
        return Ok(Entry::Net(net));
    }
    if let Ok(addr) = e.parse::<IpAddr>() {
        return Ok(Entry::Net(IpNet::from(addr)));
    }
    let numeric = e.chars().all(|c| c.is_ascii_digit() || c == '.') || e.contains(':');
    if numeric {
        return Err(format!("bad address {entry:?}"));
    }
    if is_dns_name(e) {
        return Ok(Entry::Name(e.trim_end_matches('.').to_ascii_lowercase()));
    }
    Err(format!("{entry:?} is not an address, a CIDR or a DNS name"))
}

fn valid_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(text: &str) -> Vec<(u32, String)> {
        match Inventory::parse(text, "inv.toml") {
            Err(InventoryError::Invalid(list)) => {
                list.into_iter().map(|i| (i.line, i.message)).collect()
            }
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_design_example() {
        let inv = Inventory::parse(
            "nodes = [\"192.0.2.1\", \"192.0.2.2\", \"2001:db8::/64\"]\nsmtp-relay = [\"Mail.example.com\"]\n",
            "inv.toml",
        )
        .unwrap();
        let nodes = inv.binding("nodes").unwrap();
        assert_eq!(nodes.nets.len(), 3);
        assert_eq!(nodes.nets[0].to_string(), "192.0.2.1/32");
        assert_eq!(
            inv.binding("smtp-relay").unwrap().names,
            vec!["mail.example.com"]
        );
        assert_eq!(inv.binding("smtp-relay").unwrap().line, 2);
    }

    #[test]
    fn errors_name_their_line() {
        let found = issues(
            "nodes = [\"192.0.2.1\"]\n\nadmin = [\"192.0.2.300/24\"]\nx = [\"10.0.0.1/24\"]\n",
        );
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, 3);
        assert!(found[0].1.contains("bad CIDR"), "{found:?}");
        assert_eq!(found[1].0, 4);
        assert!(found[1].1.contains("host bits"), "{found:?}");

        let dup = issues("nodes = [\"192.0.2.1\"]\nnodes = [\"192.0.2.2\"]\n");
        assert_eq!(dup[0].0, 2, "{dup:?}");
        assert!(dup[0].1.to_lowercase().contains("duplicate"), "{dup:?}");

        let shape = issues("nodes = \"192.0.2.1\"\n");
        assert!(shape[0].1.contains("expected a list"), "{shape:?}");
    }
}
