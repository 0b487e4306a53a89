//! The rooms API's verified-token cache (server-kit/src/verified_tokens.rs) remembers only a
//! signature: a token served from it is still refused on the very next request once it is
//! revoked, its key retired, its application's `tokens_not_before` passed over it, its user
//! deactivated, or its `exp` (plus leeway) gone by.

use chrono::TimeDelta;
use shared::Clock;

use crate::helpers::RoomsRequests as _;
use crate::helpers::{ALL_ROOMS, Client, Options, Stack, assert_error, spawn_stack_with};

/// The rooms API's verified-token cache counter for `result` (`hit` or `miss`).
async fn lookups(s: &Stack, result: &str) -> f64 {
    let series = format!("rooms_verified_token_cache_total{{result=\"{result}\"}}");
    s.metric(&s.rooms_metrics_url, &series).await
}

/// A stack with the feed, a client, jane, and her token verified once and then served from the
/// cache (one miss, then a hit).
async fn cached() -> (Stack, Client, uuid::Uuid, String) {
    let s = spawn_stack_with(Options {
        revocation_feed: true,
        ..Default::default()
    })
    .await;
    s.poll_feed().await;
    let c = s.client(ALL_ROOMS, &["example.com"]).await;
    let user = uuid::Uuid::parse_str(&s.user("jane@example.com").await).unwrap();
    let token = s.token(&c, "jane@example.com").await;
    assert_eq!(s.get(&token, "").await.status(), 200);
    let hits = lookups(&s, "hit").await;
    assert_eq!(s.get(&token, "").await.status(), 200);
    assert_eq!(
        lookups(&s, "hit").await,
        hits + 1.0,
        "served from the cache"
    );
    (s, c, user, token)
}

/// The next request with `token` is refused as revoked, and it was a cache hit: the cached
/// signature did not keep it alive.
async fn refused_although_cached(s: &Stack, token: &str) {
    s.poll_feed().await;
    let hits = lookups(s, "hit").await;
    let body = assert_error(s.get(token, "").await, 401, "invalid_token").await;
    assert_eq!(body["error_description"], "The access token was revoked");
    assert_eq!(lookups(s, "hit").await, hits + 1.0, "it was still cached");
}

#[tokio::test]
async fn a_cached_token_is_refused_on_the_next_request_once_revoked() {
    let (s, c, _, token) = cached().await;
    assert_eq!(s.revoke(&c, &token).await.status(), 200);
    refused_although_cached(&s, &token).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_on_the_next_request_once_its_application_is_deactivated() {
    let (s, c, _, token) = cached().await;
    let app = auth_server::domain::applications::update(
        &s.auth.db,
        &auth_server::domain::audit::Actor::Cli,
        &shared::ClientId::parse(&c.client_id).unwrap(),
        auth_server::domain::applications::Changes {
            active: Some(false),
            ..Default::default()
        },
        3600,
        s.clock.now(),
    )
    .await
    .unwrap();
    assert!(!app.is_active);
    refused_although_cached(&s, &token).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_on_the_next_request_once_its_user_is_deactivated() {
    let (s, _, user, token) = cached().await;
    auth_server::domain::users::set_active(
        &s.auth.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(user),
        false,
        s.clock.now(),
    )
    .await
    .unwrap();
    refused_although_cached(&s, &token).await;
}

#[tokio::test]
async fn a_cached_token_is_refused_on_the_next_request_once_its_key_is_retired() {
    let (s, _, _, token) = cached().await;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    s.auth
        .keys
        .rotate(&s.auth.db, s.clock.now(), true)
        .await
        .unwrap();
    s.clock.advance(TimeDelta::seconds(1));
    auth_server::domain::signing::retire(&s.auth.db, &kid, s.clock.now())
        .await
        .unwrap();
    s.poll_feed().await;
    // A retired key's entries are dropped at their next lookup: a miss, then refused.
    let misses = lookups(&s, "miss").await;
    let body = assert_error(s.get(&token, "").await, 401, "invalid_token").await;
    assert_eq!(body["error_description"], "The access token was revoked");
    assert_eq!(
        lookups(&s, "miss").await,
        misses + 1.0,
        "dropped from the cache"
    );
}

#[tokio::test]
async fn a_cached_token_is_never_served_past_its_exp_and_leeway() {
    let (s, _, _, token) = cached().await;
    let leeway = s.rooms.config.leeway_seconds;
    // A second before the end of its leeway it is still good, from the cache.
    s.clock.advance(TimeDelta::seconds(3600 + leeway - 1));
    s.poll_feed().await;
    assert_eq!(s.get(&token, "").await.status(), 200);
    // One second after, the cached signature does not keep it alive.
    s.clock.advance(TimeDelta::seconds(2));
    s.poll_feed().await;
    let hits = lookups(&s, "hit").await;
    assert_error(s.get(&token, "").await, 401, "invalid_token").await;
    assert_eq!(lookups(&s, "hit").await, hits + 1.0, "it was still cached");
}
