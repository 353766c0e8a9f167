//! One TCP connection attempt or one UDP request/response, with a timeout,
//! read the way the daemon reads a handshake: the errno, and the ICMP error
//! the kernel queued for the socket (IP_RECVERR), which is the only way a
//! process can tell "administratively prohibited" from "host unreachable".

use std::{
    io::{self, IoSliceMut},
    net::{IpAddr, SocketAddr},
    os::fd::{AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Socket, Type};

use super::outcome::{IcmpError, Observed, Outcome, classify_error};

/// Protocols an attempt can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    pub fn as_str(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        }
    }
}

/// A non-blocking socket for an attempt towards `dst`, with ICMP errors
/// queued (IP_RECVERR / IPV6_RECVERR) and bound to `src` if given (a lab
/// host with several addresses must speak from the one the flow names).
///
/// Creating it is the only step that depends on the network namespace: the
/// socket stays in the namespace of the thread that created it.
pub fn socket(l4: L4, dst: SocketAddr, src: Option<IpAddr>) -> io::Result<Socket> {
    let ty = match l4 {
        L4::Tcp => Type::STREAM,
        L4::Udp => Type::DGRAM,
    };
    let s = Socket::new(Domain::for_address(dst), ty, None)?;
    match dst {
        SocketAddr::V4(_) => setsockopt(&s, sockopt::Ipv4RecvErr, &true),
        SocketAddr::V6(_) => setsockopt(&s, sockopt::Ipv6RecvErr, &true),
    }
    .map_err(io::Error::from)?;
    if let Some(src) = src {
        s.bind(&SocketAddr::new(src, 0).into())?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// The first ICMP error queued on `fd`, if any (non-blocking).
pub fn queued_icmp(fd: &impl AsRawFd) -> Option<IcmpError> {
    for _ in 0..4 {
        let mut buf = [0u8; 512];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
        let msg = recvmsg::<SockaddrStorage>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        )
        .ok()?;
        for c in msg.cmsgs().ok()? {
            let found = match c {
                ControlMessageOwned::Ipv4RecvErr(ee, from)
                    if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP =>
                {
                    Some(IcmpError {
                        v6: false,
                        kind: ee.ee_type,
                        code: ee.ee_code,
                        from: from.map(|a| {
                            IpAddr::from(std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))
                        }),
                    })
                }
                ControlMessageOwned::Ipv6RecvErr(ee, from)
                    if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6 =>
                {
                    Some(IcmpError {
                        v6: true,
                        kind: ee.ee_type,
                        code: ee.ee_code,
                        from: from.map(|a| IpAddr::from(a.sin6_addr.s6_addr)),
                    })
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

fn observed(outcome: Outcome, icmp: Option<IcmpError>, detail: String, start: Instant) -> Observed {
    Observed {
        outcome,
        icmp,
        detail,
        elapsed_ms: start.elapsed().as_millis() as u64,
    }
}

fn failed(err: &io::Error, fd: &impl AsRawFd, what: &str, start: Instant) -> Observed {
    let icmp = queued_icmp(fd);
    let detail = match &icmp {
        Some(i) => format!("{what}: {err} ({i})"),
        None => format!("{what}: {err}"),
    };
    observed(classify_error(err, icmp), icmp, detail, start)
}

/// Opens a TCP connection from `socket` to `dst` and closes it at once.
pub async fn tcp(socket: Socket, dst: SocketAddr, timeout: Duration) -> Observed {
    let start = Instant::now();
    // A second descriptor of the same socket: tokio drops its own when the
    // connect fails, and the ICMP error is read after that.
    let errq = match socket.try_clone() {
        Ok(s) => s,
        Err(e) => return observed(Outcome::NoReply, None, format!("socket: {e}"), start),
    };
    let std_stream = std::net::TcpStream::from(OwnedFd::from(socket));
    let socket = tokio::net::TcpSocket::from_std_stream(std_stream);
    match tokio::time::timeout(timeout, socket.connect(dst)).await {
        Ok(Ok(stream)) => {
            drop(stream);
            observed(Outcome::Working, None, "connected".into(), start)
        }
        Ok(Err(e)) => failed(&e, &errq, "connect", start),
        Err(_) => match queued_icmp(&errq) {
            // An ICMP error that did not end the connect (a soft error).
            Some(i) => {
                let err = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
                observed(
                    classify_error(&err, Some(i)),
                    Some(i),
                    format!("no handshake in {timeout:?} ({i})"),
                    start,
                )
            }
            None => observed(
                Outcome::NoReply,
                None,
                format!("no answer in {timeout:?}"),
                start,
            ),
        },
    }
}

/// Sends `request` from `socket` to `dst` (again at half the timeout, in
/// case it was lost) and waits for a datagram that `is_answer` accepts.
pub async fn udp(
    socket: Socket,
    dst: SocketAddr,
    request: &[u8],
    is_answer: impl Fn(&[u8]) -> bool,
    timeout: Duration,
) -> Observed {
    let start = Instant::now();
    if let Err(e) = socket.connect(&dst.into()) {
        return failed(&e, &socket, "connect", start);
    }
    let errq = match socket.try_clone() {
        Ok(s) => s,
        Err(e) => return observed(Outcome::NoReply, None, format!("socket: {e}"), start),
    };
    let std_socket = std::net::UdpSocket::from(OwnedFd::from(socket));
    let socket = match tokio::net::UdpSocket::from_std(std_socket) {
        Ok(s) => s,
        Err(e) => return observed(Outcome::NoReply, None, format!("socket: {e}"), start),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let resend = tokio::time::Instant::now() + timeout / 2;
    let mut resent = false;
    if let Err(e) = socket.send(request).await {
        return failed(&e, &errq, "send", start);
    }
    let mut buf = vec![0u8; 4096];
    loop {
        let until = if resent { deadline } else { resend };
        match tokio::time::timeout_at(until, socket.recv(&mut buf)).await {
            Ok(Ok(n)) if is_answer(&buf[..n]) => {
                return observed(
                    Outcome::Working,
                    None,
                    format!("answered ({n} bytes)"),
                    start,
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return failed(&e, &errq, "receive", start),
            Err(_) if !resent => {
                resent = true;
                if let Err(e) = socket.send(request).await {
                    return failed(&e, &errq, "send", start);
                }
            }
            Err(_) => {
                return observed(
                    Outcome::NoReply,
                    None,
                    format!("no answer in {timeout:?}"),
                    start,
                );
            }
        }
    }
}
