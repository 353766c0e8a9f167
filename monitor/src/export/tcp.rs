//! Sending a spool over TCP, and knowing what arrived.
//!
//! Syslog over TCP has no acknowledgement of its own, so a line counts as
//! delivered once the collector's TCP has acknowledged its last byte: the
//! bytes written minus those the kernel still holds unacknowledged
//! (TIOCOUTQ). A connection that fails takes with it only lines not
//! acknowledged yet, and those are sent again on the next.

use std::{
    collections::VecDeque,
    os::fd::AsRawFd as _,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::{io::AsyncWriteExt as _, net::TcpStream};

use super::{BATCH, POLL, Shared, Target, backoff, syslog};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes written on `stream` that its peer has not acknowledged.
fn unacknowledged(stream: &TcpStream) -> Option<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int; the fd is the stream's, alive here.
    let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    (r == 0).then_some(n.max(0) as u64)
}

/// Whether the peer closed or reset the connection (a syslog collector
/// never sends, so anything readable is the end).
fn closed(stream: &TcpStream) -> bool {
    let mut b = [0u8; 64];
    match stream.try_read(&mut b) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

async fn connect(target: &Target) -> std::io::Result<TcpStream> {
    let (host, port) = target.host_port();
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Sends `sink`'s spool until it is stopping and empty (or cannot be
/// emptied: then what is left stays spooled).
pub async fn send(sink: Arc<Shared>) {
    let label = sink.target.label();
    let pid = std::process::id();
    let mut attempt = 0usize;
    let mut last_sync = Instant::now();
    let mut down_since: Option<Instant> = None;
    loop {
        if sink.stopping.load(Ordering::Relaxed) && down_since.is_some() {
            return;
        }
        let mut stream = match connect(&sink.target).await {
            Ok(s) => s,
            Err(e) => {
                if down_since.is_none() {
                    log::warn!(
                        "export {label}: cannot connect ({e}); lines are spooled until it can"
                    );
                    down_since = Some(Instant::now());
                }
                if sink.stopping.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        if let Some(since) = down_since.take() {
            log::warn!(
                "export {label}: connected after {:.1} s; sending what was spooled",
                since.elapsed().as_secs_f64()
            );
        }
        attempt = 0;
        sink.connected.store(true, Ordering::Relaxed);
        let failed = session(&sink, &mut stream, pid, &mut last_sync).await;
        sink.connected.store(false, Ordering::Relaxed);
        match failed {
            // Stopping and every line acknowledged.
            None => return,
            Some(why) => {
                log::warn!(
                    "export {label}: connection lost ({why}); resending what it had not acknowledged"
                );
                down_since = Some(Instant::now());
                if sink.spool().rewind().is_err() {
                    return;
                }
            }
        }
    }
}

/// One connection: sends and acknowledges until it fails (the reason) or
/// the sink is stopping with nothing left (`None`).
async fn session(
    sink: &Shared,
    stream: &mut TcpStream,
    pid: u32,
    last_sync: &mut Instant,
) -> Option<String> {
    let mut lines = Vec::with_capacity(BATCH);
    let (mut buf, mut scratch) = (Vec::with_capacity(256 * 1024), Vec::with_capacity(1024));
    // (spool index after the line, total bytes written after it).
    let mut inflight: VecDeque<(u64, u64)> = VecDeque::new();
    let mut written: u64 = 0;
    loop {
        if let Err(e) = sink.take(&mut lines, last_sync) {
            return Some(e.to_string());
        }
        if !lines.is_empty() {
            buf.clear();
            for (index, line) in &lines {
                syslog::frame(line, pid, &mut buf, &mut scratch);
                inflight.push_back((index + 1, written + buf.len() as u64));
            }
            if let Err(e) = stream.write_all(&buf).await {
                return Some(e.to_string());
            }
            written += buf.len() as u64;
        }
        // What the collector's TCP acknowledged is delivered.
        let Some(outq) = unacknowledged(stream) else {
            return Some("cannot read the socket's send queue".into());
        };
        let acked_bytes = written - outq.min(written);
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
        if closed(stream) {
            let retried = inflight.len() as u64;
            sink.retried.fetch_add(retried, Ordering::Relaxed);
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
