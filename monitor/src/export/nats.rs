//! Sending a spool to NATS JetStream (`nats://HOST:PORT[/STREAM]`).
//!
//! Every line is published on `portconform.<host>.<kind>`, so a consumer
//! can take one host or one kind, with the message id `<instance>.<seq>`:
//! JetStream drops a second copy inside its duplicate window, and `report
//! --from nats://` drops any older one by the same numbers. A line leaves
//! the spool only once JetStream's publish acknowledgement says it is
//! stored (on as many replicas as the stream has); a publish not
//! acknowledged (a node killed, the whole cluster down) is sent again from
//! the first line not acknowledged, through the client's own reconnection
//! to whichever node of the cluster answers.

use std::{
    borrow::Cow,
    collections::VecDeque,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use async_nats::jetstream::{
    self,
    context::{GetStreamErrorKind, PublishAckFuture},
    message::PublishMessage,
    stream,
};
use serde::Deserialize;

use super::{BATCH, POLL, Shared, Target, backoff};

/// The stream the URL names when it names none.
pub const DEFAULT_STREAM: &str = "PORTCONFORM";
/// The first token of every subject.
pub const SUBJECT_PREFIX: &str = "portconform";
/// Publishes awaiting their acknowledgement, at most (the client's own
/// bound is 5000; staying under it keeps `send_publish` from waiting).
const MAX_INFLIGHT: usize = 4096;
/// How long a publish may wait to be handed to the client (it waits while
/// the client's buffer is full, during an outage).
const HANDOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The subjects the stream must take: every host's every kind.
pub fn all_subjects() -> String {
    format!("{SUBJECT_PREFIX}.>")
}

/// `portconform.<host>.<kind>`, each part made one subject token: the dots
/// of an address or a domain name, wildcards and spaces become `_`.
pub fn subject(host: &str, kind: &str) -> String {
    format!("{SUBJECT_PREFIX}.{}.{}", token(host), token(kind))
}

fn token(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    s.chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// The fields of a line the subject and the message id come from.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    instance: Option<Cow<'a, str>>,
    seq: Option<u64>,
}

/// A line's subject and message id.
fn address(line: &[u8], fallback_host: &str) -> (String, Option<String>) {
    let head: Option<Head> = serde_json::from_slice(line).ok();
    match &head {
        Some(h) => (
            subject(
                h.host.as_deref().unwrap_or(fallback_host),
                h.kind.as_deref().unwrap_or("unknown"),
            ),
            h.instance
                .as_deref()
                .zip(h.seq)
                .map(|(i, s)| format!("{i}.{s}")),
        ),
        None => (subject(fallback_host, "unknown"), None),
    }
}

/// A line as a publish: its subject and message.
fn message(line: Vec<u8>, fallback_host: &str, stream: &str) -> (String, PublishMessage) {
    let (subject, id) = address(&line, fallback_host);
    let mut msg = PublishMessage::build()
        .payload(line.into())
        .expected_stream(stream);
    if let Some(id) = id {
        msg = msg.message_id(id);
    }
    (subject, msg)
}

/// Replicas for a stream this sink creates: as many as the cluster has
/// servers, up to JetStream's usual 3, so that one node down loses nothing.
fn replicas(info: &async_nats::ServerInfo) -> usize {
    if info.cluster.is_some() {
        info.connect_urls.len().clamp(1, 3)
    } else {
        1
    }
}

/// Makes sure `name` exists and takes `portconform.>`; creates it if it
/// does not exist. An error says what to fix.
async fn ensure_stream(
    js: &jetstream::Context,
    client: &async_nats::Client,
    name: &str,
) -> Result<(), String> {
    match js.get_stream(name).await {
        Ok(mut s) => {
            let info = s.info().await.map_err(|e| e.to_string())?;
            let wanted = all_subjects();
            if !info.config.subjects.contains(&wanted) {
                return Err(format!(
                    "stream {name} exists but does not take the subjects {wanted} (it takes {:?}): add them to it, or name another stream in the URL",
                    info.config.subjects
                ));
            }
            Ok(())
        }
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            let n = replicas(&client.server_info());
            js.create_stream(stream::Config {
                name: name.to_string(),
                subjects: vec![all_subjects()],
                num_replicas: n,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cannot create stream {name}: {e}"))?;
            log::warn!(
                "export: created JetStream stream {name} (subjects {}, {n} replica{})",
                all_subjects(),
                if n == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Err(e) => Err(format!("cannot look up stream {name}: {e}")),
    }
}

async fn connect(host: &str, port: u16) -> Result<async_nats::Client, String> {
    let opts = async_nats::ConnectOptions::new()
        .name("portconform")
        .connection_timeout(CONNECT_TIMEOUT)
        // Reconnect for ever: the spool, not the client, bounds what waits.
        .max_reconnects(None);
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(CONNECT_TIMEOUT * 2, opts.connect(addr)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// An outage as the sender lives it: since when nothing is delivered, and
/// how many attempts failed since (the backoff).
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    attempt: usize,
}

impl Outage {
    /// A failure: said once per outage.
    fn failed(&mut self, label: &str, why: &str) {
        if self.since.is_none() {
            log::warn!("export {label}: {why}; resending what was not acknowledged once it can");
            self.since = Some(Instant::now());
        }
    }

    /// Lines were acknowledged: the outage, if any, is over.
    fn delivered(&mut self, label: &str) {
        if let Some(since) = self.since.take() {
            log::warn!(
                "export {label}: delivering again after {:.1} s; sending what was spooled",
                since.elapsed().as_secs_f64()
            );
        }
        self.attempt = 0;
    }

    async fn wait(&mut self) {
        tokio::time::sleep(backoff(self.attempt)).await;
        self.attempt += 1;
    }
}

/// Sends `sink`'s spool until it is stopping and empty (or cannot be
/// emptied: then what is left stays spooled).
pub(super) async fn send(sink: Arc<Shared>) {
    let label = sink.target.label();
    let Target::Nats { host, port, stream } = &sink.target else {
        return;
    };
    let fallback_host = crate::netif::hostname().unwrap_or_else(|| "unknown-host".into());
    let mut last_sync = Instant::now();
    let mut outage = Outage::default();
    // One client for the whole run: it reconnects by itself, to any node
    // of the cluster it has learnt of.
    let client = loop {
        match connect(host, *port).await {
            Ok(c) => break c,
            Err(e) => {
                outage.failed(&label, &format!("cannot connect ({e})"));
                if sink.stopping.load(Ordering::Relaxed) {
                    return;
                }
                outage.wait().await;
            }
        }
    };
    let js = jetstream::new(client.clone());
    // Looked up (created if missing) once: a stream that stops answering
    // later is a cluster recovering, not a stream to create again.
    let mut stream_ready = false;
    loop {
        let why = if stream_ready {
            sink.connected.store(true, Ordering::Relaxed);
            match session(
                &sink,
                &js,
                stream,
                &fallback_host,
                &mut last_sync,
                &mut outage,
                &label,
            )
            .await
            {
                None => return,
                Some(why) => why,
            }
        } else {
            match ensure_stream(&js, &client, stream).await {
                Ok(()) => {
                    stream_ready = true;
                    continue;
                }
                Err(e) => e,
            }
        };
        sink.connected.store(false, Ordering::Relaxed);
        outage.failed(&label, &why);
        if sink.spool().rewind().is_err() || sink.stopping.load(Ordering::Relaxed) {
            return;
        }
        outage.wait().await;
    }
}

/// Publishes and settles acknowledgements until a publish fails (why) or
/// the sink is stopping with nothing left (`None`).
async fn session(
    sink: &Shared,
    js: &jetstream::Context,
    stream: &str,
    fallback_host: &str,
    last_sync: &mut Instant,
    outage: &mut Outage,
    label: &str,
) -> Option<String> {
    let mut lines = Vec::with_capacity(BATCH);
    // (spool index after the line, its acknowledgement).
    let mut inflight: VecDeque<(u64, PublishAckFuture)> = VecDeque::new();
    let fail = |inflight: &VecDeque<(u64, PublishAckFuture)>, f: String| {
        sink.retried
            .fetch_add(inflight.len() as u64, Ordering::Relaxed);
        Some(f)
    };
    loop {
        if let Err(e) = sink.take(&mut lines, last_sync) {
            return fail(&inflight, e.to_string());
        }
        let idle = lines.is_empty();
        for (index, line) in lines.drain(..) {
            let (subject, msg) = message(line, fallback_host, stream);
            match tokio::time::timeout(HANDOFF, js.send_publish(subject, msg)).await {
                Ok(Ok(ack)) => inflight.push_back((index + 1, ack)),
                Ok(Err(e)) => {
                    return fail(&inflight, format!("cannot publish: {e}"));
                }
                Err(_) => {
                    return fail(
                        &inflight,
                        "cannot publish: the client is not connected".into(),
                    );
                }
            }
        }
        // Settle the oldest: all of them when nothing new came (so that
        // the spool catches up), else enough to stay under the bound.
        let keep = if idle { 0 } else { MAX_INFLIGHT - BATCH };
        let mut upto = None;
        while inflight.len() > keep {
            let Some((index, ack)) = inflight.pop_front() else {
                break;
            };
            match ack.await {
                Ok(_) => upto = Some(index),
                Err(e) => {
                    if let Some(upto) = upto {
                        let _ = sink.spool().ack(upto);
                    }
                    sink.retried.fetch_add(1, Ordering::Relaxed);
                    return fail(&inflight, format!("publish not acknowledged: {e}"));
                }
            }
        }
        if let Some(upto) = upto {
            if let Err(e) = sink.spool().ack(upto) {
                return fail(&inflight, e.to_string());
            }
            outage.delivered(label);
        }
        if idle {
            let empty = inflight.is_empty() && !sink.spool().has_unread();
            if empty && sink.stopping.load(Ordering::Relaxed) {
                return None;
            }
            tokio::select! {
                _ = sink.wake.notified(), if empty => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_token_per_host_and_kind() {
        assert_eq!(
            subject("192.0.2.1", "unexpected"),
            "portconform.192_0_2_1.unexpected"
        );
        assert_eq!(
            subject("node a.example", "blocked"),
            "portconform.node_a_example.blocked"
        );
        assert_eq!(subject("2001:db8::1", "*"), "portconform.2001:db8::1._");
        assert_eq!(subject("", ">"), "portconform._._");
    }

    #[test]
    fn messages_carry_the_lines_numbers_as_their_id() {
        let line = br#"{"kind":"unexpected","host":"node-a","seq":7,"instance":"i-1"}"#;
        assert_eq!(
            address(line, "fallback"),
            ("portconform.node-a.unexpected".into(), Some("i-1.7".into()))
        );
        // A line without a host goes under this host's name; one that is
        // not JSON still goes, without an id.
        assert_eq!(
            address(br#"{"kind":"blocked","seq":1}"#, "h.example"),
            ("portconform.h_example.blocked".into(), None)
        );
        assert_eq!(
            address(b"not json", "h.example"),
            ("portconform.h_example.unknown".into(), None)
        );
    }
}
