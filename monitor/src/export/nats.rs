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
/// Lines one message carries at most, and its payload's bytes at most
/// (well under the server's default 1 MiB max_payload).
const MSG_LINES: u64 = 64;
const MSG_BYTES: usize = 64 * 1024;

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

/// A line's subject, and its instance and seq when it has them.
fn address(line: &[u8], fallback_host: &str) -> (String, Option<(String, u64)>) {
    let head: Option<Head> = serde_json::from_slice(line).ok();
    match &head {
        Some(h) => (
            subject(
                h.host.as_deref().unwrap_or(fallback_host),
                h.kind.as_deref().unwrap_or("unknown"),
            ),
            h.instance.as_deref().map(str::to_string).zip(h.seq),
        ),
        None => (subject(fallback_host, "unknown"), None),
    }
}

/// Consecutive lines of one subject and instance, as one message: under
/// load the spool hands out hundreds of lines at once, and a JetStream
/// acknowledgement per line would cost more than the lines themselves.
/// When lines come one at a time, so do messages.
struct Batch {
    subject: String,
    numbers: Option<(String, u64, u64)>,
    payload: Vec<u8>,
    lines: u64,
    /// The spool index after its last line.
    end: u64,
}

impl Batch {
    fn new(subject: String, numbers: Option<(String, u64)>, line: Vec<u8>, index: u64) -> Self {
        Batch {
            subject,
            numbers: numbers.map(|(i, s)| (i, s, s)),
            payload: line,
            lines: 1,
            end: index + 1,
        }
    }

    /// Takes `line` if it continues this batch; gives it back if not.
    fn offer(
        &mut self,
        subject: &str,
        numbers: &Option<(String, u64)>,
        line: Vec<u8>,
        index: u64,
    ) -> Option<Vec<u8>> {
        let continues = match (&mut self.numbers, numbers) {
            (Some((i, _, last)), Some((j, seq))) => i == j && *seq == *last + 1,
            _ => false,
        };
        if !continues
            || self.subject != subject
            || self.lines >= MSG_LINES
            || self.payload.len() + 1 + line.len() > MSG_BYTES
        {
            return Some(line);
        }
        if let (Some((_, _, last)), Some((_, seq))) = (&mut self.numbers, numbers) {
            *last = *seq;
        }
        self.payload.push(b'\n');
        self.payload.extend_from_slice(&line);
        self.lines += 1;
        self.end = index + 1;
        None
    }

    /// `<instance>.<seq>` for one line, `<instance>.<first>-<last>` for
    /// more.
    fn id(&self) -> Option<String> {
        self.numbers.as_ref().map(|(i, first, last)| {
            if first == last {
                format!("{i}.{first}")
            } else {
                format!("{i}.{first}-{last}")
            }
        })
    }

    fn message(self, stream: &str) -> (String, PublishMessage) {
        let mut msg = PublishMessage::build().expected_stream(stream);
        if let Some(id) = self.id() {
            msg = msg.message_id(id);
        }
        (self.subject, msg.payload(self.payload.into()))
    }
}

/// Cuts `lines` (spool index, line) into batches.
fn batches(lines: impl IntoIterator<Item = (u64, Vec<u8>)>, fallback_host: &str) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for (index, line) in lines {
        let (subject, numbers) = address(&line, fallback_host);
        let line = match out.last_mut() {
            Some(b) => b.offer(&subject, &numbers, line, index),
            None => Some(line),
        };
        if let Some(line) = line {
            out.push(Batch::new(subject, numbers, line, index));
        }
    }
    out
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
    // (spool index after the message's last line, its lines, its
    // acknowledgement).
    let mut inflight: VecDeque<(u64, u64, PublishAckFuture)> = VecDeque::new();
    let fail = |inflight: &VecDeque<(u64, u64, PublishAckFuture)>, f: String| {
        let lines: u64 = inflight.iter().map(|(_, n, _)| n).sum();
        sink.retried.fetch_add(lines, Ordering::Relaxed);
        Some(f)
    };
    loop {
        if let Err(e) = sink.take(&mut lines, last_sync) {
            return fail(&inflight, e.to_string());
        }
        let idle = lines.is_empty();
        for batch in batches(lines.drain(..), fallback_host) {
            let (end, n) = (batch.end, batch.lines);
            let (subject, msg) = batch.message(stream);
            match tokio::time::timeout(HANDOFF, js.send_publish(subject, msg)).await {
                Ok(Ok(ack)) => inflight.push_back((end, n, ack)),
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
            let Some((end, n, ack)) = inflight.pop_front() else {
                break;
            };
            match ack.await {
                Ok(_) => upto = Some(end),
                Err(e) => {
                    if let Some(upto) = upto {
                        let _ = sink.spool().ack(upto);
                    }
                    sink.retried.fetch_add(n, Ordering::Relaxed);
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
    fn lines_are_addressed_by_host_and_kind() {
        let line = br#"{"kind":"unexpected","host":"node-a","seq":7,"instance":"i-1"}"#;
        assert_eq!(
            address(line, "fallback"),
            (
                "portconform.node-a.unexpected".into(),
                Some(("i-1".into(), 7))
            )
        );
        // A line without a host goes under this host's name; one that is
        // not JSON still goes, without numbers.
        assert_eq!(
            address(br#"{"kind":"blocked","seq":1}"#, "h.example"),
            ("portconform.h_example.blocked".into(), None)
        );
        assert_eq!(
            address(b"not json", "h.example"),
            ("portconform.h_example.unknown".into(), None)
        );
    }

    fn line(kind: &str, instance: &str, seq: u64) -> Vec<u8> {
        format!(r#"{{"kind":"{kind}","host":"h","seq":{seq},"instance":"{instance}"}}"#)
            .into_bytes()
    }

    #[test]
    fn consecutive_lines_of_one_subject_share_a_message() {
        let lines = vec![
            (10, line("unexpected", "a", 1)),
            (11, line("unexpected", "a", 2)),
            (12, line("unexpected", "a", 3)),
            (13, line("blocked", "a", 4)),
            (14, line("unexpected", "a", 5)),
            (15, line("unexpected", "b", 6)),
            (16, b"torn".to_vec()),
            (17, b"torn".to_vec()),
        ];
        let got: Vec<(String, Option<String>, u64, u64)> = batches(lines, "h")
            .iter()
            .map(|b| (b.subject.clone(), b.id(), b.lines, b.end))
            .collect();
        let u = "portconform.h.unexpected".to_string();
        assert_eq!(
            got,
            vec![
                (u.clone(), Some("a.1-3".into()), 3, 13),
                ("portconform.h.blocked".into(), Some("a.4".into()), 1, 14),
                (u.clone(), Some("a.5".into()), 1, 15),
                (u, Some("b.6".into()), 1, 16),
                ("portconform.h.unknown".into(), None, 1, 17),
                ("portconform.h.unknown".into(), None, 1, 18),
            ]
        );
        let b = batches((0..200).map(|i| (i, line("unexpected", "a", i + 1))), "h");
        assert_eq!(
            b.iter().map(|b| b.lines).collect::<Vec<_>>(),
            vec![64, 64, 64, 8]
        );
        assert_eq!(
            b[0].payload.split(|&c| c == b'\n').count(),
            64,
            "newline-separated"
        );
    }
}
