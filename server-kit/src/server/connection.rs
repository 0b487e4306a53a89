//! One connection's life, from accept to close, in one place (docs/spec/security.md "Bounded
//! resources"):
//!
//! - **Header deadline** (`HTTP_HEADER_READ_TIMEOUT_SECONDS`): a request's headers must arrive
//!   within the limit of its first byte — of the accept, for a connection's first request, so a
//!   connection that never sends a byte is not kept for the idle time. Enforced on the socket:
//!   hyper's own header timer would also run while a keep-alive connection waits for its next
//!   request. The connection learns that the headers are in from its own service function,
//!   which hyper calls once it has parsed them.
//! - **Idle** (`HTTP_IDLE_TIMEOUT_SECONDS`): no byte either way for that long ends keep-alive;
//!   a request being served still finishes.
//! - **Its place under the cap** (`admission.rs`): the registry entry it holds until dropped,
//!   the `busy` flag that says whether it may be closed to make room, and the end of file it
//!   reads when it was.
//! - **Shutdown**: once the server stops, keep-alive ends the same way.
//!
//! Each connection is served by hyper's HTTP/1.1 server, in one task (`run`).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use poem::endpoint::DynEndpoint;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint as _, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::admission::{ConnState, Registry, lock};

/// A connection's own limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read: Duration,
    pub idle: Duration,
}

/// This connection's place in its listener's registry, given back when the connection ends.
pub(super) struct Place {
    pub(super) registry: Arc<Mutex<Registry>>,
    pub(super) id: u64,
    pub(super) state: Arc<ConnState>,
}

impl Drop for Place {
    fn drop(&mut self) {
        lock(&self.registry).remove(self.id);
    }
}

/// What the connection's task, its service function and its IO share.
struct Shared {
    opened: Instant,
    /// When a byte last moved either way, in milliseconds since `opened`.
    last_ms: AtomicU64,
    /// Set by the service function: the current request's headers are in.
    headers_in: AtomicBool,
}

impl Shared {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has been quiet.
    fn quiet_for(&self) -> Duration {
        let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last)
    }
}

/// Serves one connection until the client closes it, it stays idle for `limits.idle`, its
/// header deadline passes, it is closed to make room, or the server stops.
pub(super) async fn run<I>(
    http: Arc<hyper::server::conn::http1::Builder>,
    io: I,
    (local, remote, scheme): (LocalAddr, RemoteAddr, poem::http::uri::Scheme),
    ep: Arc<dyn DynEndpoint<Output = Response>>,
    limits: ConnLimits,
    place: Option<Place>,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let shared = Arc::new(Shared {
        opened: Instant::now(),
        last_ms: AtomicU64::new(0),
        headers_in: AtomicBool::new(false),
    });
    let io = ConnIo {
        inner: io,
        shared: Arc::clone(&shared),
        state: place.as_ref().map(|p| Arc::clone(&p.state)),
        limit: limits.header_read,
        // The first request's headers are due `limit` after the accept.
        started: Some(Instant::now()),
        deadline: None,
    };
    let seen = Arc::clone(&shared);
    let service = hyper::service::service_fn(move |req| {
        // hyper calls this once the request's headers are parsed: the header clock stops.
        seen.headers_in.store(true, Ordering::Release);
        let ep = Arc::clone(&ep);
        let parts = (local.clone(), remote.clone(), scheme.clone());
        async move {
            let req = poem::Request::from((req, parts.0, parts.1, parts.2));
            let resp: hyper::Response<_> = ep.get_response(req).await.into();
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let quiet = tokio::time::sleep(limits.idle);
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = quiet.as_mut() => {
                let since = shared.quiet_for();
                if since >= limits.idle {
                    tracing::debug!("closing an idle connection");
                    break;
                }
                quiet.as_mut().reset(Instant::now() + (limits.idle - since));
            }
            () = super::stopped(&mut stopping) => break,
        }
    }
    // Ends keep-alive: a request being served finishes, an idle connection closes now.
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    drop(place);
}

/// The socket as hyper sees it: it keeps the header deadline, records traffic for the idle
/// timer, and tells the registry whether a request is under way (`busy`), reading an end of
/// file between requests once the connection was closed to make room.
struct ConnIo<T> {
    inner: T,
    shared: Arc<Shared>,
    /// The connection's entry under the cap (none on a listener without one).
    state: Option<Arc<ConnState>>,
    limit: Duration,
    /// When the current request's first byte arrived (the accept, for the first request).
    started: Option<Instant>,
    /// The timer for `started + limit`, armed when a read has to wait.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> ConnIo<T> {
    fn evicted_between_requests(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.evicted.load(Ordering::Acquire) && !s.busy.load(Ordering::Acquire))
    }

    fn set_busy(&self, busy: bool) {
        if let Some(s) = &self.state {
            s.busy.store(busy, Ordering::Release);
        }
    }

    /// A response is being written: whatever was read belonged to a finished request.
    fn written(&mut self) {
        self.started = None;
        self.deadline = None;
        self.set_busy(false);
        self.shared.touch();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ConnIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.shared.headers_in.swap(false, Ordering::AcqRel) {
            this.started = None;
            this.deadline = None;
        }
        if this.evicted_between_requests() {
            // Closed to make room: an end of file between requests.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.shared.touch();
                this.set_busy(true);
                if this.started.is_none() {
                    // The first byte of a request (or of a body, until the response clears it).
                    // Only an instant: the timer is armed only if the read then has to wait.
                    this.started = Some(Instant::now());
                }
            }
            Poll::Pending => {
                if let Some(s) = &this.state {
                    *s.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
                }
                if this.evicted_between_requests() {
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

impl<T: AsyncWrite + Unpin> AsyncWrite for ConnIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.written();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.written();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    //! A connection's rules over an in-memory socket (`tokio::io::duplex`) with paused time:
    //! tokio jumps to the next timer when every task waits, so a 60 s idle time takes no time,
    //! and `Instant` reads the paused clock, so each close is timed exactly.

    use std::sync::Arc;

    use poem::endpoint::make;
    use poem::web::{LocalAddr, RemoteAddr};
    use poem::{EndpointExt, Request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::watch;
    use tokio::time::Instant;

    use super::*;

    const LIMITS: ConnLimits = ConnLimits {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };
    const REQUEST: &[u8] = b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n";

    /// A connection served by `run`, whose handler answers 200 after `delay`; the client's end
    /// and the server's stop switch.
    fn connect(delay: Duration) -> (DuplexStream, watch::Sender<bool>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (stop, stopping) = watch::channel(false);
        let ep = make(move |_: Request| async move {
            tokio::time::sleep(delay).await;
            "done"
        })
        .map_to_response()
        .boxed();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], 1).into();
        tokio::spawn(run(
            Arc::new(hyper::server::conn::http1::Builder::new()),
            server,
            (
                LocalAddr(poem::Addr::SocketAddr(addr)),
                RemoteAddr(poem::Addr::SocketAddr(addr)),
                poem::http::uri::Scheme::HTTP,
            ),
            Arc::from(ep),
            LIMITS,
            None,
            stopping,
        ));
        (client, stop)
    }

    /// Reads until the server closes the connection (or errs); what it sent.
    async fn until_closed(client: &mut DuplexStream) -> String {
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got).await;
        String::from_utf8_lossy(&got).into_owned()
    }

    /// Reads one response (headers and the 4-byte body "done").
    async fn one_response(client: &mut DuplexStream) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).ends_with("done") {
            let n = client.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before the response: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_at_the_header_deadline_from_the_accept() {
        let started = Instant::now();
        let (mut client, _stop) = connect(Duration::ZERO);
        until_closed(&mut client).await;
        assert_eq!(started.elapsed().as_secs(), LIMITS.header_read.as_secs());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_header_is_cut_at_its_deadline_not_the_idle_time() {
        let (mut client, _stop) = connect(Duration::ZERO);
        client.write_all(REQUEST).await.unwrap();
        assert!(one_response(&mut client).await.starts_with("HTTP/1.1 200"));
        // The next request's first bytes, 30 s later, then nothing more: cut 10 s after them.
        tokio::time::sleep(Duration::from_secs(30)).await;
        client.write_all(b"GET /slow HTTP/1.1\r\n").await.unwrap();
        let first_byte = Instant::now();
        until_closed(&mut client).await;
        assert_eq!(first_byte.elapsed().as_secs(), LIMITS.header_read.as_secs());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_closes_after_the_idle_time() {
        let (mut client, _stop) = connect(Duration::ZERO);
        client.write_all(REQUEST).await.unwrap();
        one_response(&mut client).await;
        let answered = Instant::now();
        let rest = until_closed(&mut client).await;
        assert_eq!(rest, "");
        assert_eq!(answered.elapsed().as_secs(), LIMITS.idle.as_secs());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_served_longer_than_the_idle_time_still_gets_its_answer() {
        let (mut client, _stop) = connect(LIMITS.idle * 2);
        let asked = Instant::now();
        client.write_all(REQUEST).await.unwrap();
        let response = one_response(&mut client).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert_eq!(asked.elapsed(), LIMITS.idle * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_the_request_in_flight_finish_then_closes() {
        let (mut client, stop) = connect(Duration::from_secs(5));
        client.write_all(REQUEST).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(true).unwrap();
        let response = one_response(&mut client).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        // Keep-alive ended: closed at once, not after the idle time.
        let answered = Instant::now();
        until_closed(&mut client).await;
        assert!(answered.elapsed() < Duration::from_secs(1));
    }
}
