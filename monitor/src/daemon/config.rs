//! `run --config FILE`: the command line of `run` written as a TOML file,
//! so that a service's settings live in /etc and are reloaded on SIGHUP.
//!
//! Each key is one of `run`'s long options, spelled as on the command line
//! (`iface`, `profile`, `events-max-mib`, `handshake-timeout`, ...), and
//! each value is what the option would be given: a string, a number, a
//! list for the options that repeat, `true` for a flag:
//!
//! ```toml
//! iface = ["eth0", "eth1"]
//! profile = "thoughtspot"
//! inventory = "/etc/portconform/inventory.toml"
//! events = "/var/log/portconform/events.jsonl"
//! interval = 30
//! handshake-timeout = "5s"
//! ```
//!
//! Values are checked by the very parsers the command line uses (clap's, with
//! the crate's `parse_*` functions behind them), so the file accepts exactly
//! what the options accept. Every mistake (TOML syntax, an unknown key, a
//! wrong type, a bad value, two keys that exclude each other) is reported
//! with the file and line, all of them at once. An option given on the
//! command line wins over the file's value for it (a list given there
//! replaces the file's list, and `--policy` replaces the file's `profile`
//! as much as its `policy`).
//!
//! The merge is made by writing the file's keys as `--key=value` arguments
//! in front of those given on the command line and letting clap parse the
//! lot: nothing here knows `run`'s options one by one, so an option added to
//! `run` is a key of the file at once.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    io::Read as _,
    path::{Path, PathBuf},
};

use clap::{Arg, ArgAction, ArgMatches, FromArgMatches, parser::ValueSource};
use toml::de::{DeTable, DeValue};

use crate::policy::lines::{line_of, toml_syntax_error};

/// Larger than any configuration a person writes: a bound for a mistyped
/// path that names a log or a device.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Arguments clap adds, and `config` itself: not keys of the file.
const NOT_KEYS: &[&str] = &["help", "version", "config"];

/// One problem in a config file, with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct ConfigIssue {
    pub path: String,
    pub line: u32,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every problem found, so one run shows every mistake in the file.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigIssue>),
    /// What clap refused once the file and the command line were put
    /// together (no line: it concerns the two).
    #[error("{}: {message}", path.display())]
    Merged { path: PathBuf, message: String },
}

/// A config file and the command line it was given on: what `load` merges
/// again on every reload.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    /// The subcommand's arguments (built), for their names and parsers.
    command: clap::Command,
    /// Ids of the arguments the command line gave.
    given: BTreeSet<String>,
    /// The command line's arguments again, as `--long=value`.
    argv: Vec<OsString>,
}

impl ConfigFile {
    /// The file at `path`, under the command line `matches` of the
    /// subcommand whose arguments are `T` (what `T` was parsed from, to tell
    /// the options given there from defaults).
    pub fn new<T: clap::Args>(path: &Path, matches: &ArgMatches) -> Self {
        let mut command = T::augment_args(clap::Command::new("run"));
        command.build();
        let mut given = BTreeSet::new();
        let mut argv = Vec::new();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if matches.value_source(id) != Some(ValueSource::CommandLine) {
                continue;
            }
            given.insert(id.to_string());
            argv.extend(command_line_tokens(arg, matches));
        }
        Self {
            path: path.to_path_buf(),
            command,
            given,
            argv,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file and merges it under the command line: the options
    /// given there win.
    pub fn load<T: FromArgMatches>(&self) -> Result<T, ConfigError> {
        let text = read(&self.path)?;
        self.merge(&text)
    }

    /// [`load`](Self::load) on the file's text.
    fn merge<T: FromArgMatches>(&self, text: &str) -> Result<T, ConfigError> {
        let origin = self.path.display().to_string();
        let keys = parse(&self.command, text, &origin)?;
        let mut argv: Vec<OsString> = vec!["run".into()];
        for key in &keys {
            let overridden = self.given.contains(key.id.as_str())
                || self
                    .given
                    .iter()
                    .any(|g| conflicting(&self.command, g, &key.id));
            if !overridden {
                argv.extend(key.tokens.iter().cloned());
            }
        }
        argv.extend(self.argv.iter().cloned());
        let merged_err = |e: clap::Error| ConfigError::Merged {
            path: self.path.clone(),
            message: clap_message(&e),
        };
        let matches = self
            .command
            .clone()
            .try_get_matches_from(argv)
            .map_err(merged_err)?;
        T::from_arg_matches(&matches).map_err(merged_err)
    }
}

/// One key of the file, checked, as command-line arguments.
struct Key {
    id: String,
    line: u32,
    tokens: Vec<OsString>,
}

fn read(path: &Path) -> Result<String, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let origin = path.display().to_string();
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::Invalid(vec![ConfigIssue {
            path: origin,
            line: 1,
            message: format!("larger than {MAX_CONFIG_BYTES} bytes: not a config file"),
        }]));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ConfigError::Invalid(vec![ConfigIssue {
            path: origin,
            line: line_of(&String::from_utf8_lossy(valid), valid.len()),
            message: "not UTF-8 text".into(),
        }])
    })
}

/// Checks every key of `text` against `command`'s arguments: TOML syntax,
/// known keys, value types, values (by the arguments' own parsers), and
/// keys that exclude each other.
fn parse(command: &clap::Command, text: &str, origin: &str) -> Result<Vec<Key>, ConfigError> {
    let (root, errors) = DeTable::parse_recoverable(text);
    let mut issues = Vec::new();
    let mut issue = |offset: usize, message: String| {
        issues.push(ConfigIssue {
            path: origin.to_string(),
            line: line_of(text, offset),
            message,
        })
    };
    for e in errors {
        let (offset, message) = toml_syntax_error(text, &e);
        issue(offset, message);
    }
    let mut keys: Vec<Key> = Vec::new();
    for (key, value) in root.get_ref() {
        let name = key.get_ref().as_ref();
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name) && !NOT_KEYS.contains(&a.get_id().as_str()))
        else {
            issue(key.span().start, unknown_key(command, name));
            continue;
        };
        match tokens(arg, name, value.get_ref()) {
            Ok(tokens) => keys.push(Key {
                id: arg.get_id().to_string(),
                line: line_of(text, key.span().start),
                tokens,
            }),
            Err((at, message)) => issue(
                match at {
                    Some(span) => span.start,
                    None => value.span().start,
                },
                message,
            ),
        }
    }
    for (i, x) in keys.iter().enumerate() {
        for y in &keys[..i] {
            if conflicting(command, &x.id, &y.id) {
                // Said on the later line, naming the earlier.
                let (a, b) = if x.line > y.line { (x, y) } else { (y, x) };
                let (long_a, long_b) = (long_of(command, &a.id), long_of(command, &b.id));
                issues.push(ConfigIssue {
                    path: origin.to_string(),
                    line: a.line,
                    message: format!("{long_a} and {long_b} (line {}) cannot both be set", b.line),
                });
            }
        }
    }
    if issues.is_empty() {
        Ok(keys)
    } else {
        issues.sort_by_key(|i| i.line);
        Err(ConfigError::Invalid(issues))
    }
}

/// What the file's `value` for `arg` stands for on the command line, each
/// value checked by the argument's parser; or where it is wrong and why.
fn tokens(
    arg: &Arg,
    key: &str,
    value: &DeValue<'_>,
) -> Result<Vec<OsString>, (Option<std::ops::Range<usize>>, String)> {
    let flag = || OsString::from(format!("--{key}"));
    let takes_values = arg.get_action().takes_values();
    let optional_value = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
    if let DeValue::Boolean(b) = value {
        return if !takes_values || optional_value {
            Ok(if *b { vec![flag()] } else { Vec::new() })
        } else {
            Err((
                None,
                format!("{key}: expected {}, found a boolean", expected(arg)),
            ))
        };
    }
    if !takes_values {
        return Err((
            None,
            format!("{key}: a flag: expected true or false, found {}", a(value)),
        ));
    }
    let repeats = matches!(arg.get_action(), ArgAction::Append);
    let items: Vec<(Option<std::ops::Range<usize>>, &DeValue<'_>)> = match value {
        DeValue::Array(items) if repeats => items
            .iter()
            .map(|i| (Some(i.span()), i.get_ref()))
            .collect(),
        DeValue::Array(_) => {
            return Err((None, format!("{key}: takes one value, found a list")));
        }
        other => vec![(None, other)],
    };
    let mut out = Vec::new();
    for (span, item) in items {
        let text = scalar(arg, key, item).map_err(|m| (span.clone(), m))?;
        if let Err(e) = check_value(arg, &text) {
            return Err((span, format!("{key}: {}", value_message(&e, &text))));
        }
        out.push(OsString::from(format!("--{key}={text}")));
    }
    Ok(out)
}

/// Runs `text` through `arg`'s own value parser (alone: the file's other
/// keys are checked each on their own line).
fn check_value(arg: &Arg, text: &str) -> Result<(), clap::Error> {
    let mut alone = Arg::new(arg.get_id().clone())
        .long(arg.get_id().clone())
        .action(ArgAction::Set)
        .value_parser(arg.get_value_parser().clone());
    if let Some(name) = arg.get_value_names().and_then(<[_]>::first) {
        alone = alone.value_name(name.clone());
    }
    clap::Command::new("value")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from([format!("--{}={text}", arg.get_id())])
        .map(drop)
}

/// What kind of TOML value an argument takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A count or an amount: an integer or a float.
    Number,
    /// A duration or a metrics address: a string, or a bare number
    /// (seconds, a port).
    NumberOrString,
    /// Everything else: a path, a name, a range, a release.
    String,
}

fn kind(arg: &Arg) -> Kind {
    use std::any::TypeId;
    let t = arg.get_value_parser().type_id();
    let numbers = [
        TypeId::of::<f64>(),
        TypeId::of::<f32>(),
        TypeId::of::<u64>(),
        TypeId::of::<u32>(),
        TypeId::of::<u16>(),
        TypeId::of::<u8>(),
        TypeId::of::<usize>(),
        TypeId::of::<i64>(),
        TypeId::of::<i32>(),
    ];
    if numbers.iter().any(|n| t == *n) {
        Kind::Number
    } else if t == TypeId::of::<std::time::Duration>() || t == TypeId::of::<std::net::SocketAddr>()
    {
        Kind::NumberOrString
    } else {
        Kind::String
    }
}

fn expected(arg: &Arg) -> &'static str {
    let one = match kind(arg) {
        Kind::Number => "a number",
        Kind::NumberOrString => "a string or a number",
        Kind::String => "a string",
    };
    match (matches!(arg.get_action(), ArgAction::Append), kind(arg)) {
        (false, _) => one,
        (true, Kind::Number) => "a number or a list of numbers",
        (true, _) => "a string or a list of strings",
    }
}

/// One value as the command line would spell it.
fn scalar(arg: &Arg, key: &str, value: &DeValue<'_>) -> Result<String, String> {
    let kind = kind(arg);
    let wrong = || format!("{key}: expected {}, found {}", expected(arg), a(value));
    match value {
        DeValue::String(s) if kind != Kind::Number => Ok(s.to_string()),
        DeValue::Integer(i) if kind != Kind::String => i128::from_str_radix(i.as_str(), i.radix())
            .map(|n| n.to_string())
            .map_err(|e| format!("{key}: {e}")),
        DeValue::Float(f) if kind != Kind::String => Ok(f.as_str().to_string()),
        _ => Err(wrong()),
    }
}

/// "an integer", "a string": the TOML type of `value`, for messages.
fn a(value: &DeValue<'_>) -> String {
    let t = value.type_str();
    let article = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {t}")
}

/// A value parser's complaint, without clap's usage lines.
fn value_message(e: &clap::Error, text: &str) -> String {
    match std::error::Error::source(e) {
        Some(why) => format!("invalid value {text:?}: {why}"),
        None => clap_message(e),
    }
}

/// clap's message on one line, without its "error:" and help hints.
fn clap_message(e: &clap::Error) -> String {
    e.render()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

fn unknown_key(command: &clap::Command, name: &str) -> String {
    let known: Vec<&str> = command
        .get_arguments()
        .filter(|a| !NOT_KEYS.contains(&a.get_id().as_str()))
        .filter_map(Arg::get_long)
        .collect();
    format!(
        "unknown key {name:?} (the keys are run's long options: {})",
        known.join(", ")
    )
}

/// Whether two arguments exclude each other (declared on either).
fn conflicting(command: &clap::Command, a: &str, b: &str) -> bool {
    let declared = |x: &str, y: &str| {
        command
            .get_arguments()
            .find(|arg| arg.get_id().as_str() == x)
            .is_some_and(|arg| {
                command
                    .get_arg_conflicts_with(arg)
                    .iter()
                    .any(|c| c.get_id().as_str() == y)
            })
    };
    declared(a, b) || declared(b, a)
}

fn long_of<'a>(command: &'a clap::Command, id: &'a str) -> &'a str {
    command
        .get_arguments()
        .find(|a| a.get_id().as_str() == id)
        .and_then(Arg::get_long)
        .unwrap_or(id)
}

/// An argument the command line gave, written back as arguments.
fn command_line_tokens(arg: &Arg, matches: &ArgMatches) -> Vec<OsString> {
    let id = arg.get_id().as_str();
    let name = match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => match arg.get_short() {
            Some(short) => format!("-{short}"),
            None => String::new(),
        },
    };
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => vec![name.into()],
        ArgAction::Count => (0..matches.get_count(id))
            .map(|_| name.clone().into())
            .collect(),
        _ => matches
            .try_get_raw(id)
            .ok()
            .flatten()
            .into_iter()
            .flatten()
            .map(|raw| {
                if name.is_empty() {
                    raw.to_os_string()
                } else {
                    let mut token = OsString::from(format!("{name}="));
                    token.push(raw);
                    token
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, time::Duration};

    use super::*;
    use crate::daemon::{SummaryFormat, command::RunArgs};

    /// The config file `path` under the command line `portconform run ARGS`.
    fn under(path: &str, args: &[&str]) -> ConfigFile {
        let argv = ["portconform", "run"].iter().chain(args);
        let matches = crate::cli::command()
            .try_get_matches_from(argv)
            .expect("a valid command line");
        let run = matches.subcommand_matches("run").expect("run");
        ConfigFile::new::<RunArgs>(Path::new(path), run)
    }

    fn load(text: &str, args: &[&str]) -> Result<RunArgs, ConfigError> {
        let mut argv = vec!["--config", "/etc/portconform/test.toml"];
        argv.extend_from_slice(args);
        under("/etc/portconform/test.toml", &argv).merge(text)
    }

    fn error(text: &str) -> String {
        match load(text, &[]) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    /// Every option of `run`, as the file spells it.
    const EVERY_KEY: &str = r#"
iface = ["eth1", "eth2"]
policy = "/etc/portconform/policy.toml"
release = "10.1.0"
enable-condition = ["rate limiting", "000-7"]
dynamic-ports = "20000-30000"
role = ["server"]
inventory = "/etc/portconform/inventory.toml"
events = "/var/log/portconform/events.jsonl"
events-max-mib = 7
events-keep = 3
pcap = "/var/log/portconform/first.pcapng"
pcap-max-mib = 9
metrics = 9464
interval = 2.5
refresh = 60
summary = "json"
handshake-timeout = "1500ms"
pin = "/sys/fs/bpf/portconform/lab"
export = ["syslog+tcp://192.0.2.9:514"]
spool-dir = "/var/lib/portconform/other-spool"
spool-max-mib = 11
host-name = "node-a"
export-ca = "/etc/portconform/siem-ca.pem"
export-cert = "/etc/portconform/client.pem"
export-key = "/etc/portconform/client.key"
"#;

    #[test]
    fn every_option_of_run_is_a_key_and_reads_as_on_the_command_line() {
        let a = load(EVERY_KEY, &[]).expect("every key");
        assert_eq!(a.ifaces, ["eth1", "eth2"]);
        assert_eq!(
            a.selection.policy.as_deref(),
            Some(Path::new("/etc/portconform/policy.toml"))
        );
        assert_eq!(a.selection.profile, None);
        assert_eq!(a.selection.release, Some("10.1.0".parse().unwrap()));
        assert_eq!(a.selection.enable_condition, ["rate limiting", "000-7"]);
        let ports = a.selection.dynamic_ports.expect("dynamic ports");
        assert_eq!((ports.lo, ports.hi), (20000, 30000));
        assert_eq!(a.roles.roles, ["server"]);
        assert_eq!(
            a.inventory.as_deref(),
            Some(Path::new("/etc/portconform/inventory.toml"))
        );
        assert_eq!(
            a.events.as_deref(),
            Some(Path::new("/var/log/portconform/events.jsonl"))
        );
        assert_eq!((a.events_max_mib, a.events_keep), (7, 3));
        assert_eq!(
            a.pcap.as_deref(),
            Some(Path::new("/var/log/portconform/first.pcapng"))
        );
        assert_eq!(a.pcap_max_mib, 9);
        assert_eq!(
            a.metrics,
            Some("127.0.0.1:9464".parse::<SocketAddr>().unwrap())
        );
        assert_eq!((a.interval, a.refresh), (2.5, 60.0));
        assert_eq!(a.summary, SummaryFormat::Json);
        assert_eq!(a.handshake_timeout, Duration::from_millis(1500));
        assert_eq!(
            a.pin.as_deref(),
            Some(Path::new("/sys/fs/bpf/portconform/lab"))
        );
        assert_eq!(
            a.export.export,
            [crate::export::Target::SyslogTcp {
                host: "192.0.2.9".into(),
                port: 514
            }]
        );
        assert_eq!(
            a.export.spool_dir,
            Path::new("/var/lib/portconform/other-spool")
        );
        assert_eq!(a.export.spool_max_mib, 11);
        assert_eq!(a.host_name.as_deref(), Some("node-a"));
        assert_eq!(
            (
                a.export.export_ca,
                a.export.export_cert,
                a.export.export_key
            ),
            (
                Some("/etc/portconform/siem-ca.pem".into()),
                Some("/etc/portconform/client.pem".into()),
                Some("/etc/portconform/client.key".into())
            )
        );
        assert_eq!(
            a.config.as_deref(),
            Some(Path::new("/etc/portconform/test.toml"))
        );

        // And the list above is every option `run` has: one added to `run`
        // is a key of the file, and is to be shown here (and in the example
        // the package installs).
        let file = under("/x.toml", &["--config", "/x.toml"]);
        let options: BTreeSet<&str> = file
            .command
            .get_arguments()
            .filter(|a| !NOT_KEYS.contains(&a.get_id().as_str()))
            .filter_map(Arg::get_long)
            .collect();
        let (root, errors) = DeTable::parse_recoverable(EVERY_KEY);
        assert!(errors.is_empty());
        let keys: BTreeSet<String> = root
            .get_ref()
            .keys()
            .map(|k| k.get_ref().to_string())
            .collect();
        let mut keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        // It excludes `policy`: read in the next test.
        keys.insert("profile");
        assert_eq!(keys, options);
    }

    #[test]
    fn defaults_stay_for_keys_the_file_leaves_out_and_scalars_stand_for_lists() {
        let a = load("iface = \"eth0\"\nprofile = \"thoughtspot\"\n", &[]).unwrap();
        assert_eq!(a.ifaces, ["eth0"]);
        assert_eq!(a.selection.profile.as_deref(), Some("thoughtspot"));
        assert_eq!((a.interval, a.refresh, a.events_max_mib), (5.0, 30.0, 100));
        assert_eq!(a.handshake_timeout, Duration::from_secs(5));
        assert_eq!(a.summary, SummaryFormat::Table);
        // Hexadecimal is an integer too; a duration may be bare seconds.
        let a = load(
            "iface = [\"eth0\"]\nevents-keep = 0x10\nhandshake-timeout = 2\n",
            &[],
        )
        .unwrap();
        assert_eq!(a.events_keep, 16);
        assert_eq!(a.handshake_timeout, Duration::from_secs(2));
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file_and_its_line() {
        let e = error("iface = [\"eth0\"]\n\nintervall = 5\n");
        assert!(
            e.contains("/etc/portconform/test.toml:3: unknown key \"intervall\""),
            "{e}"
        );
        assert!(e.contains("interval, refresh"), "the keys are listed: {e}");
        // `config` is no key: one file does not name another.
        let e = error("config = \"/etc/other.toml\"\n");
        assert!(e.contains("test.toml:1: unknown key \"config\""), "{e}");
    }

    #[test]
    fn wrong_types_and_bad_values_are_refused_each_on_its_line() {
        let e = error(
            "iface = [\"eth0\", 7]\ninterval = \"5\"\nevents-max-mib = 0\nsummary = \"xml\"\n\
             handshake-timeout = \"forever\"\nmetrics = [9464]\npcap = true\n\
             dynamic-ports = \"30000-20000\"\nrelease = 4.5\nrefresh = 0.01\n",
        );
        let lines: Vec<&str> = e.lines().collect();
        let expect = [
            "test.toml:1: iface: expected a string or a list of strings, found an integer",
            "test.toml:2: interval: expected a number, found a string",
            "test.toml:3: events-max-mib: invalid value \"0\"",
            "test.toml:4: summary: invalid value 'xml'",
            "test.toml:5: handshake-timeout: invalid value \"forever\"",
            "test.toml:6: metrics: takes one value, found a list",
            "test.toml:7: pcap: expected a string, found a boolean",
            "test.toml:8: dynamic-ports: invalid value \"30000-20000\"",
            "test.toml:9: release: expected a string, found a float",
            "test.toml:10: refresh: invalid value \"0.01\"",
        ];
        assert_eq!(lines.len(), expect.len(), "{e}");
        for (line, want) in lines.iter().zip(expect) {
            assert!(line.contains(want), "{line:?} should contain {want:?}");
        }
        // The value parser's own words come through.
        assert!(e.contains("between 0.1 and 86400"), "{e}");
        assert!(e.contains("possible values: table, json"), "{e}");
    }

    #[test]
    fn broken_toml_and_keys_that_exclude_each_other_name_their_lines() {
        let e = error("iface = [\"eth0\"]\ninterval = \n");
        assert!(e.contains("test.toml:2:"), "{e}");
        let e = error("iface = [\"eth0\"]\ninterval = 5\ninterval = 6\n");
        assert!(
            e.contains("test.toml:3:") && e.contains("duplicate key"),
            "{e}"
        );
        let e = error("profile = \"thoughtspot\"\niface = [\"eth0\"]\npolicy = \"/p.toml\"\n");
        assert!(
            e.contains("test.toml:3: policy and profile (line 1) cannot both be set"),
            "{e}"
        );
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let file = "iface = [\"eth0\", \"eth1\"]\nprofile = \"thoughtspot\"\ninterval = 30\n\
                    events = \"/var/log/e.jsonl\"\nenable-condition = [\"a\"]\n";
        let a = load(
            file,
            &[
                "--interval",
                "2",
                "--iface",
                "veth9",
                "--policy",
                "/tmp/p.toml",
                "--enable-condition",
                "b",
            ],
        )
        .unwrap();
        assert_eq!(a.interval, 2.0);
        // A list given on the command line replaces the file's.
        assert_eq!(a.ifaces, ["veth9"]);
        assert_eq!(a.selection.enable_condition, ["b"]);
        // --policy replaces the file's profile (they exclude each other).
        assert_eq!(
            a.selection.policy.as_deref(),
            Some(Path::new("/tmp/p.toml"))
        );
        assert_eq!(a.selection.profile, None);
        // What the command line leaves out comes from the file.
        assert_eq!(a.events.as_deref(), Some(Path::new("/var/log/e.jsonl")));
        // A command-line default does not override the file.
        let a = load(file, &[]).unwrap();
        assert_eq!(a.interval, 30.0);
        assert_eq!(a.ifaces, ["eth0", "eth1"]);
    }

    #[test]
    fn without_an_interface_anywhere_the_interfaces_are_empty() {
        // `run` refuses that with a message naming the file (daemon::command).
        let a = load("profile = \"thoughtspot\"\n", &[]).unwrap();
        assert!(a.ifaces.is_empty());
    }

    #[test]
    fn the_packaged_example_reads_and_shows_every_option() {
        let text = include_str!("../../packaging/portconform.toml");
        let a = load(text, &[]).expect("the example config");
        assert_eq!(a.ifaces, ["eth0"]);
        assert_eq!(a.selection.profile.as_deref(), Some("thoughtspot"));
        assert_eq!(
            a.events.as_deref(),
            Some(Path::new("/var/log/portconform/events.jsonl"))
        );
        // Each option appears, set or commented out, so the example is the
        // reference an operator edits.
        let file = under("/x.toml", &["--config", "/x.toml"]);
        for long in file
            .command
            .get_arguments()
            .filter(|a| !NOT_KEYS.contains(&a.get_id().as_str()))
            .filter_map(Arg::get_long)
        {
            assert!(
                text.lines().any(|l| l
                    .trim_start_matches(['#', ' '])
                    .starts_with(&format!("{long} = "))),
                "the example does not show {long}"
            );
        }
    }

    #[test]
    fn an_unreadable_file_names_itself() {
        let e = under(
            "/nonexistent/portconform.toml",
            &["--config", "/nonexistent/portconform.toml"],
        )
        .load::<RunArgs>()
        .err()
        .expect("no such file");
        assert!(
            e.to_string().contains("/nonexistent/portconform.toml"),
            "{e}"
        );
    }
}
