//! Startup in one place: database + migrations, the authenticator, routes, listener.

use std::sync::Arc;

use anyhow::Context;
use migrations::{MigratorTrait, RoomsMigrator};
use poem::middleware::{NormalizePath, TrailingSlash};
use poem::{Endpoint, EndpointExt, Route};
use sea_orm::DatabaseConnection;
use server_kit::in_flight::{self, InFlight};
use server_kit::{db, http};
use shared::{Clock, SystemClock};

use crate::api;
use crate::auth::verifier::Authenticator;
use crate::config::Config;
use crate::rooms::cache::RoomCache;
use crate::rooms::changes;
use crate::state::AppState;
use std::time::Duration;

pub struct Application {
    listeners: server_kit::server::Listeners,
    state: Arc<AppState>,
}

/// The advisory lock this service's migrations run under on PostgreSQL ("roommigr" in ASCII;
/// the other service's differs, so one sharing the database does not wait for it).
const MIGRATION_LOCK: i64 = 0x726f_6f6d_6d69_6772;

/// `warm`: connections opened now and kept (see `server_kit::db::connect`).
/// Replicas starting together take turns (`migrate_exclusively`).
pub async fn open_database(url: &str, warm: u32) -> anyhow::Result<DatabaseConnection> {
    let db = db::connect(url, warm)
        .await
        .context("cannot open ROOMS_DATABASE_URL")?;
    db::migrate_exclusively(&db, url, MIGRATION_LOCK, || RoomsMigrator::up(&db, None))
        .await
        .context("database migration failed")?;
    Ok(db)
}

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = api::service(&state.config.rooms.public_url);
    let spec = server_kit::docs::spec(api.spec());
    let public_url = state.config.rooms.public_url.clone();
    let docs = server_kit::docs::swagger_ui(move || api::service(&public_url).swagger_ui_html());
    let external_api_enabled = state.config.external_api_enabled;
    let metrics = Arc::clone(&state.metrics.http);
    // Bodies are read before the queue (`capture_body`) and judged by the JSON extractor after
    // authentication (its 413 comes after 401/403, docs/spec/rooms-api.md §2).
    let in_flight = InFlight::new(state.config.timeouts.max_in_flight);
    let body_read = state.config.timeouts.body_read;
    Route::new()
        .at("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", api)
        .data(state)
        .around(move |ep, req| http::external_api_gate(external_api_enabled, ep, req))
        .around(move |ep, req| in_flight::queue(in_flight.clone(), ep, req))
        // Boxed: it cuts the nested future type in two (without it the layout of the outer
        // middleware futures exceeds the compiler's query depth limit in release builds).
        .boxed()
        .around(|ep, req| http::capture_body(crate::api::extract::BODY_LIMIT, ep, req))
        .with(NormalizePath::new(TrailingSlash::Trim))
        .around(server_kit::http::keep_arrived_path)
        .around(http::refuse_repeated_query)
        .around(move |ep, req| server_kit::timeouts::body_read_deadline(body_read, ep, req))
        .around(move |ep, req| http::request_context(Arc::clone(&metrics), ep, req))
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let db = open_database(&config.database_url, config.database_min_connections).await?;
        let metrics = Arc::new(crate::metrics::RoomsMetrics::new()?);
        let writes = server_kit::db::WriteGate::for_connection(&db);
        let auth = Authenticator::new(
            &config,
            Arc::clone(&clock),
            Arc::clone(&metrics),
            db.clone(),
            writes.clone(),
        )?;
        let watch = changes::watch(&db, &config.database_url);
        if !watch.ready(Duration::from_secs(5)).await {
            tracing::warn!("room cache: changes are not seen yet; the cache is off until they are");
        }
        let cache = RoomCache::new(
            watch.changes.clone(),
            crate::rooms::cache::MAX_BYTES,
            metrics.room_cache.clone(),
        );
        let directory = crate::directory::AuthServerDirectory::new(config.users.clone())?;
        let (listen, metrics_listen) = (config.listen, config.metrics_listen);
        let state = Arc::new(AppState {
            directory,
            writes,
            cache,
            watch,
            db,
            config,
            clock,
            auth,
            metrics,
        });
        let listeners = server_kit::server::Listeners::bind(
            listen,
            metrics_listen,
            ("ROOMS_LISTEN", "ROOMS_METRICS_LISTEN"),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        Ok(Self { listeners, state })
    }

    pub fn port(&self) -> u16 {
        self.listeners.api_port()
    }

    pub fn metrics_port(&self) -> u16 {
        self.listeners.metrics_port()
    }

    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(server_kit::server::shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        if let Some(jwks) = self.state.auth.jwks() {
            Arc::clone(jwks).spawn_refresh(self.state.config.jwks_refresh);
        }
        if let Some(feed) = self.state.auth.revocations() {
            Arc::clone(feed).spawn();
        }
        crate::auth::proof_jtis::spawn_sweep(self.state.db.clone(), Arc::clone(&self.state.clock));
        tracing::info!(
            port = self.listeners.api_port(),
            mode = self.state.config.verification.as_str(),
            "rooms-api listening"
        );
        let metrics = Arc::clone(&self.state.metrics.http);
        let timeouts = self.state.config.timeouts.clone();
        self.listeners
            .serve(routes(self.state), metrics, timeouts, stop)
            .await?;
        Ok(())
    }
}
