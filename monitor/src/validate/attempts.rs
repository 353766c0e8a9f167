//! Listeners on every port an attempt goes to, and the attempts themselves,
//! made with native sockets created inside the lab's namespaces (no socat
//! or netcat at run time).

use std::{
    collections::BTreeSet,
    net::{Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use socket2::{Domain, Socket, Type};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::reach::{self, L4, Observed, Outcome, dns};

use super::{
    lab::{Lab, LabError},
    plan::Attempt,
};

/// Attempts in flight at once: each one the ruleset drops waits out the
/// timeout, and the lab's hosts are all on this machine.
const PARALLEL: usize = 16;

/// A listening socket on `[::]:port` (IPv4 too), made in a namespace.
fn listener(l4: L4, port: u16) -> std::io::Result<Socket> {
    let ty = match l4 {
        L4::Tcp => Type::STREAM,
        L4::Udp => Type::DGRAM,
    };
    let s = Socket::new(Domain::IPV6, ty, None)?;
    s.set_only_v6(false)?;
    s.set_reuse_address(true)?;
    s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    if l4 == L4::Tcp {
        s.listen(128)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Serves what the attempts need: TCP accepts (then closes), UDP answers
/// (a DNS answer on 53, an echo elsewhere). Aborted when dropped.
pub struct Listeners {
    tasks: JoinSet<()>,
    pub failures: Vec<String>,
}

impl Listeners {
    /// Opens a listener on each (member, protocol, port) the attempts aim
    /// at. Must run inside the tokio runtime.
    pub fn open(lab: &Lab, attempts: &[Attempt]) -> Result<Listeners, LabError> {
        let wanted: BTreeSet<(usize, L4, u16)> =
            attempts.iter().map(|a| (a.server, a.l4, a.port)).collect();
        let mut tasks = JoinSet::new();
        let mut failures = Vec::new();
        for (member, l4, port) in wanted {
            let socket = match lab.enter(member, || listener(l4, port))? {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!(
                        "{} {}/{port}: cannot listen: {e}",
                        lab.ns(member),
                        l4.as_str()
                    ));
                    continue;
                }
            };
            let served = match l4 {
                L4::Tcp => tokio::net::TcpListener::from_std(socket.into()).map(|l| {
                    tasks.spawn(async move {
                        while let Ok((stream, _)) = l.accept().await {
                            drop(stream);
                        }
                    });
                }),
                L4::Udp => tokio::net::UdpSocket::from_std(socket.into()).map(|u| {
                    tasks.spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        while let Ok((n, from)) = u.recv_from(&mut buf).await {
                            let answer = if port == 53 {
                                dns::refused_answer(&buf[..n])
                            } else {
                                Some(buf[..n].to_vec())
                            };
                            if let Some(a) = answer {
                                let _ = u.send_to(&a, from).await;
                            }
                        }
                    });
                }),
            };
            if let Err(e) = served {
                failures.push(format!("{} {}/{port}: {e}", lab.ns(member), l4.as_str()));
            }
        }
        Ok(Listeners { tasks, failures })
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Makes every attempt (at most [`PARALLEL`] at once), in plan order.
pub async fn run(lab: &Lab, attempts: &[Attempt], timeout: Duration) -> Vec<Observed> {
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let mut set = JoinSet::new();
    let mut results: Vec<Option<Observed>> = vec![None; attempts.len()];
    for (i, a) in attempts.iter().enumerate() {
        let permit = match gate.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => break,
        };
        let dst = SocketAddr::new(a.dst, a.port);
        let l4 = a.l4;
        let socket = match lab.enter(a.client, || reach::socket(l4, dst, Some(a.src))) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                results[i] = Some(setup_failure(format!("socket: {e}")));
                continue;
            }
            Err(e) => {
                results[i] = Some(setup_failure(e.to_string()));
                continue;
            }
        };
        let id = i as u16;
        set.spawn(async move {
            let seen = match l4 {
                L4::Tcp => reach::tcp(socket, dst, timeout).await,
                L4::Udp => {
                    let (request, is_answer) = reach::udp_request(dst.port(), id);
                    reach::udp(socket, dst, &request, is_answer, timeout).await
                }
            };
            drop(permit);
            (i, seen)
        });
        // Collect what is done, so the set stays small.
        while let Some(Ok((j, seen))) = set.try_join_next() {
            results[j] = Some(seen);
        }
    }
    while let Some(done) = set.join_next().await {
        if let Ok((j, seen)) = done {
            results[j] = Some(seen);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| setup_failure("not attempted".into())))
        .collect()
}

fn setup_failure(detail: String) -> Observed {
    Observed {
        outcome: Outcome::NoReply,
        icmp: None,
        detail,
        elapsed_ms: 0,
    }
}
