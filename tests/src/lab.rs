//! Network namespaces joined by veth pairs, removed on drop.

use std::{
    process::{Child, Command, ExitStatus, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use anyhow::{Context as _, bail};

/// Prefix of every namespace the lab creates; stale ones (from a killed run)
/// are removed when a new lab starts.
const PREFIX: &str = "pct-";
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs a command to completion, failing with its stderr when it fails.
pub fn sh(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn ip(args: &[&str]) -> anyhow::Result<Output> {
    sh(Command::new("ip").args(args))
}

/// Deletes namespaces left by lab runs whose process is gone.
pub fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// A network namespace owned by this process.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `pct-<pid>-<n>-<label>` with loopback up, and sysctls that make
    /// traffic counts exact: no ICMP rate limiting, no IPv6 autoconfiguration.
    pub fn new(label: &str) -> anyhow::Result<Self> {
        remove_stale_namespaces();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}{}-{n}-{label}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        for (key, value) in [
            ("net.ipv4.icmp_ratelimit", "0"),
            ("net.ipv6.icmp.ratelimit", "0"),
            ("net.ipv6.conf.all.accept_ra", "0"),
            ("net.ipv6.conf.default.accept_ra", "0"),
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
        ] {
            ns.sysctl(key, value)?;
        }
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        sh(Command::new("ip")
            .args(["netns", "exec", &self.name, "sysctl", "-qw"])
            .arg(format!("{key}={value}")))?;
        Ok(())
    }

    /// `ip -n <ns> args...`
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// A command that runs inside this namespace, killed after `limit`.
    pub fn command(&self, limit: Duration, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "timeout", "-s", "KILL"])
            .arg(format!("{}", limit.as_secs_f64()))
            .arg(program);
        cmd
    }

    /// A long-running program (a server) in this namespace. `ip netns exec`
    /// execs it in place, so killing the child kills the program itself; the
    /// caller bounds its lifetime (see [`Background`]).
    pub fn spawn(&self, program: &str, args: &[&str]) -> anyhow::Result<Background> {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {program} in {}", self.name))?;
        Ok(Background { child, stop: None })
    }

    /// Like [`Netns::spawn`], but dropping the result first sends `signal`
    /// and gives the program `grace` to exit cleanly (PostgreSQL's fast
    /// shutdown on SIGINT, say) before it is killed.
    pub fn spawn_graceful(
        &self,
        program: &str,
        args: &[&str],
        signal: i32,
        grace: Duration,
    ) -> anyhow::Result<Background> {
        let mut bg = self.spawn(program, args)?;
        bg.stop = Some((signal, grace));
        Ok(bg)
    }

    /// Waits (bounded) until something in this namespace listens on TCP
    /// `port`, as `ss` shows: no packet is sent to find out.
    pub fn wait_tcp_listening(&self, port: u16, limit: Duration) -> anyhow::Result<()> {
        self.wait_socket("-Hltn", "listens on TCP", port, limit)
    }

    /// Waits (bounded) until something in this namespace has UDP `port`
    /// bound, as `ss` shows.
    pub fn wait_udp_bound(&self, port: u16, limit: Duration) -> anyhow::Result<()> {
        self.wait_socket("-Hlun", "has bound UDP", port, limit)
    }

    /// Polls `ss <flags> sport = :port` until it lists a socket; `what` the
    /// socket does, for the error.
    fn wait_socket(
        &self,
        flags: &str,
        what: &str,
        port: u16,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let out = self.run(
                Duration::from_secs(5),
                "ss",
                &[flags, &format!("sport = :{port}")],
            )?;
            if !out.stdout.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                bail!(
                    "nothing {what} port {port} in {} after {limit:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `f` on a thread inside this namespace and returns its result:
    /// sockets it opens and interfaces it names (an XDP or tcx attach)
    /// are this namespace's, wherever they are used afterwards.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        let file = std::fs::File::open(format!("/run/netns/{}", self.name))
            .with_context(|| format!("opening namespace {}", self.name))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                use std::os::fd::AsRawFd as _;
                // SAFETY: setns on this thread only, with a namespace fd
                // that stays open across the call.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(anyhow::Error::from(std::io::Error::last_os_error())
                        .context(format!("entering namespace {}", self.name)));
                }
                Ok(f())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("a thread inside {} panicked", self.name))?
        })
    }

    /// The index of interface `ifname` in this namespace.
    pub fn ifindex(&self, ifname: &str) -> anyhow::Result<u32> {
        let out = self.run(
            Duration::from_secs(5),
            "cat",
            &[&format!("/sys/class/net/{ifname}/ifindex")],
        )?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .with_context(|| format!("the index of {ifname} in {}", self.name))
    }

    /// Runs `program args...` in the namespace (bounded by `limit`), failing
    /// when it exits non-zero.
    pub fn run(&self, limit: Duration, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        sh(self.command(limit, program).args(args))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys its veth ends and their peers.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A background program, killed when dropped (after a grace period for the
/// programs started with [`Netns::spawn_graceful`]).
pub struct Background {
    child: Child,
    /// Signal to send first, and how long to wait for the exit after it.
    stop: Option<(i32, Duration)>,
}

impl Background {
    /// Kills it at once (SIGKILL), whatever [`Netns::spawn_graceful`]
    /// asked: a crash, for the tests of what survives one.
    pub fn kill(mut self) {
        self.stop = None;
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some((signal, grace)) = self.stop
            && let Ok(Some(_)) = signal_and_wait(&mut self.child, signal, grace)
        {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `signal` to `child`, then waits up to `limit` for it to exit: its
/// status, or None while it still runs (the caller decides what then).
pub fn signal_and_wait(
    child: &mut Child,
    signal: i32,
    limit: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    // SAFETY: plain kill(2) on our own, not yet reaped, child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops `child` as a person would, with `signal`, and reaps it; one that
/// has not exited after `limit` is killed, and that is an error.
pub fn stop_child(child: &mut Child, signal: i32, limit: Duration) -> anyhow::Result<ExitStatus> {
    if let Some(status) = signal_and_wait(child, signal, limit)? {
        return Ok(status);
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("ignored signal {signal} for {limit:?}, killed");
}

/// A scratch directory under the system's temporary directory, removed with
/// its contents on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(label: &str) -> anyhow::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("{PREFIX}{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// `path()/name` as text, for command lines.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One end of a veth pair: its namespace, name, addresses and MAC.
#[derive(Clone, Debug)]
pub struct End {
    pub ns: String,
    pub ifname: String,
    pub mac: String,
    pub v4: String,
    pub v6: String,
}

/// Joins `a` and `b` with a veth pair and addresses them: `a` gets `.1`/`::1`,
/// `b` gets `.2`/`::2` in `v4_net` (a /24 like "192.0.2") and `v6_net` (a /64
/// like "2001:db8:1"). Neighbours are static and IPv6 has no link-local
/// address, so the link is silent until a test sends something.
pub fn link(
    a: &Netns,
    b: &Netns,
    id: u32,
    v4_net: &str,
    v6_net: &str,
) -> anyhow::Result<(End, End)> {
    let tag = format!("{}{}", std::process::id() % 10000, id);
    let (if_a, if_b) = (format!("pca{tag}"), format!("pcb{tag}"));
    ip(&[
        "link",
        "add",
        &if_a,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        &if_b,
        "netns",
        b.name(),
    ])?;
    // End `host` (1 or 2) of the link: its address and MAC end in `host`.
    let end = |ns: &Netns, ifname: String, host: u8| End {
        ns: ns.name().into(),
        ifname,
        mac: format!("02:00:00:00:{:02x}:{host:02x}", id & 0xff),
        v4: format!("{v4_net}.{host}"),
        v6: format!("{v6_net}::{host}"),
    };
    let ends = [end(a, if_a, 1), end(b, if_b, 2)];
    for (ns, end, peer) in [(a, &ends[0], &ends[1]), (b, &ends[1], &ends[0])] {
        let dev = end.ifname.as_str();
        ns.ip(&["link", "set", "dev", dev, "address", &end.mac])?;
        ns.ip(&["link", "set", "dev", dev, "addrgenmode", "none"])?;
        ns.ip(&["addr", "add", &format!("{}/24", end.v4), "dev", dev])?;
        ns.ip(&[
            "addr",
            "add",
            &format!("{}/64", end.v6),
            "dev",
            dev,
            "nodad",
        ])?;
        ns.ip(&["link", "set", "dev", dev, "up"])?;
        for addr in [&peer.v4, &peer.v6] {
            ns.ip(&[
                "neigh",
                "replace",
                addr,
                "lladdr",
                &peer.mac,
                "dev",
                dev,
                "nud",
                "permanent",
            ])?;
        }
    }
    let [ea, eb] = ends;
    Ok((ea, eb))
}

/// The IPv4 documentation networks (RFC 5737), as [`link`] and
/// [`host_and_peer`] take them: the /24 without its last byte.
pub const TEST_NET_1: &str = "192.0.2";
pub const TEST_NET_2: &str = "198.51.100";
pub const TEST_NET_3: &str = "203.0.113";

/// The IPv6 documentation /64 (RFC 3849) of link `id`, as [`link`] takes it.
pub fn v6_net(id: u32) -> String {
    format!("2001:db8:{id}")
}

/// How an end-to-end test opens: a host namespace and a peer namespace
/// joined by one veth pair. Dropping it removes both namespaces (and so the
/// link), also when the test panics.
pub struct HostAndPeer {
    pub host: Netns,
    pub peer: Netns,
    /// The host's end of the link: `.1`, `::1`.
    pub host_if: End,
    /// The peer's end: `.2`, `::2`.
    pub peer_if: End,
}

/// Namespaces labelled `host` and `peer` joined by link `id` in `v4_net`
/// (one of the `TEST_NET`s) and [`v6_net`]`(id)`. Not settled: the test
/// calls [`settle`] (or [`HostAndPeer::settled`]) once the lab is built,
/// after any further peers and the servers whose start it waits for.
pub fn host_and_peer(host: &str, peer: &str, id: u32, v4_net: &str) -> anyhow::Result<HostAndPeer> {
    let host = Netns::new(host)?;
    let Peer {
        ns: peer,
        host_if,
        peer_if,
    } = Peer::of(&host, peer, id, v4_net)?;
    Ok(HostAndPeer {
        host,
        peer,
        host_if,
        peer_if,
    })
}

impl HostAndPeer {
    /// The lab once [`settle`]d: for a test whose traffic may start now.
    pub fn settled(self) -> Self {
        settle();
        self
    }

    /// Another peer of the host, on link `id` in `v4_net`.
    pub fn add_peer(&self, label: &str, id: u32, v4_net: &str) -> anyhow::Result<Peer> {
        Peer::of(&self.host, label, id, v4_net)
    }
}

/// A namespace on the far side of a link from a host namespace.
pub struct Peer {
    pub ns: Netns,
    /// The host's end of the link: `.1`, `::1`.
    pub host_if: End,
    /// The peer's end: `.2`, `::2`.
    pub peer_if: End,
}

impl Peer {
    fn of(host: &Netns, label: &str, id: u32, v4_net: &str) -> anyhow::Result<Self> {
        let ns = Netns::new(label)?;
        let (host_if, peer_if) = link(host, &ns, id, v4_net, &v6_net(id))?;
        Ok(Self {
            ns,
            host_if,
            peer_if,
        })
    }
}

/// Waits out the multicast listener reports the kernel sends when IPv6
/// addresses are added, so that only the test's own traffic is counted.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(2500));
}

/// Whether an XDP program is attached to `ifname` in `ns` (as `ip link` shows).
pub fn xdp_attached(ns: &Netns, ifname: &str) -> anyhow::Result<bool> {
    let out = ns.ip(&["-d", "link", "show", "dev", ifname])?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("prog/xdp"))
}

/// One bare SYN from `peer` to `dst`:`port` from source port `sport`
/// (hping3, bounded; a refusal is not an error).
pub fn syn(peer: &Netns, dst: &str, port: u16, sport: u16) {
    let (port, sport) = (port.to_string(), sport.to_string());
    let _ = peer.run(
        Duration::from_secs(20),
        "hping3",
        &["-q", "-S", "-s", &sport, "-k", "-p", &port, "-c", "1", dst],
    );
}
