//! The row cache (`auth-server/src/store/row_cache.rs`): a client that calls again reads no
//! row from the database, and every change the contract says takes effect at once still does
//! — on the next request, though the rows were cached — whoever made it: this process's admin
//! API, another writer on the database (seen through the triggers), another replica.

use std::time::{Duration, Instant};

use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{TestApp, TestClient, spawn_app, spawn_on};

fn lookups(app: &TestApp, result: &str) -> u64 {
    app.state
        .metrics
        .row_cache
        .with_label_values(&[result])
        .get()
}

/// A token request for `email` answered from the row cache, asserting 200.
async fn cached_token(app: &TestApp, c: &TestClient, email: &str) {
    let hits = lookups(app, "hit");
    assert_eq!(app.token_basic(c, email).await.status(), 200);
    assert_eq!(
        lookups(app, "hit"),
        hits + 1,
        "the request was answered from the row cache"
    );
}

/// Token requests (200) until one is answered from memory. After a write of this process
/// the SQLite poll also sees it, up to `SQLITE_POLL` later, and drops what was cached in
/// between once more: a spurious miss, never a stale answer.
async fn warm(app: &TestApp, c: &TestClient, email: &str) {
    for _ in 0..40 {
        let hits = lookups(app, "hit");
        assert_eq!(app.token_basic(c, email).await.status(), 200);
        if lookups(app, "hit") > hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never answered from the row cache");
}

/// Waits (at most `within`) for a token request to be refused with `status`; how long it took.
async fn refused_within(
    app: &TestApp,
    c: &TestClient,
    email: &str,
    status: u16,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = app.token_basic(c, email).await.status();
        if got == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still {got} after {within:?}: the change was not seen"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_client_that_calls_again_is_answered_from_memory() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("jane@example.com").await;
    let misses = lookups(&app, "miss");
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 200);
    assert_eq!(lookups(&app, "miss"), misses + 1, "the first request reads");
    for _ in 0..3 {
        cached_token(&app, &c, "jane@example.com").await;
    }
    // Introspection: the caller, the token's application and user, and "not revoked".
    let rs = app.create_client("tokens:introspect", &[]).await;
    let token = app.access_token(&c, "jane@example.com").await;
    assert_eq!(app.introspection(&rs, &token).await["active"], true);
    let hits = lookups(&app, "hit");
    assert_eq!(app.introspection(&rs, &token).await["active"], true);
    assert_eq!(lookups(&app, "hit"), hits + 1);
    // A stranger's client_id or an unknown user is never kept: each asks the database.
    let misses = lookups(&app, "miss");
    for _ in 0..2 {
        assert_eq!(
            app.token_basic(&c, "nobody@example.com").await.status(),
            404
        );
    }
    assert_eq!(lookups(&app, "hit"), hits + 1);
    assert_eq!(lookups(&app, "miss"), misses + 2);
}

/// Deactivation, secret rotation, domain removal, user deactivation and revocation through the
/// admin API and the revocation endpoint: each is in force on the very next request, though
/// that request's rows were cached just before.
#[tokio::test]
async fn every_change_is_in_force_on_the_next_request_though_the_rows_were_cached() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("ops").await;
    let admin = app.admin_as(&key);
    let c = app
        .create_client("rooms:list", &["example.com", "example.org"])
        .await;
    app.create_user("jane@example.com").await;
    let bob = app.create_user("bob@example.org").await;
    let path = format!("/admin/v1/applications/{}", c.client_id);

    // Domain removal.
    warm(&app, &c, "jane@example.com").await;
    admin
        .expect(
            Method::PATCH,
            &path,
            json!({"domains": ["example.org"]}),
            200,
        )
        .await;
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 403);

    // User deactivation.
    warm(&app, &c, "bob@example.org").await;
    admin
        .expect(
            Method::PATCH,
            &format!("/admin/v1/users/{bob}"),
            json!({"is_active": false}),
            200,
        )
        .await;
    assert_eq!(app.token_basic(&c, "bob@example.org").await.status(), 403);
    admin
        .expect(
            Method::PATCH,
            &format!("/admin/v1/users/{bob}"),
            json!({"is_active": true}),
            200,
        )
        .await;

    // Secret rotation.
    warm(&app, &c, "bob@example.org").await;
    let rotated = admin
        .expect(
            Method::POST,
            &format!("{path}/rotate-secret"),
            json!({}),
            200,
        )
        .await;
    assert_eq!(app.token_basic(&c, "bob@example.org").await.status(), 401);
    let c = TestClient {
        client_id: c.client_id.clone(),
        secret: rotated["client_secret"].as_str().unwrap().to_owned(),
    };

    // Revocation, seen by introspection whose "not revoked" was cached.
    let rs = app.create_client("tokens:introspect", &[]).await;
    let token = app.access_token(&c, "bob@example.org").await;
    assert_eq!(app.introspection(&rs, &token).await["active"], true);
    let hits = lookups(&app, "hit");
    assert_eq!(app.introspection(&rs, &token).await["active"], true);
    assert_eq!(lookups(&app, "hit"), hits + 1);
    assert_eq!(app.revoke(&c, &token).await.status(), 200);
    assert_eq!(
        app.introspection(&rs, &token).await,
        json!({"active": false})
    );

    // Deactivation.
    warm(&app, &c, "bob@example.org").await;
    admin
        .expect(Method::PATCH, &path, json!({"is_active": false}), 200)
        .await;
    assert_eq!(app.token_basic(&c, "bob@example.org").await.status(), 401);
}

/// Another writer on the database (here plain SQL on a connection of its own, as a CLI or an
/// operator's script would) is seen through the triggers: on SQLite within one poll of the
/// change counters, on PostgreSQL at the NOTIFY. The token endpoint's own note of
/// `last_token_at` signals nothing, so it never empties the cache.
#[tokio::test]
async fn another_writers_change_is_seen_through_the_database() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("jane@example.com").await;
    let other = server_kit::db::connect(&app.database_url, 1).await.unwrap();
    let poll = auth_server::store::changes::SQLITE_POLL;
    warm(&app, &c, "jane@example.com").await;
    tokio::time::sleep(3 * poll).await;
    other
        .execute_unprepared(&format!(
            "UPDATE applications SET last_token_at = created_at WHERE client_id = '{}'",
            c.client_id
        ))
        .await
        .unwrap();
    tokio::time::sleep(3 * poll).await;
    cached_token(&app, &c, "jane@example.com").await;

    other
        .execute_unprepared(&format!(
            "UPDATE applications SET is_active = false WHERE client_id = '{}'",
            c.client_id
        ))
        .await
        .unwrap();
    let took = refused_within(&app, &c, "jane@example.com", 401, Duration::from_secs(2)).await;
    println!("another writer's deactivation was in force after {took:?}");
    assert!(
        took <= 3 * poll,
        "seen within the poll (or the NOTIFY): {took:?}"
    );
}

/// Two replicas on one PostgreSQL database: a change through one replica's admin API is in
/// force on the other at once — its next request after the admin answer, though it had the
/// rows cached (the NOTIFY arrives first; the test allows it 250 ms and prints what it took).
#[tokio::test]
async fn a_change_on_one_replica_is_in_force_on_the_other_within_250_ms_on_postgres() {
    server_kit::testing::require_backend("postgres");
    let a = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let kek = a.state.config.key_encryption_key.clone();
    let b = spawn_on(a.database_url.clone(), dir, |c| c.key_encryption_key = kek).await;
    let (_, key) = a.admin_key("ops").await;
    let c = a.create_client("rooms:list", &["example.com"]).await;
    a.create_user("jane@example.com").await;
    assert_eq!(b.token_basic(&c, "jane@example.com").await.status(), 200);
    cached_token(&b, &c, "jane@example.com").await;
    a.admin_as(&key)
        .expect(
            Method::PATCH,
            &format!("/admin/v1/applications/{}", c.client_id),
            json!({"is_active": false}),
            200,
        )
        .await;
    let took = refused_within(&b, &c, "jane@example.com", 401, Duration::from_secs(2)).await;
    println!("the other replica refused after {took:?}");
    assert!(took < Duration::from_millis(250), "{took:?}");
}

/// When the LISTEN connection is lost and comes back, nothing cached before is used (that the
/// cache is off in between is `changes.rs::down_means_no_generation_and_coming_back_drops_what_was_cached`;
/// here the reconnection is too quick to observe it): a change whose notification was lost (the trigger
/// disabled around it, as a lost connection would lose it) is in force once the listener is
/// back, though the rows were cached.
#[tokio::test]
async fn a_lost_listen_connection_drops_what_was_cached_on_postgres() {
    server_kit::testing::require_backend("postgres");
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("jane@example.com").await;
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 200);
    cached_token(&app, &c, "jane@example.com").await;
    let other = server_kit::db::connect(&app.database_url, 1).await.unwrap();
    // A change nobody is told of: the cached rows are served (what the listener prevents).
    other
        .execute_unprepared(&format!(
            "ALTER TABLE applications DISABLE TRIGGER applications_changed; \
             UPDATE applications SET is_active = false WHERE client_id = '{}'; \
             ALTER TABLE applications ENABLE TRIGGER applications_changed",
            c.client_id
        ))
        .await
        .unwrap();
    cached_token(&app, &c, "jane@example.com").await;
    // The listener's connection is killed; the server notices, reads the database meanwhile,
    // and the entries cached before are never used again.
    let killed = other
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        ))
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "one LISTEN connection per server");
    let took = refused_within(&app, &c, "jane@example.com", 401, Duration::from_secs(5)).await;
    println!("refused {took:?} after the LISTEN connection was killed");
    for _ in 0..20 {
        assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 401);
    }
    // And the cache is in use again once the listener is back.
    let start = Instant::now();
    loop {
        let hits = lookups(&app, "hit");
        assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 401);
        if lookups(&app, "hit") > hits {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the listener came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
