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
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(user),
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

/// A `not_before` matters while a token minted before it could still be accepted somewhere:
/// for `TOKEN_TTL_SECONDS` plus the largest verifier leeway (360 s together with the margin,
/// docs/spec/auth-server.md §6). Snapshots carry it that long, to the second, and then drop it.
#[tokio::test]
async fn a_not_before_is_in_snapshots_for_the_token_lifetime_and_360_seconds_then_dropped() {
    let app = spawn_app().await;
    let rs = app.create_client("tokens:revocations", &[]).await;
    let c = app.create_client("rooms:list", &[]).await;
    let mut stored = app.find_client(&c).await;
    stored.tokens_not_before = Some(shared::Clock::now(app.clock.as_ref()));
    auth_server::store::applications::save(&app.state.db, &stored)
        .await
        .unwrap();
    let lifetime =
        app.state.config.token_ttl_seconds + shared::claims::REVOCATION_RETENTION_SECONDS;
    assert_eq!(shared::claims::REVOCATION_RETENTION_SECONDS, 360);
    let listed = |snap: &Value| lists_client(snap, c.client_id.as_str());
    app.clock.advance(TimeDelta::seconds(lifetime - 1));
    let snap: Value = app.feed(&rs, None).await.json().await.unwrap();
    assert!(listed(&snap), "1 s before the end: {snap}");
    app.clock.advance(TimeDelta::seconds(2));
    let snap: Value = app.feed(&rs, None).await.json().await.unwrap();
    assert!(!listed(&snap), "1 s after the end: {snap}");
}

#[tokio::test]
async fn a_deleted_applications_tombstone_is_kept_for_the_token_lifetime_and_360_seconds_then_purged()
 {
    let app = spawn_app().await;
    let rs = app.create_client("tokens:revocations", &[]).await;
    let c = app.create_client("rooms:list", &[]).await;
    let stored = app.find_client(&c).await;
    auth_server::domain::applications::delete(
        &app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        &stored.client_id,
        shared::Clock::now(app.clock.as_ref()),
    )
    .await
    .unwrap();
    let lifetime =
        app.state.config.token_ttl_seconds + shared::claims::REVOCATION_RETENTION_SECONDS;
    let listed = |snap: &Value| lists_client(snap, c.client_id.as_str());
    // No revocation exists: what the purge counts is the tombstone alone.
    assert_eq!(app.purge().await, 0, "right after the delete");
    app.clock.advance(TimeDelta::seconds(lifetime - 1));
    assert_eq!(app.purge().await, 0, "1 s before the end");
    let snap: Value = app.feed(&rs, None).await.json().await.unwrap();
    assert!(
        listed(&snap),
        "the tombstone's not_before is published: {snap}"
    );
    assert_eq!(tombstones(&app).await, 1);
    app.clock.advance(TimeDelta::seconds(2));
    assert_eq!(app.purge().await, 1, "1 s after the end");
    assert_eq!(tombstones(&app).await, 0, "the row itself is gone");
    assert_eq!(app.purge().await, 0, "purged once");
}

/// Deleted applications' rows still in the table.
async fn tombstones(app: &crate::helpers::TestApp) -> i64 {
    use sea_orm::ConnectionTrait;
    let db = &app.state.db;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM applications WHERE deleted_at IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Whether a feed page names `client_id` among the applications' not-befores.
fn lists_client(snap: &Value, client_id: &str) -> bool {
    snap["clients_not_before"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["client_id"] == client_id)
}

fn snap_time(token: &str) -> i64 {
    crate::helpers::decode_parts(token).1["iat"]
        .as_i64()
        .unwrap()
}

/// Follows `more` from `first` (a cursor, or none for a snapshot) with `limit` entries a page;
/// returns every page.
async fn pull(
    app: &crate::helpers::TestApp,
    rs: &crate::helpers::TestClient,
    first: Option<&str>,
    limit: u32,
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor = first.map(str::to_owned);
    loop {
        let q = match &cursor {
            Some(c) => format!("?cursor={c}&limit={limit}"),
            None => format!("?limit={limit}"),
        };
        let page: Value = app
            .client
            .get(app.url(&format!("/oauth/revocations{q}")))
            .basic_auth(&rs.client_id, Some(&rs.secret))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let more = page["more"] == true;
        cursor = Some(page["cursor"].as_str().unwrap().to_owned());
        pages.push(page);
        if !more {
            return pages;
        }
        assert!(pages.len() < 100, "the feed never ends");
    }
}

fn entries(pages: &[Value], part: &str, key: &str) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p[part].as_array().unwrap().iter())
        .map(|e| e[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn snapshots_and_deltas_come_in_pages_that_lose_and_repeat_nothing() {
    let app = spawn_app().await;
    let rs = app.create_client("tokens:revocations", &[]).await;
    let c = app.create_client("rooms:list", &[]).await;
    let mut jtis = Vec::new();
    let mut users = Vec::new();
    for i in 0..5 {
        let email = format!("u{i}@example.com");
        users.push(app.create_user(&email).await.to_string());
        let token = app.access_token(&c, &email).await;
        jtis.push(
            crate::helpers::decode_parts(&token).1["jti"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        app.revoke(&c, &token).await;
    }
    for u in &users[..3] {
        let id = uuid::Uuid::parse_str(u).unwrap();
        let now = shared::Clock::now(app.clock.as_ref());
        auth_server::domain::users::set_active(
            &app.state.db,
            &auth_server::domain::audit::Actor::Cli,
            auth_server::domain::users::UserRef::Id(id),
            false,
            now,
        )
        .await
        .unwrap();
    }
    app.clock.advance(TimeDelta::seconds(10));

    // 5 revocations + 3 users, 3 a page: 3 pages; only the first says "replace".
    let pages = pull(&app, &rs, None, 3).await;
    assert_eq!(pages.len(), 3);
    let flags: Vec<(bool, bool)> = pages
        .iter()
        .map(|p| (p["complete"] == true, p["more"] == true))
        .collect();
    assert_eq!(flags, [(true, true), (false, true), (false, false)]);
    let mut got = entries(&pages, "revoked", "jti");
    got.sort();
    let mut want = jtis.clone();
    want.sort();
    assert_eq!(got, want);
    let mut got_users = entries(&pages, "users_not_before", "user_id");
    got_users.sort();
    let mut want_users = users[..3].to_vec();
    want_users.sort();
    assert_eq!(got_users, want_users);
    // Every page names the keys.
    assert!(
        pages
            .iter()
            .all(|p| !p["kids"].as_array().unwrap().is_empty())
    );

    // Past the overlap: nothing changed, one empty page.
    app.clock.advance(TimeDelta::seconds(30));
    let end = pages.last().unwrap()["cursor"].as_str().unwrap().to_owned();
    let quiet = pull(&app, &rs, Some(&end), 3).await;
    assert_eq!(quiet.len(), 1);
    assert_eq!(quiet[0]["revoked"], json!([]));
    assert_eq!(quiet[0]["users_not_before"], json!([]));

    // Four new revocations and one user: a delta in two pages, only the new entries.
    let mut fresh = Vec::new();
    for i in 0..4 {
        let token = app
            .access_token(&c, &format!("u{}@example.com", 3 + i % 2))
            .await;
        fresh.push(
            crate::helpers::decode_parts(&token).1["jti"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        app.revoke(&c, &token).await;
    }
    let id = uuid::Uuid::parse_str(&users[4]).unwrap();
    let now = shared::Clock::now(app.clock.as_ref());
    auth_server::domain::users::set_active(
        &app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(id),
        false,
        now,
    )
    .await
    .unwrap();
    let cursor = quiet[0]["cursor"].as_str().unwrap().to_owned();
    let delta = pull(&app, &rs, Some(&cursor), 3).await;
    assert_eq!(delta.len(), 2);
    assert!(delta.iter().all(|p| p["complete"] == false));
    let mut got = entries(&delta, "revoked", "jti");
    got.sort();
    fresh.sort();
    assert_eq!(got, fresh);
    assert_eq!(
        entries(&delta, "users_not_before", "user_id"),
        [users[4].clone()]
    );

    // A limit out of range is clamped, never refused.
    let big = pull(&app, &rs, None, 1_000_000).await;
    assert_eq!(big.len(), 1);
    assert_eq!(big[0]["revoked"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn forged_feed_cursors_with_times_out_of_range_get_a_snapshot() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_app().await;
    let rs = app.create_client("tokens:revocations", &[]).await;
    let min = chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_micros();
    let far_past = -8_000_000_000_000_000_000_i64;
    let far_future = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros();
    for text in [
        format!("v1:{min}"),
        format!("v1:{far_past}"),
        format!("v2:{min}:{min}:r:-:"),
        format!("v2:1700000000000000:-:r:{far_future}:k"),
        format!("v2:1700000000000000:-:r:{far_past}:k"),
        format!("v2:1700000000000000:{min}:c:-:"),
    ] {
        let cursor = URL_SAFE_NO_PAD.encode(&text);
        let r = app.feed(&rs, Some(&cursor)).await;
        assert_eq!(r.status(), 200, "{text}");
        let feed: Value = r.json().await.unwrap();
        assert_eq!(feed["complete"], true, "{text}: a snapshot instead");
    }
}
