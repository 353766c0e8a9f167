//! The compiled policy turned into the kernel's lookup tables, and written
//! into the loaded maps. Building is pure (tested without a kernel); writing
//! is the loader's job.

mod build;
mod peers;
mod sections;
mod v4trie;
mod write;

pub use build::{BuildError, KernelTables, Peers, RuleInfo, build, dns_names};
pub use peers::{PeerTable, RoleBits};
pub use v4trie::V4Table;
pub use write::{WriteError, install, write, write_drop_tables, write_ifslots};
