//! The packaged service under a real systemd. The machine's own root is
//! booted as a throwaway container: systemd-nspawn over an overlay of `/`
//! whose upper layer is a tmpfs, with its own network namespace and a BPF
//! file system of its own at /sys/fs/bpf. Inside it, `check.sh` installs the
//! .deb, then starts, restarts, reloads, upgrades (dpkg over the installed
//! package), stops and removes portconform.service as an operator would: a
//! restart or an upgrade must keep the pins and replace the programs
//! without reporting known flows again; a stop or a removal must detach
//! and unpin.
//!
//! Nothing of the host is touched: the overlay's upper layer, the bpffs and
//! the container's network namespace all go when the check ends.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, bail};

use crate::cmd;

/// The script the container runs (see its own comments).
const CHECK_SCRIPT: &str = include_str!("check.sh");

/// A oneshot unit running the script, and the target the container boots
/// into instead of the machine's default (whose services are not ours).
const CHECK_UNIT: &str = "[Unit]\nDescription=portconform service check\n\n[Service]\nType=oneshot\nExecStart=/usr/local/sbin/pc-service-check\n";
const CHECK_TARGET: &str = "[Unit]\nDescription=portconform service check\nRequires=basic.target pc-service-check.service\nAfter=basic.target\nAllowIsolate=yes\n";

/// Boot, the checks and power-off take about 15 s; this bounds a hang.
const LIMIT: Duration = Duration::from_secs(240);

/// Mounts made for the check, unmounted (innermost first) on drop.
struct Mounts(Vec<PathBuf>);

impl Mounts {
    fn mount(&mut self, args: &[&str], at: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(at)?;
        cmd::run(Command::new("mount").args(args).arg(at))?;
        self.0.push(at.to_path_buf());
        Ok(())
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for at in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(at).status();
        }
    }
}

/// Installs `deb` in a container booted with systemd and runs the service
/// through start, restart, reload and stop.
pub fn check(deb: &Path, work: &Path) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the service check boots a container: run it as root");
    }
    let _ = fs::remove_dir_all(work);
    let (layers, root, bpffs, result, debs) = (
        work.join("layers"),
        work.join("root"),
        work.join("bpffs"),
        work.join("result"),
        work.join("deb"),
    );
    fs::create_dir_all(&result)?;
    fs::create_dir_all(&debs)?;
    fs::copy(deb, debs.join("portconform.deb")).context("copying the package")?;
    let mut mounts = Mounts(Vec::new());
    // The upper layer is written before the overlay is mounted: changing it
    // under a mounted overlay is undefined.
    mounts.mount(&["-t", "tmpfs", "tmpfs"], &layers)?;
    let upper = layers.join("upper");
    let script = upper.join("usr/local/sbin/pc-service-check");
    let units = upper.join("etc/systemd/system");
    fs::create_dir_all(script.parent().expect("has a parent"))?;
    fs::create_dir_all(&units)?;
    fs::create_dir_all(layers.join("work"))?;
    fs::write(&script, CHECK_SCRIPT)?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    fs::write(units.join("pc-service-check.service"), CHECK_UNIT)?;
    fs::write(units.join("pc-service-check.target"), CHECK_TARGET)?;
    let options = format!(
        "lowerdir=/,upperdir={},workdir={}",
        upper.display(),
        layers.join("work").display()
    );
    mounts.mount(&["-t", "overlay", "overlay", "-o", &options], &root)?;
    mounts.mount(&["-t", "bpf", "bpf"], &bpffs)?;

    let bind = |from: &Path, to: &str| format!("{}:{to}", from.display());
    let status = Command::new("timeout")
        .arg(LIMIT.as_secs().to_string())
        .arg("systemd-nspawn")
        .args([
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--private-network",
        ])
        .arg("--directory")
        .arg(&root)
        // What the unit itself grants; nspawn drops the rest.
        .arg("--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN")
        // nspawn's own seccomp filter refuses these unless named.
        .arg("--system-call-filter=bpf perf_event_open")
        .arg(format!("--bind={}", bind(&bpffs, "/sys/fs/bpf")))
        .arg(format!("--bind={}", bind(&result, "/result")))
        .arg(format!("--bind-ro={}", bind(&debs, "/deb")))
        .args(["--machine", "pc-service-check", "--boot"])
        .arg("systemd.unit=pc-service-check.target")
        .stdout(fs::File::create(work.join("boot.log"))?)
        .stderr(fs::File::create(work.join("boot.err"))?)
        .status()
        .context("running systemd-nspawn")?;
    drop(mounts);
    let verdict = fs::read_to_string(result.join("status")).unwrap_or_default();
    if verdict.trim() != "PASS" {
        let log = fs::read_to_string(result.join("log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        bail!(
            "the service check in the container failed ({status}): {}\n{}\n(boot log: {})",
            if verdict.is_empty() {
                "no verdict"
            } else {
                verdict.trim()
            },
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            work.join("boot.log").display()
        );
    }
    eprintln!(
        "xtask: service checked under systemd in a container: start, restart and upgrade (pins adopted, programs replaced, no flow reported twice), reload, stop and removal (detached, unpinned)"
    );
    Ok(())
}
