//! Connection timeouts (docs/spec/security.md "Bounded resources"): a client that never finishes its
//! headers, trickles its body, or holds an idle keep-alive connection can't pin a connection.
//!
//! - **Header read** (`HTTP_HEADER_READ_TIMEOUT_SECONDS`): from a request's first byte until
//!   the server has its headers. Enforced on the socket (`TimedIo`): hyper's own header timer
//!   would also run while a keep-alive connection waits for its next request, making it an idle
//!   timeout of 10 s. `request_context` tells the connection when the headers have arrived.
//! - **Body read** (`HTTP_BODY_READ_TIMEOUT_SECONDS`): reading a body, in the extractors that
//!   read one (408).
//! - **Idle** (`HTTP_IDLE_TIMEOUT_SECONDS`): no byte either way for that long closes the
//!   connection (`connections.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Args;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Args)]
pub struct TimeoutSettings {
    /// Seconds from a request's first byte until its headers are in.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_header_read_timeout_seconds: u64,
    /// Seconds to read a request body.
    #[arg(long, env = "HTTP_BODY_READ_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_body_read_timeout_seconds: u64,
    /// Connections each listener holds at once; past it a new one is closed at once.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub http_max_connections: u64,
    /// Seconds a connection may stay without traffic.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub http_idle_timeout_seconds: u64,
    /// Requests handled at once per service; more wait, in order, before any work is done.
    #[arg(long, env = "HTTP_MAX_IN_FLIGHT", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub http_max_in_flight: u64,
}

/// The three timeouts, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub header_read: Duration,
    pub body_read: Duration,
    pub idle: Duration,
    /// Open connections per listener.
    pub max_connections: usize,
    /// Requests past `request_context` at once (`HTTP_MAX_IN_FLIGHT`).
    pub max_in_flight: usize,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_connections: 1024,
            max_in_flight: 32,
        }
    }
}

impl From<&TimeoutSettings> for Timeouts {
    fn from(s: &TimeoutSettings) -> Self {
        Self {
            header_read: Duration::from_secs(s.http_header_read_timeout_seconds),
            body_read: Duration::from_secs(s.http_body_read_timeout_seconds),
            idle: Duration::from_secs(s.http_idle_timeout_seconds),
            max_connections: usize::try_from(s.http_max_connections).unwrap_or(usize::MAX),
            max_in_flight: usize::try_from(s.http_max_in_flight).unwrap_or(usize::MAX),
        }
    }
}

type Key = (SocketAddr, SocketAddr);

/// Open connections by (local, remote) address: the 4-tuple is unique while a connection lives,
/// whichever listener of the process accepted it.
fn open() -> &'static Mutex<HashMap<Key, Arc<AtomicBool>>> {
    static OPEN: OnceLock<Mutex<HashMap<Key, Arc<AtomicBool>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// Called once a request's headers are in: its connection stops the header clock.
pub fn headers_received(local: &LocalAddr, remote: &RemoteAddr) {
    let (Some(l), Some(r)) = (local.as_socket_addr(), remote.as_socket_addr()) else {
        return;
    };
    let map = open().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(flag) = map.get(&(*l, *r)) {
        flag.store(true, Ordering::Release);
    }
}

/// Wraps an acceptor so every connection has a header-read deadline, and at most
/// `max_connections` are open at once: each costs memory (buffers, a task), so a flood of
/// connections would otherwise grow the process for as long as it lasts. Past the cap a new
/// connection is closed at once.
pub struct TimedAcceptor<A> {
    inner: A,
    header_read: Duration,
    max_connections: usize,
    open_count: Arc<std::sync::atomic::AtomicUsize>,
}

impl<A> TimedAcceptor<A> {
    pub fn new(inner: A, timeouts: &Timeouts) -> Self {
        Self {
            inner,
            header_read: timeouts.header_read,
            max_connections: timeouts.max_connections,
            open_count: Arc::default(),
        }
    }
}

impl<A: Acceptor> Acceptor for TimedAcceptor<A> {
    type Io = TimedIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = loop {
            let accepted = self.inner.accept().await?;
            if self.open_count.load(Ordering::Acquire) < self.max_connections {
                break accepted;
            }
            // Dropped: closed before a byte is read.
            tracing::debug!("connection limit reached: closing a new connection");
        };
        self.open_count.fetch_add(1, Ordering::AcqRel);
        let key = match (local.as_socket_addr(), remote.as_socket_addr()) {
            (Some(l), Some(r)) => Some((*l, *r)),
            _ => None,
        };
        let received = Arc::new(AtomicBool::new(false));
        if let Some(key) = key {
            open()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, Arc::clone(&received));
        }
        let io = TimedIo {
            inner: io,
            open_count: Arc::clone(&self.open_count),
            key,
            received,
            limit: self.header_read,
            started: None,
            deadline: None,
        };
        Ok((io, local, remote, scheme))
    }
}

/// A connection whose request headers must arrive within `limit` of their first byte.
pub struct TimedIo<T> {
    inner: T,
    /// The acceptor's count of open connections.
    open_count: Arc<std::sync::atomic::AtomicUsize>,
    key: Option<Key>,
    /// Set by `headers_received`.
    received: Arc<AtomicBool>,
    limit: Duration,
    /// When the current request's first byte arrived.
    started: Option<Instant>,
    /// The timer for `started + limit`, armed when a read has to wait.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> Drop for TimedIo<T> {
    fn drop(&mut self) {
        self.open_count.fetch_sub(1, Ordering::AcqRel);
        if let Some(key) = self.key {
            open()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.received.swap(false, Ordering::AcqRel) {
            this.started = None;
            this.deadline = None;
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before && this.started.is_none() => {
                // The first byte of a request (or of a body, until the response clears it).
                // Only an instant: the timer is armed only if the read then has to wait.
                this.started = Some(Instant::now());
            }
            Poll::Pending => {
                if let Some(started) = this.started {
                    let deadline = this.deadline.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep_until(started + this.limit))
                    });
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request headers not received in time",
                        )));
                    }
                }
            }
            _ => {}
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A response is being written: whatever was read belonged to a finished request.
        self.started = None;
        self.deadline = None;
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.started = None;
        self.deadline = None;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Gives a request body `timeout` to arrive in full; past it, reading fails with `TimedOut`
/// (`body_limit` answers 408). Requests that declare no body are left alone.
pub async fn body_read_deadline<E: poem::Endpoint>(
    timeout: Duration,
    next: E,
    mut req: poem::Request,
) -> poem::Result<poem::Response> {
    if declares_body(&req) {
        let body = req.take_body();
        req.set_body(poem::Body::from_async_read(DeadlineReader {
            inner: body.into_async_read(),
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }));
    }
    Ok(poem::IntoResponse::into_response(
        next.get_response(req).await,
    ))
}

/// The request says a body follows (a non-zero `Content-Length`, or chunked).
pub fn declares_body(req: &poem::Request) -> bool {
    use poem::http::header;
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

struct DeadlineReader<R> {
    inner: R,
    deadline: Pin<Box<Sleep>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for DeadlineReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_pending() && this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request body not received in time",
            )));
        }
        polled
    }
}
