//! Reading the fleet's JetStream stream for `report --from nats://`: the
//! messages `run --export nats://` published, read like the lines of one
//! events file, so that the report from the stream is the report from the
//! hosts' files. A message carries one line or, under load, several
//! (newline-separated); its number in the stream stands for the line
//! number in messages. A line delivered twice is read once by its
//! instance and seq (see [`super::load::read_line`]).
//!
//! The stream is read by an ordered consumer: ephemeral, unacknowledged,
//! so a report leaves nothing behind on the servers and never takes
//! messages from another reader.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt as _;

use super::load::{BadLine, FileStats, Sink, read_line};
use crate::export::{Target, nats};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// While catching up: a stream whose tail went quiet this long (its last
/// messages deleted since it was asked) is read as far as it goes.
const CATCH_UP_IDLE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("--from {url}: give nats://HOST:PORT[/STREAM], the URL `run --export` was given")]
    NotNats { url: String },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot connect to {url}: {why}")]
    Connect { url: String, why: String },
    #[error("{url}: no stream {stream} there ({why}): is the fleet exporting to it?")]
    NoStream {
        url: String,
        stream: String,
        why: String,
    },
    #[error("reading {url}: {why}")]
    Read { url: String, why: String },
}

/// How [`StreamReader::follow`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// The wait passed; this many messages were read meanwhile.
    Read(u64),
    /// SIGINT or SIGTERM.
    Stopped,
}

/// An open stream and how far it was read.
pub struct StreamReader {
    runtime: tokio::runtime::Runtime,
    messages: pull::Ordered,
    /// The stream itself, to fetch from its leader what the consumer's
    /// server skipped.
    stream: jetstream::stream::Stream,
    /// The stream sequence the next message should have.
    next: u64,
    url: String,
    /// The stream's last message when it was opened: catching up ends there.
    end: u64,
    /// What was read, as for a file: `path` is the URL.
    pub stats: FileStats,
}

impl StreamReader {
    /// Connects and positions a consumer at the stream's first message.
    pub fn open(target: &Target) -> Result<StreamReader, StreamError> {
        let url = target.label();
        let Target::Nats { host, port, stream } = target else {
            return Err(StreamError::NotNats { url });
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StreamError::Runtime)?;
        let connect_err = |why: String| StreamError::Connect {
            url: url.clone(),
            why,
        };
        let (messages, stream, first, end) = runtime.block_on(async {
            let addr = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let client = tokio::time::timeout(
                CONNECT_TIMEOUT,
                async_nats::ConnectOptions::new()
                    .name("portconform-report")
                    .connection_timeout(CONNECT_TIMEOUT)
                    .connect(addr),
            )
            .await
            .map_err(|_| connect_err("timed out".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
            let js = jetstream::new(client);
            let no_stream = |why: String| StreamError::NoStream {
                url: url.clone(),
                stream: stream.clone(),
                why,
            };
            let mut s = js
                .get_stream(stream)
                .await
                .map_err(|e| no_stream(e.to_string()))?;
            let state = s
                .info()
                .await
                .map_err(|e| no_stream(e.to_string()))?
                .state
                .clone();
            let (first, end) = (state.first_sequence, state.last_sequence);
            let consumer = s
                .create_consumer(pull::OrderedConfig {
                    filter_subject: nats::all_subjects(),
                    ..Default::default()
                })
                .await
                .map_err(|e| StreamError::Read {
                    url: url.clone(),
                    why: format!("cannot create a consumer: {e}"),
                })?;
            let messages = consumer.messages().await.map_err(|e| StreamError::Read {
                url: url.clone(),
                why: e.to_string(),
            })?;
            Ok::<_, StreamError>((messages, s, first, end))
        })?;
        Ok(StreamReader {
            runtime,
            messages,
            stream,
            next: first,
            stats: FileStats::new(url.clone().into(), "unknown-host".into()),
            url,
            end,
        })
    }

    /// The stream's name in messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Reads every message the stream held when it was opened.
    pub fn catch_up(&mut self, sink: &mut impl Sink) -> Result<(), StreamError> {
        let mut last = 0;
        while last < self.end {
            let messages = &mut self.messages;
            let next = self
                .runtime
                .block_on(async { tokio::time::timeout(CATCH_UP_IDLE, messages.next()).await });
            match next {
                Err(_) => {
                    // The consumer's server has no more: the rest (if the
                    // stream still has it) from the leader.
                    self.fill(self.end + 1, sink);
                    return Ok(());
                }
                Ok(None) => break,
                Ok(Some(m)) => last = self.one(m, sink)?,
            }
        }
        Ok(())
    }

    /// Reads what comes for `wait`, or until SIGINT or SIGTERM.
    pub fn follow(
        &mut self,
        sink: &mut impl Sink,
        wait: Duration,
    ) -> Result<Followed, StreamError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut read = 0;
        loop {
            let messages = &mut self.messages;
            let next = self.runtime.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .map_err(|e| e.to_string())?;
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => Ok(None),
                    _ = term.recv() => Ok(None),
                    _ = tokio::time::sleep_until(deadline) => Ok(Some(None)),
                    m = messages.next() => Ok(Some(Some(m))),
                }
            });
            match next {
                Err(why) => {
                    return Err(StreamError::Read {
                        url: self.url.clone(),
                        why,
                    });
                }
                Ok(None) => return Ok(Followed::Stopped),
                Ok(Some(None)) => return Ok(Followed::Read(read)),
                Ok(Some(Some(None))) => {
                    return Err(StreamError::Read {
                        url: self.url.clone(),
                        why: "the consumer ended".into(),
                    });
                }
                Ok(Some(Some(Some(m)))) => {
                    self.one(m, sink)?;
                    read += 1;
                }
            }
        }
    }

    /// One message into `sink`; its number in the stream.
    fn one(
        &mut self,
        m: Result<jetstream::Message, pull::OrderedError>,
        sink: &mut impl Sink,
    ) -> Result<u64, StreamError> {
        let m = m.map_err(|e| StreamError::Read {
            url: self.url.clone(),
            why: e.to_string(),
        })?;
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
        // A consumer reads its own server's copy of the stream: one that
        // was down and is still catching up skips what it lacks. Those
        // messages are fetched from the stream's leader, never skipped.
        self.fill(seq, sink);
        self.next = self.next.max(seq + 1);
        self.lines(&m.payload, seq, sink);
        Ok(seq)
    }

    /// Reads the messages from the next expected one up to `until`
    /// (excluded) from the stream's leader, when the consumer skipped them.
    fn fill(&mut self, until: u64, sink: &mut impl Sink) {
        if until <= self.next {
            return;
        }
        let (from, to) = (self.next, until - 1);
        eprintln!(
            "portconform: {}: messages {from}-{to} were not in the consumer's server's copy of the stream (a node catching up?); reading them from the stream's leader",
            self.url
        );
        for missing in from..=to {
            let got = self.runtime.block_on(self.stream.get_raw_message(missing));
            if let Ok(raw) = got
                && raw.subject.starts_with(nats::SUBJECT_PREFIX)
            {
                self.lines(&raw.payload, missing, sink);
            }
        }
        self.next = until;
    }

    /// A message's lines (one, or under load several, newline-separated)
    /// into `sink`, numbered by the message's `seq`.
    fn lines(&mut self, payload: &[u8], seq: u64, sink: &mut impl Sink) {
        for line in payload.split(|&b| b == b'\n') {
            self.stats.lines += 1;
            match std::str::from_utf8(line) {
                Ok(text) => read_line(text, seq, &mut self.stats, sink),
                Err(_) => {
                    self.stats.bad_lines += 1;
                    sink.bad_line(BadLine {
                        file: self.stats.path.clone(),
                        line: seq,
                        what: "not UTF-8 text".into(),
                    });
                }
            }
        }
    }
}
