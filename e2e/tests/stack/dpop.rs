//! DPoP end to end (docs/spec/auth-server.md §1b, docs/spec/rooms-api.md §1b, RFC 9449): a
//! token obtained with a proof is bound to the proof's key and works at the rooms API only with
//! a fresh proof by that key; a thief holding the token alone can't use it, as `Bearer` or as
//! `DPoP`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::{ES256, JwsSigner};
use serde_json::{Map, Value, json};
use shared::Clock;

use crate::helpers::{ALL_ROOMS, Client, Options, Stack, assert_error, spawn_stack_with};

/// An integrator's DPoP key pair.
struct DpopKey {
    signer: Box<dyn JwsSigner>,
    public: Map<String, Value>,
}

impl DpopKey {
    fn new() -> Self {
        let pair = ES256.generate_key_pair().unwrap();
        Self {
            signer: Box::new(ES256.signer_from_der(pair.to_der_private_key()).unwrap()),
            public: pair.to_jwk_public_key().as_ref().clone(),
        }
    }

    fn thumbprint(&self) -> String {
        shared::dpop::thumbprint(&self.public).unwrap()
    }

    /// A proof for `method` `url` at the stack's time, with `ath` when a token is given.
    fn proof(&self, s: &Stack, method: &str, url: &str, token: Option<&str>) -> String {
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url,
            "iat": s.clock.now().timestamp(),
        });
        if let Some(token) = token {
            claims["ath"] = shared::dpop::token_hash(token).into();
        }
        self.sign(
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public}),
            claims,
        )
    }

    fn sign(&self, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let signature = self.signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// The token endpoint's URL as the client addresses it: the issuer's.
const TOKEN_URL: &str = "http://auth.test/oauth/token";

async fn token_request(s: &Stack, c: &Client, proof: Option<&str>) -> reqwest::Response {
    let mut request = s
        .client
        .post(format!("{}/oauth/token", s.auth_url))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "jane@example.com"),
        ]);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.unwrap()
}

/// A `GET` of jane's rooms with `authorization` and, if given, a `DPoP` proof.
async fn list(s: &Stack, authorization: String, proof: Option<String>) -> reqwest::Response {
    let mut request = s
        .client
        .get(rooms_url(s))
        .header("Authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.unwrap()
}

fn rooms_url(s: &Stack) -> String {
    format!("{}/external-api/v1.0/rooms", s.rooms_url)
}

async fn stack() -> (Stack, Client) {
    let s = spawn_stack_with(Options::default()).await;
    let c = s.client(ALL_ROOMS, &["example.com"]).await;
    s.user("jane@example.com").await;
    (s, c)
}

/// A token obtained with a proof: `token_type` DPoP, `cnf.jkt` the key's thumbprint.
async fn bound_token(s: &Stack, c: &Client, key: &DpopKey) -> String {
    let r = token_request(s, c, Some(&key.proof(s, "POST", TOKEN_URL, None))).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["cnf"]["jkt"], key.thumbprint());
    token
}

#[tokio::test]
async fn a_bound_token_works_only_with_a_fresh_proof_by_its_key() {
    let (s, c) = stack().await;
    let key = DpopKey::new();
    let token = bound_token(&s, &c, &key).await;
    let url = rooms_url(&s);

    // With its key's proof for this request and this token: 200, twice with two proofs.
    for _ in 0..2 {
        let proof = key.proof(&s, "GET", &url, Some(&token));
        assert_eq!(
            list(&s, format!("DPoP {token}"), Some(proof))
                .await
                .status(),
            200
        );
    }

    // A thief with the token alone: as Bearer (the downgrade), or as DPoP without a proof.
    let r = list(&s, format!("Bearer {token}"), None).await;
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("DPoP algs="), "{challenge}");
    assert_error(r, 401, "invalid_token").await;
    assert_error(
        list(&s, format!("DPoP {token}"), None).await,
        401,
        "invalid_dpop_proof",
    )
    .await;

    // A thief with the token and a proof of their own key.
    let thief = DpopKey::new();
    let r = list(
        &s,
        format!("DPoP {token}"),
        Some(thief.proof(&s, "GET", &url, Some(&token))),
    )
    .await;
    let body = assert_error(r, 401, "invalid_dpop_proof").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("another key")
    );

    // A proof copied from another request: replayed, another method, URL or token.
    let seen = key.proof(&s, "GET", &url, Some(&token));
    assert_eq!(
        list(&s, format!("DPoP {token}"), Some(seen.clone()))
            .await
            .status(),
        200
    );
    let body = assert_error(
        list(&s, format!("DPoP {token}"), Some(seen)).await,
        401,
        "invalid_dpop_proof",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let refused = [
        key.proof(&s, "POST", &url, Some(&token)),
        key.proof(&s, "GET", &format!("{url}/other"), Some(&token)),
        key.proof(&s, "GET", &url, Some("another-token")),
        key.proof(&s, "GET", &url, None),
    ];
    for proof in refused {
        assert_error(
            list(&s, format!("DPoP {token}"), Some(proof)).await,
            401,
            "invalid_dpop_proof",
        )
        .await;
    }

    // An unbound token presented as DPoP: refused, told to use Bearer.
    let bearer = s.token(&c, "jane@example.com").await;
    let proof = key.proof(&s, "GET", &url, Some(&bearer));
    assert_error(
        list(&s, format!("DPoP {bearer}"), Some(proof)).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(
        list(&s, format!("Bearer {bearer}"), None).await.status(),
        200
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_bad_or_replayed_proof() {
    let (s, c) = stack().await;
    let key = DpopKey::new();
    let good = key.proof(&s, "POST", TOKEN_URL, None);
    assert_eq!(token_request(&s, &c, Some(&good)).await.status(), 200);
    let body = assert_error(
        token_request(&s, &c, Some(&good)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let other_url = key.proof(&s, "POST", "http://auth.test/oauth/revoke", None);
    let body = assert_error(
        token_request(&s, &c, Some(&other_url)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("htu"));
    assert_error(
        token_request(&s, &c, Some("not-a-jwt")).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    // Two DPoP headers.
    let r = s
        .client
        .post(format!("{}/oauth/token", s.auth_url))
        .basic_auth(&c.client_id, Some(&c.secret))
        .header("DPoP", key.proof(&s, "POST", TOKEN_URL, None))
        .header("DPoP", key.proof(&s, "POST", TOKEN_URL, None))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "jane@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_dpop_proof").await;
    // Without a proof, a bearer token as before.
    let r = token_request(&s, &c, None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["token_type"], "Bearer");
}

#[tokio::test]
async fn an_application_with_dpop_bound_access_tokens_must_send_a_proof() {
    let s = spawn_stack_with(Options {
        revocation_feed: true,
        ..Default::default()
    })
    .await;
    let c = s.client(ALL_ROOMS, &["example.com"]).await;
    s.user("jane@example.com").await;
    let bearer = s.token(&c, "jane@example.com").await;
    let client_id = shared::ClientId::parse(&c.client_id).unwrap();
    auth_server::domain::applications::update(
        &s.auth.db,
        &auth_server::domain::audit::Actor::Cli,
        &client_id,
        auth_server::domain::applications::Changes {
            dpop_bound_access_tokens: Some(true),
            ..Default::default()
        },
        u32::MAX,
        s.clock.now(),
    )
    .await
    .unwrap();
    let body = assert_error(token_request(&s, &c, None).await, 400, "invalid_dpop_proof").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("DPoP-bound")
    );
    let key = DpopKey::new();
    bound_token(&s, &c, &key).await;
    // Requiring DPoP killed the bearer token obtained before, at the rooms API too.
    s.poll_feed().await;
    let body = assert_error(
        list(&s, format!("Bearer {bearer}"), None).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(body["error_description"], "The access token was revoked");
}

#[tokio::test]
async fn introspection_tells_a_bound_token_and_the_introspecting_rooms_api_honours_it() {
    let s = spawn_stack_with(Options {
        introspection: true,
        ..Default::default()
    })
    .await;
    let c = s.client(ALL_ROOMS, &["example.com"]).await;
    s.user("jane@example.com").await;
    let key = DpopKey::new();
    let token = bound_token(&s, &c, &key).await;
    let resource = s.resource_client.as_ref().unwrap();
    let r = s
        .client
        .post(format!("{}/oauth/introspect", s.auth_url))
        .basic_auth(&resource.client_id, Some(&resource.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["cnf"]["jkt"], key.thumbprint());
    // The rooms API in introspection mode: the proof is required, as locally.
    let url = rooms_url(&s);
    assert_error(
        list(&s, format!("Bearer {token}"), None).await,
        401,
        "invalid_token",
    )
    .await;
    let proof = key.proof(&s, "GET", &url, Some(&token));
    assert_eq!(
        list(&s, format!("DPoP {token}"), Some(proof))
            .await
            .status(),
        200
    );
}

async fn proof_rows(db: &sea_orm::DatabaseConnection) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM dpop_proof_jtis",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Each service keeps a used proof's `jti` only for the proof's window (its `iat` + 65 s): the
/// sweep forgets it after, when its `iat` refuses it anyway, so the tables don't grow with use.
#[tokio::test]
async fn used_proofs_are_kept_for_their_window_only() {
    let (s, c) = stack().await;
    let key = DpopKey::new();
    let token = bound_token(&s, &c, &key).await;
    let proof = key.proof(&s, "GET", &rooms_url(&s), Some(&token));
    assert_eq!(
        list(&s, format!("DPoP {token}"), Some(proof))
            .await
            .status(),
        200
    );
    assert_eq!(proof_rows(&s.auth.db).await, 1);
    assert_eq!(proof_rows(&s.rooms.db).await, 1);
    let window =
        chrono::TimeDelta::seconds(shared::dpop::MAX_AGE_SECONDS + shared::dpop::LEEWAY_SECONDS);
    let within = s.clock.now() + window - chrono::TimeDelta::seconds(1);
    rooms_api::auth::proof_jtis::sweep(&s.rooms.db, within)
        .await
        .unwrap();
    auth_server::store::assertion_jtis::sweep(&s.auth.db, within)
        .await
        .unwrap();
    assert_eq!(proof_rows(&s.auth.db).await, 1, "kept within the window");
    assert_eq!(proof_rows(&s.rooms.db).await, 1, "kept within the window");
    let after = s.clock.now() + window + chrono::TimeDelta::seconds(1);
    rooms_api::auth::proof_jtis::sweep(&s.rooms.db, after)
        .await
        .unwrap();
    auth_server::store::assertion_jtis::sweep(&s.auth.db, after)
        .await
        .unwrap();
    assert_eq!(proof_rows(&s.auth.db).await, 0);
    assert_eq!(proof_rows(&s.rooms.db).await, 0);
}

/// The proof's own checks at the rooms API, over HTTP: each refused proof is one a client or a
/// thief could send, and each answer names its rule.
#[tokio::test]
async fn every_bad_proof_is_refused_at_the_rooms_api_naming_its_rule() {
    let (s, c) = stack().await;
    let key = DpopKey::new();
    let token = bound_token(&s, &c, &key).await;
    let url = rooms_url(&s);
    let now = s.clock.now().timestamp();
    let header = || json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public});
    let claims = || {
        json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": "GET", "htu": url, "iat": now,
               "ath": shared::dpop::token_hash(&token)})
    };
    let mut private = header();
    private["jwk"]["d"] = "c2VjcmV0".into();
    let mut none = header();
    none["alg"] = "none".into();
    let mut hs256 = header();
    hs256["alg"] = "HS256".into();
    let mut old = claims();
    old["iat"] = (now - shared::dpop::MAX_AGE_SECONDS - 1).into();
    let mut ahead = claims();
    ahead["iat"] = (now + 60).into();
    let mut string_iat = claims();
    string_iat["iat"] = now.to_string().into();
    let cases = [
        (key.sign(private, claims()), "jwk must be a public key"),
        (key.sign(none, claims()), "alg must be one of"),
        (key.sign(hs256, claims()), "alg must be one of"),
        (key.sign(header(), old), "iat is too old"),
        (key.sign(header(), ahead), "iat is too old or in the future"),
        (key.sign(header(), string_iat), "valid iat claim"),
    ];
    for (proof, said) in cases {
        let body = assert_error(
            list(&s, format!("DPoP {token}"), Some(proof)).await,
            401,
            "invalid_dpop_proof",
        )
        .await;
        let text = body["error_description"].as_str().unwrap();
        assert!(text.contains(said), "{text:?} should say {said:?}");
    }
    // The good one still works after all of them.
    let proof = key.proof(&s, "GET", &url, Some(&token));
    assert_eq!(
        list(&s, format!("DPoP {token}"), Some(proof))
            .await
            .status(),
        200
    );
}

/// HS256 mode: the shared-secret token carries `cnf` like an EdDSA one, and the rooms API
/// holds it to its key the same way.
#[tokio::test]
async fn hs256_mode_honours_the_binding() {
    let s = spawn_stack_with(Options {
        signing_alg: shared::SigningAlg::HS256,
        hs256_secret: Some(b"0123456789abcdef0123456789abcdef-hs256".to_vec()),
        ..Default::default()
    })
    .await;
    let c = s.client(ALL_ROOMS, &["example.com"]).await;
    s.user("jane@example.com").await;
    let key = DpopKey::new();
    let token = bound_token(&s, &c, &key).await;
    assert_error(
        list(&s, format!("Bearer {token}"), None).await,
        401,
        "invalid_token",
    )
    .await;
    let proof = key.proof(&s, "GET", &rooms_url(&s), Some(&token));
    assert_eq!(
        list(&s, format!("DPoP {token}"), Some(proof))
            .await
            .status(),
        200
    );
}
