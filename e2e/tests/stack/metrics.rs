//! docs/spec/operations.md "Health and metrics": `/metrics` on its own listener, by route template.

use serde_json::json;

use crate::helpers::RoomsRequests as _;
use crate::helpers::{ALL_ROOMS, Options, metric_value as value, spawn_stack, spawn_stack_with};

#[tokio::test]
async fn counters_move_with_traffic_and_use_route_templates() {
    let s = spawn_stack().await;
    let c = s.client(ALL_ROOMS, &[]).await;
    s.user("jane@example.com").await;
    let token = s.token(&c, "jane@example.com").await;
    let room = s.create_room(&token).await;
    let id = room["id"].as_str().unwrap();
    s.get(&token, &format!("/{id}")).await;
    s.patch(&token, &format!("/{id}"), json!({})).await;
    s.client.get(s.rooms("")).send().await.unwrap(); // missing token
    s.client
        .post(format!("{}/oauth/token", s.auth_url))
        .basic_auth(&c.client_id, Some("wrong"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "jane@example.com"),
        ])
        .send()
        .await
        .unwrap();

    let rooms = s.metrics_page(&s.rooms_metrics_url).await;
    assert_eq!(
        value(
            &rooms,
            r#"http_requests_total{method="POST",route="/external-api/v1.0/rooms",status="201"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &rooms,
            r#"http_requests_total{method="GET",route="/external-api/v1.0/rooms/{id}",status="200"}"#
        ),
        1.0
    );
    assert!(!rooms.contains(id), "no raw path with ids");
    assert!(rooms.contains("http_request_duration_seconds_bucket"));
    assert_eq!(
        value(
            &rooms,
            r#"rooms_authentication_failures_total{reason="missing_token"}"#
        ),
        1.0
    );

    let auth = s.metrics_page(&s.auth_metrics_url).await;
    assert_eq!(
        value(
            &auth,
            &format!(r#"auth_tokens_issued_total{{client_id="{}"}}"#, c.client_id)
        ),
        1.0
    );
    assert_eq!(
        value(
            &auth,
            r#"auth_client_authentication_failures_total{reason="wrong_secret"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&auth, r#"auth_secret_cache_total{result="miss"}"#),
        2.0
    );
    assert_eq!(
        value(
            &auth,
            r#"http_requests_total{method="POST",route="/oauth/token",status="401"}"#
        ),
        1.0
    );
    // The API listener does not serve /metrics.
    assert_eq!(
        s.client
            .get(format!("{}/metrics", s.rooms_url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn cache_hits_misses_and_rate_limit_refusals_are_counted() {
    let s = spawn_stack_with(Options {
        introspection: true,
        ..Default::default()
    })
    .await;
    let token = s.token_with(ALL_ROOMS).await;
    for _ in 0..3 {
        s.get(&token, "").await;
    }
    let rooms = s.metrics_page(&s.rooms_metrics_url).await;
    assert_eq!(
        value(&rooms, r#"rooms_introspection_cache_total{result="miss"}"#),
        1.0
    );
    assert_eq!(
        value(&rooms, r#"rooms_introspection_cache_total{result="hit"}"#),
        2.0
    );
    let c = s.client(ALL_ROOMS, &[]).await;
    for _ in 0..11 {
        s.client
            .post(format!("{}/oauth/token", s.auth_url))
            .basic_auth(&c.client_id, Some("wrong"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "x@example.com"),
            ])
            .send()
            .await
            .unwrap();
    }
    let auth = s.metrics_page(&s.auth_metrics_url).await;
    assert!(
        value(
            &auth,
            r#"auth_client_authentication_failures_total{reason="rate_limited"}"#
        ) >= 1.0,
        "{auth}"
    );
    let again = s.client(ALL_ROOMS, &[]).await;
    s.user("jane@example.com").await;
    s.token(&again, "jane@example.com").await;
    s.token(&again, "jane@example.com").await;
    let auth = s.metrics_page(&s.auth_metrics_url).await;
    assert_eq!(
        value(&auth, r#"auth_secret_cache_total{result="hit"}"#),
        1.0,
        "the second token of a client"
    );
}

#[tokio::test]
async fn a_reused_token_pays_one_signature_check_and_revocation_still_applies() {
    let s = spawn_stack_with(Options {
        revocation_feed: true,
        ..Default::default()
    })
    .await;
    s.poll_feed().await;
    let c = s.client(ALL_ROOMS, &[]).await;
    s.user("jane@example.com").await;
    let token = s.token(&c, "jane@example.com").await;
    for _ in 0..5 {
        assert_eq!(s.get(&token, "").await.status(), 200);
    }
    let rooms = s.metrics_page(&s.rooms_metrics_url).await;
    assert_eq!(
        value(&rooms, r#"rooms_verified_token_cache_total{result="miss"}"#),
        1.0
    );
    assert_eq!(
        value(&rooms, r#"rooms_verified_token_cache_total{result="hit"}"#),
        4.0
    );
    // Revoked: the cached verification does not keep it alive.
    s.client
        .post(format!("{}/oauth/revoke", s.auth_url))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    s.poll_feed().await;
    assert_eq!(s.get(&token, "").await.status(), 401);
    // Expired: neither.
    let fresh = s.token(&c, "jane@example.com").await;
    assert_eq!(s.get(&fresh, "").await.status(), 200);
    s.clock.advance(chrono::TimeDelta::seconds(3600 + 31));
    s.poll_feed().await;
    assert_eq!(s.get(&fresh, "").await.status(), 401);
}
