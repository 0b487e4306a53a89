//! The connection settings (docs/spec/security.md "Bounded resources") and the body-read
//! deadline: a client that never finishes its headers, trickles its body, or holds an idle
//! keep-alive connection can't pin a connection.
//!
//! - **Header read** (`HTTP_HEADER_READ_TIMEOUT_SECONDS`) and **idle**
//!   (`HTTP_IDLE_TIMEOUT_SECONDS`): kept by each connection (`server/connection.rs`).
//! - **Connections** (`HTTP_MAX_CONNECTIONS`, `HTTP_MAX_CONNECTIONS_PER_SOURCE`): the accept
//!   loop's admission (`server/admission.rs`).
//! - **Body read** (`HTTP_BODY_READ_TIMEOUT_SECONDS`): reading a body, in the extractors that
//!   read one (408), here.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Sleep;

use crate::source::TrustedProxies;

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
