//! Exporting the events to the engines a fleet already runs (`--export
//! URL`), each sink through a bounded on-disk [`spool`], so that nothing is
//! lost on the way without being counted.
//!
//! The daemon (or replay) hands every line it writes to [`Exporter::push`],
//! which appends it to each sink's spool; a thread of the exporter's own
//! sends from the spools, so a slow or absent collector never holds up the
//! reading of the kernel's events, and the lines left at exit go with the
//! next start.

pub mod ipfix;
pub mod nats;
pub mod spool;
mod stream;
pub mod syslog;
mod tcp;
pub mod tls;
mod udp;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use spool::{Spool, SpoolCounts, SpoolError};

/// Lines a sender takes from its spool at a time.
const BATCH: usize = 512;
/// How often a sender looks again while nothing new comes.
const POLL: Duration = Duration::from_millis(50);
/// Spooled lines are forced to disk this often.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Waits between connection attempts, growing up to the last.
const BACKOFF: [u64; 6] = [100, 250, 500, 1000, 2000, 5000];

/// The wait before connection attempt `attempt` (from 0).
fn backoff(attempt: usize) -> Duration {
    Duration::from_millis(BACKOFF[attempt.min(BACKOFF.len() - 1)])
}

/// Where spools live unless told: the packaged unit's StateDirectory.
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/portconform/spool";

/// The options of `run` and `replay` that export.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ExportArgs {
    /// Send every events line to URL as well: nats://HOST:PORT[/STREAM]
    /// (JetStream; stream PORTCONFORM unless named, created if missing),
    /// syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT (RFC 5424,
    /// octet-counted; RFC 5425), or its flows to ipfix+udp://HOST:PORT or
    /// ipfix+tcp://HOST:PORT (RFC 7011). Repeatable; each sink has its own
    /// spool.
    #[arg(long = "export", value_name = "URL", value_parser = Target::parse)]
    pub export: Vec<Target>,
    /// syslog+tls://: trust the CAs of this PEM bundle instead of the
    /// system's trust store.
    #[arg(long, value_name = "FILE")]
    pub export_ca: Option<PathBuf>,
    /// syslog+tls://: present this PEM certificate (chain) to collectors
    /// that ask for one (mutual TLS); with --export-key.
    #[arg(long, value_name = "FILE", requires = "export_key")]
    pub export_cert: Option<PathBuf>,
    /// syslog+tls://: the PEM private key of --export-cert.
    #[arg(long, value_name = "FILE", requires = "export_cert")]
    pub export_key: Option<PathBuf>,
    /// Where each sink's spool of lines not yet delivered is kept.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_SPOOL_DIR)]
    pub spool_dir: PathBuf,
    /// The most each sink's spool may hold; past it, its oldest lines are
    /// dropped and counted.
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub spool_max_mib: u64,
}

/// A sink, as its URL names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `nats://HOST:PORT[/STREAM]`: JetStream.
    Nats {
        host: String,
        port: u16,
        stream: String,
    },
    /// `syslog+tcp://HOST:PORT`.
    SyslogTcp { host: String, port: u16 },
    /// `ipfix+udp://HOST:PORT`.
    IpfixUdp { host: String, port: u16 },
    /// `syslog+tls://HOST:PORT`.
    SyslogTls { host: String, port: u16 },
    /// `ipfix+tcp://HOST:PORT`.
    IpfixTcp { host: String, port: u16 },
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "--export {url}: {why}; give nats://HOST:PORT[/STREAM], syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT, ipfix+udp://HOST:PORT or ipfix+tcp://HOST:PORT"
    )]
    BadUrl { url: String, why: String },
    /// A TLS file that cannot be used; its error names it.
    #[error("--export {url}")]
    Tls {
        url: String,
        #[source]
        error: Box<tls::TlsError>,
    },
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot start the export thread")]
    Thread(#[source] std::io::Error),
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, ExportError> {
        let bad = |why: &str| ExportError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let rest = rest.trim_end_matches('/');
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if rest.contains('?') || rest.contains('#') {
            return Err(bad("this URL takes no query"));
        }
        if !path.is_empty() && scheme != "nats" {
            return Err(bad("this URL has no path"));
        }
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?;
        match scheme {
            "nats" => Ok(Target::Nats {
                host: host.to_string(),
                port,
                stream: stream_name(path).map_err(|why| bad(&why))?,
            }),
            "syslog+tcp" => Ok(Target::SyslogTcp {
                host: host.to_string(),
                port,
            }),
            "ipfix+udp" => Ok(Target::IpfixUdp {
                host: host.to_string(),
                port,
            }),
            "syslog+tls" => {
                tls::server_name(host).map_err(|e| bad(&e.to_string()))?;
                Ok(Target::SyslogTls {
                    host: host.to_string(),
                    port,
                })
            }
            "ipfix+tcp" => Ok(Target::IpfixTcp {
                host: host.to_string(),
                port,
            }),
            other => Err(bad(&format!("scheme {other}:// is not supported"))),
        }
    }

    fn scheme(&self) -> &'static str {
        match self {
            Target::Nats { .. } => "nats",
            Target::SyslogTcp { .. } => "syslog+tcp",
            Target::IpfixUdp { .. } => "ipfix+udp",
            Target::SyslogTls { .. } => "syslog+tls",
            Target::IpfixTcp { .. } => "ipfix+tcp",
        }
    }

    /// Whether it takes flow records rather than lines.
    fn is_ipfix(&self) -> bool {
        matches!(self, Target::IpfixUdp { .. } | Target::IpfixTcp { .. })
    }

    /// The collector's host and port.
    pub fn host_port(&self) -> (&str, u16) {
        match self {
            Target::Nats { host, port, .. }
            | Target::SyslogTcp { host, port }
            | Target::IpfixUdp { host, port }
            | Target::SyslogTls { host, port }
            | Target::IpfixTcp { host, port } => (host, *port),
        }
    }

    /// What it is called in messages and metrics.
    pub fn label(&self) -> String {
        let (host, port) = self.host_port();
        let mut label = if host.contains(':') {
            format!("{}://[{host}]:{port}", self.scheme())
        } else {
            format!("{}://{host}:{port}", self.scheme())
        };
        if let Target::Nats { stream, .. } = self {
            label.push('/');
            label.push_str(stream);
        }
        label
    }

    /// Its spool's directory name: the URL with anything but letters,
    /// digits, dots and dashes made a dash.
    fn spool_name(&self) -> String {
        self.label()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

/// The stream a `nats://` URL's path names (the default when none), if it
/// is a name JetStream takes.
pub fn stream_name(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Ok(nats::DEFAULT_STREAM.to_string());
    }
    if path.len() > 255
        || path.chars().any(|c| {
            matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace() || c.is_control()
        })
    {
        return Err(format!(
            "{path:?} is not a stream name (no dots, slashes, wildcards or spaces)"
        ));
    }
    Ok(path.to_string())
}

/// What one sink did, for the summary and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkCounts {
    pub sink: String,
    /// Lines the collector acknowledged.
    pub sent: u64,
    /// Lines sent again after a connection failed before acknowledging them.
    pub retried: u64,
    /// Lines in the spool, waiting.
    pub spooled: u64,
    /// Lines the full spool dropped undelivered.
    pub dropped: u64,
    pub connected: bool,
    /// Connection attempts that failed: TCP (refused, unreachable,
    /// timed out), and TLS handshakes (the certificate, the protocol).
    pub connect_failures: u64,
    pub tls_failures: u64,
}

/// One sink's state, shared by the writer and its sender.
struct Shared {
    target: Target,
    spool: Mutex<Spool>,
    /// Wakes the sender when lines were added.
    wake: tokio::sync::Notify,
    retried: AtomicU64,
    connected: AtomicBool,
    connect_failures: AtomicU64,
    tls_failures: AtomicU64,
    /// The TLS client configuration, for `syslog+tls://`.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Set at exit: send what is spooled, then stop.
    stopping: AtomicBool,
}

impl Shared {
    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next lines to send into `lines`, forcing the spool to
    /// disk first when [`SYNC_EVERY`] has passed since `last_sync`.
    fn take(
        &self,
        lines: &mut Vec<(u64, Vec<u8>)>,
        last_sync: &mut Instant,
    ) -> Result<(), SpoolError> {
        lines.clear();
        let mut spool = self.spool();
        if last_sync.elapsed() >= SYNC_EVERY {
            *last_sync = Instant::now();
            if let Err(e) = spool.sync() {
                log::warn!("export {}: {e}", self.target.label());
            }
        }
        spool.take(BATCH, lines)
    }

    fn counts(&self) -> SinkCounts {
        let SpoolCounts {
            sent,
            dropped,
            pending,
            ..
        } = self.spool().counts();
        SinkCounts {
            sink: self.target.label(),
            sent,
            retried: self.retried.load(Ordering::Relaxed),
            spooled: pending,
            dropped,
            connected: self.connected.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            tls_failures: self.tls_failures.load(Ordering::Relaxed),
        }
    }
}

/// The sinks and the thread that sends to them.
pub struct Exporter {
    sinks: Vec<Arc<Shared>>,
    thread: Option<JoinHandle<()>>,
    /// The first error writing a spool; the caller stops on it.
    error: Option<SpoolError>,
    /// The spool line of the record being pushed, for the IPFIX sinks.
    flow_line: Vec<u8>,
}

impl Exporter {
    /// Opens every sink's spool (keeping what an earlier run left) and
    /// starts sending. `None` when `args` names no sink.
    pub fn start(args: &ExportArgs) -> Result<Option<Exporter>, ExportError> {
        let tls_files = args.export_ca.is_some() || args.export_cert.is_some();
        if tls_files
            && !args
                .export
                .iter()
                .any(|t| matches!(t, Target::SyslogTls { .. }))
        {
            // Said, so that nobody believes a plain sink is encrypted.
            log::warn!(
                "--export-ca, --export-cert and --export-key apply to syslog+tls:// sinks only, and none is given: they are not used"
            );
        }
        if args.export.is_empty() {
            return Ok(None);
        }
        let mut sinks = Vec::new();
        let mut tls_config = None;
        for target in &args.export {
            let tls = match target {
                Target::SyslogTls { .. } => {
                    if tls_config.is_none() {
                        let files = tls::TlsFiles {
                            ca: args.export_ca.clone(),
                            cert: args.export_cert.clone(),
                            key: args.export_key.clone(),
                        };
                        tls_config = Some(tls::client_config(&files).map_err(|source| {
                            ExportError::Tls {
                                url: target.label(),
                                error: Box::new(source),
                            }
                        })?);
                    }
                    tls_config.clone()
                }
                _ => None,
            };
            let dir = args.spool_dir.join(target.spool_name());
            let spool = Spool::open(&dir, args.spool_max_mib * 1024 * 1024)?;
            sinks.push(Arc::new(Shared {
                target: target.clone(),
                spool: Mutex::new(spool),
                wake: tokio::sync::Notify::new(),
                retried: AtomicU64::new(0),
                connected: AtomicBool::new(false),
                connect_failures: AtomicU64::new(0),
                tls_failures: AtomicU64::new(0),
                tls,
                stopping: AtomicBool::new(false),
            }));
        }
        let senders = sinks.clone();
        let thread = std::thread::Builder::new()
            .name("portconform-export".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        log::error!("export: cannot start the async runtime: {e}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let tasks: Vec<_> = senders
                        .into_iter()
                        .map(|s| match s.target {
                            Target::Nats { .. } => tokio::spawn(nats::send(s)),
                            Target::SyslogTcp { .. } | Target::SyslogTls { .. } => {
                                tokio::spawn(tcp::send(s, tcp::Framing::Syslog))
                            }
                            Target::IpfixTcp { .. } => {
                                tokio::spawn(tcp::send(s, tcp::Framing::Ipfix))
                            }
                            Target::IpfixUdp { .. } => tokio::spawn(udp::send(s)),
                        })
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                });
            })
            .map_err(ExportError::Thread)?;
        Ok(Some(Exporter {
            sinks,
            thread: Some(thread),
            error: None,
            flow_line: Vec::with_capacity(256),
        }))
    }

    /// Whether a sink takes flow records ([`push`](Self::push)'s `flow`),
    /// so that the writer encodes them only then.
    pub fn wants_flows(&self) -> bool {
        self.sinks.iter().any(|s| s.target.is_ipfix())
    }

    /// Spools one line (a JSON record without its newline) for every sink;
    /// an IPFIX sink spools `flow` instead, the line's flow record encoded
    /// with its template, and nothing for a line that is not a flow.
    pub fn push(&mut self, line: &[u8], flow: Option<(u16, &[u8])>) {
        self.flow_line.clear();
        for s in &self.sinks {
            let spooled = if s.target.is_ipfix() {
                let Some((template, data)) = flow else {
                    continue;
                };
                if self.flow_line.is_empty() {
                    ipfix::to_spool(template, data, &mut self.flow_line);
                }
                &self.flow_line
            } else {
                line
            };
            if let Err(e) = s.spool().append(spooled)
                && self.error.is_none()
            {
                self.error = Some(e);
            }
        }
    }

    /// Makes the lines pushed so far visible to the senders and wakes them;
    /// the error that stopped a spool, if one did.
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        for s in &self.sinks {
            if let Err(e) = s.spool().flush()
                && self.error.is_none()
            {
                self.error = Some(e);
            }
            s.wake.notify_one();
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn counts(&self) -> Vec<SinkCounts> {
        self.sinks.iter().map(|s| s.counts()).collect()
    }

    pub fn spool_dirs(&self) -> Vec<(String, PathBuf)> {
        self.sinks
            .iter()
            .map(|s| (s.target.label(), s.spool().dir().to_path_buf()))
            .collect()
    }

    /// Sends what is spooled for at most `grace`, then stops; what is left
    /// stays spooled for the next start. Returns the final counts.
    pub fn finish(mut self, grace: Duration) -> Vec<SinkCounts> {
        let _ = self.flush();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.sinks.iter().any(|s| s.spool().counts().pending > 0)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for s in &self.sinks {
            s.stopping.store(true, Ordering::Relaxed);
            s.wake.notify_one();
            let _ = s.spool().sync();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.counts()
    }
}

/// One closing line per sink: what went, what waits, what was lost.
pub fn summary_line(c: &SinkCounts, dir: &Path) -> String {
    let mut s = format!(
        "export {}: {} lines delivered, {} sent again after a connection failed",
        c.sink, c.sent, c.retried
    );
    if c.spooled > 0 {
        s.push_str(&format!(
            "; {} not delivered yet, kept in {} for the next start",
            c.spooled,
            dir.display()
        ));
    }
    if c.dropped > 0 {
        s.push_str(&format!(
            "; {} dropped undelivered: the spool was full (--spool-max-mib)",
            c.dropped
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_or_refused_with_what_to_give() {
        assert_eq!(
            Target::parse("syslog+tcp://192.0.2.9:6514").unwrap(),
            Target::SyslogTcp {
                host: "192.0.2.9".into(),
                port: 6514
            }
        );
        assert_eq!(
            Target::parse("nats://192.0.2.9:4222").unwrap().label(),
            "nats://192.0.2.9:4222/PORTCONFORM"
        );
        assert_eq!(
            Target::parse("nats://[2001:db8::9]:4222/FLEET/").unwrap(),
            Target::Nats {
                host: "2001:db8::9".into(),
                port: 4222,
                stream: "FLEET".into()
            }
        );
        let v6 = Target::parse("syslog+tcp://[2001:db8::9]:514/").unwrap();
        assert_eq!(v6.label(), "syslog+tcp://[2001:db8::9]:514");
        assert_eq!(v6.spool_name(), "syslog-tcp----2001-db8--9--514");
        assert_eq!(
            Target::parse("syslog+tls://siem.example.com:6514").unwrap(),
            Target::SyslogTls {
                host: "siem.example.com".into(),
                port: 6514
            }
        );
        let ipfix = Target::parse("ipfix+tcp://[2001:db8::9]:4739").unwrap();
        assert_eq!(ipfix.label(), "ipfix+tcp://[2001:db8::9]:4739");
        for (url, why) in [
            ("kafka://k:9092", "scheme kafka:// is not supported"),
            ("syslog+tcp://host", "no port"),
            (
                "syslog+udp://host:514",
                "scheme syslog+udp:// is not supported",
            ),
            ("syslog+tls://bad name:6514", "neither a DNS name nor an IP"),
            ("syslog+tcp://host:0", "the port is not a number"),
            ("syslog+tcp://host:514/x", "this URL has no path"),
            ("nats://host:4222/a.b", "is not a stream name"),
            ("nats://host:4222/a/b", "is not a stream name"),
            ("nats://host:4222?x=1", "takes no query"),
            ("syslog+tcp://:514", "no host"),
            ("host:514", "no scheme"),
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(
                e.contains(why) && e.contains("syslog+tcp://HOST:PORT"),
                "{url}: {e}"
            );
        }
    }
}
