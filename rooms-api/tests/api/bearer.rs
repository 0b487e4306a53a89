//! docs/spec/rooms-api.md §2: the bearer table and the order of checks.

use serde_json::json;

use crate::helpers::RoomsRequests as _;
use crate::helpers::{Options, assert_error, challenge, spawn_stack, spawn_stack_with};

#[tokio::test]
async fn no_authorization_header_or_another_scheme_is_401_missing_token() {
    let s = spawn_stack().await;
    let r = s.client.get(s.rooms("")).send().await.unwrap();
    assert_eq!(
        challenge(&r).as_deref(),
        Some(r#"Bearer realm="rooms-api""#)
    );
    assert_error(r, 401, "missing_token").await;
    let r = s
        .client
        .get(s.rooms(""))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        challenge(&r).as_deref(),
        Some(r#"Bearer realm="rooms-api""#)
    );
    assert_error(r, 401, "missing_token").await;
}

#[tokio::test]
async fn bearer_without_a_token_or_with_several_is_400_invalid_request() {
    let s = spawn_stack().await;
    for value in ["Bearer", "Bearer ", "Bearer a b"] {
        let r = s
            .client
            .get(s.rooms(""))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            challenge(&r).as_deref(),
            Some(r#"Bearer realm="rooms-api", error="invalid_request""#),
            "{value}"
        );
        assert_error(r, 400, "invalid_request").await;
    }
    let r = s
        .client
        .get(s.rooms(""))
        .header("authorization", "Bearer a")
        .header("authorization", "Bearer b")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn an_invalid_token_is_401_invalid_token_with_a_fixed_description() {
    let s = spawn_stack().await;
    let r = s.get("not-a-jwt", "").await;
    let c = challenge(&r).unwrap();
    assert!(
        c.starts_with(r#"Bearer realm="rooms-api", error="invalid_token", error_description=""#),
        "{c}"
    );
    assert!(c.is_ascii());
    assert_error(r, 401, "invalid_token").await;
}

#[tokio::test]
async fn the_scheme_is_case_insensitive() {
    let s = spawn_stack().await;
    let token = s.token_with("rooms:list").await;
    let r = s
        .client
        .get(s.rooms(""))
        .header("authorization", format!("bEaReR {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_valid_token_without_the_scope_is_403_with_the_scope_named() {
    let s = spawn_stack().await;
    let token = s.token_with("rooms:create").await;
    let r = s.get(&token, "").await;
    assert_eq!(
        challenge(&r).as_deref(),
        Some(r#"Bearer realm="rooms-api", error="insufficient_scope", scope="rooms:list""#)
    );
    assert_error(r, 403, "insufficient_scope").await;
}

#[tokio::test]
async fn order_401_before_400_body_errors() {
    let s = spawn_stack().await;
    let r = s
        .client
        .post(s.rooms(""))
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "missing_token").await;
    let r = s
        .client
        .post(s.rooms(""))
        .body(vec![b'x'; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "missing_token").await;
}

#[tokio::test]
async fn order_403_scope_before_400_body_and_404_lookup() {
    let s = spawn_stack().await;
    let token = s.token_with("rooms:list").await;
    let r = s
        .client
        .post(s.rooms(""))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "insufficient_scope").await;
    assert_error(
        s.get(&token, "/00000000-0000-0000-0000-000000000000").await,
        403,
        "insufficient_scope",
    )
    .await;
    assert_error(
        s.patch(&token, "/not-a-uuid", json!({"access_level": null}))
            .await,
        403,
        "insufficient_scope",
    )
    .await;
}

#[tokio::test]
async fn order_400_body_before_404_lookup_and_413_415() {
    let s = spawn_stack().await;
    let token = s.token_with("rooms:update rooms:create").await;
    let r = s
        .patch(
            &token,
            "/00000000-0000-0000-0000-000000000000",
            json!({"access_level": "nope"}),
        )
        .await;
    let body = assert_error(r, 400, "invalid_request").await;
    assert!(body["fields"]["access_level"].is_array());
    let r = s
        .client
        .post(s.rooms(""))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(vec![b' '; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "invalid_request").await;
    let r = s
        .client
        .post(s.rooms(""))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "invalid_request").await;
    let r = s
        .client
        .post(s.rooms(""))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "invalid_request").await;
    assert!(body["fields"]["body"].is_array());
}

/// A flood of distinct valid tokens (each verified, so each may enter the verified-token cache)
/// leaves the cache within its byte budget, and the token an integrator keeps using is still
/// served from it: one-off tokens do not push it out (moka admits by frequency).
#[tokio::test]
async fn the_verified_token_cache_stays_within_its_budget_under_distinct_valid_tokens() {
    const BUDGET: u64 = 64 * 1024;
    let s = spawn_stack_with(Options {
        rooms: Box::new(|c| c.verified_token_cache_bytes = BUDGET),
    })
    .await;
    let in_use = s.token_with("rooms:list").await;
    for _ in 0..5 {
        assert_eq!(s.get(&in_use, "").await.status(), 200);
    }
    for i in 0..400 {
        let one_off = s.token_with("rooms:list").await;
        assert_eq!(s.get(&one_off, "").await.status(), 200);
        if i % 50 == 0 {
            assert_eq!(s.get(&in_use, "").await.status(), 200);
        }
    }
    let held = s.rooms.auth.verified_cache_bytes();
    // ~1 KB an entry: 400 tokens would be ~400 KB unbounded.
    assert!(
        held <= BUDGET,
        "the cache holds {held} bytes, budget {BUDGET}"
    );
    assert!(held > BUDGET / 2, "and is used ({held} bytes)");
    let hits = || {
        s.rooms
            .metrics
            .token_cache
            .with_label_values(&["hit"])
            .get()
    };
    let before = hits();
    assert_eq!(s.get(&in_use, "").await.status(), 200);
    assert_eq!(
        hits(),
        before + 1,
        "the token in use is still served from it"
    );
}
