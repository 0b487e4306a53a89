#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{EdDSA, JwsHeader, JwsSigner};
use poem::{EndpointExt, Route, get, handler, web::Data, web::Json};
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
    use poem::listener::{Acceptor, Listener};
    // Bound on port 0 and served from that socket: no window where another test takes the port.
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let port = acceptor.local_addr()[0]
        .as_socket_addr()
        .map(|a| a.port())
        .unwrap();
    let app = Route::new()
        .at("/.well-known/jwks.json", get(serve_jwks))
        .data(Arc::new(jwks));
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    format!("http://127.0.0.1:{port}/.well-known/jwks.json")
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
            jkt: None,
        });
        let mut header = JwsHeader::new();
        header.set_token_type(ACCESS_TOKEN_TYP);
        header.set_key_id(&self.issuer.kid);
        let payload = serde_json::to_vec(&claims).unwrap();
        josekit::jws::serialize_compact(&payload, &header, self.issuer.signer.as_ref()).unwrap()
    }

    /// Another server on this stack's database, trusting the same issuer (a second replica).
    pub async fn replica(&self) -> Replica {
        let mut config = self.rooms.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.metrics_listen = "127.0.0.1:0".parse().unwrap();
        let app = rooms_api::startup::Application::build_with_clock(config, self.clock.clone())
            .await
            .unwrap();
        let replica = Replica {
            rooms: app.state(),
            rooms_url: format!("http://127.0.0.1:{}", app.port()),
            client: reqwest::Client::new(),
        };
        tokio::spawn(app.run_until(std::future::pending()));
        replica
    }

    /// A user with a token carrying every rooms scope.
    pub async fn token_with(&self, scopes: &str) -> String {
        let c = self.client(scopes, &[]).await;
        let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
        self.user(&email).await;
        self.token(&c, &email).await
    }
}

pub use crate::requests::{RoomsRequests, assert_error, challenge};

/// A second rooms API server on a stack's database (`Stack::replica`).
pub struct Replica {
    pub rooms: Arc<rooms_api::state::AppState>,
    pub rooms_url: String,
    pub client: reqwest::Client,
}

impl RoomsRequests for Replica {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }

    fn rooms_base(&self) -> &str {
        &self.rooms_url
    }
}

impl RoomsRequests for Stack {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }

    fn rooms_base(&self) -> &str {
        &self.rooms_url
    }
}
