//! The policy: vendor port documents compiled into reviewable rules with
//! provenance, the site inventory that binds their roles to addresses, and
//! the `policy` subcommands that show and explain them.
//!
//! For the kernel-map builder the entry points are [`Policy`] (load it with
//! [`load`] from `--policy`/`--profile`), [`resolve`] (turns release,
//! conditions and the dynamic port range into the rules that apply on this
//! host) and [`Inventory`] (role → networks and names).

pub mod cli;
mod columns;
mod compiler;
mod document;
pub mod error;
pub mod explain;
mod html;
pub mod inventory;
pub mod load;
mod markdown;
pub mod model;
pub mod normalize;
pub mod profiles;
mod prose;
pub mod resolve;
pub mod show;
pub mod source;
mod tables;

pub use compiler::compile;
pub use error::{CompileError, InventoryError, InventoryIssue, PolicyError};
pub use inventory::{Binding, Inventory};
pub use load::{PolicySource, load};
pub use model::{
    Direction, Peer, Policy, PortRange, Ports, Proto, Release, Required, Rule, Source,
};
pub use resolve::{
    Conditions, DynamicPorts, Entry, PeerRef, ResolveOptions, Resolved, State, entries, resolve,
};
pub use source::Document;

/// Reads and compiles the documents at `paths`, in order.
pub fn compile_paths<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Policy, CompileError> {
    let docs = paths
        .iter()
        .map(|p| Document::read(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    compile(&docs)
}
