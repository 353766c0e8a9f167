//! Real servers from Debian's packages, started inside lab namespaces.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::lab::{Background, Netns, TempDir, sh};

const T: Duration = Duration::from_secs(20);

/// The newest PostgreSQL server Debian installed.
pub fn postgres_bindir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install Debian's postgresql (cargo xtask setup)")?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    Ok(versions
        .pop()
        .context("no PostgreSQL server in /usr/lib/postgresql")?
        .1)
}

/// A throwaway PostgreSQL cluster in `dir`, serving 5432 on every address of
/// `ns` to the documentation ranges (trust auth), ready for sessions.
pub fn postgres(ns: &Netns, dir: &TempDir) -> anyhow::Result<Background> {
    let bin = postgres_bindir()?;
    let data = dir.path().join("pgdata");
    std::fs::create_dir(&data).context("pgdata")?;
    sh(Command::new("chown").arg("postgres:postgres").arg(&data))?;
    let data = data.display().to_string();
    let as_postgres = ["--reuid=postgres", "--regid=postgres", "--init-groups"];
    // -N: no fsync; a throwaway cluster is ready in about 2 s instead of 5.
    // Bounded at 180 s: under qemu's software emulation on a loaded host
    // initdb has taken more than 60.
    sh(Command::new("timeout")
        .args(["-s", "KILL", "180", "setpriv"])
        .args(as_postgres)
        .arg(bin.join("initdb"))
        .args([
            "-D",
            &data,
            "-N",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
        ])
        .args(["-U", "postgres"]))
    .context("initdb")?;
    let mut hba = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("{data}/pg_hba.conf"))
        .context("pg_hba.conf")?;
    std::io::Write::write_all(
        &mut hba,
        b"host all all 192.0.2.0/24 trust\nhost all all 198.51.100.0/24 trust\n\
          host all all 203.0.113.0/24 trust\nhost all all 2001:db8::/32 trust\n",
    )
    .context("pg_hba.conf")?;
    let postgres = bin.join("postgres").display().to_string();
    let mut args: Vec<&str> = as_postgres.to_vec();
    args.extend([
        &postgres,
        "-D",
        &data,
        "-k",
        &data,
        "-p",
        "5432",
        "-c",
        "listen_addresses=*",
        "-c",
        "fsync=off",
    ]);
    // SIGINT is PostgreSQL's fast shutdown: sessions ended, clean exit.
    let bg = ns.spawn_graceful("setpriv", &args, libc::SIGINT, Duration::from_secs(10))?;
    ns.wait_tcp_listening(5432, T)?;
    // Listening is not yet accepting sessions (startup): ask over the Unix
    // socket, which no monitored interface sees.
    let deadline = Instant::now() + T;
    let pg_isready = bin.join("pg_isready").display().to_string();
    while ns
        .run(T, &pg_isready, &["-q", "-h", &data, "-p", "5432"])
        .is_err()
    {
        if Instant::now() >= deadline {
            bail!("PostgreSQL not ready in {T:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(bg)
}

/// One psql session from `ns` to `addr`; returns the query's answer.
pub fn psql(ns: &Netns, addr: &str, query: &str) -> anyhow::Result<String> {
    let out = sh(ns
        .command(T, &postgres_bindir()?.join("psql").display().to_string())
        .env("PGCONNECT_TIMEOUT", "5")
        .args(["-X", "-w", "-h", addr, "-U", "postgres", "-d", "postgres"])
        .args(["-Atc", query]))
    .with_context(|| format!("psql to {addr}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A TCP echo server on `port` of `ns`, IPv4 and IPv6 (socat, a process
/// per connection, each ended after `idle` seconds without data so that
/// none outlives the test); returned once it listens.
pub fn tcp_echo(ns: &Netns, port: u16, idle: u32) -> anyhow::Result<Background> {
    let bg = ns.spawn(
        "socat",
        &[
            "-T",
            &idle.to_string(),
            &format!("TCP6-LISTEN:{port},ipv6only=0,reuseaddr,fork"),
            "EXEC:cat",
        ],
    )?;
    ns.wait_tcp_listening(port, T)?;
    Ok(bg)
}

/// Debian's dnsmasq serving DNS on `addr` (an address of `ns`) alone, with
/// no upstream and no hosts file: `extra` gives its answers
/// (`--address=/name/ip`). Not waited for: it may take a moment to bind.
pub fn dnsmasq(ns: &Netns, addr: &str, extra: &[&str]) -> anyhow::Result<Background> {
    let listen = format!("--listen-address={addr}");
    let mut args = vec![
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        &listen,
        "--except-interface=lo",
    ];
    args.extend_from_slice(extra);
    args.extend(["--pid-file", "--user=root"]);
    ns.spawn("dnsmasq", &args)
}

/// Debian's memcached on 11211 in `ns` (IPv4 and IPv6, TCP only).
pub fn memcached(ns: &Netns) -> anyhow::Result<Background> {
    let bg = ns.spawn(
        "memcached",
        &[
            "-u",
            "nobody",
            "-l",
            "0.0.0.0,::",
            "-p",
            "11211",
            "-U",
            "0",
            "-m",
            "16",
        ],
    )?;
    ns.wait_tcp_listening(11211, T)?;
    Ok(bg)
}

/// Debian's nginx serving a one-line page on port 80 of `ns`, with its
/// configuration, pid file and logs in `dir`.
pub fn nginx(ns: &Netns, dir: &TempDir) -> anyhow::Result<Background> {
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).context("nginx root")?;
    std::fs::write(root.join("index.html"), "portconform demo appliance\n").context("index")?;
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log stderr;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n\
             fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n\
             server {{ listen 80; listen [::]:80; root {r}; }}\n}}\n",
            d = dir.path().display(),
            r = root.display()
        ),
    )
    .context("nginx.conf")?;
    let conf = conf.display().to_string();
    let bg = ns.spawn_graceful(
        "nginx",
        &["-c", &conf],
        libc::SIGQUIT,
        Duration::from_secs(5),
    )?;
    ns.wait_tcp_listening(80, T)?;
    Ok(bg)
}

/// Debian's OpenSSH server on port 22 of `ns`, with a throwaway host key
/// in `dir`; nobody can log in (no keys, no passwords), but the protocol
/// exchange (ssh-keyscan) works.
pub fn sshd(ns: &Netns, dir: &TempDir) -> anyhow::Result<Background> {
    let key = dir.path().join("ssh_host_ed25519_key");
    sh(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key))
    .context("ssh-keygen")?;
    // sshd's privilege separation needs this directory.
    std::fs::create_dir_all("/run/sshd").context("/run/sshd")?;
    let conf = dir.path().join("sshd_config");
    std::fs::write(
        &conf,
        format!(
            "Port 22\nListenAddress 0.0.0.0\nListenAddress ::\nHostKey {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PidFile none\n",
            key.display()
        ),
    )
    .context("sshd_config")?;
    let conf = conf.display().to_string();
    let bg = ns.spawn("/usr/sbin/sshd", &["-D", "-e", "-f", &conf])?;
    ns.wait_tcp_listening(22, T)?;
    Ok(bg)
}

/// The fields of one message as Debian's rsyslog parsed it, from the file
/// [`rsyslog`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    /// `1` when rsyslog read it as RFC 5424 (RFC 3164 gives 0).
    pub version: String,
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    pub structured_data: String,
    pub msg: String,
}

/// Debian's rsyslogd in `ns`, receiving syslog over TCP (octet-counted or
/// not, as imtcp does) on `addr:port` and writing each message's RFC 5424
/// fields, as it parsed them, one per line to `out` (see [`syslog_messages`]).
/// Its work files go in `dir`. Not waited for: see `Netns::wait_tcp_listening`.
pub fn rsyslog(
    ns: &Netns,
    addr: &str,
    port: u16,
    dir: &str,
    out: &str,
) -> anyhow::Result<Background> {
    start_rsyslog(
        ns,
        &format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imtcp\")\n"
        ),
        addr,
        port,
        dir,
        out,
    )
}

/// The PEM files of a TLS syslog receiver: the CA it trusts clients
/// with, its certificate and key.
pub struct TlsFiles<'a> {
    pub ca: &'a str,
    pub cert: &'a str,
    pub key: &'a str,
}

/// Like [`rsyslog`], but receiving syslog over TLS (RFC 5425) through
/// rsyslog-gnutls, and accepting only clients whose certificate the CA
/// signed (mutual TLS: `x509/certvalid`).
pub fn rsyslog_tls(
    ns: &Netns,
    addr: &str,
    port: u16,
    tls: &TlsFiles,
    dir: &str,
    out: &str,
) -> anyhow::Result<Background> {
    start_rsyslog(
        ns,
        &format!(
            "global(workDirectory=\"{dir}\"\n\
               defaultNetstreamDriver=\"gtls\"\n\
               defaultNetstreamDriverCAFile=\"{}\"\n\
               defaultNetstreamDriverCertFile=\"{}\"\n\
               defaultNetstreamDriverKeyFile=\"{}\")\n\
             module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" \
               streamDriver.authMode=\"x509/certvalid\")\n",
            tls.ca, tls.cert, tls.key
        ),
        addr,
        port,
        dir,
        out,
    )
}

/// rsyslogd with `head` (its global settings and imtcp module) and an
/// input on `addr:port` whose messages go to `out` field by field.
fn start_rsyslog(
    ns: &Netns,
    head: &str,
    addr: &str,
    port: u16,
    dir: &str,
    out: &str,
) -> anyhow::Result<Background> {
    let conf = format!("{dir}/rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "{head}\
             input(type=\"imtcp\" address=\"{addr}\" port=\"{port}\")\n\
             template(name=\"fields\" type=\"list\") {{\n\
               property(name=\"protocol-version\") constant(value=\"\\t\")\n\
               property(name=\"timereported\" dateFormat=\"rfc3339\") constant(value=\"\\t\")\n\
               property(name=\"hostname\") constant(value=\"\\t\")\n\
               property(name=\"app-name\") constant(value=\"\\t\")\n\
               property(name=\"procid\") constant(value=\"\\t\")\n\
               property(name=\"msgid\") constant(value=\"\\t\")\n\
               property(name=\"structured-data\") constant(value=\"\\t\")\n\
               property(name=\"msg\" droplastlf=\"on\") constant(value=\"\\n\")\n\
             }}\n\
             action(type=\"omfile\" file=\"{out}\" template=\"fields\")\n"
        ),
    )?;
    let pid = format!("{dir}/rsyslogd.pid");
    // Stopped with SIGTERM, on which rsyslog writes out what it received.
    ns.spawn_graceful(
        "rsyslogd",
        &["-n", "-f", &conf, "-i", &pid],
        libc::SIGTERM,
        Duration::from_secs(5),
    )
}

/// The messages in the file [`rsyslog`] writes (none when it is not there).
pub fn syslog_messages(out: &str) -> Vec<SyslogMessage> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(8, '\t').collect();
            (f.len() == 8).then(|| SyslogMessage {
                version: f[0].into(),
                timestamp: f[1].into(),
                hostname: f[2].into(),
                app_name: f[3].into(),
                procid: f[4].into(),
                msgid: f[5].into(),
                structured_data: f[6].into(),
                msg: f[7].trim_start().into(),
            })
        })
        .collect()
}

/// The messages in the file [`rsyslog`] writes, by the `seq` of the JSON
/// record each carries (a line sent twice is kept once; messages that are
/// not a numbered record are left out).
pub fn syslog_messages_by_seq(out: &str) -> BTreeMap<u64, SyslogMessage> {
    syslog_messages(out)
        .into_iter()
        .filter_map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.msg).ok()?;
            Some((v["seq"].as_u64()?, m))
        })
        .collect()
}

/// Debian's prometheus-node-exporter serving its metrics over HTTP on
/// `addr`:9100 of `ns` (a site's monitoring agent, which vendor documents
/// never list); returned once it listens.
pub fn node_exporter(ns: &Netns, addr: &str) -> anyhow::Result<Background> {
    let listen = format!("--web.listen-address={addr}:9100");
    let bg = ns.spawn(
        "prometheus-node-exporter",
        &[
            &listen,
            "--collector.disable-defaults",
            "--collector.loadavg",
        ],
    )?;
    ns.wait_tcp_listening(9100, T)?;
    Ok(bg)
}

/// Debian's chronyd serving NTP on `addr`:123 of `ns` to `allow` (a CIDR)
/// from its local clock, with its own configuration in `dir`: `-x` so that
/// it never touches the host's clock, no command port. Returned once it
/// has bound the port.
pub fn chronyd(ns: &Netns, addr: &str, allow: &str, dir: &TempDir) -> anyhow::Result<Background> {
    let conf = dir.file("chronyd-server.conf");
    std::fs::write(
        &conf,
        format!(
            "allow {allow}\nlocal stratum 8\nbindaddress {addr}\ncmdport 0\npidfile {}\n",
            dir.file("chronyd-server.pid")
        ),
    )
    .context("chronyd.conf")?;
    let bg = ns.spawn_graceful(
        "chronyd",
        &["-d", "-x", "-u", "root", "-f", &conf],
        libc::SIGTERM,
        Duration::from_secs(5),
    )?;
    ns.wait_udp_bound(123, T)?;
    Ok(bg)
}

/// One NTP measurement of `server` from `ns`, sent from `source` (an
/// address of `ns`): chronyd `-Q`, which asks and prints the offset but
/// never sets a clock, bounded by its own `-t`. `tag` names its files in
/// `dir`. Returns the child, to wait for after starting others.
pub fn ntp_query(
    ns: &Netns,
    server: &str,
    source: &str,
    tag: &str,
    dir: &TempDir,
) -> anyhow::Result<std::process::Child> {
    let conf = dir.file(&format!("chronyd-{tag}.conf"));
    std::fs::write(
        &conf,
        format!(
            "server {server} iburst\nbindacqaddress {source}\ncmdport 0\npidfile {}\n",
            dir.file(&format!("chronyd-{tag}.pid"))
        ),
    )
    .context("chronyd client conf")?;
    ns.command(T, "chronyd")
        .args(["-Q", "-t", "10", "-u", "root", "-f", &conf])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("chronyd -Q")
}
