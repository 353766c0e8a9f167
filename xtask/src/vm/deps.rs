//! What booting another kernel needs, installed only when `--kernel` asks for
//! it (plain `cargo xtask test` and the demo never pay for it): qemu and a
//! static busybox from Debian, virtme-ng at a pinned version in the project's
//! own venv, and for `debian-12` the newest Debian 12 kernel package.
//! Idempotent: each step checks before it installs.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{cmd, setup};

/// Debian packages a guest boot needs.
const VM_PACKAGES: &[&str] = &[
    "qemu-system-x86", // the machine the guest kernel runs in
    "busybox-static",  // virtme-ng's initramfs
    "python3-venv",    // the venv virtme-ng is installed into
];

/// virtme-ng from PyPI, pinned: its command line and guest init change
/// between releases.
const VIRTME_NG_VERSION: &str = "1.42";

/// Debian's Python, the one `python3-venv` completes (another `python3` on
/// PATH may come and go with the machine).
const PYTHON: &str = "/usr/bin/python3";

/// Debian 12's stock kernel packages (6.1, one per ABI number). The unsigned
/// flavour carries the same kernel without the Secure Boot signature wrapper.
const DEBIAN_12_KERNELS: &str = r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$";

/// The name `--kernel` takes for Debian 12's stock kernel.
pub const DEBIAN_12: &str = "debian-12";

/// Installs the VM packages and the venv; returns the venv's `bin`, which
/// must be on PATH when `vng` runs (it starts `virtme-run` from there).
pub fn ensure() -> anyhow::Result<PathBuf> {
    setup::ensure_debian_packages(VM_PACKAGES)?;
    ensure_venv(&cmd::root().join("target/vm/venv"))
}

fn ensure_venv(venv: &Path) -> anyhow::Result<PathBuf> {
    let bin = venv.join("bin");
    let want = format!("virtme-ng {VIRTME_NG_VERSION}");
    let have = cmd::stdout_of(Command::new(bin.join("vng")).arg("--version"));
    if have.as_deref().map(str::trim) == Some(want.as_str()) {
        return Ok(bin);
    }
    // Anew: a venv whose scripts name another path (a moved tree) or
    // another virtme-ng is not worth repairing.
    cmd::run(
        Command::new(PYTHON)
            .args(["-m", "venv", "--clear"])
            .arg(venv),
    )
    .context("creating the virtme-ng venv")?;
    cmd::run(
        Command::new(bin.join("pip"))
            .args(["install", "-q"])
            .arg(format!("virtme-ng=={VIRTME_NG_VERSION}")),
    )
    .context("installing virtme-ng into its venv")?;
    Ok(bin)
}

/// The kernel image `spec` names: a path to one, or `debian-12`.
pub fn kernel_image(spec: &str) -> anyhow::Result<PathBuf> {
    if spec == DEBIAN_12 {
        return debian_12();
    }
    let path = PathBuf::from(spec);
    if !path.is_file() {
        bail!(
            "--kernel {spec}: no such kernel image; give a path (/boot/vmlinuz-...) \
             or `{DEBIAN_12}`"
        );
    }
    std::path::absolute(&path).with_context(|| format!("resolving {spec}"))
}

/// Installs (if needed) the newest Debian 12 kernel package apt can install
/// and returns its image.
fn debian_12() -> anyhow::Result<PathBuf> {
    let mut newest = newest_debian_12_kernel();
    if newest
        .as_deref()
        .is_none_or(|p| !setup::missing(&[p]).is_empty())
    {
        // About to install: choose from fresh lists, not from old ones whose
        // files may be gone from the mirror.
        setup::apt_update()?;
        newest = newest_debian_12_kernel();
    }
    let package = newest.context(
        "apt knows no linux-image-6.1.0-NN-amd64-unsigned package it can install \
         (is Debian 12's main or security archive in the sources?)",
    )?;
    if !setup::missing(&[&package]).is_empty() {
        setup::apt_install(std::slice::from_ref(&package))?;
    }
    let release = kernel_release(&package).context("unexpected kernel package name")?;
    let image = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    if !image.is_file() {
        bail!("{package} is installed but {} is missing", image.display());
    }
    Ok(image)
}

/// The Debian 12 kernel package with the highest ABI number that apt has a
/// candidate for (some names it lists have none).
fn newest_debian_12_kernel() -> Option<String> {
    let listed = cmd::stdout_of(Command::new("apt-cache").args([
        "search",
        "--names-only",
        DEBIAN_12_KERNELS,
    ]))?;
    let mut names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort_by_key(|n| std::cmp::Reverse(abi(n)));
    let policy = cmd::stdout_of(Command::new("apt-cache").arg("policy").args(&names))?;
    let installable = with_candidate(&policy);
    names
        .into_iter()
        .find(|n| installable.contains(n))
        .map(String::from)
}

/// The ABI number NN of `linux-image-6.1.0-NN-amd64-unsigned`.
fn abi(package: &str) -> Option<u32> {
    kernel_release(package)?
        .strip_prefix("6.1.0-")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// `linux-image-6.1.0-57-amd64-unsigned` → `6.1.0-57-amd64` (`uname -r`).
fn kernel_release(package: &str) -> Option<&str> {
    package
        .strip_prefix("linux-image-")?
        .strip_suffix("-unsigned")
}

/// Packages of an `apt-cache policy` output whose candidate is not `(none)`.
fn with_candidate(policy: &str) -> Vec<&str> {
    let mut current = None;
    let mut found = Vec::new();
    for line in policy.lines() {
        if !line.starts_with(char::is_whitespace) {
            current = line.strip_suffix(':');
        } else if let Some(candidate) = line.trim().strip_prefix("Candidate: ")
            && candidate != "(none)"
            && let Some(name) = current
        {
            found.push(name);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_apt_candidates() {
        let policy = "linux-image-6.1.0-56-amd64-unsigned:\n  Installed: (none)\n  Candidate: 6.1.192-2\n  Version table:\n     6.1.192-2 500\n        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\nlinux-image-6.1.0-58-amd64-unsigned:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n";
        assert_eq!(
            with_candidate(policy),
            vec!["linux-image-6.1.0-56-amd64-unsigned"]
        );
    }

    #[test]
    fn reads_kernel_package_names() {
        let name = "linux-image-6.1.0-57-amd64-unsigned";
        assert_eq!(kernel_release(name), Some("6.1.0-57-amd64"));
        assert_eq!(abi(name), Some(57));
        assert_eq!(abi("linux-image-6.1.0-9-amd64-unsigned"), Some(9));
        assert_eq!(abi("linux-image-amd64"), None);
    }
}
