//! The policy: vendor port documents compiled into reviewable rules with
//! provenance, the site inventory that binds their roles to addresses, and
//! the `policy` subcommands that show and explain them.
//!
//! # How documents are read
//!
//! Every rule is seen from one of the product's host roles, `local_role`;
//! the other side is a `peer_role` or literal `peer` addresses and names.
//! `inbound` means the peer opens the connection to the local port; Source
//! is the side that opens it. Traffic between two product roles is one rule
//! (local `control-plane`, inbound, peer `worker`); [`roles::seen_by`] turns
//! it round for the other end.
//!
//! - The local role comes from where the document states it: the caption or
//!   heading above a table ("Worker node(s)", "etcd nodes - Inbound rules",
//!   "Ports on broker hosts"), a heading that names a host the prose
//!   introduced ("three kinds of hosts: ..."), a Component column of a table
//!   that says who reaches each component, the Destination of inbound rows
//!   and the Source of outbound rows that name both ends, or the listener of
//!   a sentence. A document that names no role keeps `nodes`.
//! - Role names are slugs: lower case, words joined by `-`, leading fillers
//!   (the, other, all, your...) and trailing generic words (node(s),
//!   host(s), machine(s), instance(s), `-sg`) dropped, the last word made
//!   singular: "Worker node(s)" is `worker`, "Control plane" is
//!   `control-plane`, "ksqlDB servers" is `ksqldb-server` ("server" stays).
//!   Words a heading shares with the document's title are the product's
//!   name ("Consul servers" under "Consul ports reference" is `server`).
//! - "All", "Any source ..." is the role `any`; "Self", "the node itself"
//!   and rows whose footnote says the traffic stays on the host are skipped.
//!
//! - Roles have stable names the inventory binds: `nodes`, `admin`,
//!   `vendor-support`, `smtp-relay`, `ldap-server`, `load-balancer`,
//!   `jump-host`, `monitoring-endpoint`, `local-dns`, `cli-clients`. Other
//!   phrases become a slug role, with a warning.
//! - A row yields one rule per peer, per group of ports, per L4 protocol:
//!   "Admin IP addresses and all nodes" gives a nodes rule and an admin rule;
//!   DNS gives UDP and TCP; `80/(443 or 4443)` gives "80" and "443 or 4443"
//!   (`alternatives`).
//! - When the columns contradict each other (an outbound row naming the SMTP
//!   relay as Source), the reading that a deployment needs wins, warned.
//! - Categories of traffic defined above a table ("Internal: traffic
//!   among the nodes", "Client-to-node: from clients ...", HTML `<dl>` or
//!   list items) give the ends of the rows that name them, in a column of
//!   category names or in Yes/No columns named after them; an undefined
//!   Yes/No column is read from its name ("Client-to-node"). A row with no
//!   Yes is node-local: skipped.
//! - Prose pages that list ports as items ("- 4369: ... used by nodes and
//!   CLI tools", "- 6000 through 6500: ...") give one rule per item,
//!   opened by the parties the item names (nodes, "... clients", "...
//!   tools"). A plain port and its TLS counterpart ("5672, 5671 ... without
//!   and with TLS", a "plain / TLS" column) are one rule with alternatives.
//! - `required = "conditional"` rules always allow their traffic and are
//!   required only when their condition is enabled; `no` rules are allowed
//!   but never reported as blocked.
//! - Release changes keep both rules: the old one gets `until` and
//!   `superseded_by`, the new one `since`; `--release` picks, and without it
//!   both apply.
//! - `ports = "dynamic"` is the host's ephemeral range, resolved when used.
//! - Rows that allow the same traffic as an earlier row are kept and marked
//!   `duplicate_of`; rows and prose that yield no rule are listed in
//!   `skipped` with the reason.
//!
//! # For the kernel-map builder
//!
//! Load with [`load()`] (`--policy` / `--profile`), resolve with [`resolve()`]
//! (release, enabled conditions, dynamic range from
//! [`DynamicPorts::from_host`]), flatten with [`entries`] (one-way direction,
//! one port range, role or literal peer, required flag), and bind roles with
//! [`Inventory`] ([`Inventory::binding`] gives a role's networks and names;
//! [`Inventory::unbound`] the roles to report at start).

pub mod command;
pub mod compile;
pub mod document;
pub mod error;
pub mod explain;
pub mod firewall;
pub mod inventory;
pub mod lines;
pub mod load;
pub mod model;
pub mod profiles;
pub mod resolve;
pub mod roles;
pub mod show;
pub mod values;

pub use compile::compile;
pub use document::Document;
pub use error::{CompileError, InventoryError, InventoryIssue, PolicyError};
pub use inventory::{Binding, Inventory};
pub use load::{PolicySource, load};
pub use model::{
    Direction, Peer, Policy, PortRange, Ports, Proto, Release, Required, Rule, Source,
};
pub use resolve::{
    Conditions, DynamicPorts, Entry, PeerRef, ResolveOptions, Resolved, State, entries, resolve,
};

/// Reads and compiles the documents at `paths`, in order.
pub fn compile_paths<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Policy, CompileError> {
    let docs = paths
        .iter()
        .map(|p| Document::read(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    compile(&docs)
}
