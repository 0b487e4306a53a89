//! Connection timeouts (docs/spec/security.md "Bounded resources"): a client that never finishes its
//! headers, trickles its body, or holds an idle keep-alive connection can't pin a connection.
//!
//! - **Header read** (`HTTP_HEADER_READ_TIMEOUT_SECONDS`): from a request's first byte (from
//!   the accept, for a connection's first request) until the server has its headers. Enforced on the socket (`TimedIo`): hyper's own header timer
//!   would also run while a keep-alive connection waits for its next request, making it an idle
//!   timeout of 10 s. `request_context` tells the connection when the headers have arrived.
//! - **Body read** (`HTTP_BODY_READ_TIMEOUT_SECONDS`): reading a body, in the extractors that
//!   read one (408).
//! - **Idle** (`HTTP_IDLE_TIMEOUT_SECONDS`): no byte either way for that long closes the
//!   connection (`connections.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use clap::Args;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::source::{TrustedProxies, source_key};

#[derive(Debug, Clone, Args)]
pub struct TimeoutSettings {
    /// Seconds to receive a request's headers: from the connection's accept for its first
    /// request, from the first byte for the later ones of a keep-alive connection.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_header_read_timeout_seconds: u64,
    /// Seconds to read a request body.
    #[arg(long, env = "HTTP_BODY_READ_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_body_read_timeout_seconds: u64,
    /// Connections each listener holds at once. At the cap an idle connection (of the source
    /// holding the most) is closed to make room; only when none is idle is a new one refused.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub http_max_connections: u64,
    /// Connections one source address (IPv6: its /64) may hold on a listener; `TRUSTED_PROXIES`
    /// are exempt. 0: a quarter of `HTTP_MAX_CONNECTIONS`.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS_PER_SOURCE", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub http_max_connections_per_source: u64,
    /// Seconds a connection may stay without traffic.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub http_idle_timeout_seconds: u64,
    /// Requests handled at once per service; more wait, in order, before any work is done.
    #[arg(long, env = "HTTP_MAX_IN_FLIGHT", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub http_max_in_flight: u64,
}

/// The connection limits, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub header_read: Duration,
    pub body_read: Duration,
    pub idle: Duration,
    /// Open connections per listener.
    pub max_connections: usize,
    /// Open connections per listener and source (`source::source_key`).
    pub max_connections_per_source: usize,
    /// Peers exempt from the per-source share: they carry many clients' connections.
    pub trusted_proxies: TrustedProxies,
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
            max_connections_per_source: 256,
            trusted_proxies: TrustedProxies::default(),
            max_in_flight: 32,
        }
    }
}

impl Timeouts {
    pub fn new(s: &TimeoutSettings, trusted_proxies: TrustedProxies) -> Self {
        let max_connections = usize::try_from(s.http_max_connections).unwrap_or(usize::MAX);
        let per_source = match s.http_max_connections_per_source {
            0 => (max_connections / 4).max(1),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        Self {
            header_read: Duration::from_secs(s.http_header_read_timeout_seconds),
            body_read: Duration::from_secs(s.http_body_read_timeout_seconds),
            idle: Duration::from_secs(s.http_idle_timeout_seconds),
            max_connections,
            max_connections_per_source: per_source,
            trusted_proxies,
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

/// What the acceptor knows of one open connection.
#[derive(Default)]
struct ConnState {
    /// Bytes were read since the last response byte was written: a request is on its way or
    /// being served. Only a connection that is not busy may be closed to make room.
    busy: AtomicBool,
    /// Told to close: its next read (while not busy) is an end of file, which hyper answers by
    /// closing the connection; a request under way finishes first.
    evicted: AtomicBool,
    /// The read waiting on the socket, woken to see `evicted`.
    waker: Mutex<Option<Waker>>,
}

impl ConnState {
    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The open connections of one listener, by source: what the cap and the shares count.
#[derive(Default)]
struct Registry {
    next_id: u64,
    conns: HashMap<u64, (IpAddr, Arc<ConnState>)>,
    per_source: HashMap<IpAddr, usize>,
    /// Connections told to close that are still open.
    evicting: usize,
}

/// The answer to a new connection.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Admit,
    /// Admit it, and close this idle connection to make room.
    AdmitEvicting(u64),
    Refuse,
}

impl Registry {
    /// Whether a connection from `source` may open: under its share (trusted proxies have
    /// none) and under the cap, or else in place of an idle connection — the source's own
    /// when it is at its share, the most connected source's at the cap. The longest-open idle
    /// connection goes first (ids grow with age).
    fn admission(&self, source: IpAddr, share: Option<usize>, cap: usize) -> Admission {
        let held = self.per_source.get(&source).copied().unwrap_or(0);
        let live = self.conns.len() - self.evicting;
        let idle = |s: &Arc<ConnState>| {
            !s.busy.load(Ordering::Acquire) && !s.evicted.load(Ordering::Acquire)
        };
        if share.is_some_and(|share| held >= share) {
            return self
                .conns
                .iter()
                .filter(|(_, (src, s))| *src == source && idle(s))
                .map(|(id, _)| *id)
                .min()
                .map_or(Admission::Refuse, Admission::AdmitEvicting);
        }
        // Twice the cap at most, whatever is closing.
        if self.conns.len() >= cap.saturating_mul(2) {
            return Admission::Refuse;
        }
        if live < cap {
            return Admission::Admit;
        }
        self.conns
            .iter()
            .filter(|(_, (_, s))| idle(s))
            .map(|(id, (src, _))| {
                let n = self.per_source.get(src).copied().unwrap_or(0);
                (std::cmp::Reverse(n), *id)
            })
            .min()
            .map_or(Admission::Refuse, |(_, id)| Admission::AdmitEvicting(id))
    }

    fn add(&mut self, source: IpAddr, state: Arc<ConnState>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(id, (source, state));
        *self.per_source.entry(source).or_default() += 1;
        id
    }

    fn evict(&mut self, id: u64) {
        if let Some((_, s)) = self.conns.get(&id)
            && !s.evicted.load(Ordering::Acquire)
        {
            self.evicting += 1;
            s.evict();
        }
    }

    fn remove(&mut self, id: u64) {
        let Some((source, s)) = self.conns.remove(&id) else {
            return;
        };
        if s.evicted.load(Ordering::Acquire) {
            self.evicting = self.evicting.saturating_sub(1);
        }
        if let Some(n) = self.per_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&source);
            }
        }
    }
}

fn lock(r: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wraps an acceptor so every connection has a header-read deadline, and at most
/// `max_connections` are open at once, each source holding at most its share: each costs memory
/// (buffers, a task), so a flood would otherwise grow the process for as long as it lasts, and
/// one host holding every place would lock everyone else out. At the cap an idle connection is
/// closed to make room (the most connected source's first); only when none is idle is the new
/// connection closed at once.
pub struct TimedAcceptor<A> {
    inner: A,
    header_read: Duration,
    max_connections: usize,
    per_source: usize,
    trusted: TrustedProxies,
    registry: Arc<Mutex<Registry>>,
}

impl<A> TimedAcceptor<A> {
    pub fn new(inner: A, timeouts: &Timeouts) -> Self {
        Self {
            inner,
            header_read: timeouts.header_read,
            max_connections: timeouts.max_connections,
            per_source: timeouts.max_connections_per_source,
            trusted: timeouts.trusted_proxies.clone(),
            registry: Arc::default(),
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
        let (io, local, remote, scheme, id, state) = loop {
            let (io, local, remote, scheme) = self.inner.accept().await?;
            let peer = remote.as_socket_addr().map(SocketAddr::ip);
            let source = peer.map_or(IpAddr::from([0, 0, 0, 0]), source_key);
            let share = match peer {
                Some(ip) if self.trusted.trusts(ip) => None,
                _ => Some(self.per_source),
            };
            let mut registry = lock(&self.registry);
            match registry.admission(source, share, self.max_connections) {
                Admission::Refuse => {
                    // Dropped: closed before a byte is read.
                    tracing::debug!(%source, "connection limit reached: closing a new connection");
                    continue;
                }
                Admission::AdmitEvicting(victim) => {
                    tracing::debug!(%source, "connection limit reached: closing an idle connection");
                    registry.evict(victim);
                }
                Admission::Admit => {}
            }
            let state = Arc::new(ConnState::default());
            let id = registry.add(source, Arc::clone(&state));
            break (io, local, remote, scheme, id, state);
        };
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
            registry: Arc::clone(&self.registry),
            id,
            state,
            key,
            received,
            limit: self.header_read,
            // The first request's headers are due `limit` after the accept: a connection that
            // never sends a byte is not kept for the idle time.
            started: Some(Instant::now()),
            deadline: None,
        };
        Ok((io, local, remote, scheme))
    }
}

/// A connection whose request headers must arrive within `limit` of their first byte (of the
/// accept, for the first request).
pub struct TimedIo<T> {
    inner: T,
    /// The acceptor's open connections; this one is `id` there.
    registry: Arc<Mutex<Registry>>,
    id: u64,
    state: Arc<ConnState>,
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
        lock(&self.registry).remove(self.id);
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
        if this.state.evicted.load(Ordering::Acquire) && !this.state.busy.load(Ordering::Acquire) {
            // Closed to make room: an end of file between requests.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.state.busy.store(true, Ordering::Release);
                if this.started.is_none() {
                    // The first byte of a request (or of a body, until the response clears it).
                    // Only an instant: the timer is armed only if the read then has to wait.
                    this.started = Some(Instant::now());
                }
            }
            Poll::Pending => {
                *this.state.waker.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(cx.waker().clone());
                if this.state.evicted.load(Ordering::Acquire)
                    && !this.state.busy.load(Ordering::Acquire)
                {
                    return Poll::Ready(Ok(()));
                }
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
        self.written();
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
        self.written();
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<T> TimedIo<T> {
    fn written(&mut self) {
        self.started = None;
        self.deadline = None;
        self.state.busy.store(false, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn open(r: &mut Registry, source: IpAddr, busy: bool) -> u64 {
        let s = Arc::new(ConnState::default());
        s.busy.store(busy, Ordering::Release);
        r.add(source, s)
    }

    #[test]
    fn a_source_at_its_share_replaces_its_own_idle_connection_or_is_refused() {
        let mut r = Registry::default();
        let first = open(&mut r, ip(1), false);
        open(&mut r, ip(1), true);
        assert_eq!(
            r.admission(ip(1), Some(2), 100),
            Admission::AdmitEvicting(first)
        );
        r.evict(first);
        // Its idle one is closing: nothing else of its own is idle.
        assert_eq!(r.admission(ip(1), Some(2), 100), Admission::Refuse);
        // Others are not held to its share; a trusted proxy has none.
        assert_eq!(r.admission(ip(2), Some(2), 100), Admission::Admit);
        assert_eq!(r.admission(ip(1), None, 100), Admission::Admit);
    }

    #[test]
    fn at_the_cap_the_busiest_sources_oldest_idle_connection_makes_room() {
        let mut r = Registry::default();
        let a = open(&mut r, ip(1), false);
        let b1 = open(&mut r, ip(2), true);
        let b2 = open(&mut r, ip(2), false);
        let b3 = open(&mut r, ip(2), false);
        assert_eq!(
            r.admission(ip(3), Some(10), 4),
            Admission::AdmitEvicting(b2)
        );
        r.evict(b2);
        // The one closing no longer counts against the cap.
        assert_eq!(r.admission(ip(3), Some(10), 4), Admission::Admit);
        open(&mut r, ip(3), true);
        assert_eq!(
            r.admission(ip(3), Some(10), 4),
            Admission::AdmitEvicting(b3)
        );
        r.evict(b3);
        open(&mut r, ip(3), true);
        // ip(2) has 3 (two closing), ip(3) 2 busy: only ip(1)'s idle one is left.
        assert_eq!(r.admission(ip(4), Some(10), 4), Admission::AdmitEvicting(a));
        r.remove(b2);
        r.remove(b3);
        r.remove(a);
        let _ = b1;
        // Every connection busy: refused.
        open(&mut r, ip(4), true);
        assert_eq!(r.admission(ip(5), Some(10), 4), Admission::Refuse);
        assert_eq!(r.evicting, 0);
    }

    #[test]
    fn closing_connections_never_let_the_total_pass_twice_the_cap() {
        let mut r = Registry::default();
        for _ in 0..4 {
            let id = open(&mut r, ip(1), false);
            r.evict(id);
        }
        open(&mut r, ip(2), false);
        assert_eq!(r.admission(ip(3), Some(10), 2), Admission::Refuse);
    }
}
