//! A service's listeners: bound up front (a port taken is a startup error naming its setting,
//! port 0 can be read back), served until the stop signal, then drained.

use poem::Endpoint;

/// Binds the listener (port 0 picks a free port) and reads the port back.
pub async fn bind(
    addr: std::net::SocketAddr,
) -> std::io::Result<(poem::listener::TcpAcceptor, u16)> {
    use poem::listener::{Acceptor, Listener};
    let acceptor = poem::listener::TcpListener::bind(addr)
        .into_acceptor()
        .await?;
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|s| s.port()))
        .ok_or_else(|| std::io::Error::other("listener has no address"))?;
    Ok((acceptor, port))
}

/// The two listeners of a service: the API and the metrics endpoint, bound up front so that a
/// port taken is a startup error naming its setting, and port 0 can be read back.
pub struct Listeners {
    api: poem::listener::TcpAcceptor,
    api_port: u16,
    metrics: poem::listener::TcpAcceptor,
    metrics_port: u16,
    /// A third, private API (the auth-server's admin API), when configured.
    private: Option<(poem::listener::TcpAcceptor, u16)>,
}

impl Listeners {
    /// `settings` names the two settings for error messages (`AUTH_LISTEN`, `AUTH_METRICS_LISTEN`).
    pub async fn bind(
        api: std::net::SocketAddr,
        metrics: std::net::SocketAddr,
        settings: (&str, &str),
    ) -> Result<Self, String> {
        let (metrics_acceptor, metrics_port) = bind(metrics)
            .await
            .map_err(|e| format!("{}: cannot listen on {metrics}: {e}", settings.1))?;
        let (api_acceptor, api_port) = bind(api)
            .await
            .map_err(|e| format!("{}: cannot listen on {api}: {e}", settings.0))?;
        Ok(Self {
            api: api_acceptor,
            api_port,
            metrics: metrics_acceptor,
            metrics_port,
            private: None,
        })
    }

    /// Also binds the private API's listener, if `addr` is set (`setting` names it in errors).
    pub async fn with_private(
        mut self,
        addr: Option<std::net::SocketAddr>,
        setting: &str,
    ) -> Result<Self, String> {
        if let Some(addr) = addr {
            self.private = Some(
                bind(addr)
                    .await
                    .map_err(|e| format!("{setting}: cannot listen on {addr}: {e}"))?,
            );
        }
        Ok(self)
    }

    pub fn private_port(&self) -> Option<u16> {
        self.private.as_ref().map(|(_, port)| *port)
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Serves `api` and the metrics of `metrics` until `stop`, then drains.
    pub async fn serve(
        self,
        api: impl Endpoint + 'static,
        metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
        timeouts: crate::timeouts::Timeouts,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with_private(
            api,
            None::<poem::endpoint::BoxEndpoint<'static>>,
            metrics,
            timeouts,
            stop,
        )
        .await
    }

    /// `serve`, plus `private` on the private listener (if both are there).
    pub async fn serve_with_private(
        self,
        api: impl Endpoint + 'static,
        private: Option<impl Endpoint + 'static>,
        metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
        timeouts: crate::timeouts::Timeouts,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let private = match (self.private, private) {
            (Some((acceptor, _)), Some(ep)) => Some((acceptor, ep)),
            _ => None,
        };
        serve(
            self.api,
            api,
            private,
            self.metrics,
            metrics,
            timeouts,
            stop,
        )
        .await
    }
}

/// Serves the API, the private API (if any) and the metrics listener until `stop` resolves,
/// then lets in-flight API requests finish (up to 30 s).
pub async fn serve(
    api_acceptor: poem::listener::TcpAcceptor,
    api: impl Endpoint + 'static,
    private: Option<(poem::listener::TcpAcceptor, impl Endpoint + 'static)>,
    metrics_acceptor: poem::listener::TcpAcceptor,
    metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
    timeouts: crate::timeouts::Timeouts,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use poem::EndpointExt as _;
    use std::time::Duration;
    let (stopped, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stopped.send(true);
    });
    let server = |acceptor, ep: poem::endpoint::BoxEndpoint<'static>, grace| {
        super::serve(
            acceptor,
            ep,
            super::Admission::new(&timeouts),
            super::ConnLimits {
                header_read: timeouts.header_read,
                idle: timeouts.idle,
            },
            stopping.clone(),
            grace,
        )
    };
    let metrics = server(
        metrics_acceptor,
        crate::metrics::endpoint(metrics).map_to_response().boxed(),
        Duration::from_secs(5),
    );
    let private = async {
        match private {
            Some((acceptor, ep)) => {
                server(
                    acceptor,
                    ep.map_to_response().boxed(),
                    Duration::from_secs(30),
                )
                .await
            }
            None => Ok(()),
        }
    };
    let api = server(
        api_acceptor,
        api.map_to_response().boxed(),
        Duration::from_secs(30),
    );
    let (api, private, metrics) = tokio::join!(api, private, metrics);
    api.and(private).and(metrics)
}

/// Resolves on SIGTERM or Ctrl-C; the server then drains in-flight requests.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
