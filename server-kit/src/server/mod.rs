//! Serving HTTP/1.1: a service's listeners (`listeners.rs`), the accept loop (here), each
//! connection's life (`connection.rs`: header deadline, idle timer, its place under the cap) and
//! the cap with each source's share (`admission.rs`).
//!
//! poem's own server serves every connection through `hyper_util`'s auto (HTTP/1 + HTTP/2)
//! builder and a second task per connection for its idle timeout. With 1,000 keep-alive
//! connections that was ~9 KiB a connection more than this loop (bench/RESULTS.md "Memory"),
//! and nothing here needs HTTP/2: the services speak HTTP/1.1 behind whatever terminates TLS.
//! Kept from poem's server: the endpoint gets the same `poem::Request` (addresses and scheme
//! included); on shutdown no new connection is accepted, open ones finish the request they are
//! serving, and after `grace` the rest are dropped.

mod admission;
mod connection;
mod listeners;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::Response;
use poem::endpoint::{BoxEndpoint, DynEndpoint};
use poem::listener::Acceptor;
use tokio::sync::watch;

pub use connection::ConnLimits;
pub use listeners::{Listeners, bind, serve as serve_listeners, shutdown_signal};

use crate::source::{TrustedProxies, source_key};
use crate::timeouts::Timeouts;
use admission::{ConnState, Registry, lock};

/// A pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The connection cap of one listener and each source's share of it.
pub struct Admission {
    max_connections: usize,
    per_source: usize,
    trusted: TrustedProxies,
    registry: Arc<Mutex<Registry>>,
}

impl Admission {
    pub fn new(timeouts: &Timeouts) -> Self {
        Self {
            max_connections: timeouts.max_connections,
            per_source: timeouts.max_connections_per_source,
            trusted: timeouts.trusted_proxies.clone(),
            registry: Arc::default(),
        }
    }

    /// A place for a connection from `peer`, making room if it must; `None`: refused.
    fn admit(&self, peer: Option<IpAddr>) -> Option<connection::Place> {
        let source = peer.map_or(IpAddr::from([0, 0, 0, 0]), source_key);
        let share = match peer {
            Some(ip) if self.trusted.trusts(ip) => None,
            _ => Some(self.per_source),
        };
        let mut registry = lock(&self.registry);
        match registry.admission(source, share, self.max_connections) {
            admission::Admission::Refuse => {
                tracing::debug!(%source, "connection limit reached: closing a new connection");
                return None;
            }
            admission::Admission::AdmitEvicting(victim) => {
                tracing::debug!(%source, "connection limit reached: closing an idle connection");
                registry.evict(victim);
            }
            admission::Admission::Admit => {}
        }
        let state = Arc::new(ConnState::default());
        let id = registry.add(source, Arc::clone(&state));
        Some(connection::Place {
            registry: Arc::clone(&self.registry),
            id,
            state,
        })
    }
}

/// Serves `ep` on the connections `acceptor` gives, each admitted under `admission` and run
/// with `limits`, until `stopping` turns true; then lets open connections finish for up to
/// `grace`.
pub async fn serve<A>(
    mut acceptor: A,
    ep: BoxEndpoint<'static>,
    admission: Admission,
    limits: ConnLimits,
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
                    let peer = remote.as_socket_addr().map(SocketAddr::ip);
                    // Refused: dropped, closed before a byte is read.
                    let Some(place) = admission.admit(peer) else { continue };
                    tracker.spawn(connection::run(
                        Arc::clone(&http),
                        io,
                        (local, remote, scheme),
                        Arc::clone(&ep),
                        limits,
                        Some(place),
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

/// Resolves once the server is stopping. (The guard `wait_for` returns is not `Send`: it must
/// not be part of a select's output.)
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    //! The accept loop over in-memory connections (`tokio::io::duplex`) with paused time.

    use std::net::SocketAddr;

    use poem::endpoint::make;
    use poem::web::{LocalAddr, RemoteAddr};
    use poem::{EndpointExt, Request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use super::*;

    /// Gives the loop the server ends of the connections a test opens.
    struct TestAcceptor(mpsc::Receiver<(DuplexStream, SocketAddr)>);

    impl Acceptor for TestAcceptor {
        type Io = DuplexStream;

        fn local_addr(&self) -> Vec<LocalAddr> {
            Vec::new()
        }

        async fn accept(
            &mut self,
        ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
            match self.0.recv().await {
                Some((io, peer)) => Ok((
                    io,
                    LocalAddr(poem::Addr::SocketAddr(([127, 0, 0, 1], 80).into())),
                    RemoteAddr(poem::Addr::SocketAddr(peer)),
                    poem::http::uri::Scheme::HTTP,
                )),
                None => std::future::pending().await,
            }
        }
    }

    async fn open(to: &mpsc::Sender<(DuplexStream, SocketAddr)>, peer: [u8; 4]) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        to.send((server, (peer, 40000).into())).await.unwrap();
        client
    }

    async fn ask(client: &mut DuplexStream) -> String {
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).ends_with("done") {
            let n = client.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_past_its_share_is_refused_others_are_served_and_stop_drains() {
        let timeouts = Timeouts {
            max_connections: 4,
            max_connections_per_source: 1,
            ..Timeouts::default()
        };
        let ep = make(|_: Request| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "done"
        })
        .map_to_response()
        .boxed();
        let (to, from) = mpsc::channel(8);
        let (stop, stopping) = watch::channel(false);
        let server = tokio::spawn(serve(
            TestAcceptor(from),
            ep,
            Admission::new(&timeouts),
            ConnLimits {
                header_read: timeouts.header_read,
                idle: timeouts.idle,
            },
            stopping,
            Duration::from_secs(30),
        ));
        // One of 10.0.0.1's, busy with a 5 s request.
        let mut first = open(&to, [10, 0, 0, 1]).await;
        let in_flight = tokio::spawn(async move { ask(&mut first).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Its share is taken and its one connection is busy: the next is closed unread.
        let mut second = open(&to, [10, 0, 0, 1]).await;
        let mut rest = Vec::new();
        let refused_at = Instant::now();
        let _ = second.read_to_end(&mut rest).await;
        assert!(rest.is_empty() && refused_at.elapsed() < Duration::from_secs(1));
        // Another source still gets its answer.
        let mut other = open(&to, [10, 0, 0, 2]).await;
        assert!(ask(&mut other).await.starts_with("HTTP/1.1 200"));
        // Stop while a request is in flight: it finishes, then the loop returns.
        let mut last = open(&to, [10, 0, 0, 3]).await;
        let late = tokio::spawn(async move { ask(&mut last).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(true).unwrap();
        assert!(late.await.unwrap().starts_with("HTTP/1.1 200"));
        assert!(in_flight.await.unwrap().starts_with("HTTP/1.1 200"));
        server.await.unwrap().unwrap();
    }
}
