//! DPoP at the token endpoint (docs/spec/auth-server.md §1b): the proof names the URL the client
//! addressed; server nonces (`DPOP_NONCE=true`, RFC 9449 §8): a proof without a recent nonce is
//! answered `use_dpop_nonce` with the nonce to use; a nonce one replica gave out is accepted by
//! another (no shared state), until it ages out. The proof's other checks are e2e's (stack/dpop.rs).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use josekit::jws::{ES256, JwsSigner};
use serde_json::{Map, Value, json};
use shared::Clock;

use crate::helpers::{TestApp, TestClient, assert_error, spawn_app_with, spawn_on};

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

    fn proof(&self, app: &TestApp, nonce: Option<&str>) -> String {
        self.proof_for(app, "/oauth/token", nonce)
    }

    fn proof_for(&self, app: &TestApp, path: &str, nonce: Option<&str>) -> String {
        let mut claims = json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": "POST",
                                "htu": format!("http://auth.test{path}"),
                                "iat": app.clock.now().timestamp()});
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let signature = self.signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

async fn token(app: &TestApp, c: &TestClient, proof: String) -> reqwest::Response {
    token_at(app, c, "/oauth/token", proof).await
}

async fn token_at(app: &TestApp, c: &TestClient, path: &str, proof: String) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .basic_auth(&c.client_id, Some(&c.secret))
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "ada@example.com"),
        ])
        .send()
        .await
        .unwrap()
}

fn nonce_of(r: &reqwest::Response) -> String {
    r.headers()["dpop-nonce"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn with_dpop_nonce_a_proof_needs_a_recent_nonce_from_any_replica() {
    fn replica(c: &mut auth_server::config::Config) {
        c.key_encryption_key = Some(secrecy::SecretSlice::from(vec![7u8; 32]));
        c.dpop_nonce = true;
    }
    let a = spawn_app_with(replica).await;
    let b = spawn_on(
        a.database_url.clone(),
        tempfile::tempdir().unwrap(),
        replica,
    )
    .await;
    let c = a.create_client("rooms:list", &["example.com"]).await;
    a.create_user("ada@example.com").await;
    let key = DpopKey::new();

    // No nonce: refused with one to use, in the header.
    let r = token(&a, &c, key.proof(&a, None)).await;
    let nonce = nonce_of(&r);
    let body = assert_error(r, 400, "use_dpop_nonce").await;
    assert_eq!(
        body["error_description"],
        "Authorization server requires nonce in DPoP proof"
    );

    // The nonce replica a gave out works at replica b; the answer carries the next one.
    let r = token(&b, &c, key.proof(&b, Some(&nonce))).await;
    assert!(r.headers().contains_key("dpop-nonce"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["token_type"], "DPoP");

    // A made-up nonce, and the real one once two windows have passed: refused, with a fresh one.
    let r = token(
        &a,
        &c,
        key.proof(&a, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
    )
    .await;
    assert_error(r, 400, "use_dpop_nonce").await;
    a.clock.advance(TimeDelta::seconds(121));
    let r = token(&a, &c, key.proof(&a, Some(&nonce))).await;
    let fresh = nonce_of(&r);
    assert_ne!(fresh, nonce);
    assert_error(r, 400, "use_dpop_nonce").await;
    assert_eq!(
        token(&a, &c, key.proof(&a, Some(&fresh))).await.status(),
        200
    );
}

#[tokio::test]
async fn without_dpop_nonce_no_nonce_is_asked_or_given() {
    let app = spawn_app_with(|_| {}).await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("ada@example.com").await;
    let r = token(&app, &c, DpopKey::new().proof(&app, None)).await;
    assert!(!r.headers().contains_key("dpop-nonce"));
    assert_eq!(r.status(), 200);
}

/// Upstream's token path ends in `/` (`/oauth/token/`, served like `/oauth/token`): a proof is
/// checked against the path the client addressed, not the one the server routed it by.
#[tokio::test]
async fn the_proof_names_the_path_the_client_addressed_with_its_trailing_slash() {
    let app = spawn_app_with(|_| {}).await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("ada@example.com").await;
    let key = DpopKey::new();
    for path in ["/oauth/token/", "/oauth/token"] {
        let r = token_at(&app, &c, path, key.proof_for(&app, path, None)).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.json::<Value>().await.unwrap()["token_type"], "DPoP");
    }
    // Either form for the other: another URL (RFC 9449 §4.3 step 9 compares the path as sent).
    for (sent_to, named) in [
        ("/oauth/token/", "/oauth/token"),
        ("/oauth/token", "/oauth/token/"),
    ] {
        let r = token_at(&app, &c, sent_to, key.proof_for(&app, named, None)).await;
        let body = assert_error(r, 400, "invalid_dpop_proof").await;
        assert!(
            body["error_description"].as_str().unwrap().contains("htu"),
            "{sent_to} with a proof for {named}: {body}"
        );
    }
}
