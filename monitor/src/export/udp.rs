//! Sending a spool as IPFIX over UDP.
//!
//! UDP acknowledges nothing: a line counts as sent once its message is
//! handed to the kernel. What the spool still protects against is a
//! collector the network says is unreachable (the ICMP errors a connected
//! UDP socket reports on its next send): then the lines wait, and go once
//! it is back.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use tokio::net::UdpSocket;

use super::{BATCH, POLL, Shared, backoff, ipfix};

async fn connect(host: &str, port: u16) -> std::io::Result<UdpSocket> {
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    Ok(socket)
}

/// Sends `sink`'s spool until it is stopping and empty.
pub async fn send(sink: Arc<Shared>) {
    let label = sink.target.label();
    let (host, port) = sink.target.host_port();
    let mut attempt = 0usize;
    let mut last_sync = Instant::now();
    let mut down = false;
    // One observation domain per daemon: the collector keeps its
    // templates and sequence numbers apart from another run's.
    let mut messages = ipfix::Messages::new(std::process::id(), ipfix::MAX_UDP_MESSAGE);
    loop {
        let socket = match connect(host, port).await {
            Ok(s) => s,
            Err(e) => {
                sink.connect_failures.fetch_add(1, Ordering::Relaxed);
                if !down {
                    log::warn!(
                        "export {label}: cannot reach it ({e}); lines are spooled until it can"
                    );
                    down = true;
                }
                if sink.stopping.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        sink.connected.store(true, Ordering::Relaxed);
        match session(&sink, &socket, &mut messages, &mut last_sync).await {
            None => return,
            Some(why) => {
                sink.connected.store(false, Ordering::Relaxed);
                if !down {
                    log::warn!("export {label}: {why}; lines are spooled until it is back");
                    down = true;
                }
                if sink.spool().rewind().is_err() {
                    return;
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

async fn session(
    sink: &Shared,
    socket: &UdpSocket,
    messages: &mut ipfix::Messages,
    last_sync: &mut Instant,
) -> Option<String> {
    let mut lines = Vec::with_capacity(BATCH);
    let mut data = Vec::with_capacity(256);
    // Templates go first, then on schedule.
    let mut last_templates: Option<Instant> = None;
    loop {
        if let Err(e) = sink.take(&mut lines, last_sync) {
            return Some(e.to_string());
        }
        if lines.is_empty() {
            if sink.stopping.load(Ordering::Relaxed) && !sink.spool().has_unread() {
                return None;
            }
            tokio::select! {
                _ = sink.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            continue;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let mut templates = last_templates.is_none_or(|t| t.elapsed() >= ipfix::TEMPLATE_EVERY);
        if templates {
            last_templates = Some(Instant::now());
        }
        let mut out = Vec::new();
        for (_, line) in &lines {
            if let Some(template) = ipfix::from_spool(line, &mut data) {
                out.extend(messages.add(template, &data, now, &mut templates));
            }
        }
        out.extend(messages.finish());
        for msg in &out {
            if let Err(e) = socket.send(msg).await {
                return Some(format!("cannot send: {e}"));
            }
        }
        let upto = lines.last().map_or(0, |(i, _)| i + 1);
        if let Err(e) = sink.spool().ack(upto) {
            return Some(e.to_string());
        }
    }
}
