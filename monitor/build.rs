//! Build script: the eBPF object, built and embedded so that the binary is
//! self-contained.

use anyhow::Context as _;

/// Builds the eBPF object with the nightly toolchain (through aya-build) so
/// that `cargo build` yields one self-contained `portconform` binary.
fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    let root_dir = format!("{manifest_dir}/../monitor-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "monitor-ebpf",
            root_dir: &root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
    .context("building the eBPF programs failed; `cargo xtask setup` installs what they need")
}
