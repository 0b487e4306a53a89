//! Startup in one place: database, migrations, keys, routes, listener, background tasks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use migrations::{AuthMigrator, MigratorTrait};
use poem::middleware::{NormalizePath, TrailingSlash};
use poem::{Endpoint, EndpointExt, Route};
use sea_orm::{DatabaseConnection, DbBackend};
use secrecy::SecretSlice;
use server_kit::in_flight::{self, InFlight};
use server_kit::{db, http};
use shared::{Clock, SystemClock};

use crate::api;
use crate::config::{Config, ConfigError, decode_kek};
use crate::domain::client_auth::ClientAuthenticator;
use crate::domain::client_secret::SecretVerifier;
use crate::domain::failure_limits::FailureLimits;
use crate::domain::grant::TokenPolicy;
use crate::domain::introspection::OwnTokens;
use crate::domain::key_encryption::KeyEncryptionKey;
use crate::domain::secret_cache::SecretCache;
use crate::domain::signing::KeyRing;
use crate::state::AppState;
use crate::store::changes;
use crate::store::row_cache::RowCache;
use server_kit::random;
use server_kit::timeouts;

/// Request bodies above this answer 413 (docs/spec/security.md).
pub const BODY_LIMIT: usize = 64 * 1024;

pub struct Application {
    listeners: server_kit::server::Listeners,
    state: Arc<AppState>,
}

/// The advisory lock this service's migrations run under on PostgreSQL ("authmigr" in ASCII;
/// the other service's differs, so one sharing the database does not wait for it).
const MIGRATION_LOCK: i64 = 0x6175_7468_6d69_6772;

/// Opens the database and applies pending migrations.
/// `warm`: connections opened now and kept (see `server_kit::db::connect`).
/// Replicas starting together take turns (`migrate_exclusively`).
pub async fn open_database(url: &str, warm: u32) -> anyhow::Result<DatabaseConnection> {
    let db = db::connect(url, warm)
        .await
        .context("cannot open AUTH_DATABASE_URL")?;
    db::migrate_exclusively(&db, url, MIGRATION_LOCK, || AuthMigrator::up(&db, None))
        .await
        .context("database migration failed")?;
    Ok(db)
}

/// The key-encryption key: configured, or for a SQLite file generated beside it (0600) — but
/// only while the database holds no keys: keys sealed under a lost KEK can't be opened by a new
/// one, and a file written then would make every later start fail until someone deleted it.
pub async fn resolve_kek(
    config: &Config,
    db: &DatabaseConnection,
) -> anyhow::Result<Option<KeyEncryptionKey>> {
    let backend = db.get_database_backend();
    if let Some(k) = &config.key_encryption_key {
        return Ok(Some(KeyEncryptionKey::new(k.clone())));
    }
    if backend != DbBackend::Sqlite {
        if config.signing_alg.is_asymmetric() {
            return Err(ConfigError {
                setting: "AUTH_KEY_ENCRYPTION_KEY",
                message:
                    "required with PostgreSQL (32 random bytes, base64: `openssl rand -base64 32`)"
                        .into(),
            }
            .into());
        }
        return Ok(None);
    }
    let Some(path) = db::sqlite_path(&config.database_url) else {
        tracing::warn!("in-memory database: signing keys are encrypted under a throwaway key");
        let mut bytes = vec![0u8; 32];
        random::fill(&mut bytes)?;
        return Ok(Some(KeyEncryptionKey::new(SecretSlice::from(bytes))));
    };
    let kek_path = PathBuf::from(format!("{path}.kek"));
    if !kek_path.exists() {
        if !crate::store::keys::all(db).await?.is_empty() {
            return Err(ConfigError {
                setting: "AUTH_KEY_ENCRYPTION_KEY",
                message: format!(
                    "unset, and {} is missing while the database holds signing keys sealed under it: \
                     restore that file or set AUTH_KEY_ENCRYPTION_KEY to the key they were sealed with",
                    kek_path.display()
                ),
            }
            .into());
        }
        let mut bytes = [0u8; 32];
        random::fill(&mut bytes)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        write_private_file(&kek_path, encoded.as_bytes())
            .with_context(|| format!("cannot write {}", kek_path.display()))?;
        tracing::warn!(
            path = %kek_path.display(),
            "AUTH_KEY_ENCRYPTION_KEY is unset: generated a key-encryption key beside the database; set it explicitly in production"
        );
    }
    let encoded =
        std::fs::read(&kek_path).with_context(|| format!("cannot read {}", kek_path.display()))?;
    Ok(Some(KeyEncryptionKey::new(decode_kek(&encoded)?)))
}

fn write_private_file(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => f.write_all(contents),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Builds the shared state (used by the server and by CLI commands that need keys).
pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<AppState>> {
    let db = open_database(&config.database_url, config.database_min_connections).await?;
    let kek = resolve_kek(&config, &db).await?;
    // The nonce key comes from a secret every replica already shares: the key-encryption
    // key, or in HS256 mode (which has none) the signing secret.
    let dpop_nonces = match (config.dpop_nonce, &kek, &config.hs256_secret) {
        (false, _, _) => None,
        (true, Some(kek), _) => Some(kek.derive("dpop-nonce")),
        (true, None, Some(secret)) => {
            Some(KeyEncryptionKey::new(secret.clone()).derive("dpop-nonce"))
        }
        (true, None, None) => {
            anyhow::bail!("DPOP_NONCE needs AUTH_KEY_ENCRYPTION_KEY or TOKEN_HS256_SECRET")
        }
    }
    .transpose()
    .context("cannot derive the DPoP nonce key")?
    .map(crate::domain::dpop::Nonces::new);
    let keys = KeyRing::load(
        &db,
        config.signing_alg,
        config.hs256_secret.as_ref(),
        kek,
        clock.now(),
    )
    .await
    .context("cannot load signing keys")?;
    let secrets = SecretVerifier::new(config.argon2_max_concurrent)?;
    // Shared by every replica on PostgreSQL, in memory on SQLite (failure_limits.rs).
    let failure_limits =
        FailureLimits::for_database(&db, config.failure_limit, config.failure_window);
    let admin_limits =
        FailureLimits::for_database(&db, config.failure_limit, config.failure_window);
    let secret_cache = SecretCache::new(100_000, config.secret_cache_idle)?;
    let metrics = crate::metrics::AuthMetrics::new()?;
    // Watches the database for changes to what the row cache holds (store/changes.rs). Until
    // it does the cache is off, which is safe, so a slow LISTEN only delays the cache.
    let watch = changes::watch(&db, &config.database_url);
    if !watch.ready(Duration::from_secs(5)).await {
        tracing::warn!("row cache: changes are not watched yet; the cache is off until they are");
    }
    let rows = RowCache::new(watch, metrics.row_cache.clone());
    let assertions = crate::domain::assertions::AssertionVerifier {
        remote: crate::domain::assertions::RemoteKeys::new(
            config.jwks_uri_allowed_networks.clone(),
        )?,
        inline: crate::domain::assertions::InlineKeys::default(),
        dummy: crate::domain::client_keys::DummyKeys::generate()
            .context("cannot generate the dummy verification keys")?,
        rules: crate::domain::assertions::Rules {
            audience_rule: config.client_assertion_audience,
            audiences: config.client_assertion_audience.audiences(&config.issuer),
            max_age: config.client_assertion_max_age_seconds,
        },
    };
    let keys = Arc::new(keys);
    let policy = TokenPolicy {
        issuer: config.issuer.clone(),
        audience: config.audience.clone(),
        ttl_seconds: config.token_ttl_seconds,
        allow_user_creation: config.allow_user_creation,
    };
    let own_tokens = OwnTokens::new(
        Arc::clone(&keys),
        server_kit::verified_tokens::VerifiedTokens::new(config.verified_token_cache_bytes),
        &config.issuer,
        &config.audience,
    );
    Ok(Arc::new(AppState {
        db,
        config,
        clock,
        keys,
        clients: ClientAuthenticator {
            rows,
            secrets,
            cache: secret_cache,
            upgrades: Default::default(),
            limits: failure_limits,
            metrics: metrics.clone(),
            assertions,
        },
        own_tokens,
        policy,
        admin_limits,
        metrics,
        dpop_nonces,
    }))
}

/// The input checks both listeners run, inside their outer context: paths without a trailing
/// slash, JSON keys and query parameters named once, the body cap and its read deadline.
/// Boxed: it cuts the nested future type in two (without it the layout of the outer middleware
/// futures exceeds the compiler's query depth limit).
fn guarded(
    ep: impl Endpoint<Output = poem::Response> + 'static,
    timeouts: &server_kit::timeouts::Timeouts,
) -> poem::endpoint::BoxEndpoint<'static> {
    let body_read = timeouts.body_read;
    // Innermost of the guards: a request waits for its place with its body read already
    // (`body_limit`), so a slow sender never holds one.
    let in_flight = InFlight::new(timeouts.max_in_flight);
    ep.around(move |ep, req| in_flight::queue(in_flight.clone(), ep, req))
        .with(NormalizePath::new(TrailingSlash::Trim))
        .around(http::keep_arrived_path)
        .around(http::refuse_duplicate_json_keys)
        .around(http::refuse_repeated_query)
        .around(|ep, req| http::body_limit(BODY_LIMIT, ep, req))
        .around(move |ep, req| timeouts::body_read_deadline(body_read, ep, req))
        .boxed()
}

/// The whole route table, wrapped in the middleware every request passes through.
pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = api::service(&state.config.issuer);
    let spec = server_kit::docs::spec(api.spec());
    let issuer = state.config.issuer.clone();
    let docs = server_kit::docs::swagger_ui(move || api::service(&issuer).swagger_ui_html());
    let external_api_enabled = state.config.external_api_enabled;
    let metrics = Arc::clone(&state.metrics.http);
    let timeouts = state.config.timeouts.clone();
    let routes = Route::new()
        .at("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", api)
        .data(state)
        .around(move |ep, req| http::external_api_gate(external_api_enabled, ep, req));
    guarded(routes, &timeouts)
        .around(|ep, req| async move {
            // Outside the body limit, so a 413 from the token endpoint carries it too.
            let no_store = is_token_path(req.uri().path());
            let mut resp = ep.get_response(req).await;
            if no_store {
                // RFC 6749 §5.1: token responses must not be cached, errors included.
                let h = resp.headers_mut();
                h.insert(
                    poem::http::header::CACHE_CONTROL,
                    poem::http::HeaderValue::from_static("no-store"),
                );
                h.insert(
                    poem::http::header::PRAGMA,
                    poem::http::HeaderValue::from_static("no-cache"),
                );
            }
            Ok(resp)
        })
        .around(move |ep, req| http::request_context(Arc::clone(&metrics), ep, req))
}

/// The admin API's routes (its own listener): the same protections as the public API, with
/// errors as RFC 9457 problems, and nothing cached (answers carry secrets).
pub fn admin_routes(state: Arc<AppState>) -> impl Endpoint {
    let api = api::admin::service();
    let spec = server_kit::docs::spec(api.spec());
    let docs = server_kit::docs::swagger_ui(|| api::admin::service().swagger_ui_html());
    let metrics = Arc::clone(&state.metrics.http);
    let timeouts = state.config.timeouts.clone();
    let routes = Route::new()
        .at("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", api)
        .data(state);
    guarded(routes, &timeouts)
        .around(|ep, req| async move {
            let mut resp = ep.get_response(req).await;
            if resp.status() == poem::http::StatusCode::UNAUTHORIZED
                && !resp
                    .headers()
                    .contains_key(poem::http::header::WWW_AUTHENTICATE)
            {
                // No bearer at all: poem-openapi refuses it before our handler runs.
                resp = http::problem_response(
                    poem::http::StatusCode::UNAUTHORIZED,
                    "A valid admin key is required",
                );
                resp.headers_mut().insert(
                    poem::http::header::WWW_AUTHENTICATE,
                    poem::http::HeaderValue::from_static(crate::error::problem::ADMIN_CHALLENGE),
                );
            }
            resp.headers_mut().insert(
                poem::http::header::CACHE_CONTROL,
                poem::http::HeaderValue::from_static("no-store"),
            );
            Ok(resp)
        })
        .around(move |ep, req| http::problem_request_context(Arc::clone(&metrics), ep, req))
}

/// Endpoints whose answers carry credentials or token state: never cached.
fn is_token_path(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "/oauth/token"
            | "/external-api/v1.0/application/token"
            | "/oauth/introspect"
            | "/oauth/revoke"
            | "/oauth/revocations"
            | "/oauth/resolve-user"
    )
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let listen = config.listen;
        let metrics_listen = config.metrics_listen;
        let state = build_state(config, clock).await?;
        let admin_listen = state.config.admin_listen;
        let listeners = server_kit::server::Listeners::bind(
            listen,
            metrics_listen,
            ("AUTH_LISTEN", "AUTH_METRICS_LISTEN"),
        )
        .await
        .map_err(anyhow::Error::msg)?
        .with_private(admin_listen, "AUTH_ADMIN_LISTEN")
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

    /// The admin API's port, unless `AUTH_ADMIN_LISTEN` is empty.
    pub fn admin_port(&self) -> Option<u16> {
        self.listeners.private_port()
    }

    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(server_kit::server::shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        spawn_key_refresh(Arc::clone(&self.state));
        spawn_purge(Arc::clone(&self.state));
        tracing::info!(port = self.listeners.api_port(), issuer = %self.state.config.issuer, "auth-server listening");
        let admin = match self.listeners.private_port() {
            Some(port) => {
                warn_without_admin_keys(&self.state, port).await;
                Some(admin_routes(Arc::clone(&self.state)))
            }
            None => None,
        };
        let metrics = Arc::clone(&self.state.metrics.http);
        let timeouts = self.state.config.timeouts.clone();
        self.listeners
            .serve_with_private(routes(self.state), admin, metrics, timeouts, stop)
            .await?;
        Ok(())
    }
}

/// An admin listener with no key to open it answers 401 to everything: say so once, with the fix.
async fn warn_without_admin_keys(state: &AppState, port: u16) {
    match crate::domain::admin_keys::usable(&state.db).await {
        Ok(0) => tracing::warn!(
            port,
            "admin API: no admin key exists, every call answers 401; create one with `auth-server admin-key create --name NAME`"
        ),
        Ok(_) => tracing::info!(port, "admin API listening"),
        Err(e) => tracing::warn!(error = %e, "admin API: cannot count admin keys"),
    }
}

/// Deletes revocations and tombstones that can no longer matter, every minute.
fn spawn_purge(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match crate::domain::revocation::purge(
                &state.db,
                state.config.token_ttl_seconds,
                state.clock.now(),
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "purged expired revocations and tombstones"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "purge failed"),
            }
            if state.clients.limits.is_shared() {
                sweep_failure_counters(&state.db, state.clock.now()).await;
            }
            // Bounded by legitimate traffic (a row needs a valid signature): one statement.
            if let Err(e) = crate::store::assertion_jtis::sweep(&state.db, state.clock.now()).await
            {
                tracing::warn!(error = %e, "assertion jti sweep failed");
            }
        }
    });
}

/// Deletes shared failure counters whose window ended, a batch at a time. Every replica sweeps;
/// two sweeping at once delete disjoint or already-deleted rows.
async fn sweep_failure_counters(db: &crate::store::Db, now: chrono::DateTime<chrono::Utc>) {
    const BATCH: u64 = 10_000;
    loop {
        match crate::store::failure_counters::sweep(db, now, BATCH).await {
            Ok(n) if n == BATCH => continue,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "failure counter sweep failed");
                break;
            }
        }
    }
}

/// Re-reads the key table so rotations made by the CLI or another replica take effect.
fn spawn_key_refresh(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.key_refresh);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = state.keys.refresh(&state.db, state.clock.now()).await {
                tracing::warn!(
                    error = format!("{:#}", anyhow::Error::from(e)),
                    "signing key refresh failed"
                );
            }
        }
    });
}
