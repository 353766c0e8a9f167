//! A deliberately small HTTP/1.1 server for `GET /metrics`.
//!
//! A scrape endpoint needs one route, so a framework would be mostly attack
//! surface. What it must get right is robustness: every request is bounded in
//! size and time, the number of connections is capped, and every connection
//! is closed after one response, so a misbehaving client costs at most
//! `MAX_CONNECTIONS × MAX_REQUEST_BYTES` of memory and cannot stall scrapes.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use super::Metrics;

/// What prometheus-client renders; Prometheus asks for it by default.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Request line plus headers; a scraper sends a few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// For the whole request head to arrive, and separately for the response to
/// be written.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 32;

/// After an error response, unread request bytes are drained (up to this much
/// and `DRAIN_TIME`) before closing: closing a socket with unread data makes
/// the kernel send a reset, which can destroy the response before the client
/// reads it.
const DRAIN_BYTES: usize = 256 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen for metrics on {addr}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// A running metrics endpoint. Dropping it leaves the server running; call
/// [`abort`](Self::abort) to stop it.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    handle: JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address, which tells the actual port when 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn abort(&self) {
        self.handle.abort();
    }

    pub fn into_handle(self) -> JoinHandle<()> {
        self.handle
    }
}

/// Binds `addr` now (so a taken port is reported at start) and serves
/// `GET /metrics` on a spawned task. Must be called within a tokio runtime.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<MetricsServer, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let handle = tokio::spawn(accept_loop(listener, metrics));
    Ok(MetricsServer { local_addr, handle })
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning on it.
                log::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            drop(stream);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let guard = ActiveGuard(Arc::clone(&active));
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _guard = guard;
            handle_connection(stream, &metrics).await;
        });
    }
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handle_connection(mut stream: TcpStream, metrics: &Metrics) {
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    let head = timeout(REQUEST_TIMEOUT, read_head(&mut stream, &mut buf)).await;
    let (response, clean) = match head {
        Err(_) => (
            error_response(408, "Request Timeout", "request not received in time\n"),
            false,
        ),
        Ok(Err(HeadError::Io | HeadError::Closed)) => return,
        Ok(Err(HeadError::TooLarge)) => (
            error_response(
                431,
                "Request Header Fields Too Large",
                "request head larger than 8 KiB\n",
            ),
            false,
        ),
        Ok(Ok(len)) => {
            let response = respond(&buf[..len], metrics);
            // A refused request (e.g. a POST) may still have a body in flight.
            let clean = response.starts_with(b"HTTP/1.1 200 ");
            (response, clean)
        }
    };
    drop(buf);
    if timeout(REQUEST_TIMEOUT, write_all(&mut stream, &response))
        .await
        .is_err()
    {
        return;
    }
    let _ = poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await;
    if !clean {
        drain(&mut stream).await;
    }
}

#[derive(Debug)]
enum HeadError {
    TooLarge,
    Closed,
    /// Nobody to tell: the client is gone.
    Io,
}

/// Reads until the blank line that ends the request head and returns its
/// length. Never reads more than `buf.len()` bytes: the caller's buffer is the
/// memory bound.
async fn read_head<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize, HeadError> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Err(HeadError::TooLarge);
        }
        let n = read_some(r, &mut buf[filled..])
            .await
            .map_err(|_| HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        // Only the new bytes and the few before them can complete the end.
        let from = filled.saturating_sub(3);
        filled += n;
        if let Some(pos) = find(&buf[from..filled], b"\r\n\r\n") {
            return Ok(from + pos + 4);
        }
        // Tolerate bare-LF clients (e.g. hand-typed nc sessions).
        if let Some(pos) = find(&buf[from..filled], b"\n\n") {
            return Ok(from + pos + 2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn read_some<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut rb = ReadBuf::new(buf);
    poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, &mut rb)).await?;
    Ok(rb.filled().len())
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, data)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    poll_fn(|cx| Pin::new(&mut *w).poll_flush(cx)).await
}

async fn drain(stream: &mut TcpStream) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut scratch = [0u8; 4096];
    let mut total = 0;
    while total < DRAIN_BYTES {
        match tokio::time::timeout_at(deadline, read_some(stream, &mut scratch)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => return,
        }
    }
}

/// Routes a complete request head to a full response (headers and body).
fn respond(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    let Some(request_line) = head
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .map(|l| l.trim_end_matches('\r'))
    else {
        return error_response(400, "Bad Request", "request line is not UTF-8\n");
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return error_response(400, "Bad Request", "malformed request line\n");
    };
    if !version.starts_with("HTTP/1.") {
        return error_response(505, "HTTP Version Not Supported", "only HTTP/1.x\n");
    }
    let path = target.split('?').next().unwrap_or(target);
    if path != "/metrics" {
        return error_response(404, "Not Found", "metrics are served at /metrics\n");
    }
    match method {
        "GET" => response(
            200,
            "OK",
            CONTENT_TYPE,
            &[],
            metrics.render().as_bytes(),
            true,
        ),
        "HEAD" => response(
            200,
            "OK",
            CONTENT_TYPE,
            &[],
            metrics.render().as_bytes(),
            false,
        ),
        _ => response(
            405,
            "Method Not Allowed",
            "text/plain; charset=utf-8",
            &[("Allow", "GET, HEAD")],
            b"only GET and HEAD are allowed\n",
            true,
        ),
    }
}

fn error_response(code: u16, reason: &str, body: &str) -> Vec<u8> {
    response(
        code,
        reason,
        "text/plain; charset=utf-8",
        &[],
        body.as_bytes(),
        true,
    )
}

fn response(
    code: u16,
    reason: &str,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    with_body: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if with_body {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::task::{Context, Poll};

    /// An endless request head that never ends its headers.
    struct Endless {
        read: usize,
    }

    impl AsyncRead for Endless {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = buf.remaining();
            buf.put_slice(&vec![b'a'; n]);
            self.read += n;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn read_head_never_reads_past_its_buffer() {
        let mut src = Endless { read: 0 };
        let mut buf = vec![0u8; MAX_REQUEST_BYTES];
        let r = read_head(&mut src, &mut buf).await;
        assert!(matches!(r, Err(HeadError::TooLarge)), "{r:?}");
        assert_eq!(src.read, MAX_REQUEST_BYTES);
        assert_eq!(buf.capacity(), MAX_REQUEST_BYTES);
    }

    #[tokio::test]
    async fn read_head_finds_the_end_across_reads() {
        // One byte at a time, so the terminator straddles reads.
        struct Trickle(&'static [u8]);
        impl AsyncRead for Trickle {
            fn poll_read(
                mut self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                if let Some((first, rest)) = self.0.split_first() {
                    buf.put_slice(&[*first]);
                    self.0 = rest;
                }
                Poll::Ready(Ok(()))
            }
        }
        let req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nbody";
        let mut buf = vec![0u8; MAX_REQUEST_BYTES];
        let n = read_head(&mut Trickle(req), &mut buf).await.unwrap();
        assert_eq!(&buf[..n], &req[..req.len() - 4]);
        let mut buf = vec![0u8; MAX_REQUEST_BYTES];
        let r = read_head(&mut Trickle(b"GET / HTTP/1.1\r\n"), &mut buf).await;
        assert!(matches!(r, Err(HeadError::Closed)), "{r:?}");
    }

    #[test]
    fn routing() {
        let m = Metrics::new();
        let status = |req: &str| {
            let r = respond(req.as_bytes(), &m);
            String::from_utf8_lossy(&r[..12]).into_owned()
        };
        assert_eq!(status("GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 200");
        assert_eq!(status("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), "HTTP/1.1 200");
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404");
        assert_eq!(status("POST /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 405");
        assert_eq!(status("GET /metrics HTTP/2.0\r\n\r\n"), "HTTP/1.1 505");
        assert_eq!(status("GET /metrics\r\n\r\n"), "HTTP/1.1 400");
        assert_eq!(status("GET  /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 400");
        assert_eq!(status("\u{ff}\r\n\r\n"), "HTTP/1.1 400");
        let head = respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", &m);
        let head = String::from_utf8(head).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        assert!(!head.contains("# EOF"));
        let post = String::from_utf8(respond(b"PUT /metrics HTTP/1.1\r\n\r\n", &m)).unwrap();
        assert!(post.contains("\r\nAllow: GET, HEAD\r\n"), "{post}");
    }

    /// Sends `request` from a blocking client thread (so the single-threaded
    /// test runtime keeps serving) and returns the whole response.
    async fn exchange(addr: SocketAddr, request: Vec<u8>) -> String {
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
            // The server may answer and close before reading everything.
            let _ = s.write_all(&request);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn serves_metrics_over_real_tcp() {
        let metrics = Arc::new(Metrics::new());
        metrics.update(crate::metrics::tests::sample());
        let server = serve("127.0.0.1:0".parse().unwrap(), Arc::clone(&metrics))
            .await
            .unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);

        let resp = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".to_vec(),
        )
        .await;
        let (head, body) = resp.split_once("\r\n\r\n").expect("a full response");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("Content-Type: {CONTENT_TYPE}")),
            "{head}"
        );
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(
            body.contains("portconform_unexpected_flows_total 3"),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"));

        // Updates show on the next scrape.
        metrics.update_with(|s| s.unexpected_flows = 4);
        let resp = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(
            resp.contains("portconform_unexpected_flows_total 4"),
            "{resp}"
        );

        let resp = exchange(addr, b"GET /other HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(resp.starts_with("HTTP/1.1 404 "), "{resp}");
        let resp = exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(resp.starts_with("HTTP/1.1 405 "), "{resp}");
        // A refused request with a large body still gets its answer.
        let mut post = b"POST /metrics HTTP/1.1\r\nContent-Length: 102400\r\n\r\n".to_vec();
        post.resize(post.len() + 102_400, b'x');
        let resp = exchange(addr, post).await;
        assert!(resp.starts_with("HTTP/1.1 405 "), "{resp}");
        server.abort();
    }

    #[tokio::test]
    async fn oversized_request_gets_431_and_the_server_keeps_serving() {
        let metrics = Arc::new(Metrics::new());
        let server = serve("127.0.0.1:0".parse().unwrap(), metrics)
            .await
            .unwrap();
        let addr = server.local_addr();
        let mut big = b"GET /metrics HTTP/1.1\r\nX-Junk: ".to_vec();
        big.resize(100 * 1024, b'a');
        let resp = exchange(addr, big).await;
        assert!(
            resp.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{resp:?}"
        );
        assert!(resp.contains("Connection: close"));
        // Much larger than the drain budget: the server must still cope.
        let mut huge = b"GET /metrics HTTP/1.1\r\nX-Junk: ".to_vec();
        huge.resize(4 * 1024 * 1024, b'a');
        let _ = exchange(addr, huge).await;
        let resp = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
        server.abort();
    }

    #[tokio::test]
    async fn a_stalled_request_times_out_with_408() {
        let server = serve("127.0.0.1:0".parse().unwrap(), Arc::new(Metrics::new()))
            .await
            .unwrap();
        let addr = server.local_addr();
        let started = std::time::Instant::now();
        let resp = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(REQUEST_TIMEOUT * 3)).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
        .await
        .unwrap();
        assert!(resp.starts_with("HTTP/1.1 408 "), "{resp:?}");
        assert!(started.elapsed() < REQUEST_TIMEOUT * 2);
        server.abort();
    }

    #[tokio::test]
    async fn connections_past_the_cap_are_closed_and_slots_come_back() {
        let server = serve("127.0.0.1:0".parse().unwrap(), Arc::new(Metrics::new()))
            .await
            .unwrap();
        let addr = server.local_addr();
        let (idle, extra) = tokio::task::spawn_blocking(move || {
            let idle: Vec<_> = (0..MAX_CONNECTIONS)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            // Let the server accept them all before the extra one arrives.
            std::thread::sleep(Duration::from_millis(300));
            let mut extra = std::net::TcpStream::connect(addr).unwrap();
            extra.set_read_timeout(Some(REQUEST_TIMEOUT / 2)).unwrap();
            let _ = extra.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
            let mut out = Vec::new();
            let r = extra.read_to_end(&mut out);
            (idle, (r.map_err(|e| e.kind()), out))
        })
        .await
        .unwrap();
        // Closed without a response (EOF or reset), and well before a timeout.
        assert!(
            matches!(extra, (Ok(0), _) | (Err(io::ErrorKind::ConnectionReset), _)),
            "{extra:?}"
        );
        drop(idle);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let resp = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
        server.abort();
    }

    #[tokio::test]
    async fn bind_error_names_the_address() {
        let metrics = Arc::new(Metrics::new());
        let first = serve("127.0.0.1:0".parse().unwrap(), Arc::clone(&metrics))
            .await
            .unwrap();
        let taken = first.local_addr();
        let err = format!(
            "{:#}",
            anyhow::Error::from(serve(taken, metrics).await.unwrap_err())
        );
        assert!(err.contains(&taken.to_string()), "{err}");
        assert!(err.contains("in use"), "{err}");
        first.abort();
    }
}
