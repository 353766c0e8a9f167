//! `cargo xtask setup`: the nightly toolchain's rust-src, a bpf-linker that
//! reads the nightly's LLVM bitcode, and the Debian packages the tests and the
//! demo drive. Idempotent: each step checks before it installs.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::cmd;

/// Debian packages the lab tests, the demo and the benchmarks run.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "iproute2",       // ip netns, veth, addresses
    "iputils-ping",   // ICMP and ICMPv6 echo
    "hping3",         // exact counts of crafted TCP/UDP packets
    "netcat-openbsd", // IPv6 TCP/UDP clients and listeners
    "tcpdump",        // reference oracle
    "tshark",         // reads the pcapng the daemon writes; replay's oracle in tests
    "util-linux",     // setpriv, to test the unprivileged error
    "nmap",           // SYN scans of a monitored node (run_classify_e2e)
    "socat",          // TCP echo servers on the policy's ports, IPv4 and IPv6
    "postgresql",     // a real PostgreSQL on 5432 between nodes (run_classify_e2e)
    "nftables",       // real firewall rulesets that block required flows (blocked_e2e)
    "dnsmasq",        // a real DNS server behind a dropping rule (blocked_e2e)
    "bind9-dnsutils", // dig, the DNS client (blocked_e2e)
    "memcached",      // the appliance's documented services in the demo...
    "nginx-light",
    "openssh-server",
    "openssh-client",           // ssh-keyscan, a real SSH exchange in the demo
    "curl",                     // HTTP client for nginx in the demo
    "iptables",                 // iptables-restore-translate: validate reads iptables-save files
    "dpkg-dev",                 // dpkg-shlibdeps: the package's Depends (xtask package)
    "binutils",                 // strip, for the packaged binary
    "systemd",                  // systemd-analyze verify / security on the packaged unit
    "man-db",                   // man, which systemd-analyze verify runs on Documentation=
    "systemd-container",        // systemd-nspawn: the packaged service under a real systemd
    "prometheus",               // promtool: checks and tests the shipped alerting rules
    "nfdump",                   // nfcapd, nfdump: the IPFIX collector of export_e2e
    "nats-server", // a three-node JetStream cluster for run --export nats:// (nats_e2e)
    "rsyslog",     // the SIEM's syslog input for run --export syslog+tcp:// (export_e2e)
    "rsyslog-gnutls", // rsyslog's TLS input for run --export syslog+tls:// (export_e2e)
    "chromium",    // a real browser lays out the HTML report (report_browser)
    "chromium-driver", // chromedriver: WebDriver to drive it (report_browser)
    "wireshark-common", // text2pcap and editcap: the captures of replay's corpus test
    "prometheus-node-exporter", // a site's HTTP service on 9100 that learn must find (learn_e2e)
    "chrony",      // chronyd serving and querying NTP in the lab (learn_e2e)
];

/// bpf-linker releases known to carry a `rust-llvm-N` feature, by LLVM major.
/// Extend this when the nightly moves to a newer LLVM.
const BPF_LINKER_FOR_LLVM: &[(u32, &str)] = &[(20, "0.10.4"), (21, "0.10.4"), (22, "0.10.4")];
/// Lets a developer pick a bpf-linker for an LLVM the table does not know yet.
const BPF_LINKER_VERSION_ENV: &str = "PORTCONFORM_BPF_LINKER_VERSION";

pub fn run() -> anyhow::Result<()> {
    ensure_nightly()?;
    ensure_rust_src()?;
    ensure_bpf_linker()?;
    ensure_debian_packages(DEBIAN_PACKAGES)?;
    eprintln!("xtask: setup complete");
    Ok(())
}

/// Runs setup only if something is missing, so every task can call it cheaply.
pub fn ensure() -> anyhow::Result<()> {
    if rust_src_installed()
        && bpf_linker_ok().unwrap_or(false)
        && missing(DEBIAN_PACKAGES).is_empty()
    {
        return Ok(());
    }
    run()
}

fn ensure_nightly() -> anyhow::Result<()> {
    let list = cmd::stdout_of(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup is not installed; the eBPF crate needs rustup's nightly toolchain")?;
    if !list.lines().any(|l| l.starts_with("nightly")) {
        bail!(
            "no nightly toolchain: the eBPF programs need it. Install it with \
             `rustup toolchain install nightly --component rust-src`"
        );
    }
    Ok(())
}

fn rust_src_installed() -> bool {
    cmd::stdout_of(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .is_some_and(|out| out.lines().any(|l| l.starts_with("rust-src")))
}

fn ensure_rust_src() -> anyhow::Result<()> {
    if rust_src_installed() {
        return Ok(());
    }
    cmd::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
    .context("adding rust-src to the nightly toolchain (needed for -Z build-std=core)")
}

/// The LLVM major version the nightly rustc was built with.
pub fn nightly_llvm_major() -> anyhow::Result<u32> {
    let out = cmd::stdout_of(Command::new("rustc").args(["+nightly", "-vV"]))
        .context("`rustc +nightly -vV` failed; is the nightly toolchain installed?")?;
    parse_llvm_major(&out).context("`rustc +nightly -vV` printed no `LLVM version:` line")
}

fn parse_llvm_major(version_output: &str) -> Option<u32> {
    let line = version_output
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))?;
    line.split('.').next()?.trim().parse().ok()
}

/// Whether the installed bpf-linker was built for the nightly's LLVM, read
/// from cargo's install record (the binary itself does not say).
fn bpf_linker_ok() -> anyhow::Result<bool> {
    let major = nightly_llvm_major()?;
    Ok(installed_bpf_linker_features()?
        .is_some_and(|f| f.iter().any(|f| *f == rust_llvm_feature(major))))
}

fn rust_llvm_feature(major: u32) -> String {
    format!("rust-llvm-{major}")
}

/// Features of the cargo-installed bpf-linker, `None` if it is not installed
/// by cargo. Default features are expanded for the versions we know.
fn installed_bpf_linker_features() -> anyhow::Result<Option<Vec<String>>> {
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    let path = format!("{cargo_home}/.crates2.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{path} is not valid JSON"))?;
    let Some(installs) = json.get("installs").and_then(|v| v.as_object()) else {
        return Ok(None);
    };
    for (key, info) in installs {
        let mut words = key.split_whitespace();
        if words.next() != Some("bpf-linker") {
            continue;
        }
        let version = words.next().unwrap_or_default();
        let mut features: Vec<String> = info
            .get("features")
            .and_then(|f| f.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let no_default = info
            .get("no_default_features")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if !no_default && version == "0.10.4" {
            // 0.10.4's default features are llvm-22 + rust-llvm-22.
            features.push(rust_llvm_feature(22));
        }
        return Ok(Some(features));
    }
    Ok(None)
}

fn ensure_bpf_linker() -> anyhow::Result<()> {
    let major = nightly_llvm_major()?;
    if bpf_linker_ok()? {
        return Ok(());
    }
    let version = match std::env::var(BPF_LINKER_VERSION_ENV) {
        Ok(v) => v,
        Err(_) => match BPF_LINKER_FOR_LLVM.iter().find(|(m, _)| *m == major) {
            Some((_, v)) => (*v).to_string(),
            None => bail!(
                "the nightly toolchain uses LLVM {major}, and this project does not know a \
                 bpf-linker release with the `{feature}` feature yet. Find one that has it \
                 (`cargo info bpf-linker`) and run again with {BPF_LINKER_VERSION_ENV}=<version>, \
                 then add it to BPF_LINKER_FOR_LLVM in xtask/src/setup.rs",
                feature = rust_llvm_feature(major)
            ),
        },
    };
    eprintln!(
        "xtask: nightly uses LLVM {major}: installing bpf-linker {version} with rust-llvm-{major}"
    );
    cmd::run(Command::new("cargo").args([
        "install",
        "bpf-linker",
        "--locked",
        "--force",
        "--version",
        &version,
        "--no-default-features",
        "--features",
        &rust_llvm_feature(major),
    ]))
    .context("installing bpf-linker")
}

/// Packages of `wanted` that dpkg does not report as installed.
pub fn missing(wanted: &[&str]) -> Vec<String> {
    wanted
        .iter()
        .filter(|pkg| {
            cmd::stdout_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .map(|p| p.to_string())
        .collect()
}

pub fn ensure_debian_packages(wanted: &[&str]) -> anyhow::Result<()> {
    let missing = missing(wanted);
    if missing.is_empty() {
        return Ok(());
    }
    if !cmd::is_root() {
        bail!(
            "missing Debian packages: {0}. Install them as root: \
             apt-get update && apt-get install -y {0}",
            missing.join(" ")
        );
    }
    apt_update()?;
    apt_install(&missing)
}

pub fn apt_update() -> anyhow::Result<()> {
    cmd::run(Command::new("apt-get").arg("update").arg("-q"))
}

/// `apt-get install` of `packages` (as root, after [`apt_update`]), with no
/// service started on the host.
pub fn apt_install(packages: &[String]) -> anyhow::Result<()> {
    // The lab starts its servers (nginx, sshd, memcached...) inside its own
    // namespaces; installing them must not start them on the host.
    let _guard = NoServiceStarts::install()?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages),
    )
    .context("installing Debian packages")
}

/// Debian's policy-rc.d hook, set to refuse service starts while packages
/// are installed, and removed afterwards; an existing one is left alone.
struct NoServiceStarts(Option<&'static str>);

impl NoServiceStarts {
    const PATH: &'static str = "/usr/sbin/policy-rc.d";

    fn install() -> anyhow::Result<Self> {
        if std::path::Path::new(Self::PATH).exists() {
            return Ok(Self(None));
        }
        std::fs::write(
            Self::PATH,
            "#!/bin/sh\n# portconform setup: no service starts\nexit 101\n",
        )
        .with_context(|| format!("writing {}", Self::PATH))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(Self::PATH, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", Self::PATH))?;
        Ok(Self(Some(Self::PATH)))
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_llvm_major_from_rustc_version() {
        let out = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.97.0-nightly\nLLVM version: 22.1.4\n";
        assert_eq!(parse_llvm_major(out), Some(22));
        assert_eq!(parse_llvm_major("rustc 1.0\n"), None);
        assert_eq!(parse_llvm_major("LLVM version: x.1\n"), None);
    }
}
