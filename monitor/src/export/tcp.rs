//! Sending a spool over TCP (`syslog+tcp://`, `syslog+tls://`,
//! `ipfix+tcp://`), and knowing what arrived.
//!
//! Neither syslog nor IPFIX over TCP has an acknowledgement of its own, so
//! a line counts as delivered once the collector's TCP has acknowledged its
//! last byte: the bytes written minus those the kernel still holds
//! unacknowledged (TIOCOUTQ). Over TLS those bytes are ciphertext: each
//! batch of lines is handed to rustls and flushed to the socket whole, and
//! its lines count as delivered once the collector's TCP has acknowledged
//! every ciphertext byte up to the batch's end (see [`Wire::wire_end`]).
//! Either way "delivered" means in the collector's kernel, as it does for
//! plain TCP: what a collector killed before reading is not seen here. A
//! connection that fails takes with it only lines not acknowledged yet,
//! and those are sent again on the next.

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::io::AsyncWriteExt as _;

use super::{
    BATCH, POLL, Shared, backoff, ipfix,
    stream::{self, ConnectError, Wire},
    syslog,
};

/// How long a clean close (TLS close_notify, TCP FIN) may take at exit.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How lines become bytes on one connection.
pub enum Framing {
    /// RFC 5424 messages, octet-counted.
    Syslog,
    /// IPFIX messages; templates at the start of every connection.
    Ipfix,
}

/// Frames lines for one connection.
struct Framer {
    framing: Framing,
    pid: u32,
    scratch: Vec<u8>,
    /// IPFIX: the connection's messages (sequence numbers start anew on
    /// each, RFC 7011 §10.4.2), and whether the templates are still due.
    messages: ipfix::Messages,
    templates: bool,
}

impl Framer {
    /// A new connection: IPFIX starts over with templates and sequence 0.
    fn reset(&mut self) {
        self.messages = ipfix::Messages::new(self.pid, ipfix::MAX_TCP_MESSAGE);
        self.templates = true;
    }

    fn new(framing: Framing, pid: u32) -> Self {
        Framer {
            framing,
            pid,
            scratch: Vec::with_capacity(1024),
            messages: ipfix::Messages::new(pid, ipfix::MAX_TCP_MESSAGE),
            templates: true,
        }
    }

    /// Appends `lines` to `out`; pushes (spool index after the line, its
    /// end in `out`) for each line.
    fn frame(&mut self, lines: &[(u64, Vec<u8>)], out: &mut Vec<u8>, ends: &mut Vec<(u64, u64)>) {
        match self.framing {
            Framing::Syslog => {
                for (index, line) in lines {
                    syslog::frame(line, self.pid, out, &mut self.scratch);
                    ends.push((index + 1, out.len() as u64));
                }
            }
            Framing::Ipfix => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as u32);
                for (_, line) in lines {
                    if let Some(template) = ipfix::from_spool(line, &mut self.scratch)
                        && let Some(m) =
                            self.messages
                                .add(template, &self.scratch, now, &mut self.templates)
                    {
                        out.extend_from_slice(&m);
                    }
                }
                out.extend(self.messages.finish().into_iter().flatten());
                // A record is in the batch's last message at the latest.
                if let Some((index, _)) = lines.last() {
                    ends.push((index + 1, out.len() as u64));
                }
            }
        }
    }
}

/// Sends `sink`'s spool until it is stopping and empty (or cannot be
/// emptied: then what is left stays spooled).
pub async fn send(sink: Arc<Shared>, framing: Framing) {
    let label = sink.target.label();
    let mut framer = Framer::new(framing, std::process::id());
    let mut attempt = 0usize;
    let mut last_sync = Instant::now();
    let mut down_since: Option<Instant> = None;
    // The last failure said, so that a new kind of failure is said too.
    let mut said = String::new();
    loop {
        if sink.stopping.load(Ordering::Relaxed) && down_since.is_some() {
            return;
        }
        let (host, port) = sink.target.host_port();
        framer.reset();
        let mut conn = Conn {
            sink: &sink,
            framer: &mut framer,
            last_sync: &mut last_sync,
            down_since: &mut down_since,
        };
        let ended = match &sink.tls {
            Some(config) => match stream::tls(host, port, config).await {
                Ok(mut s) => Ok(conn.run(&mut s).await),
                Err(e) => Err(e),
            },
            None => match stream::tcp(host, port).await {
                Ok(mut s) => Ok(conn.run(&mut s).await),
                Err(e) => Err(e),
            },
        };
        match ended {
            Err(e) => {
                let (kind, counter) = match &e {
                    ConnectError::Tcp(_) => ("connect", &sink.connect_failures),
                    ConnectError::Tls(_) => ("tls", &sink.tls_failures),
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if down_since.is_none() || !said.starts_with(kind) {
                    log::warn!("export {label}: {e}; lines are spooled until it can");
                    said = kind.to_string();
                    down_since.get_or_insert_with(Instant::now);
                }
                if sink.stopping.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            // Stopping and every line acknowledged.
            Ok(None) => return,
            Ok(Some(why)) => {
                attempt = 0;
                said.clear();
                log::warn!(
                    "export {label}: connection lost ({why}); resending what it had not acknowledged"
                );
                down_since = Some(Instant::now());
                let mut spool = sink.spool();
                sink.retried.fetch_add(spool.in_flight(), Ordering::Relaxed);
                if spool.rewind().is_err() {
                    return;
                }
            }
        }
    }
}

/// What one connection works with.
struct Conn<'a> {
    sink: &'a Shared,
    framer: &'a mut Framer,
    last_sync: &'a mut Instant,
    down_since: &'a mut Option<Instant>,
}

impl Conn<'_> {
    /// Runs a connection until it fails (the reason) or the sink is
    /// stopping with nothing left (`None`, after closing it cleanly).
    async fn run<W: Wire>(&mut self, w: &mut W) -> Option<String> {
        if let Some(since) = self.down_since.take() {
            log::warn!(
                "export {}: connected after {:.1} s; sending what was spooled",
                self.sink.target.label(),
                since.elapsed().as_secs_f64()
            );
        }
        self.sink.connected.store(true, Ordering::Relaxed);
        let failed = self.session(w).await;
        self.sink.connected.store(false, Ordering::Relaxed);
        if failed.is_none() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, w.shutdown()).await;
        }
        failed
    }

    async fn session<W: Wire>(&mut self, w: &mut W) -> Option<String> {
        let sink = self.sink;
        let mut lines = Vec::with_capacity(BATCH);
        let mut buf = Vec::with_capacity(256 * 1024);
        let mut ends = Vec::with_capacity(BATCH);
        // (spool index after the line, wire bytes written after it).
        let mut inflight: VecDeque<(u64, u64)> = VecDeque::new();
        loop {
            if let Err(e) = sink.take(&mut lines, self.last_sync) {
                return Some(e.to_string());
            }
            if !lines.is_empty() {
                buf.clear();
                ends.clear();
                self.framer.frame(&lines, &mut buf, &mut ends);
                let before = w.socket().written();
                if let Err(e) = w.write_all(&buf).await {
                    return Some(e.to_string());
                }
                if let Err(e) = w.flush().await {
                    return Some(e.to_string());
                }
                let after = w.socket().written();
                inflight.extend(
                    ends.iter()
                        .map(|&(index, end)| (index, W::wire_end(before, end, after))),
                );
            }
            // What the collector's TCP acknowledged is delivered.
            let socket = w.socket();
            let Some(outq) = socket.unacknowledged() else {
                return Some("cannot read the socket's send queue".into());
            };
            let acked_bytes = socket.written() - outq.min(socket.written());
            let mut upto = None;
            while let Some(&(index, end)) = inflight.front() {
                if end > acked_bytes {
                    break;
                }
                upto = Some(index);
                inflight.pop_front();
            }
            if let Some(upto) = upto
                && let Err(e) = sink.spool().ack(upto)
            {
                return Some(e.to_string());
            }
            if stream::closed(w) {
                return Some("closed by the collector".into());
            }
            if lines.is_empty() {
                let idle = inflight.is_empty() && !sink.spool().has_unread();
                if idle && sink.stopping.load(Ordering::Relaxed) {
                    return None;
                }
                tokio::select! {
                    _ = sink.wake.notified(), if idle => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }
}
