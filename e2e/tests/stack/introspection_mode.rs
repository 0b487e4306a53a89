//! docs/spec/rooms-api.md §1 `introspection` mode: cached answers, third-party servers, failing closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::TimeDelta;
use poem::web::Data;
use poem::{EndpointExt, Route, handler};
use serde_json::Value;
use shared::Clock;

use crate::helpers::RoomsRequests as _;
use crate::helpers::{ALL_ROOMS, Options, Stack, assert_error, spawn_stack_with};

async fn stack() -> Stack {
    spawn_stack_with(Options {
        introspection: true,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn n_requests_with_one_token_make_one_introspection_call() {
    let s = stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let introspector = s.rooms.auth.introspector().unwrap().clone();
    let before = introspector.call_count();
    let responses = futures::future::join_all((0..20).map(|_| s.get(&token, ""))).await;
    assert!(responses.iter().all(|r| r.status() == 200));
    for _ in 0..10 {
        assert_eq!(s.get(&token, "").await.status(), 200);
    }
    assert_eq!(introspector.call_count(), before + 1);
    // Past the positive cache lifetime, one more call.
    s.clock.advance(TimeDelta::seconds(31));
    assert_eq!(s.get(&token, "").await.status(), 200);
    assert_eq!(introspector.call_count(), before + 2);
}

#[tokio::test]
async fn revocation_is_honoured_once_the_cached_answer_expires() {
    let s = stack().await;
    let c = s.client(ALL_ROOMS, &[]).await;
    s.user("jane@example.com").await;
    let token = s.token(&c, "jane@example.com").await;
    assert_eq!(s.get(&token, "").await.status(), 200);
    assert_eq!(s.revoke(&c, &token).await.status(), 200);
    s.clock.advance(TimeDelta::seconds(31));
    let body = assert_error(s.get(&token, "").await, 401, "invalid_token").await;
    assert_eq!(body["error_description"], "The access token is not active");
}

#[tokio::test]
async fn garbage_is_401_and_negatively_cached() {
    let s = stack().await;
    let introspector = s.rooms.auth.introspector().unwrap().clone();
    let before = introspector.call_count();
    assert_error(s.get("garbage", "").await, 401, "invalid_token").await;
    assert_error(s.get("garbage", "").await, 401, "invalid_token").await;
    assert_eq!(introspector.call_count(), before + 1);
    s.clock.advance(TimeDelta::seconds(6));
    assert_error(s.get("garbage", "").await, 401, "invalid_token").await;
    assert_eq!(introspector.call_count(), before + 2);
}

/// A stand-in for a third-party RFC 7662 server answering with `answer`'s status and body.
async fn fake_introspection(status: u16, body: &'static str) -> (String, Arc<AtomicU64>) {
    #[handler]
    fn answer(Data(cfg): Data<&(u16, &'static str, Arc<AtomicU64>)>) -> poem::Response {
        cfg.2.fetch_add(1, Ordering::Relaxed);
        poem::Response::builder()
            .status(poem::http::StatusCode::from_u16(cfg.0).unwrap())
            .content_type("application/json")
            .body(cfg.1)
    }
    let calls = Arc::new(AtomicU64::new(0));
    let (acceptor, port) = server_kit::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let app =
        Route::new()
            .at("/introspect", poem::post(answer))
            .data((status, body, calls.clone()));
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (format!("http://127.0.0.1:{port}/introspect"), calls)
}

async fn stack_against(url: String, prefix: Option<&str>) -> Stack {
    let prefix = prefix.map(str::to_owned);
    spawn_stack_with(Options {
        introspection: true,
        rooms: Box::new(move |c| {
            let i = c.introspection.as_mut().unwrap();
            i.url = url;
            i.scope_prefix = prefix;
        }),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_third_party_answer_with_prefixed_scopes_is_accepted() {
    let (url, calls) = fake_introspection(
        200,
        r#"{"active": true, "sub": "kc-user-1", "client_id": "calendar",
        "scope": "openid meet:rooms:list meet:rooms:create", "aud": ["account", "rooms-api"],
        "iss": "http://auth.test", "exp": 99999999999}"#,
    )
    .await;
    let s = stack_against(url, Some("meet")).await;
    let r = s.post("opaque-token", "", None).await;
    assert_eq!(r.status(), 201);
    let list: Value = s.get("opaque-token", "").await.json().await.unwrap();
    assert_eq!(list["count"], 1);
    assert_error(
        s.get("opaque-token", &format!("/{}", uuid::Uuid::nil()))
            .await,
        403,
        "insufficient_scope",
    )
    .await;
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn answers_for_another_audience_or_issuer_or_without_subject_are_401() {
    for body in [
        r#"{"active": true, "sub": "u", "client_id": "c", "scope": "rooms:list", "aud": "other"}"#,
        r#"{"active": true, "sub": "u", "client_id": "c", "scope": "rooms:list", "iss": "http://evil"}"#,
        r#"{"active": true, "client_id": "c", "scope": "rooms:list"}"#,
        r#"{"active": false}"#,
    ] {
        let (url, _) = fake_introspection(200, body).await;
        let s = stack_against(url, None).await;
        assert_error(s.get("t", "").await, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn an_unreachable_or_broken_introspection_endpoint_is_503_never_a_pass() {
    for (status, body) in [
        (401, r#"{"error":"invalid_client"}"#),
        (500, "oops"),
        (200, "not json"),
        (200, r#"{"no":"active"}"#),
    ] {
        let (url, _) = fake_introspection(status, body).await;
        let s = stack_against(url, None).await;
        assert_error(s.get("t", "").await, 503, "temporarily_unavailable").await;
    }
    let s = stack_against("http://127.0.0.1:9/introspect".into(), None).await;
    assert_error(s.get("t", "").await, 503, "temporarily_unavailable").await;
    let ready = s
        .client
        .get(format!("{}/readyz", s.rooms_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let _ = s.clock.now();
}
