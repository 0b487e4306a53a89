//! docs/spec/rooms-api.md §1 and docs/spec/security.md "Tokens": forged, expired and foreign tokens are 401.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::TimeDelta;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{self, EdDSA, HS256, JwsHeader};
use serde_json::{Value, json};
use shared::{Clock, SigningAlg};

use crate::helpers::RoomsRequests as _;
use crate::helpers::{ALL_ROOMS, Options, Stack, assert_error, spawn_stack, spawn_stack_with};

fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let h = serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
    let p = serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
    (h, p, it.next().unwrap().to_owned())
}

fn enc(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

async fn refused(s: &Stack, token: &str) -> Value {
    assert_error(s.get(token, "").await, 401, "invalid_token").await
}

#[tokio::test]
async fn alg_none_is_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let (mut h, p, _) = parts(&token);
    h["alg"] = json!("none");
    refused(&s, &format!("{}.{}.", enc(&h), enc(&p))).await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let (h, p, _) = parts(&token);
    let jwks: Value = s
        .client
        .get(format!("{}/.well-known/jwks.json", s.auth_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = &jwks["keys"][0];
    let x = B64.decode(jwk["x"].as_str().unwrap()).unwrap();
    for secret in [x, serde_json::to_vec(jwk).unwrap()] {
        let mut header = JwsHeader::new();
        header.set_token_type("at+jwt");
        header.set_key_id(h["kid"].as_str().unwrap());
        let signer = HS256.signer_from_bytes(&secret).unwrap();
        let forged =
            jws::serialize_compact(&serde_json::to_vec(&p).unwrap(), &header, &signer).unwrap();
        refused(&s, &forged).await;
    }
}

#[tokio::test]
async fn a_changed_payload_is_refused() {
    let s = spawn_stack().await;
    let token = s.token_with("rooms:list").await;
    let (h, mut p, sig) = parts(&token);
    p["scope"] = json!(ALL_ROOMS);
    let body = refused(&s, &format!("{}.{}.{sig}", enc(&h), enc(&p))).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("signature")
    );
}

#[tokio::test]
async fn truncated_and_padded_tokens_are_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    refused(&s, &token[..token.len() - 4]).await;
    let (h, p, sig) = parts(&token);
    refused(&s, &format!("{}==.{}.{sig}", enc(&h), enc(&p))).await;
    assert_eq!(s.get(&token, "").await.status(), 200);
}

#[tokio::test]
async fn an_unknown_kid_is_refused_and_refetched_at_most_once_per_10s() {
    unknown_kid_refetches(spawn_stack().await).await;
}

/// With the revocation feed on, a kid it never announced still gets only the 10 s slot, not the
/// 500 ms one of announced kids.
#[tokio::test]
async fn an_unannounced_kid_gets_the_10s_refetch_slot_with_the_feed_on() {
    let s = crate::helpers::spawn_stack_with(crate::helpers::Options {
        revocation_feed: true,
        ..Default::default()
    })
    .await;
    s.poll_feed().await;
    unknown_kid_refetches(s).await;
}

async fn unknown_kid_refetches(s: crate::helpers::Stack) {
    let good = s.token_with(ALL_ROOMS).await;
    assert_eq!(s.get(&good, "").await.status(), 200);
    let (_, p, _) = parts(&good);
    let kp = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
    let signer = EdDSA
        .signer_from_der(josekit::jwk::KeyPair::to_der_private_key(&kp))
        .unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id("attacker-kid");
    let forged =
        jws::serialize_compact(&serde_json::to_vec(&p).unwrap(), &header, &signer).unwrap();
    let jwks = s.rooms.auth.jwks().unwrap().clone();
    let before = jwks.fetch_count();
    refused(&s, &forged).await;
    refused(&s, &forged).await;
    refused(&s, &forged).await;
    assert_eq!(
        jwks.fetch_count(),
        before + 1,
        "one refetch for a burst of unknown kids"
    );
    s.clock.advance(TimeDelta::seconds(1));
    refused(&s, &forged).await;
    assert_eq!(jwks.fetch_count(), before + 1, "none a second later");
    s.clock.advance(TimeDelta::seconds(10));
    refused(&s, &forged).await;
    assert_eq!(jwks.fetch_count(), before + 2);
}

#[tokio::test]
async fn expiry_is_enforced_with_leeway_by_moving_the_clock() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    s.clock.advance(TimeDelta::seconds(3600 + 29));
    assert_eq!(s.get(&token, "").await.status(), 200);
    s.clock.advance(TimeDelta::seconds(2));
    let body = refused(&s, &token).await;
    assert_eq!(body["error_description"], "The access token expired");
}

#[tokio::test]
async fn a_token_from_a_rotated_out_key_is_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    assert_eq!(s.get(&token, "").await.status(), 200);
    let old_kid = parts(&token).0["kid"].as_str().unwrap().to_owned();
    // Rotate, then retire the old key from the table (as if its publication window had ended).
    s.auth
        .keys
        .rotate(&s.auth.db, s.clock.now(), true)
        .await
        .unwrap();
    {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        auth_server::store::entity::signing_keys::Entity::delete_many()
            .filter(auth_server::store::entity::signing_keys::Column::Kid.eq(old_kid))
            .exec(&s.auth.db)
            .await
            .unwrap();
    }
    s.auth
        .keys
        .refresh(&s.auth.db, s.clock.now())
        .await
        .unwrap();
    s.rooms.auth.jwks().unwrap().fetch().await.unwrap();
    refused(&s, &token).await;
    // Tokens of the new key work.
    let fresh = s.token_with(ALL_ROOMS).await;
    assert_eq!(s.get(&fresh, "").await.status(), 200);
}

#[tokio::test]
async fn a_kid_pointing_at_another_published_key_is_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let other_kid = s
        .auth
        .keys
        .rotate(&s.auth.db, s.clock.now(), false)
        .await
        .unwrap();
    s.auth
        .keys
        .refresh(&s.auth.db, s.clock.now())
        .await
        .unwrap();
    let (mut h, p, sig) = parts(&token);
    h["kid"] = json!(other_kid);
    let body = refused(&s, &format!("{}.{}.{sig}", enc(&h), enc(&p))).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{body}"
    );
}

#[tokio::test]
async fn a_header_alg_that_differs_from_the_jwks_alg_is_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let (mut h, p, sig) = parts(&token);
    for alg in ["ES256", "RS256", "HS256", "none", "EdDSA "] {
        h["alg"] = json!(alg);
        let body = refused(&s, &format!("{}.{}.{sig}", enc(&h), enc(&p))).await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("algorithm"),
            "{alg}: {body}"
        );
    }
}

#[tokio::test]
async fn tokens_missing_each_required_claim_are_refused() {
    let s = hs256_stack().await;
    for claim in ["iss", "aud", "exp", "client_id", "delegated"] {
        let mut c = claims(&s);
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            s.get(&hs256(Some("at+jwt"), &c), "").await.status(),
            401,
            "without {claim}"
        );
    }
    let mut c = claims(&s);
    c.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        s.get(&hs256(Some("at+jwt"), &c), "").await.status(),
        401,
        "without sub and user_id"
    );
}

#[tokio::test]
async fn a_token_for_another_audience_from_the_same_issuer_is_refused() {
    let s = hs256_stack().await;
    let mut c = claims(&s);
    c["aud"] = json!("billing-api");
    let body = assert_error(
        s.get(&hs256(Some("at+jwt"), &c), "").await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(
        body["error_description"],
        "The access token is not meant for this audience"
    );
}

#[tokio::test]
async fn es256_and_rs256_tokens_verify_through_the_jwks() {
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        let s = spawn_stack_with(Options {
            signing_alg: alg,
            ..Default::default()
        })
        .await;
        let token = s.token_with(ALL_ROOMS).await;
        assert_eq!(parts(&token).0["alg"], alg.as_str());
        assert_eq!(s.get(&token, "").await.status(), 200, "{alg}");
    }
}

const SECRET: &[u8] = b"a-shared-secret-of-at-least-32-bytes!!";

fn hs256(header_typ: Option<&str>, claims: &Value) -> String {
    let mut h = JwsHeader::new();
    if let Some(t) = header_typ {
        h.set_token_type(t);
    }
    let signer = HS256.signer_from_bytes(SECRET).unwrap();
    jws::serialize_compact(&serde_json::to_vec(claims).unwrap(), &h, &signer).unwrap()
}

async fn hs256_stack() -> Stack {
    spawn_stack_with(Options {
        signing_alg: SigningAlg::HS256,
        hs256_secret: Some(SECRET.to_vec()),
        ..Default::default()
    })
    .await
}

fn claims(s: &Stack) -> Value {
    let now = s.clock.now().timestamp();
    json!({"iss": "http://auth.test", "aud": "rooms-api", "sub": "user-1", "client_id": "client-1",
        "scope": "rooms:list", "delegated": true, "iat": now, "nbf": now, "exp": now + 600})
}

#[tokio::test]
async fn hs256_mode_accepts_auth_server_and_upstream_style_tokens() {
    let s = hs256_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    assert_eq!(parts(&token).0["alg"], "HS256");
    assert_eq!(s.get(&token, "").await.status(), 200);
    let c = claims(&s);
    assert_eq!(s.get(&hs256(Some("JWT"), &c), "").await.status(), 200);
    assert_eq!(s.get(&hs256(None, &c), "").await.status(), 200);
    let mut array_scope = c.clone();
    array_scope["scope"] = json!(["ROOMS:LIST", "rooms:list"]);
    assert_eq!(
        s.get(&hs256(Some("at+jwt"), &array_scope), "")
            .await
            .status(),
        200
    );
    let mut user_id_only = c.clone();
    user_id_only.as_object_mut().unwrap().remove("sub");
    user_id_only["user_id"] = json!("user-1");
    assert_eq!(
        s.get(&hs256(Some("at+jwt"), &user_id_only), "")
            .await
            .status(),
        200
    );
    let mut aud_array = c.clone();
    aud_array["aud"] = json!(["other", "rooms-api"]);
    assert_eq!(
        s.get(&hs256(Some("at+jwt"), &aud_array), "").await.status(),
        200
    );
}

#[tokio::test]
async fn hs256_mode_refuses_every_bad_claim() {
    let s = hs256_stack().await;
    let c = claims(&s);
    let now = s.clock.now().timestamp();
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut v = c.clone();
    v["iss"] = json!("http://evil.test");
    cases.push(("issuer", v));
    let mut v = c.clone();
    v["aud"] = json!("other-api");
    cases.push(("audience", v));
    let mut v = c.clone();
    v["aud"] = json!(["a", "b"]);
    cases.push(("audience", v));
    let mut v = c.clone();
    v.as_object_mut().unwrap().remove("exp");
    cases.push(("malformed", v));
    let mut v = c.clone();
    v["delegated"] = json!(false);
    cases.push(("delegated", v));
    let mut v = c.clone();
    v.as_object_mut().unwrap().remove("delegated");
    cases.push(("delegated", v));
    let mut v = c.clone();
    v["nbf"] = json!(now + 120);
    cases.push(("not yet valid", v));
    let mut v = c.clone();
    v["iat"] = json!(now + 120);
    cases.push(("not yet valid", v));
    let mut v = c.clone();
    v.as_object_mut().unwrap().remove("sub");
    cases.push(("subject", v));
    let mut v = c.clone();
    v.as_object_mut().unwrap().remove("client_id");
    cases.push(("client", v));
    let mut v = c.clone();
    v["exp"] = json!(now - 31);
    cases.push(("expired", v));
    for (why, claims) in cases {
        let r = s.get(&hs256(Some("at+jwt"), &claims), "").await;
        assert_eq!(r.status(), 401, "{why}: {claims}");
    }
    // A typ that is neither at+jwt nor JWT.
    assert_eq!(s.get(&hs256(Some("id+jwt"), &c), "").await.status(), 401);
    // An EdDSA token is not accepted in HS256 mode.
    let kp = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
    let signer = EdDSA
        .signer_from_der(josekit::jwk::KeyPair::to_der_private_key(&kp))
        .unwrap();
    let mut h = JwsHeader::new();
    h.set_token_type("at+jwt");
    let eddsa = jws::serialize_compact(&serde_json::to_vec(&c).unwrap(), &h, &signer).unwrap();
    assert_eq!(s.get(&eddsa, "").await.status(), 401);
}

#[tokio::test]
async fn jwks_mode_refuses_hs256_and_plain_jwt_typ() {
    let s = spawn_stack().await;
    let c = claims(&s);
    assert_eq!(s.get(&hs256(Some("at+jwt"), &c), "").await.status(), 401);
    let token = s.token_with(ALL_ROOMS).await;
    let (mut h, p, sig) = parts(&token);
    h["typ"] = json!("JWT");
    assert_eq!(
        s.get(&format!("{}.{}.{sig}", enc(&h), enc(&p)), "")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn an_unreachable_jwks_before_any_key_is_loaded_is_503() {
    let s = spawn_stack_with(Options {
        rooms: Box::new(|c| c.jwks_url = "http://127.0.0.1:9/.well-known/jwks.json".into()),
        ..Default::default()
    })
    .await;
    let token = s.token_with(ALL_ROOMS).await;
    assert_error(s.get(&token, "").await, 503, "temporarily_unavailable").await;
    let r = s
        .client
        .get(format!("{}/readyz", s.rooms_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}
