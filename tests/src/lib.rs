//! The namespace lab and helpers shared by portconform's root-only tests, the
//! demo and the benchmarks.
//!
//! Everything here follows DESIGN.md's rules for network tests: our own
//! namespaces and veth pairs, documentation address ranges only, bounded
//! traffic, and cleanup on drop (so also when a test panics).

pub mod bpffs;
pub mod capture;
pub mod fixtures;
pub mod kernel;
pub mod lab;
pub mod metrics;
pub mod monitor_proc;
pub mod packets;
pub mod pair;
pub mod pki;
pub mod services;
pub mod tshark;

use std::path::PathBuf;

/// The `portconform` binary under test: `PORTCONFORM_BIN` (set by
/// `cargo xtask test`), else the workspace's release then debug build.
pub fn portconform_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PORTCONFORM_BIN") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for profile in ["release", "debug"] {
        let candidate = root.join("target").join(profile).join("portconform");
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("no portconform binary: run these tests through `cargo xtask test`");
}
