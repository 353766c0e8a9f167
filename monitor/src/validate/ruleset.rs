//! The candidate ruleset: an nftables file, loaded as written with `nft -f`
//! so that nft's own messages (with file and line) reach the user, or an
//! iptables-save file, translated by iptables-restore-translate first.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

/// How a ruleset file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Nft,
    IptablesSave,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    #[error("{path}: {source}", path = .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: an iptables-save file, and {tool} is not installed (Debian: apt-get install iptables)",
        path = .path.display()
    )]
    NoTranslator { path: PathBuf, tool: &'static str },
    #[error("{path}: iptables-restore-translate could not translate it:\n{message}", path = .path.display())]
    Translate { path: PathBuf, message: String },
    #[error("{path}: nft rejected the ruleset{via}:\n{message}", path = .path.display())]
    Rejected {
        path: PathBuf,
        /// How the file reached nft (a translation), if not as written.
        via: String,
        message: String,
    },
    #[error("running {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
}

/// A ruleset ready for `nft -f`.
#[derive(Debug, Clone)]
pub struct Ruleset {
    /// The file the user gave.
    pub origin: PathBuf,
    pub format: Syntax,
    /// The file nft reads: the origin itself, or its translation.
    pub nft_file: PathBuf,
    /// Destination ports the ruleset names.
    pub mentioned: BTreeSet<u16>,
    /// iptables rules the translation kept only as comments.
    pub untranslated: Vec<String>,
}

/// iptables-save files start with `*table`, `:CHAIN` or `-A`.
pub fn detect(text: &str) -> Syntax {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match first {
        Some(l) if l.starts_with('*') || l.starts_with(':') || l.starts_with("-A ") => {
            Syntax::IptablesSave
        }
        _ => Syntax::Nft,
    }
}

/// Reads `path`; an iptables-save file is translated into `scratch`.
pub fn read(path: &Path, scratch: &Path, label: &str) -> Result<Ruleset, RulesetError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesetError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match detect(&text) {
        Syntax::Nft => Ok(Ruleset {
            origin: path.to_path_buf(),
            format: Syntax::Nft,
            nft_file: path.to_path_buf(),
            mentioned: mentioned_ports(&text),
            untranslated: Vec::new(),
        }),
        Syntax::IptablesSave => {
            let translated = translate(path)?;
            let nft_file = scratch.join(format!("{label}.translated.nft"));
            std::fs::write(&nft_file, &translated).map_err(|source| RulesetError::Read {
                path: nft_file.clone(),
                source,
            })?;
            let untranslated = translated
                .lines()
                .filter_map(|l| l.trim().strip_prefix("# -A ").map(|r| format!("-A {r}")))
                .collect();
            Ok(Ruleset {
                origin: path.to_path_buf(),
                format: Syntax::IptablesSave,
                nft_file,
                mentioned: mentioned_ports(&translated),
                untranslated,
            })
        }
    }
}

/// iptables-restore-translate, then ip6tables-restore-translate (an
/// ip6tables-save file fails the first on its addresses).
fn translate(path: &Path) -> Result<String, RulesetError> {
    let mut first_error = None;
    for tool in ["iptables-restore-translate", "ip6tables-restore-translate"] {
        let out = match Command::new(tool).arg("-f").arg(path).output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RulesetError::NoTranslator {
                    path: path.to_path_buf(),
                    tool,
                });
            }
            Err(source) => {
                return Err(RulesetError::Spawn {
                    what: tool.into(),
                    source,
                });
            }
        };
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        first_error.get_or_insert_with(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Err(RulesetError::Translate {
        path: path.to_path_buf(),
        message: first_error.unwrap_or_default(),
    })
}

impl Ruleset {
    fn via(&self) -> String {
        match self.format {
            Syntax::Nft => String::new(),
            Syntax::IptablesSave => format!(
                " (as translated by iptables-restore-translate into {})",
                self.nft_file.display()
            ),
        }
    }

    /// `nft -c -f` (check only) or `nft -f` inside namespace `ns`.
    pub fn apply(&self, ns: &str, check_only: bool) -> Result<(), RulesetError> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "nft"]);
        if check_only {
            cmd.arg("-c");
        }
        cmd.arg("-f").arg(&self.nft_file);
        let out = cmd.output().map_err(|source| RulesetError::Spawn {
            what: "ip netns exec ... nft".into(),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        Err(RulesetError::Rejected {
            path: self.origin.clone(),
            via: self.via(),
            message: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        })
    }
}

/// Service names nft and iptables accept for the common ports.
fn service_port(name: &str) -> Option<u16> {
    Some(match name {
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "http" => 80,
        "https" => 443,
        "ldap" => 389,
        "ldaps" => 636,
        "submission" => 587,
        "postgresql" => 5432,
        "mysql" => 3306,
        _ => return None,
    })
}

/// Ports after every `dport` of an nft ruleset, in all the forms nft takes:
/// `dport 22`, `dport { 22, 80-90 }`, `dport == ssh`; ranges give their
/// first and last port. `!=` matches name the ports a rule excludes: left
/// out.
pub fn mentioned_ports(text: &str) -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("dport") {
            rest = rest[at + "dport".len()..].trim_start();
            if rest.starts_with("!=") {
                continue;
            }
            rest = rest.trim_start_matches("==").trim_start();
            let items: &str = if let Some(body) = rest.strip_prefix('{') {
                body.split('}').next().unwrap_or("")
            } else {
                rest.split_whitespace().next().unwrap_or("")
            };
            for item in items.split(',') {
                let item = item.trim();
                let (lo, hi) = item.split_once('-').unwrap_or((item, item));
                for p in [lo, hi] {
                    let p = p.trim();
                    if let Some(port) = p.parse::<u16>().ok().or_else(|| service_port(p)) {
                        out.insert(port);
                    }
                }
            }
        }
    }
    out.remove(&0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            detect("# x\n*filter\n:INPUT DROP [0:0]\n"),
            Syntax::IptablesSave
        );
        assert_eq!(detect("-A INPUT -j ACCEPT\n"), Syntax::IptablesSave);
        assert_eq!(detect("#!/usr/sbin/nft -f\ntable inet f {}\n"), Syntax::Nft);
        assert_eq!(detect("flush ruleset\n"), Syntax::Nft);
    }

    #[test]
    fn ports_the_ruleset_names() {
        let text = "table inet f {\n chain i {\n  tcp dport 22 accept\n  tcp dport { 80, 443, 9300-9400 } accept # not 7\n  tcp dport != 6666 drop\n  udp dport == domain accept\n  tcp dport 3306 drop\n  ip saddr 192.0.2.1 tcp sport 5555 accept\n }\n}\n";
        let ports: Vec<u16> = mentioned_ports(text).into_iter().collect();
        assert_eq!(ports, [22, 53, 80, 443, 3306, 9300, 9400]);
        let translated =
            "add rule ip filter INPUT ip protocol tcp tcp dport { 2181, 5432 } counter accept\n";
        assert_eq!(
            mentioned_ports(translated).into_iter().collect::<Vec<_>>(),
            [2181, 5432]
        );
    }
}
