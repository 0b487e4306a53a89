//! docs/spec/auth-server.md §2: the access token's header and claims, and its signature for every algorithm.

use josekit::jwk::Jwk;
use josekit::jws::{self, ES256, EdDSA, HS256, JwsVerifier, RS256};
use secrecy::SecretSlice;
use serde_json::Value;
use shared::SigningAlg;

use crate::helpers::{TestApp, decode_parts, spawn_app, spawn_app_with};

async fn token_for_new_user(app: &TestApp) -> (String, uuid::Uuid, String) {
    let c = app.create_client("rooms:list rooms:create", &[]).await;
    let user = app.create_user("jane@example.com").await;
    (
        app.access_token(&c, "jane@example.com").await,
        user,
        c.client_id,
    )
}

fn verify_with_jwks(jwks: &Value, token: &str) -> Value {
    let (header, _) = decode_parts(token);
    let kid = header["kid"].as_str().unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid in JWKS");
    assert_eq!(key["alg"], header["alg"]);
    assert_eq!(key["use"], "sig");
    let jwk = Jwk::from_map(key.as_object().unwrap().clone()).unwrap();
    let verifier: Box<dyn JwsVerifier> = match header["alg"].as_str().unwrap() {
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(&jwk).unwrap()),
        "ES256" => Box::new(ES256.verifier_from_jwk(&jwk).unwrap()),
        "RS256" => Box::new(RS256.verifier_from_jwk(&jwk).unwrap()),
        other => panic!("unexpected alg {other}"),
    };
    let (payload, _) =
        jws::deserialize_compact(token, verifier.as_ref()).expect("signature verifies");
    serde_json::from_slice(&payload).unwrap()
}

#[tokio::test]
async fn header_has_alg_typ_and_kid() {
    let app = spawn_app().await;
    let (token, _, _) = token_for_new_user(&app).await;
    let (header, _) = decode_parts(&token);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
}

#[tokio::test]
async fn claims_are_exactly_the_rfc9068_profile() {
    let app = spawn_app().await;
    let (token, user, client_id) = token_for_new_user(&app).await;
    let claims = verify_with_jwks(&app.jwks().await, &token);
    assert_eq!(claims["iss"], "http://auth.test");
    assert_eq!(claims["aud"], "rooms-api");
    assert_eq!(claims["sub"], user.to_string());
    assert_eq!(claims["user_id"], user.to_string());
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["scope"], "rooms:create rooms:list");
    assert_eq!(claims["delegated"], true);
    assert_eq!(claims["act"], serde_json::json!({"sub": client_id}));
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["nbf"].as_i64(), Some(iat));
    assert_eq!(claims["exp"].as_i64(), Some(iat + 3600));
    assert_eq!(iat, app.clock.now_seconds());
    uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).expect("jti is a UUID");
    let keys: Vec<&String> = claims.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 12, "{keys:?}");
}

#[tokio::test]
async fn jti_is_fresh_and_ttl_follows_the_setting() {
    let app = spawn_app_with(|c| c.token_ttl_seconds = 600).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let a = decode_parts(&app.access_token(&c, "jane@example.com").await).1;
    let b = decode_parts(&app.access_token(&c, "jane@example.com").await).1;
    assert_ne!(a["jti"], b["jti"]);
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 600);
}

#[tokio::test]
async fn iat_follows_the_clock() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    app.clock.advance(chrono::TimeDelta::seconds(1000));
    let claims = decode_parts(&app.access_token(&c, "jane@example.com").await).1;
    assert_eq!(claims["iat"].as_i64(), Some(app.clock.now_seconds()));
}

async fn signs_with(alg: SigningAlg) {
    let app = spawn_app_with(|c| c.signing_alg = alg).await;
    let (token, user, _) = token_for_new_user(&app).await;
    assert_eq!(decode_parts(&token).0["alg"], alg.as_str());
    let claims = verify_with_jwks(&app.jwks().await, &token);
    assert_eq!(claims["sub"], user.to_string());
}

#[tokio::test]
async fn es256_tokens_verify_with_the_jwks() {
    signs_with(SigningAlg::ES256).await;
}

#[tokio::test]
async fn rs256_tokens_verify_with_the_jwks() {
    signs_with(SigningAlg::RS256).await;
}

#[tokio::test]
async fn hs256_tokens_use_the_shared_secret_and_publish_nothing() {
    let secret = b"0123456789abcdef0123456789abcdef-shared".to_vec();
    let s2 = secret.clone();
    let app = spawn_app_with(move |c| {
        c.signing_alg = SigningAlg::HS256;
        c.hs256_secret = Some(SecretSlice::from(s2));
    })
    .await;
    let (token, _, _) = token_for_new_user(&app).await;
    let (header, _) = decode_parts(&token);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(
        header["kid"],
        auth_server::domain::signing::hs256_kid(&secret)
    );
    assert_eq!(header["kid"].as_str().unwrap().len(), 16);
    let verifier = HS256.verifier_from_bytes(&secret).unwrap();
    jws::deserialize_compact(&token, &verifier).expect("HS256 signature verifies");
    assert_eq!(app.jwks().await, serde_json::json!({"keys": []}));
}

trait NowSeconds {
    fn now_seconds(&self) -> i64;
}

impl NowSeconds for shared::ManualClock {
    fn now_seconds(&self) -> i64 {
        use shared::Clock;
        self.now().timestamp()
    }
}
