#![allow(dead_code)]

use std::sync::Arc;

use auth_server::domain::allowlist::Allowlist;
use chrono::Utc;
use reqwest::Response;
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::Value;
use shared::server::random;
use shared::server::telemetry::LogFormat;
use shared::server::testing::fresh_database_url;
use shared::{DomainPattern, Email, ManualClock, ScopeSet, SigningAlg};

use rooms_api::config::{Config, RoomSettings, VerificationMode};
use rooms_api::rooms::model::AccessLevel;

pub const ALL_ROOMS: &str = "rooms:create rooms:list rooms:retrieve rooms:update rooms:delete";

pub struct Stack {
    pub auth: Arc<auth_server::state::AppState>,
    pub auth_url: String,
    pub rooms: Arc<rooms_api::state::AppState>,
    pub rooms_url: String,
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
    pub rooms: Box<dyn FnOnce(&mut Config) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            signing_alg: SigningAlg::EdDSA,
            hs256_secret: None,
            rooms: Box::new(|_| {}),
        }
    }
}

pub async fn spawn_stack() -> Stack {
    spawn_stack_with(Options::default()).await
}

pub async fn spawn_stack_with(options: Options) -> Stack {
    let clock = Arc::new(ManualClock::starting_now());
    let auth_dir = tempfile::tempdir().unwrap();
    let rooms_dir = tempfile::tempdir().unwrap();

    let mut kek = vec![0u8; 32];
    random::fill(&mut kek).unwrap();
    let auth_config = auth_server::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: fresh_database_url(auth_dir.path(), "auth").await.unwrap(),
        issuer: "http://auth.test".into(),
        audience: "rooms-api".into(),
        token_ttl_seconds: 3600,
        signing_alg: options.signing_alg,
        hs256_secret: options.hs256_secret.clone().map(SecretSlice::from),
        key_encryption_key: Some(SecretSlice::from(kek)),
        allow_user_creation: false,
        external_api_enabled: true,
        key_refresh: std::time::Duration::from_secs(30),
        argon2_max_concurrent: 4,
        log_format: LogFormat::Text,
    };
    let auth = auth_server::startup::Application::build_with_clock(auth_config, clock.clone())
        .await
        .unwrap();
    let auth_url = format!("http://127.0.0.1:{}", auth.port());
    let auth_state = auth.state();
    tokio::spawn(auth.run_until(std::future::pending()));

    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
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
        external_api_enabled: true,
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
    };
    (options.rooms)(&mut config);
    let rooms = rooms_api::startup::Application::build_with_clock(config, clock.clone())
        .await
        .unwrap();
    let rooms_url = format!("http://127.0.0.1:{}", rooms.port());
    let rooms_state = rooms.state();
    tokio::spawn(rooms.run_until(std::future::pending()));

    Stack {
        auth: auth_state,
        auth_url,
        rooms: rooms_state,
        rooms_url,
        clock,
        client: reqwest::Client::new(),
        _dirs: (auth_dir, rooms_dir),
    }
}

impl Stack {
    pub fn rooms(&self, path: &str) -> String {
        format!("{}/external-api/v1.0/rooms{path}", self.rooms_url)
    }

    pub async fn client(&self, scopes: &str, domains: &[&str]) -> Client {
        let (app, secret) = auth_server::domain::registration::register(
            &self.auth.db,
            "test".into(),
            ScopeSet::parse(scopes).unwrap(),
            Allowlist::new(domains.iter().map(|d| DomainPattern::parse(d).unwrap())),
            Utc::now(),
        )
        .await
        .unwrap();
        Client {
            client_id: app.client_id.to_string(),
            secret: secret.expose_secret().to_owned(),
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

    pub async fn create_room(&self, token: &str) -> Value {
        let r = self.post(token, "", None).await;
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.rooms(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: Option<Value>) -> Response {
        let mut req = self.client.post(self.rooms(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Response {
        self.client
            .patch(self.rooms(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, token: &str, path: &str) -> Response {
        self.client
            .delete(self.rooms(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts the one error shape and returns the body.
pub async fn assert_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    assert!(r.headers().contains_key("x-request-id"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string());
    body
}

pub fn challenge(r: &Response) -> Option<String> {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
}
