#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{EdDSA, JwsHeader, JwsSigner};
use poem::{EndpointExt, Route, get, handler, web::Data, web::Json};
use reqwest::Response;
use secrecy::SecretSlice;
use serde_json::{Value, json};
use server_kit::telemetry::LogFormat;
use server_kit::testing::fresh_database_url;
use shared::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims, Issue};
use shared::{Clock, ManualClock, ScopeSet};

use rooms_api::config::{Config, VerificationMode};
use rooms_api::rooms::model::AccessLevel;
use rooms_api::rooms::settings::RoomSettings;

pub const ALL_ROOMS: &str = "rooms:create rooms:list rooms:retrieve rooms:update rooms:delete";
const ISSUER: &str = "http://auth.test";

/// The rooms API alone, on port 0 over a fresh database, trusting a test issuer: a key pair of
/// this test's whose JWKS a small server publishes, signing tokens with the claims the
/// auth-server issues (`shared::claims`, the contract both sides share). Tests that need the
/// real auth-server (key rotation, revocation feed, introspection) are in `e2e/`.
pub struct Stack {
    pub rooms: Arc<rooms_api::state::AppState>,
    pub rooms_url: String,
    pub rooms_metrics_url: String,
    /// The rooms API's clock, moved by the tests; tokens are issued at its time.
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    issuer: Issuer,
    _dir: tempfile::TempDir,
}

/// An application as the issuer sees it: an id and the scopes its tokens carry.
pub struct Client {
    pub client_id: String,
    scopes: ScopeSet,
}

struct Issuer {
    kid: String,
    signer: Arc<dyn JwsSigner>,
    /// E-mail -> user id, so one user keeps one `sub` across applications.
    users: Mutex<HashMap<String, String>>,
}

pub struct Options {
    pub rooms: Box<dyn FnOnce(&mut Config) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rooms: Box::new(|_| {}),
        }
    }
}

#[handler]
fn serve_jwks(Data(jwks): Data<&Arc<Value>>) -> Json<Value> {
    Json(jwks.as_ref().clone())
}

/// Serves the test issuer's JWKS; returns its URL.
async fn publish(jwks: Value) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let app = Route::new()
        .at("/.well-known/jwks.json", get(serve_jwks))
        .data(Arc::new(jwks));
    let acceptor = poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"));
    tokio::spawn(poem::Server::new(acceptor).run(app));
    let url = format!("http://127.0.0.1:{port}/.well-known/jwks.json");
    for _ in 0..100 {
        if reqwest::get(&url).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    url
}

pub async fn spawn_stack() -> Stack {
    spawn_stack_with(Options::default()).await
}

pub async fn spawn_stack_with(options: Options) -> Stack {
    let clock = Arc::new(ManualClock::starting_now());
    let dir = tempfile::tempdir().unwrap();

    let pair = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
    let kid = format!("test-{}", uuid::Uuid::new_v4().simple());
    let mut public = pair.to_jwk_public_key();
    public.set_key_id(&kid);
    public.set_algorithm("EdDSA");
    public.set_key_use("sig");
    let jwks_url = publish(json!({ "keys": [Value::Object(public.into())] })).await;
    let signer: Arc<dyn JwsSigner> =
        Arc::new(EdDSA.signer_from_jwk(&pair.to_jwk_private_key()).unwrap());

    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        database_url: fresh_database_url(dir.path(), "rooms").await.unwrap(),
        issuer: ISSUER.into(),
        audience: "rooms-api".into(),
        leeway_seconds: 30,
        verification: VerificationMode::Jwks,
        jwks_url,
        hs256_secret: None::<SecretSlice<u8>>,
        introspection: None,
        revocation: None,
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
        timeouts: Default::default(),
        database_min_connections: 1,
        verified_token_cache_bytes: 16 << 20,
    };
    (options.rooms)(&mut config);
    let rooms = rooms_api::startup::Application::build_with_clock(config, clock.clone())
        .await
        .unwrap();
    let rooms_url = format!("http://127.0.0.1:{}", rooms.port());
    let rooms_metrics_url = format!("http://127.0.0.1:{}/metrics", rooms.metrics_port());
    let rooms_state = rooms.state();
    tokio::spawn(rooms.run_until(std::future::pending()));

    Stack {
        rooms: rooms_state,
        rooms_url,
        rooms_metrics_url,
        clock,
        client: reqwest::Client::new(),
        issuer: Issuer {
            kid,
            signer,
            users: Mutex::new(HashMap::new()),
        },
        _dir: dir,
    }
}

impl Stack {
    pub fn rooms(&self, path: &str) -> String {
        format!("{}/external-api/v1.0/rooms{path}", self.rooms_url)
    }

    /// A new application holding `scopes` (the domains are the auth-server's business).
    pub async fn client(&self, scopes: &str, _domains: &[&str]) -> Client {
        let id: String = uuid::Uuid::new_v4().simple().to_string();
        Client {
            client_id: format!("{id}{}", &id[..shared::client_id::CLIENT_ID_LEN - 32]),
            scopes: ScopeSet::parse(scopes).unwrap(),
        }
    }

    /// The user id of `email` (a new one the first time).
    pub async fn user(&self, email: &str) -> String {
        let mut users = self.issuer.users.lock().unwrap();
        users
            .entry(email.to_owned())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone()
    }

    /// A token for `email` delegated to `c`, issued now by the test issuer.
    pub async fn token(&self, c: &Client, email: &str) -> String {
        let user_id = self.user(email).await;
        let claims = AccessTokenClaims::issue(Issue {
            issuer: ISSUER,
            audience: "rooms-api",
            user_id: &user_id,
            client_id: &c.client_id,
            scopes: c.scopes,
            now: self.clock.now(),
            ttl_seconds: 3600,
            jti: uuid::Uuid::new_v4().to_string(),
        });
        let mut header = JwsHeader::new();
        header.set_token_type(ACCESS_TOKEN_TYP);
        header.set_key_id(&self.issuer.kid);
        let payload = serde_json::to_vec(&claims).unwrap();
        josekit::jws::serialize_compact(&payload, &header, self.issuer.signer.as_ref()).unwrap()
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
