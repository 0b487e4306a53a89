//! docs/spec/auth-server.md §5 and §6: revocation and the revocation feed.

use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn the_issuing_application_revokes_its_token() {
    let app = spawn_app().await;
    let rs = app.create_client("tokens:introspect", &[]).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let token = app.access_token(&c, "jane@example.com").await;
    let r = app.revoke(&c, &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(
        app.introspection(&rs, &token).await,
        json!({"active": false})
    );
    // Twice is fine.
    assert_eq!(app.revoke(&c, &token).await.status(), 200);
}

#[tokio::test]
async fn another_applications_token_is_left_alone_with_200() {
    let app = spawn_app().await;
    let rs = app.create_client("tokens:introspect", &[]).await;
    let owner = app.create_client("rooms:list", &[]).await;
    let other = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let token = app.access_token(&owner, "jane@example.com").await;
    assert_eq!(app.revoke(&other, &token).await.status(), 200);
    assert_eq!(app.introspection(&rs, &token).await["active"], true);
}

#[tokio::test]
async fn unknown_tokens_are_200_and_bad_callers_are_refused() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    assert_eq!(app.revoke(&c, "not-a-token").await.status(), 200);
    let r = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
    let r = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn revocations_are_purged_after_the_token_expires() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let token = app.access_token(&c, "jane@example.com").await;
    app.revoke(&c, &token).await;
    assert_eq!(app.purge().await, 0);
    // Kept and published past exp for as long as any verifier's leeway (up to 300 s) accepts
    // the token.
    app.clock.advance(TimeDelta::seconds(3600 + 290));
    assert_eq!(app.purge().await, 0);
    let rs = app.create_client("tokens:revocations", &[]).await;
    let feed: serde_json::Value = app.feed(&rs, None).await.json().await.unwrap();
    assert_eq!(feed["revoked"].as_array().map(Vec::len), Some(1), "{feed}");
    app.clock.advance(TimeDelta::seconds(71));
    assert_eq!(app.purge().await, 1);
}

#[tokio::test]
async fn the_feed_needs_the_privilege() {
    let app = spawn_app().await;
    let plain = app.create_client("rooms:list", &[]).await;
    assert_error(app.feed(&plain, None).await, 403, "unauthorized_client").await;
    let r = app
        .client
        .get(app.url("/oauth/revocations"))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
}

#[tokio::test]
async fn the_feed_gives_a_snapshot_then_changes_since_the_cursor() {
    let app = spawn_app().await;
    let rs = app.create_client("tokens:revocations", &[]).await;
    let c = app.create_client("rooms:list", &[]).await;
    let user = app.create_user("jane@example.com").await;
    let token = app.access_token(&c, "jane@example.com").await;
    let jti = crate::helpers::decode_parts(&token).1["jti"].clone();
    app.revoke(&c, &token).await;
    app.clock.advance(TimeDelta::seconds(10));

    let snap: Value = app.feed(&rs, None).await.json().await.unwrap();
    assert_eq!(snap["complete"], true);
    assert_eq!(snap["revoked"][0]["jti"], jti);
    assert_eq!(snap["clients_not_before"], json!([]));
    let cursor = snap["cursor"].as_str().unwrap().to_owned();

    // Much later (past the overlap), a user deactivation and a secret rotation appear as changes.
    app.clock.advance(TimeDelta::seconds(30));
    auth_server::domain::users::set_active(
        &app.state.db,
        user,
        false,
        shared::Clock::now(app.clock.as_ref()),
    )
    .await
    .unwrap();
    let mut stored = app.find_client(&c).await;
    stored.tokens_not_before = Some(shared::Clock::now(app.clock.as_ref()));
    auth_server::store::applications::save(&app.state.db, &stored)
        .await
        .unwrap();
    let delta: Value = app.feed(&rs, Some(&cursor)).await.json().await.unwrap();
    assert_eq!(delta["complete"], false);
    assert_eq!(delta["revoked"], json!([]), "old revocation not re-sent");
    assert_eq!(delta["users_not_before"][0]["user_id"], user.to_string());
    assert_eq!(delta["clients_not_before"][0]["client_id"], c.client_id);
    assert!(
        delta["clients_not_before"][0]["not_before"]
            .as_i64()
            .unwrap()
            >= snap_time(&token)
    );

    // Garbage cursor: a full snapshot.
    let again: Value = app.feed(&rs, Some("garbage")).await.json().await.unwrap();
    assert_eq!(again["complete"], true);
}

fn snap_time(token: &str) -> i64 {
    crate::helpers::decode_parts(token).1["iat"]
        .as_i64()
        .unwrap()
}
