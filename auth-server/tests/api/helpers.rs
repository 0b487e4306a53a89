#![allow(dead_code)]

use std::sync::Arc;

use auth_server::config::Config;
use auth_server::model::Application as App;
use auth_server::startup::Application;
use auth_server::state::AppState;
use auth_server::store::{applications, users};
use base64::Engine;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::Value;
use shared::Allowlist;
use shared::{ClientId, DomainPattern, Email, ManualClock, ScopeSet};
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// The admin API's base URL.
    pub admin_address: String,
    pub clock: Arc<ManualClock>,
    pub state: Arc<AppState>,
    pub database_url: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub struct TestClient {
    pub client_id: String,
    pub secret: String,
}

/// A fresh, empty database URL: a SQLite file in `dir`, or a new PostgreSQL database.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    server_kit::testing::fresh_database_url(dir, "auth")
        .await
        .unwrap()
}

pub fn test_config(database_url: String) -> Config {
    let mut c = Config::with_defaults(database_url).unwrap();
    c.issuer = "http://auth.test".into();
    c.argon2_max_concurrent = 4;
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    spawn_on(url, dir, configure).await
}

pub async fn spawn_on(
    url: String,
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = test_config(url.clone());
    configure(&mut config);
    let clock = Arc::new(ManualClock::starting_now());
    let app = Application::build_with_clock(config, clock.clone())
        .await
        .expect("build app");
    let port = app.port();
    let admin_port = app.admin_port().unwrap_or(0);
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        admin_address: format!("http://127.0.0.1:{admin_port}"),
        clock,
        state,
        database_url: url,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_address)
    }

    /// Creates an admin key as the CLI does; returns (its id, the key).
    pub async fn admin_key(&self, name: &str) -> (Uuid, String) {
        let (key, secret) = auth_server::domain::admin_keys::create(
            &self.state.db,
            &auth_server::domain::audit::Actor::Cli,
            name,
            self.state.clock.now(),
        )
        .await
        .unwrap();
        (key.id, secret.expose_secret().to_owned())
    }

    /// An admin API call with `key` (none if empty) and a JSON body (none if `Value::Null`).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Value,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.admin_url(path));
        if !key.is_empty() {
            req = req.bearer_auth(key);
        }
        if !body.is_null() {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    /// The admin API as `key` calls it.
    pub fn admin_as<'a>(&'a self, key: &'a str) -> AdminClient<'a> {
        AdminClient { app: self, key }
    }

    /// Registers an application directly in the store (the CLI has its own tests).
    pub async fn create_client(&self, scopes: &str, domains: &[&str]) -> TestClient {
        let (app, secret) = auth_server::domain::applications::create(
            &self.state.db,
            &auth_server::domain::audit::Actor::Cli,
            auth_server::domain::applications::NewApp {
                name: "test app".into(),
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
        let client_id = app.client_id.to_string();
        TestClient {
            client_id,
            secret: secret.unwrap().expose_secret().to_owned(),
        }
    }

    pub async fn find_client(&self, c: &TestClient) -> App {
        applications::find_by_client_id(&self.state.db, &ClientId::parse(&c.client_id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn create_user(&self, email: &str) -> Uuid {
        let email = Email::parse(email).unwrap();
        users::insert_if_absent(
            &self.state.db,
            &email,
            Some(format!("sub-{}", Uuid::new_v4())),
            None,
            Utc::now(),
        )
        .await
        .unwrap()
        .0
        .id
        .as_uuid()
    }

    pub async fn user_count(&self) -> usize {
        users::list(&self.state.db).await.unwrap().len()
    }

    /// client_secret_basic + form body.
    pub async fn token_basic(&self, c: &TestClient, email: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials"), ("scope", email)])
            .send()
            .await
            .unwrap()
    }

    /// client_secret_post + JSON body (the upstream form).
    pub async fn token_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn token_form(&self, body: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn access_token(&self, c: &TestClient, email: &str) -> String {
        let r = self.token_basic(c, email).await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn introspect(&self, caller: &TestClient, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/introspect"))
            .basic_auth(&caller.client_id, Some(&caller.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    /// The introspection answer, asserting 200.
    pub async fn introspection(&self, caller: &TestClient, token: &str) -> Value {
        let r = self.introspect(caller, token).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Runs the purge the server's background task runs, at the test clock's time.
    pub async fn purge(&self) -> u64 {
        auth_server::domain::revocation::purge(
            &self.state.db,
            self.state.config.token_ttl_seconds,
            self.state.clock.now(),
        )
        .await
        .unwrap()
    }

    pub async fn revoke(&self, caller: &TestClient, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/revoke"))
            .basic_auth(&caller.client_id, Some(&caller.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    pub async fn feed(&self, caller: &TestClient, cursor: Option<&str>) -> reqwest::Response {
        let mut url = self.url("/oauth/revocations");
        if let Some(c) = cursor {
            url = format!("{url}?cursor={c}");
        }
        self.client
            .get(url)
            .basic_auth(&caller.client_id, Some(&caller.secret))
            .send()
            .await
            .unwrap()
    }

    pub async fn jwks(&self) -> Value {
        self.client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Asserts an RFC 6749 §5.2 error response and returns its body.
pub async fn assert_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    assert_eq!(
        r.headers().get("pragma").map(|v| v.to_str().unwrap()),
        Some("no-cache")
    );
    if status == 401 {
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some(r#"Basic realm="auth-server""#)
        );
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "body {body}");
    assert!(body["error_description"].is_string());
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only error and error_description: {body}"
    );
    body
}

/// Decodes a compact JWS's header and payload without verifying (verification is tested apart).
pub fn decode_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let dec = |p: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    let header = dec(parts.next().unwrap());
    let payload = dec(parts.next().unwrap());
    (header, payload)
}

/// The admin API as a test calls it with one key: JSON in; the status asserted; the JSON answer
/// (or RFC 9457 problem, its shape asserted) out.
pub struct AdminClient<'a> {
    app: &'a TestApp,
    key: &'a str,
}

impl AdminClient<'_> {
    /// `method path` with `body` (`Value::Null`: none); asserts `status`; the JSON answer
    /// (`Value::Null` when empty).
    pub async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        status: u16,
    ) -> Value {
        let r = self.app.admin(method.clone(), path, self.key, body).await;
        let got = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// `expect` of an RFC 9457 problem: its content type, `status`, `type`, a title and a detail.
    pub async fn problem(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        status: u16,
    ) -> Value {
        let r = self.app.admin(method.clone(), path, self.key, body).await;
        assert_eq!(r.status(), status, "{method} {path}: expected {status}");
        assert_problem(r, status).await
    }
}

/// Asserts an RFC 9457 answer with `status`: its content type, `type`, a title and a detail;
/// returns its body.
pub async fn assert_problem(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status, "expected {status}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    body
}
