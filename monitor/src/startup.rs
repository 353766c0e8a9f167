//! Turning the command line's policy selection and inventory into kernel
//! tables, with what a person needs to hear about it: the same for `run`
//! and `replay`, so both judge traffic against the same bindings.

use std::{net::IpAddr, path::Path, time::Duration};

use ipnet::IpNet;

use crate::{
    kernel_tables::{self, KernelTables},
    netif,
    policy::{self, Inventory, command::Selection},
};

/// How long start-up may spend resolving DNS names of the policy and
/// inventory, all names together.
const DNS_BUDGET: Duration = Duration::from_secs(3);

/// Builds the tables. Without an inventory, `nodes` is `default_nodes`,
/// described to the user as `nodes_are` (e.g. "the monitored interfaces'
/// subnets"); the caller computes them only in that case.
///
/// With `resolve_names` false no DNS query is sent: rules and inventory
/// entries that name hosts by DNS name bind no address (said once).
pub fn load_tables(
    selection: &Selection,
    roles: &[String],
    inventory: Option<&Path>,
    host_addrs: &[IpAddr],
    default_nodes: impl FnOnce() -> Vec<IpNet>,
    nodes_are: &str,
    resolve_names: bool,
) -> anyhow::Result<KernelTables> {
    let (policy, options) = policy::command::select(selection)?;
    let inventory = inventory.map(|p| Inventory::load(p, &policy)).transpose()?;
    let host = policy::roles::host_roles(&policy, roles, inventory.as_ref(), host_addrs)?;
    if policy::roles::has_roles(&policy) || !roles.is_empty() {
        eprintln!("portconform: this host plays {host}");
    }
    let resolved = policy::resolve(&policy, &options)?;
    // The rules this host enforces: its own, and its peers' turned round.
    let entries = policy::entries(&resolved, &host.roles);
    let default_nodes = match inventory {
        Some(_) => Vec::new(),
        None => {
            let nets = default_nodes();
            let listed: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            eprintln!(
                "portconform: no --inventory: role `nodes` is {nodes_are} ({}); give --inventory to bind the roles",
                if listed.is_empty() {
                    "none".into()
                } else {
                    listed.join(", ")
                }
            );
            nets
        }
    };
    let resolver = netif::Resolver::new(DNS_BUDGET);
    let names = kernel_tables::dns_names(&entries, inventory.as_ref());
    if resolve_names {
        resolver.prefetch(names);
    } else if !names.is_empty() {
        eprintln!(
            "portconform: --no-resolve: {} DNS names of the policy and inventory are not looked up; they bind no address",
            names.len()
        );
    }
    let resolve = |name: &str| {
        if resolve_names {
            resolver.resolve(name)
        } else {
            Vec::new()
        }
    };
    let peers = kernel_tables::Peers {
        inventory: inventory.as_ref(),
        default_nodes: &default_nodes,
        resolve: &resolve,
    };
    let t = kernel_tables::build(&entries, &peers)?;
    // Under --no-resolve the line above already said no name binds.
    if resolve_names {
        for name in &t.unresolved {
            eprintln!(
                "portconform: warning: {name} did not resolve: traffic with it will be reported as unexpected"
            );
        }
    }
    for w in &t.warnings {
        eprintln!("portconform: warning: {w}");
    }
    // Literal peers that did not resolve were warned about above.
    for role in t
        .unbound_roles
        .iter()
        .filter(|r| !r.starts_with("peers of "))
    {
        let rules = t
            .rules
            .iter()
            .filter(|r| r.peer_label.contains(role.as_str()))
            .count();
        eprintln!(
            "portconform: role `{role}` has no address (bind it in --inventory): its rules match no peer{}",
            if rules > 0 {
                format!(" ({rules} rules)")
            } else {
                String::new()
            }
        );
    }
    Ok(t)
}

/// The line a pinned start prints: whether it took over a running
/// monitor, and which of its state it kept.
pub fn adoption_line(a: &crate::loader::Adoption, dir: &std::path::Path) -> String {
    if !a.adopted {
        return format!(
            "portconform: pinned in {}: the programs stay attached when the daemon stops",
            dir.display()
        );
    }
    let kept: Vec<&str> = crate::loader::STATE_MAPS
        .iter()
        .filter(|(name, _)| a.reused.contains(name))
        .map(|(_, what)| *what)
        .collect();
    let kept = if kept.is_empty() {
        "no state".to_string()
    } else {
        kept.join(", ")
    };
    format!(
        "portconform: adopted the pinned monitor in {}: programs replaced in place; kept {kept}",
        dir.display()
    )
}

/// The events' numbering for this run: a pinned run that stopped cleanly is
/// gone on with; otherwise a new instance begins, and after a crash a note
/// says what the last instance is known to have reached.
pub fn events_stream(
    adoption: Option<&crate::loader::Adoption>,
) -> (crate::events::Stream, Option<String>) {
    use crate::events::Stream;
    match adoption.and_then(|a| a.stream.as_ref()) {
        Some(s) if s.clean => (
            Stream::resume(s.instance.clone(), s.next_seq),
            Some(format!(
                "events go on as instance {} from seq {}",
                s.instance, s.next_seq
            )),
        ),
        Some(s) => {
            let stream = Stream::fresh();
            let reached = match s.next_seq.saturating_sub(1) {
                0 => "had numbered none when last saved".to_string(),
                n => format!("had reached seq {n} or more"),
            };
            let note = format!(
                "the last pinned run did not stop cleanly: its events (instance {}) {reached}, and what it wrote after that is not known; events now go as instance {} from seq 1",
                s.instance,
                stream.instance()
            );
            (stream, Some(note))
        }
        None => (Stream::fresh(), None),
    }
}
