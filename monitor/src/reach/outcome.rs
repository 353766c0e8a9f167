//! What became of one connection attempt, in the monitor's vocabulary for a
//! required flow (`working`, `reset`, `no-reply`, `icmp-unreachable`,
//! `admin-prohibited`), so that `validate`, `probe` and the daemon's
//! `blocked` events can be read side by side.

use std::{fmt, io, net::IpAddr};

use serde::Serialize;

/// The outcome of an attempt, named as the daemon names a blocked flow's
/// reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The handshake completed (TCP) or the request was answered (UDP).
    Working,
    /// A TCP RST answered the SYN.
    Reset,
    /// Nothing came back within the timeout.
    NoReply,
    /// An ICMP destination unreachable other than administratively prohibited.
    IcmpUnreachable,
    /// ICMP destination unreachable codes 9, 10 and 13 (ICMPv6 code 1), or
    /// this host's own firewall refusing to send (EPERM).
    AdminProhibited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Working => "working",
            Outcome::Reset => "reset",
            Outcome::NoReply => "no-reply",
            Outcome::IcmpUnreachable => "icmp-unreachable",
            Outcome::AdminProhibited => "admin-prohibited",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ICMP error the kernel queued on the socket (IP_RECVERR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IcmpError {
    /// Whether it is ICMPv6.
    pub v6: bool,
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: u8,
    /// The router or host that sent it.
    pub from: Option<IpAddr>,
}

impl IcmpError {
    /// ICMP destination unreachable (type 3, ICMPv6 type 1).
    fn is_unreachable(&self) -> bool {
        if self.v6 {
            self.kind == 1
        } else {
            self.kind == 3
        }
    }

    /// Administratively prohibited: codes 9, 10, 13 (ICMPv6 code 1).
    pub fn is_admin_prohibited(&self) -> bool {
        self.is_unreachable()
            && if self.v6 {
                self.code == 1
            } else {
                matches!(self.code, 9 | 10 | 13)
            }
    }

    /// Port unreachable: the host is there, nothing listens (or a firewall
    /// says so with the same words).
    pub fn is_port_unreachable(&self) -> bool {
        self.is_unreachable()
            && if self.v6 {
                self.code == 4
            } else {
                self.code == 3
            }
    }
}

impl fmt::Display for IcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.v6 { "ICMPv6" } else { "ICMP" };
        write!(f, "{name} type {} code {}", self.kind, self.code)?;
        if let Some(from) = self.from {
            write!(f, " from {from}")?;
        }
        Ok(())
    }
}

/// One attempt's result: the outcome and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub outcome: Outcome,
    /// The ICMP error behind it, when one came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpError>,
    /// What a person needs to read the outcome ("connect: Connection
    /// refused", "no answer in 2s").
    pub detail: String,
    pub elapsed_ms: u64,
}

impl Observed {
    /// The plain-words column of `probe`: `working`, `refused` (RST or ICMP
    /// port unreachable), `filtered` (no answer) or `unreachable` (ICMP
    /// host/net unreachable or administratively prohibited).
    pub fn plain(&self) -> &'static str {
        match self.outcome {
            Outcome::Working => "working",
            Outcome::Reset => "refused",
            Outcome::NoReply => "filtered",
            Outcome::IcmpUnreachable if self.icmp.is_some_and(|i| i.is_port_unreachable()) => {
                "refused"
            }
            Outcome::IcmpUnreachable | Outcome::AdminProhibited => "unreachable",
        }
    }
}

/// Reads a failed attempt: the errno it failed with and the ICMP error the
/// kernel queued for it, if any.
pub fn classify_error(err: &io::Error, icmp: Option<IcmpError>) -> Outcome {
    if let Some(icmp) = icmp {
        if icmp.is_admin_prohibited() {
            return Outcome::AdminProhibited;
        }
        if icmp.is_unreachable() {
            return Outcome::IcmpUnreachable;
        }
    }
    match err.raw_os_error() {
        Some(libc::ECONNREFUSED) => Outcome::Reset,
        Some(libc::EPERM | libc::EACCES) => Outcome::AdminProhibited,
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN | libc::ENONET) => {
            Outcome::IcmpUnreachable
        }
        Some(libc::ETIMEDOUT) => Outcome::NoReply,
        _ if err.kind() == io::ErrorKind::TimedOut => Outcome::NoReply,
        _ => Outcome::IcmpUnreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icmp(v6: bool, kind: u8, code: u8) -> Option<IcmpError> {
        Some(IcmpError {
            v6,
            kind,
            code,
            from: None,
        })
    }

    #[test]
    fn icmp_codes_name_the_reason() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let unreach = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert_eq!(classify_error(&refused, None), Outcome::Reset);
        assert_eq!(
            classify_error(&refused, icmp(false, 3, 3)),
            Outcome::IcmpUnreachable
        );
        for code in [9, 10, 13] {
            assert_eq!(
                classify_error(&unreach, icmp(false, 3, code)),
                Outcome::AdminProhibited
            );
        }
        assert_eq!(
            classify_error(&unreach, icmp(false, 3, 1)),
            Outcome::IcmpUnreachable
        );
        assert_eq!(
            classify_error(&unreach, icmp(true, 1, 1)),
            Outcome::AdminProhibited
        );
        assert_eq!(
            classify_error(&unreach, icmp(true, 1, 3)),
            Outcome::IcmpUnreachable
        );
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(classify_error(&eperm, None), Outcome::AdminProhibited);
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(classify_error(&timeout, None), Outcome::NoReply);
    }

    #[test]
    fn plain_words() {
        let o = |outcome, icmp| Observed {
            outcome,
            icmp,
            detail: String::new(),
            elapsed_ms: 0,
        };
        assert_eq!(o(Outcome::Reset, None).plain(), "refused");
        assert_eq!(
            o(Outcome::IcmpUnreachable, icmp(false, 3, 3)).plain(),
            "refused"
        );
        assert_eq!(
            o(Outcome::IcmpUnreachable, icmp(true, 1, 4)).plain(),
            "refused"
        );
        assert_eq!(
            o(Outcome::IcmpUnreachable, icmp(false, 3, 1)).plain(),
            "unreachable"
        );
        assert_eq!(o(Outcome::AdminProhibited, None).plain(), "unreachable");
        assert_eq!(o(Outcome::NoReply, None).plain(), "filtered");
        assert_eq!(o(Outcome::Working, None).plain(), "working");
    }
}
