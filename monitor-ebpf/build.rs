//! Build script: rebuild when the bpf-linker changes.

use which::which;

/// The eBPF object depends on the `bpf-linker` binary, which cargo cannot
/// track. Rebuilding when its mtime changes keeps a new linker (installed by
/// `cargo xtask setup` for a new nightly LLVM) from reusing stale objects.
fn main() {
    match which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(_) => println!("cargo:warning=bpf-linker not found: run `cargo xtask setup`"),
    }
}
