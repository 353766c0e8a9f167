//! portconform's userspace: loads and attaches the kernel programs, reads their
//! maps, and runs the daemon. `cli` defines the command line, `main.rs` only
//! parses it and dispatches.

pub mod cli;
pub mod command;
pub mod daemon;
pub mod enrich;
pub mod events;
pub mod export;
pub mod kernel_tables;
pub mod learn;
pub mod loader;
pub mod metrics;
pub mod netif;
pub mod object;
pub mod pin;
pub mod policy;
pub mod probe;
pub mod reach;
pub mod replay;
pub mod report;
pub mod required;
pub mod startup;
pub mod stats;
pub mod validate;
