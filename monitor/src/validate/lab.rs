//! The throwaway lab: one network namespace per host (the appliance and a
//! peer per role), each with one interface into a bridge in a switch
//! namespace. Addresses are host routes with static neighbours, so any
//! inventory's addresses work side by side and no ARP or router discovery
//! adds traffic. Everything is removed on drop, also after an error or an
//! interrupt; namespaces left by a killed run are removed by the next one.

use std::{
    io::Write as _,
    net::IpAddr,
    os::fd::OwnedFd,
    path::Path,
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use nix::sched::{CloneFlags, setns};

use super::hosts::Hosts;

/// Prefix of the lab's namespaces: `pcv-<pid>-<n>-<host>`.
pub const PREFIX: &str = "pcv-";
static NEXT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("building the lab: `{command}` failed: {message}")]
    Command { command: String, message: String },
    #[error("building the lab: {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// Runs `ip args...`, feeding `stdin` if given.
fn ip(args: &[&str], stdin: Option<&str>) -> Result<(), LabError> {
    let command = format!("ip {}", args.join(" "));
    let mut child = Command::new("ip")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(format!(
            "starting `{command}` (is iproute2 installed?)"
        )))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(io_err(format!("writing to `{command}`")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(io_err(format!("waiting for `{command}`")))?;
    if !out.status.success() {
        return Err(LabError::Command {
            command,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Deletes `pcv-<pid>-...` namespaces whose process is gone.
pub fn remove_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip(&["netns", "del", &name], None);
        }
    }
}

/// The lab's MAC address of member `i` (locally administered).
fn mac(i: usize) -> String {
    format!("02:70:63:76:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff)
}

fn host_net(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(_) => format!("{a}/32"),
        IpAddr::V6(_) => format!("{a}/128"),
    }
}

pub struct Lab {
    /// Namespace of each member, index as in [`Hosts::members`].
    names: Vec<String>,
    switch: String,
    fds: Vec<OwnedFd>,
    /// The interface name of every member (the appliance's is the one the
    /// ruleset may name).
    pub iface: String,
}

impl Lab {
    /// Builds the lab for `hosts`; each member's interface is `iface`.
    /// Clients take their source ports from `ephemeral` when given.
    pub fn build(
        hosts: &Hosts,
        iface: &str,
        ephemeral: Option<(u16, u16)>,
    ) -> Result<Lab, LabError> {
        remove_stale();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let base = format!("{PREFIX}{}-{n}", std::process::id());
        let mut lab = Lab {
            names: Vec::new(),
            switch: format!("{base}-sw"),
            fds: Vec::new(),
            iface: iface.to_string(),
        };
        // From here on, drop removes whatever was made.
        ip(&["netns", "add", &lab.switch], None)?;
        for i in 0..hosts.members.len() {
            let name = if i == 0 {
                format!("{base}-app")
            } else {
                format!("{base}-p{i}")
            };
            ip(&["netns", "add", &name], None)?;
            lab.names.push(name);
        }
        for name in &lab.names {
            let f = std::fs::File::open(format!("/run/netns/{name}"))
                .map_err(io_err(format!("opening /run/netns/{name}")))?;
            lab.fds.push(OwnedFd::from(f));
        }
        lab.sysctls(ephemeral)?;
        let pid = std::process::id();
        let mut switch_cmds = vec![
            "link add br0 type bridge".to_string(),
            "link set dev lo up".to_string(),
        ];
        for (i, m) in hosts.members.iter().enumerate() {
            let (a, b) = (format!("pv{pid}a{i}"), format!("pv{pid}b{i}"));
            ip(
                &[
                    "link",
                    "add",
                    &a,
                    "netns",
                    &lab.names[i],
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &b,
                    "netns",
                    &lab.switch,
                ],
                None,
            )?;
            switch_cmds.push(format!("link set dev {b} master br0"));
            switch_cmds.push(format!("link set dev {b} up"));
            let mut cmds = vec![
                "link set dev lo up".to_string(),
                format!("link set dev {a} name {iface}"),
                format!("link set dev {iface} address {}", mac(i)),
                format!("link set dev {iface} addrgenmode none"),
            ];
            for addr in &m.addrs {
                let nodad = if addr.is_ipv6() { " nodad" } else { "" };
                cmds.push(format!("addr add {} dev {iface}{nodad}", host_net(addr)));
            }
            cmds.push(format!("link set dev {iface} up"));
            for (j, other) in hosts.members.iter().enumerate() {
                if j == i {
                    continue;
                }
                for addr in other.addrs.iter().filter(|o| !m.addrs.contains(o)) {
                    cmds.push(format!("route replace {} dev {iface}", host_net(addr)));
                    cmds.push(format!(
                        "neigh replace {addr} lladdr {} dev {iface} nud permanent",
                        mac(j)
                    ));
                }
            }
            ip(
                &["-n", &lab.names[i], "-batch", "-"],
                Some(&(cmds.join("\n") + "\n")),
            )?;
        }
        switch_cmds.push("link set dev br0 up".into());
        ip(
            &["-n", &lab.switch, "-batch", "-"],
            Some(&(switch_cmds.join("\n") + "\n")),
        )?;
        Ok(lab)
    }

    /// Per-namespace settings: exact answers (no ICMP rate limit), no IPv6
    /// autoconfiguration, and no IPv6 at all on the switch.
    fn sysctls(&self, ephemeral: Option<(u16, u16)>) -> Result<(), LabError> {
        let range = ephemeral.map(|(lo, hi)| format!("{lo} {hi}"));
        let host = [
            ("net/ipv4/icmp_ratelimit", "0"),
            ("net/ipv6/icmp/ratelimit", "0"),
            ("net/ipv6/conf/all/accept_ra", "0"),
            ("net/ipv6/conf/default/accept_ra", "0"),
            ("net/ipv6/conf/all/accept_dad", "0"),
            ("net/ipv6/conf/default/accept_dad", "0"),
        ];
        for i in 0..self.names.len() {
            self.enter(i, || -> std::io::Result<()> {
                for (key, value) in host {
                    std::fs::write(format!("/proc/sys/{key}"), value)?;
                }
                if let Some(range) = &range {
                    std::fs::write("/proc/sys/net/ipv4/ip_local_port_range", range)?;
                }
                Ok(())
            })?
            .map_err(io_err(format!("setting sysctls in {}", self.names[i])))?;
        }
        let switch = &self.switch;
        let f = std::fs::File::open(format!("/run/netns/{switch}"))
            .map_err(io_err(format!("opening /run/netns/{switch}")))?;
        let fd = OwnedFd::from(f);
        run_in(&fd, || -> std::io::Result<()> {
            for key in ["all", "default"] {
                std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "1")?;
            }
            Ok(())
        })?
        .map_err(io_err(format!("setting sysctls in {switch}")))
    }

    /// Namespace of member `i`.
    pub fn ns(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// All namespaces of the lab, the switch last.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = self.names.clone();
        all.push(self.switch.clone());
        all
    }

    /// Runs `f` on a thread inside member `i`'s namespace: sockets it
    /// creates belong to that namespace wherever they are used afterwards.
    pub fn enter<T: Send>(&self, i: usize, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        run_in(&self.fds[i], f)
    }
}

fn run_in<T: Send>(fd: &OwnedFd, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(fd, CloneFlags::CLONE_NEWNET)
                .map_err(|e| io_err("entering a lab namespace")(e.into()))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(LabError::Io {
                what: "a thread inside a lab namespace".into(),
                source: std::io::Error::other("panicked"),
            })
        })
    })
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.fds.clear();
        // Deleting a namespace destroys its veth ends, and with them their
        // peers in the switch.
        for name in self.names.iter().chain(std::iter::once(&self.switch)) {
            let _ = ip(&["netns", "del", name], None);
        }
    }
}
