//! The accept loop: each connection is served by hyper's HTTP/1.1 server, in one task.
//!
//! poem's own server serves every connection through `hyper_util`'s auto (HTTP/1 + HTTP/2)
//! builder and a second task per connection for its idle timeout. With 1,000 keep-alive
//! connections that was ~9 KiB a connection more than this loop (bench/RESULTS.md "Memory"),
//! and nothing here needs HTTP/2: the services speak HTTP/1.1 behind whatever terminates TLS.
//!
//! Kept from poem's server: the endpoint gets the same `poem::Request` (addresses and scheme
//! included); an idle connection closes after `Timeouts::idle`; on shutdown no new connection
//! is accepted, open ones finish the request they are serving, and after `grace` the rest are
//! dropped. The header-read deadline and the connection cap are `TimedAcceptor`'s.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use poem::endpoint::{BoxEndpoint, DynEndpoint};
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint as _, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

/// A pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves `ep` on the connections `acceptor` gives until `stopping` turns true, then lets open
/// connections finish for up to `grace`.
pub async fn serve<A>(
    mut acceptor: A,
    ep: BoxEndpoint<'static>,
    idle: Duration,
    stopping: watch::Receiver<bool>,
    grace: Duration,
) -> io::Result<()>
where
    A: Acceptor,
    A::Io: 'static,
{
    // Already type-erased by the caller: wrapping it again would box each request's future twice.
    let ep: Arc<dyn DynEndpoint<Output = Response>> = Arc::from(ep);
    let http = Arc::new(hyper::server::conn::http1::Builder::new());
    let tracker = tokio_util::task::TaskTracker::new();
    let mut stop = stopping.clone();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = acceptor.accept() => match accepted {
                Ok((io, local, remote, scheme)) => {
                    tracker.spawn(connection(
                        Arc::clone(&http),
                        io,
                        (local, remote, scheme),
                        Arc::clone(&ep),
                        idle,
                        stopping.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    drop(acceptor);
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            open = tracker.len(),
            "shutdown: connections still open after the grace period are dropped"
        );
    }
    Ok(())
}

/// One connection, until the client closes it, it stays idle for `idle`, or the server stops.
async fn connection<I>(
    http: Arc<hyper::server::conn::http1::Builder>,
    io: I,
    (local, remote, scheme): (LocalAddr, RemoteAddr, poem::http::uri::Scheme),
    ep: Arc<dyn DynEndpoint<Output = Response>>,
    idle: Duration,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = hyper_util::rt::TokioIo::new(Watched {
        inner: io,
        activity: Arc::clone(&activity),
    });
    let service = hyper::service::service_fn(move |req| {
        let ep = Arc::clone(&ep);
        let parts = (local.clone(), remote.clone(), scheme.clone());
        async move {
            let req = poem::Request::from((req, parts.0, parts.1, parts.2));
            let resp: hyper::Response<_> = ep.get_response(req).await.into();
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    let quiet = tokio::time::sleep(idle);
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
                let since = activity.since();
                if since >= idle {
                    tracing::debug!("closing an idle connection");
                    break;
                }
                quiet.as_mut().reset(Instant::now() + (idle - since));
            }
            () = stopped(&mut stopping) => break,
        }
    }
    // Ends keep-alive: a request being served finishes, an idle connection closes now.
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Resolves once the server is stopping. (The guard `wait_for` returns is not `Send`: it must
/// not be part of a select's output.)
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// When a connection last moved a byte either way, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has been quiet.
    fn since(&self) -> Duration {
        let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last)
    }
}

/// An IO that records its traffic in `activity`.
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
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
            self.activity.touch();
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
