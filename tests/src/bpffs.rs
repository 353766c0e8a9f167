//! A private BPF file system for the tests of `run --pin`. `ip netns exec`
//! remounts /sys, so the daemon in a lab namespace never sees the host's
//! /sys/fs/bpf; a bpffs mounted under the test's own scratch directory is
//! visible there, and unmounting it on drop releases whatever a failed test
//! left pinned (with the pins go the links, the programs and the maps).

use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

use crate::{lab::TempDir, portconform_bin};

pub struct BpfFs {
    mount: PathBuf,
    _dir: TempDir,
}

impl BpfFs {
    pub fn mount(label: &str) -> anyhow::Result<Self> {
        let dir = TempDir::new(label)?;
        let mount = dir.path().join("bpffs");
        std::fs::create_dir(&mount)?;
        let out = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&mount)
            .output()
            .context("mount -t bpf")?;
        if !out.status.success() {
            bail!(
                "mount -t bpf {}: {}",
                mount.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Self { mount, _dir: dir })
    }

    /// A pin directory on it (not created: `run --pin` creates it).
    pub fn pins(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        // `detach` first, for what is not a BPF object (a clsact filter);
        // the unmount then frees the rest even if that failed.
        if let Ok(entries) = std::fs::read_dir(&self.mount) {
            for e in entries.flatten() {
                let _ = Command::new(portconform_bin())
                    .args(["detach", "--all", "--pin"])
                    .arg(e.path())
                    .output();
            }
        }
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}
