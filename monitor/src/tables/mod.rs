//! The compiled policy turned into the kernel's lookup tables, and written
//! into the loaded maps. Building is pure (tested without a kernel); writing
//! is the loader's job.

mod build;
mod peers;
mod write;

pub use build::{BuildError, KernelTables, Peers, RuleInfo, build};
pub use peers::{PeerTable, RoleBits};
pub use write::{WriteError, activate, write, write_set};
