//! The connection a TCP sink sends on, plain or TLS, and what it tells of
//! delivery: the bytes put on the wire (ciphertext, over TLS) and those of
//! them the collector's TCP has not acknowledged yet (TIOCOUTQ), from which
//! [`super::tcp`] knows which lines arrived.

use std::{
    io,
    os::fd::AsRawFd as _,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::tls;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP stream that counts the bytes written to it.
pub struct Counted {
    inner: TcpStream,
    written: u64,
}

impl Counted {
    /// Bytes written to the socket so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Bytes written that the peer has not acknowledged.
    pub fn unacknowledged(&self) -> Option<u64> {
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one int; the fd is the stream's, alive here.
        let r = unsafe { libc::ioctl(self.inner.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
        (r == 0).then_some(n.max(0) as u64)
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.written += n as u64;
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection to a collector: plain TCP or TLS over it.
pub trait Wire: AsyncRead + AsyncWrite + Unpin + Send {
    fn socket(&self) -> &Counted;

    /// Where on the wire the line ending at plaintext offset `end` of a
    /// batch is wholly sent, the batch having started at wire offset
    /// `before` and, written and flushed, ended at `after`. Over TLS the
    /// records' overhead hides where a line's ciphertext ends, so a line
    /// counts as arrived only with its whole batch.
    fn wire_end(before: u64, end: u64, after: u64) -> u64;
}

impl Wire for Counted {
    fn socket(&self) -> &Counted {
        self
    }

    fn wire_end(before: u64, end: u64, _after: u64) -> u64 {
        before + end
    }
}

impl Wire for TlsStream<Counted> {
    fn socket(&self) -> &Counted {
        self.get_ref().0
    }

    fn wire_end(_before: u64, _end: u64, after: u64) -> u64 {
        after
    }
}

/// Whether the collector closed or reset the connection. Collectors send
/// nothing (syslog and IPFIX go one way), so what they do send is read
/// and ignored; the end of the stream or an error is the end.
pub fn closed<W: Wire>(w: &mut W) -> bool {
    let mut b = [0u8; 1024];
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        let mut rb = ReadBuf::new(&mut b);
        match Pin::new(&mut *w).poll_read(&mut cx, &mut rb) {
            Poll::Pending => return false,
            Poll::Ready(Ok(())) if rb.filled().is_empty() => return true,
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return true,
        }
    }
}

/// Why a connection could not be made, as the log and metrics say it.
pub enum ConnectError {
    /// TCP: refused, unreachable, timed out, no such host.
    Tcp(io::Error),
    /// The TLS handshake: the collector's certificate, the protocol.
    Tls(io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Tcp(e) => write!(f, "cannot connect ({e})"),
            ConnectError::Tls(e) => write!(f, "TLS handshake failed ({e})"),
        }
    }
}

pub async fn tcp(host: &str, port: u16) -> Result<Counted, ConnectError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(inner)) => Ok(Counted { inner, written: 0 }),
        Ok(Err(e)) => Err(ConnectError::Tcp(e)),
        Err(_) => Err(ConnectError::Tcp(io::ErrorKind::TimedOut.into())),
    }
}

pub async fn tls(
    host: &str,
    port: u16,
    config: &Arc<rustls::ClientConfig>,
) -> Result<TlsStream<Counted>, ConnectError> {
    let name = tls::server_name(host)
        .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let socket = tcp(host, port).await?;
    let handshake = TlsConnector::from(config.clone()).connect(name, socket);
    match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ConnectError::Tls(e)),
        Err(_) => Err(ConnectError::Tls(io::ErrorKind::TimedOut.into())),
    }
}
