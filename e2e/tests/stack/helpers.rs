#![allow(dead_code)]

use std::sync::Arc;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::Value;
use server_kit::telemetry::LogFormat;
use server_kit::testing::fresh_database_url;
use shared::Allowlist;
use shared::{DomainPattern, Email, ManualClock, ScopeSet, SigningAlg};

use rooms_api::config::{
    ClientCredentials, Config, IntrospectionConfig, RevocationConfig, UsersConfig, VerificationMode,
};
use rooms_api::rooms::model::AccessLevel;
use rooms_api::rooms::settings::RoomSettings;

pub const ALL_ROOMS: &str = "rooms:create rooms:list rooms:retrieve rooms:update rooms:delete";
pub const SHARING: &str =
    "rooms:create rooms:list rooms:retrieve rooms:update rooms:delete rooms:grant-access";

pub struct Stack {
    pub auth: Arc<auth_server::state::AppState>,
    pub auth_url: String,
    auth_config: auth_server::config::Config,
    auth_stop: Option<tokio::sync::oneshot::Sender<()>>,
    auth_done: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The rooms API's own application at the auth-server (revocation feed / introspection).
    pub resource_client: Option<Client>,
    pub rooms: Arc<rooms_api::state::AppState>,
    pub rooms_url: String,
    pub rooms_metrics_url: String,
    pub auth_metrics_url: String,
    /// One clock for both services, moved by the tests.
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

pub struct Client {
    pub client_id: String,
    pub secret: String,
}

pub struct Options {
    pub signing_alg: SigningAlg,
    pub hs256_secret: Option<Vec<u8>>,
    /// Give the rooms API credentials for the revocation feed.
    pub revocation_feed: bool,
    /// Verify by introspection at the auth-server.
    pub introspection: bool,
    /// The auth-server's ALLOW_USER_CREATION.
    pub allow_user_creation: bool,
    pub rooms: Box<dyn FnOnce(&mut Config) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            signing_alg: SigningAlg::EdDSA,
            hs256_secret: None,
            revocation_feed: false,
            introspection: false,
            allow_user_creation: false,
            rooms: Box::new(|_| {}),
        }
    }
}

async fn start_auth(
    config: auth_server::config::Config,
    clock: Arc<ManualClock>,
) -> (
    Arc<auth_server::state::AppState>,
    (u16, u16),
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let auth = auth_server::startup::Application::build_with_clock(config, clock)
        .await
        .unwrap();
    let port = (auth.port(), auth.metrics_port());
    let state = auth.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(auth.run_until(async move {
        let _ = stopped.await;
    }));
    (state, port, stop, done)
}

pub async fn spawn_stack() -> Stack {
    spawn_stack_with(Options::default()).await
}

pub async fn spawn_stack_with(options: Options) -> Stack {
    let clock = Arc::new(ManualClock::starting_now());
    let auth_dir = tempfile::tempdir().unwrap();
    let rooms_dir = tempfile::tempdir().unwrap();

    let mut auth_config = auth_server::config::Config::with_defaults(
        fresh_database_url(auth_dir.path(), "auth").await.unwrap(),
    )
    .unwrap();
    auth_config.issuer = "http://auth.test".into();
    auth_config.signing_alg = options.signing_alg;
    auth_config.hs256_secret = options.hs256_secret.clone().map(SecretSlice::from);
    auth_config.allow_user_creation = options.allow_user_creation;
    let (auth_state, (auth_port, auth_metrics_port), auth_stop, auth_done) =
        start_auth(auth_config.clone(), clock.clone()).await;
    let auth_url = format!("http://127.0.0.1:{auth_port}");
    let resource_client = if options.revocation_feed || options.introspection {
        let (app, secret) = auth_server::domain::applications::create(
            &auth_state.db,
            &auth_server::domain::audit::Actor::Cli,
            auth_server::domain::applications::NewApp {
                name: "rooms-api".into(),
                scopes: ScopeSet::parse("tokens:introspect tokens:revocations users:resolve")
                    .unwrap(),
                domains: Allowlist::default(),
                token_ttl_seconds: None,
                ..Default::default()
            },
            u32::MAX,
            Utc::now(),
        )
        .await
        .unwrap();
        Some(Client {
            client_id: app.client_id.to_string(),
            secret: secret.unwrap().expose_secret().to_owned(),
        })
    } else {
        None
    };

    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        database_url: fresh_database_url(rooms_dir.path(), "rooms").await.unwrap(),
        issuer: "http://auth.test".into(),
        audience: "rooms-api".into(),
        leeway_seconds: 30,
        verification: if options.signing_alg == SigningAlg::HS256 {
            VerificationMode::Hs256
        } else {
            VerificationMode::Jwks
        },
        jwks_url: format!("{auth_url}/.well-known/jwks.json"),
        hs256_secret: options.hs256_secret.map(SecretSlice::from),
        introspection: None,
        revocation: None,
        users: None,
        external_api_enabled: true,
        dpop_base_url: None,
        rooms: RoomSettings {
            public_url: "https://rooms.example.test".into(),
            base_url: None,
            default_access_level: AccessLevel::Trusted,
            allow_public_access: false,
            telephony_enabled: false,
            telephony_phone_number: None,
            telephony_default_country: "US".into(),
            pin_length: 10,
        },
        jwks_refresh: std::time::Duration::from_secs(300),
        log_format: LogFormat::Text,
        traces: None,
        timeouts: Default::default(),
        database_min_connections: 1,
        verified_token_cache_bytes: 16 << 20,
    };
    if let Some(c) = &resource_client {
        let credentials = ClientCredentials {
            client_id: c.client_id.clone(),
            secret: secrecy::SecretString::from(c.secret.clone()),
        };
        config.users = Some(UsersConfig {
            url: format!("{auth_url}{}", shared::users::RESOLVE_USER_PATH),
            credentials: credentials.clone(),
        });
        if options.introspection {
            config.verification = VerificationMode::Introspection;
            config.introspection = Some(IntrospectionConfig {
                url: format!("{auth_url}/oauth/introspect"),
                credentials,
                positive_ttl: chrono::TimeDelta::seconds(30),
                negative_ttl: chrono::TimeDelta::seconds(5),
                cache_size: 1000,
                scope_prefix: None,
            });
        } else {
            config.revocation = Some(RevocationConfig {
                url: format!("{auth_url}/oauth/revocations"),
                credentials,
                poll: std::time::Duration::from_secs(10),
                // Small pages, so every test that revokes also crosses page boundaries.
                page_size: Some(2),
            });
        }
    }
    (options.rooms)(&mut config);
    let rooms = rooms_api::startup::Application::build_with_clock(config, clock.clone())
        .await
        .unwrap();
    let rooms_url = format!("http://127.0.0.1:{}", rooms.port());
    let rooms_metrics_url = format!("http://127.0.0.1:{}/metrics", rooms.metrics_port());
    let rooms_state = rooms.state();
    tokio::spawn(rooms.run_until(std::future::pending()));

    Stack {
        auth: auth_state,
        auth_url,
        auth_config,
        auth_stop: Some(auth_stop),
        auth_done: Some(auth_done),
        resource_client,
        rooms: rooms_state,
        rooms_url,
        rooms_metrics_url,
        auth_metrics_url: format!("http://127.0.0.1:{auth_metrics_port}/metrics"),
        clock,
        client: reqwest::Client::new(),
        _dirs: (auth_dir, rooms_dir),
    }
}

impl Stack {
    /// Stops the auth-server (its port is released).
    pub async fn stop_auth(&mut self) {
        if let Some(stop) = self.auth_stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.auth_done.take() {
            let _ = done.await;
        }
    }

    /// Starts the auth-server again on the same port and database.
    pub async fn restart_auth(&mut self) {
        let mut config = self.auth_config.clone();
        config.listen = self.auth_url.trim_start_matches("http://").parse().unwrap();
        let (state, _, stop, done) = start_auth(config, self.clock.clone()).await;
        self.auth = state;
        self.auth_stop = Some(stop);
        self.auth_done = Some(done);
    }

    pub fn auth_db_url(&self) -> String {
        self.auth_config.database_url.clone()
    }

    /// The auth-server binary of this build (`target/<profile>/`, beside `deps/` where this
    /// test runs): a workspace test run builds every member's binaries.
    pub fn auth_binary(&self) -> std::path::PathBuf {
        let exe = std::env::current_exe().unwrap();
        let bin = exe
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .join("auth-server");
        assert!(
            bin.exists(),
            "{} is missing: run the tests with --workspace (or cargo build -p auth-server)",
            bin.display()
        );
        bin
    }

    /// Drives one poll of the revocation feed (instead of waiting for the timer).
    pub async fn poll_feed(&self) {
        self.rooms
            .auth
            .revocations()
            .unwrap()
            .poll_once()
            .await
            .unwrap();
    }

    /// The metrics page at `url`, as text.
    pub async fn metrics_page(&self, url: &str) -> String {
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of `series` on the metrics page at `url` (0 when absent).
    pub async fn metric(&self, url: &str, series: &str) -> f64 {
        metric_value(&self.metrics_page(url).await, series)
    }

    /// `POST /oauth/revoke` of `token`, authenticated as `c`.
    pub async fn revoke(&self, c: &Client, token: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/oauth/revoke", self.auth_url))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    pub async fn client(&self, scopes: &str, domains: &[&str]) -> Client {
        let (app, secret) = auth_server::domain::applications::create(
            &self.auth.db,
            &auth_server::domain::audit::Actor::Cli,
            auth_server::domain::applications::NewApp {
                name: "test".into(),
                scopes: ScopeSet::parse(scopes).unwrap(),
                domains: Allowlist::new(domains.iter().map(|d| DomainPattern::parse(d).unwrap())),
                token_ttl_seconds: None,
                ..Default::default()
            },
            u32::MAX,
            Utc::now(),
        )
        .await
        .unwrap();
        Client {
            client_id: app.client_id.to_string(),
            secret: secret.unwrap().expose_secret().to_owned(),
        }
    }

    pub async fn user(&self, email: &str) -> String {
        let email = Email::parse(email).unwrap();
        auth_server::store::users::insert_if_absent(&self.auth.db, &email, None, None, Utc::now())
            .await
            .unwrap()
            .0
            .id
            .to_string()
    }

    pub async fn token(&self, c: &Client, email: &str) -> String {
        let r = self
            .client
            .post(format!("{}/oauth/token", self.auth_url))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials"), ("scope", email)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A user with a token carrying every rooms scope.
    pub async fn token_with(&self, scopes: &str) -> String {
        let c = self.client(scopes, &[]).await;
        let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
        self.user(&email).await;
        self.token(&c, &email).await
    }
}

pub use crate::requests::{RoomsRequests, assert_error};

impl RoomsRequests for Stack {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }

    fn rooms_base(&self) -> &str {
        &self.rooms_url
    }
}

/// The value of `series` (name and labels, exactly as printed) in a Prometheus text page; 0 when
/// absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
