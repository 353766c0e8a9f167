//! `cargo xtask package`: the Debian package, target/debian/portconform_VERSION_ARCH.deb.
//!
//! The tree is laid out here and packed by dpkg-deb, which every Debian
//! system has: cargo-deb would be one more tool to build in CI and would
//! still need the man pages and completions made first. Those come from the
//! `gen_docs` example of the monitor crate (clap_mangen and clap_complete
//! over `monitor::cli::command()`); the unit, the example config, the
//! maintainer scripts and the copyright from monitor/packaging/. Depends
//! is what dpkg-shlibdeps reads off the binary; Architecture is the ELF
//! machine of the binary that was built.
//!
//! `--check` (run by `cargo xtask test`) then inspects the package with
//! dpkg-deb, installs it into a scratch root with dpkg, runs the installed
//! binary, tries the unit's stop-or-restart helper, verifies the unit with
//! systemd-analyze against the installed files and prints its exposure
//! score, then runs the service under a real systemd in a container
//! (`service`).

use std::{
    collections::BTreeSet,
    fs,
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail, ensure};

use crate::{cmd, setup};

#[derive(clap::Args)]
pub struct Args {
    /// Then inspect the package, install it into a scratch root and check
    /// what it installed.
    #[arg(long)]
    check: bool,
}

const NAME: &str = "portconform";
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The config file the unit reads, a conffile.
const CONFIG: &str = "etc/portconform/portconform.toml";
const UNIT: &str = "lib/systemd/system/portconform.service";
const HELPER: &str = "usr/libexec/portconform/detach-on-stop";
const BASH: &str = "usr/share/bash-completion/completions/portconform";
const ZSH: &str = "usr/share/zsh/vendor-completions/_portconform";
const FISH: &str = "usr/share/fish/vendor_completions.d/portconform.fish";
const MAN: &str = "usr/share/man/man1";
const DOC: &str = "usr/share/doc/portconform";
/// Prometheus alerting and recording rules, for `rule_files:`.
const RULES: &str = "usr/share/portconform/prometheus/portconform.rules.yml";
/// The exposure `systemd-analyze security` may give the unit at most: a
/// change that loosens its sandbox fails the check.
const MAX_EXPOSURE: f64 = 3.0;

pub fn run(args: &Args) -> anyhow::Result<()> {
    let deb = build()?;
    if args.check {
        check(&deb)?;
    }
    println!("xtask: {}", deb.display());
    Ok(())
}

fn out_dir() -> PathBuf {
    cmd::root().join("target/debian")
}

/// Builds the package; returns its path.
pub fn build() -> anyhow::Result<PathBuf> {
    setup::ensure()?;
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "monitor"]))?;
    let out = out_dir();
    let docs = out.join("docs");
    fresh_dir(&docs)?;
    cmd::run(
        cmd::cargo()
            .args([
                "run",
                "--release",
                "-q",
                "-p",
                "monitor",
                "--example",
                "gen_docs",
                "--",
            ])
            .arg(&docs),
    )?;

    // dpkg-shlibdeps wants the package's files under debian/NAME beside a
    // debian/control, as in a source package.
    let work = out.join("build");
    fresh_dir(&work)?;
    let stage = work.join("debian").join(NAME);
    let packaging = cmd::root().join("monitor/packaging");

    let bin = stage.join("usr/bin/portconform");
    install(&cmd::root().join("target/release/portconform"), &bin, 0o755)?;
    // As dh_strip does: the symbols are for debugging, not for running.
    cmd::run(
        Command::new("strip")
            .args([
                "--remove-section=.comment",
                "--remove-section=.note",
                "--strip-unneeded",
            ])
            .arg(&bin),
    )?;
    install(
        &packaging.join("portconform.service"),
        &stage.join(UNIT),
        0o644,
    )?;
    install(
        &packaging.join("detach-on-stop"),
        &stage.join(HELPER),
        0o755,
    )?;
    install(
        &packaging.join("portconform.toml"),
        &stage.join(CONFIG),
        0o644,
    )?;
    install(
        &packaging.join("copyright"),
        &stage.join(DOC).join("copyright"),
        0o644,
    )?;
    install(
        &packaging.join("prometheus/portconform.rules.yml"),
        &stage.join(RULES),
        0o644,
    )?;
    install(
        &cmd::root().join("README.md"),
        &stage.join(DOC).join("README.md"),
        0o644,
    )?;
    gzip(&stage.join(DOC).join("README.md"))?;
    let completions = docs.join("completions");
    install(
        &completions.join("portconform.bash"),
        &stage.join(BASH),
        0o644,
    )?;
    install(&completions.join("_portconform"), &stage.join(ZSH), 0o644)?;
    install(
        &completions.join("portconform.fish"),
        &stage.join(FISH),
        0o644,
    )?;
    let mut pages = 0;
    for entry in fs::read_dir(docs.join("man")).context("reading the man pages")? {
        let page = entry?.path();
        let Some(name) = page.file_name() else {
            continue;
        };
        let to = stage.join(MAN).join(name);
        install(&page, &to, 0o644)?;
        gzip(&to)?;
        pages += 1;
    }
    ensure!(pages > 0, "gen_docs wrote no man pages");

    let control = stage.join("DEBIAN");
    fs::create_dir_all(&control)?;
    for script in ["postinst", "prerm", "postrm"] {
        install(&packaging.join(script), &control.join(script), 0o755)?;
    }
    write(&control.join("conffiles"), &format!("/{CONFIG}\n"))?;
    write(&control.join("md5sums"), &md5sums(&stage)?)?;
    let arch = elf_arch(&bin)?;
    let depends = shlib_depends(&work, &bin)?;
    write(
        &control.join("control"),
        &control_file(arch, &depends, installed_kib(&stage)?),
    )?;
    set_dir_modes(&stage)?;

    let deb = out.join(format!("{NAME}_{VERSION}_{arch}.deb"));
    cmd::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    Ok(deb)
}

fn control_file(arch: &str, depends: &str, installed_kib: u64) -> String {
    format!(
        "Package: {NAME}\n\
         Version: {VERSION}\n\
         Architecture: {arch}\n\
         Maintainer: portconform developers <portconform@localhost>\n\
         Installed-Size: {installed_kib}\n\
         Depends: {depends}\n\
         Section: net\n\
         Priority: optional\n\
         Description: traffic conformance monitor for vendor port requirements\n \
         portconform compiles vendor port-requirement documents into an\n \
         allowlist and classifies every packet of the host against it with XDP\n \
         and TC programs, reporting the flows the documents do not allow and the\n \
         flows they require that are blocked. It also replays capture files,\n \
         reports on events files and tries firewall rulesets in a lab.\n \
         .\n \
         The portconform service runs the monitor with its programs pinned, from\n \
         /etc/portconform/portconform.toml.\n"
    )
}

/// The Debian architecture of an ELF binary, from its machine field.
fn elf_arch(bin: &Path) -> anyhow::Result<&'static str> {
    let mut header = [0u8; 20];
    fs::File::open(bin)
        .and_then(|mut f| f.read_exact(&mut header))
        .with_context(|| format!("reading the ELF header of {}", bin.display()))?;
    ensure!(
        &header[..4] == b"\x7fELF",
        "{} is not an ELF file",
        bin.display()
    );
    let little = header[5] == 1;
    let machine = if little {
        u16::from_le_bytes([header[18], header[19]])
    } else {
        u16::from_be_bytes([header[18], header[19]])
    };
    let wide = header[4] == 2;
    Ok(match (machine, wide, little) {
        (0x3e, true, true) => "amd64",
        (0xb7, true, true) => "arm64",
        (0x03, false, true) => "i386",
        (0x28, false, true) => "armhf",
        (0xf3, true, true) => "riscv64",
        (0x15, true, true) => "ppc64el",
        (0x16, true, false) => "s390x",
        (0x102, true, true) => "loong64",
        _ => bail!(
            "{}: ELF machine {machine:#x} has no Debian architecture here",
            bin.display()
        ),
    })
}

/// `Depends:` for the shared libraries the binary links, with the versions
/// their symbols need (dpkg-shlibdeps).
fn shlib_depends(work: &Path, bin: &Path) -> anyhow::Result<String> {
    write(
        &work.join("debian/control"),
        &format!("Source: {NAME}\n\nPackage: {NAME}\nArchitecture: any\n"),
    )?;
    let rel = bin
        .strip_prefix(work)
        .context("the binary is staged under the work dir")?;
    let mut shlibdeps = Command::new("dpkg-shlibdeps");
    shlibdeps.current_dir(work).arg("-O").arg(rel);
    let out = cmd::stdout_of(&mut shlibdeps).with_context(|| {
        format!(
            "`{}` failed (dpkg-dev installed?)",
            cmd::describe(&shlibdeps)
        )
    })?;
    let depends = out
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .context("dpkg-shlibdeps printed no shlibs:Depends")?
        .trim()
        .to_string();
    ensure!(
        depends.contains("libc6"),
        "Depends without libc6: {depends}"
    );
    Ok(depends)
}

fn md5sums(stage: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    walk(stage, &mut |p| {
        let rel = p.strip_prefix(stage).expect("under the stage");
        // Conffiles are tracked by dpkg on their own.
        if !rel.starts_with("DEBIAN") && !rel.starts_with("etc") {
            files.push(rel.to_path_buf());
        }
    })?;
    files.sort();
    let mut md5 = Command::new("md5sum");
    md5.current_dir(stage).args(&files);
    cmd::stdout_of(&mut md5).with_context(|| format!("`{}` failed", cmd::describe(&md5)))
}

fn installed_kib(stage: &Path) -> anyhow::Result<u64> {
    let mut bytes = 0;
    walk(stage, &mut |p| {
        if !p.strip_prefix(stage).is_ok_and(|r| r.starts_with("DEBIAN")) {
            bytes += fs::metadata(p).map_or(0, |m| m.len().div_ceil(1024));
        }
    })?;
    Ok(bytes)
}

/// Calls `f` on every file under `dir`.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, f)?;
        } else {
            f(&path);
        }
    }
    Ok(())
}

/// Directories 0755 whatever the umask, as dpkg-deb expects.
fn set_dir_modes(dir: &Path) -> anyhow::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            set_dir_modes(&path)?;
        }
    }
    Ok(())
}

fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("chmod {}", path.display()))
}

/// gzip -9n in place, as Debian compresses man pages and docs.
fn gzip(path: &Path) -> anyhow::Result<()> {
    cmd::run(Command::new("gzip").args(["-9n", "-f"]).arg(path))
}

/// Inspects the package and installs it into a scratch root.
pub fn check(deb: &Path) -> anyhow::Result<()> {
    let info = output(Command::new("dpkg-deb").arg("--info").arg(deb))?;
    for field in [
        format!("Package: {NAME}"),
        format!("Version: {VERSION}"),
        format!("Architecture: {}", debian_arch_of(deb)?),
    ] {
        ensure!(
            info.contains(&field),
            "no {field:?} in the package's control:\n{info}"
        );
    }
    ensure!(
        info.lines()
            .any(|l| l.trim_start().starts_with("Depends: libc6 (>= ")),
        "Depends names no versioned libc6:\n{info}"
    );
    let conffiles = output(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(deb)
            .arg("conffiles"),
    )?;
    ensure!(
        conffiles.lines().any(|l| l == format!("/{CONFIG}")),
        "/{CONFIG} is not a conffile: {conffiles:?}"
    );
    let contents: BTreeSet<String> = output(Command::new("dpkg-deb").arg("--contents").arg(deb))?
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect();
    for path in [
        "usr/bin/portconform",
        UNIT,
        HELPER,
        CONFIG,
        BASH,
        ZSH,
        FISH,
        RULES,
    ]
    .into_iter()
    .map(String::from)
    .chain([format!("{DOC}/copyright"), format!("{DOC}/README.md.gz")])
    {
        ensure!(contents.contains(&path), "the package has no {path}");
    }

    let scratch = out_dir().join("scratch");
    install_into(&scratch, deb)?;
    let bin = scratch.join("usr/bin/portconform");
    let version = output(Command::new(&bin).arg("--version"))?;
    ensure!(
        version.trim() == format!("{NAME} {VERSION}"),
        "the installed binary says {version:?}"
    );
    // A man page per subcommand, nested ones included, as the installed
    // binary lists them.
    let commands = subcommands(&bin, &[])?;
    ensure!(
        commands.iter().any(|c| c == "portconform-policy-compile"),
        "no nested subcommands found: {commands:?}"
    );
    for page in &commands {
        let path = format!("{MAN}/{page}.1.gz");
        ensure!(
            contents.contains(&path),
            "the package has no man page {path}"
        );
    }
    check_helper(&scratch)?;
    verify_unit(&scratch)?;
    remove_from(&scratch)?;
    crate::service::check(deb, &out_dir().join("service"))?;
    eprintln!(
        "xtask: package checked: {} man pages, completions, unit, conffile; installs, runs, removes and purges in {}",
        commands.len(),
        scratch.display()
    );
    Ok(())
}

fn debian_arch_of(deb: &Path) -> anyhow::Result<String> {
    Ok(output(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(deb)
            .arg("Architecture"),
    )?
    .trim()
    .to_string())
}

/// stdout of a command that must succeed.
fn output(command: &mut Command) -> anyhow::Result<String> {
    let line = cmd::describe(command);
    let out = command
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    ensure!(
        out.status.success(),
        "`{line}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// dpkg run on the scratch root: maintainer scripts run outside a chroot
/// with DPKG_ROOT set (they then leave the host's systemd alone), and the
/// root has none of the package's dependencies installed.
fn dpkg(scratch: &Path) -> Command {
    let mut c = Command::new("dpkg");
    c.arg(format!("--root={}", scratch.display()))
        .arg(format!(
            "--log={}",
            scratch.join("var/log/dpkg.log").display()
        ))
        .args([
            "--force-not-root",
            "--force-script-chrootless",
            "--force-depends",
        ]);
    c
}

fn install_into(scratch: &Path, deb: &Path) -> anyhow::Result<()> {
    fresh_dir(scratch)?;
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/log",
    ] {
        fs::create_dir_all(scratch.join(dir))?;
    }
    for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        fs::write(scratch.join(file), "")?;
    }
    cmd::run(dpkg(scratch).arg("--install").arg(deb))?;
    let status = output(dpkg(scratch).args(["--status", NAME]))?;
    ensure!(
        status.contains("Status: install ok installed"),
        "not installed in {}:\n{status}",
        scratch.display()
    );
    Ok(())
}

/// Removing keeps the conffile, purging drops it.
fn remove_from(scratch: &Path) -> anyhow::Result<()> {
    cmd::run(dpkg(scratch).args(["--remove", NAME]))?;
    ensure!(
        !scratch.join("usr/bin/portconform").exists(),
        "remove left the binary"
    );
    ensure!(scratch.join(CONFIG).exists(), "remove took the conffile");
    cmd::run(dpkg(scratch).args(["--purge", NAME]))?;
    ensure!(!scratch.join(CONFIG).exists(), "purge left the conffile");
    Ok(())
}

/// The subcommands' man page names (`portconform-policy-show`), read from
/// the installed binary's `--help`, recursively.
fn subcommands(bin: &Path, path: &[String]) -> anyhow::Result<Vec<String>> {
    let help = output(Command::new(bin).args(path).arg("--help"))?;
    let mut names = vec![
        std::iter::once(NAME.to_string())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("-"),
    ];
    let Some(section) = help.split("Commands:\n").nth(1) else {
        return Ok(names);
    };
    for line in section.lines().take_while(|l| l.starts_with("  ")) {
        let Some(sub) = line.split_whitespace().next() else {
            continue;
        };
        // Deeper indents continue a description.
        if sub == "help" || line.starts_with("   ") {
            continue;
        }
        let mut deeper = path.to_vec();
        deeper.push(sub.to_string());
        names.extend(subcommands(bin, &deeper)?);
    }
    Ok(names)
}

/// The unit's ExecStopPost helper runs its command for a stop job only:
/// tried with a stand-in systemctl answering as systemd would.
fn check_helper(scratch: &Path) -> anyhow::Result<()> {
    let helper = scratch.join(HELPER);
    let fake = scratch.join("tmp/fake-bin");
    fs::create_dir_all(&fake)?;
    let systemctl = fake.join("systemctl");
    // `show --property=Job --value UNIT` gives the job id (empty: none);
    // `show --property=JobType --value ID` its type.
    fs::write(
        &systemctl,
        "#!/bin/sh\ncase \"$2\" in\n--property=Job) printf '%s\\n' \"$FAKE_JOB\" ;;\n\
         --property=JobType) [ \"$4\" = \"$FAKE_JOB\" ] && printf '%s\\n' \"$FAKE_TYPE\" ;;\nesac\n",
    )?;
    fs::set_permissions(&systemctl, fs::Permissions::from_mode(0o755))?;
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let marker = scratch.join("tmp/detached");
    for (job, kind, detaches) in [
        ("17", "stop", true),
        ("18", "restart", false),
        ("", "", false),
    ] {
        let _ = fs::remove_file(&marker);
        output(
            Command::new(&helper)
                .env("PATH", &path)
                .env("FAKE_JOB", job)
                .env("FAKE_TYPE", kind)
                .args(["portconform.service", "touch"])
                .arg(&marker),
        )?;
        ensure!(
            marker.exists() == detaches,
            "detach-on-stop with job {job:?} of type {kind:?}: ran the command: {}, expected {detaches}",
            marker.exists()
        );
    }
    Ok(())
}

/// systemd-analyze verify on the installed unit, its paths pointed into the
/// scratch root (the executables must exist; the man pages of
/// Documentation= are looked up there too); then its exposure score.
fn verify_unit(scratch: &Path) -> anyhow::Result<()> {
    let unit = fs::read_to_string(scratch.join(UNIT))?;
    let root = scratch.display().to_string();
    let moved = unit
        .replace(
            "/usr/bin/portconform",
            &format!("{root}/usr/bin/portconform"),
        )
        .replace(&format!("/{HELPER}"), &format!("{root}/{HELPER}"));
    let dir = scratch.join("tmp/unit");
    fs::create_dir_all(&dir)?;
    let copy = dir.join("portconform.service");
    write(&copy, &moved)?;
    let mut verify = Command::new("systemd-analyze");
    verify
        .env("MANPATH", scratch.join("usr/share/man"))
        .arg("verify")
        .arg(&copy);
    let out = verify
        .output()
        .with_context(|| format!("could not start `{}`", cmd::describe(&verify)))?;
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && said.trim().is_empty(),
        "`{}` ({}): {said}",
        cmd::describe(&verify),
        out.status
    );
    let security = output(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&copy),
    )?;
    let line = security
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .context("systemd-analyze security printed no exposure level")?;
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no score in {line:?}"))?;
    eprintln!("xtask: {}", line.trim());
    ensure!(
        score <= MAX_EXPOSURE,
        "the unit's exposure is {score}, above {MAX_EXPOSURE}: its sandbox was loosened"
    );
    Ok(())
}
