//! docs/spec/security.md "Everywhere": a SQLite database locked by another process (busy past the
//! busy timeout) is an outage — 503 with Retry-After — not a bug, and it recovers by itself.
//! PostgreSQL's outage is covered by rooms-api's db_faults.rs.

use crate::helpers::{assert_error, spawn_app_with};

async fn hold_write_lock(url: &str) -> sea_orm::DatabaseTransaction {
    server_kit::testing::hold_sqlite_write_lock(url)
        .await
        .unwrap()
}

#[tokio::test]
async fn revocation_and_user_creation_behind_a_lock_are_503_and_recover_on_sqlite() {
    server_kit::testing::require_backend("sqlite");
    let app = spawn_app_with(|c| c.allow_user_creation = true).await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("jane@example.com").await;
    let token = app.access_token(&c, "jane@example.com").await;
    let lock = hold_write_lock(&app.database_url).await;

    let r = app.revoke(&c, &token).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 503, "temporarily_unavailable").await;
    let r = app.token_basic(&c, "new.person@example.com").await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 503, "temporarily_unavailable").await;

    lock.rollback().await.unwrap();
    assert_eq!(app.revoke(&c, &token).await.status(), 200);
    assert_eq!(
        app.token_basic(&c, "new.person@example.com").await.status(),
        200
    );
}

#[tokio::test]
async fn key_refresh_publishes_new_keys_when_writes_fail_on_sqlite() {
    use shared::Clock;
    server_kit::testing::require_backend("sqlite");
    let app = spawn_app_with(|_| {}).await;
    let mut config = crate::helpers::test_config(app.database_url.clone());
    config.key_encryption_key = app.state.config.key_encryption_key.clone();
    let replica = auth_server::startup::build_state(config, app.clock.clone())
        .await
        .unwrap();
    let new_kid = replica
        .keys
        .rotate(&replica.db, app.clock.now(), true)
        .await
        .unwrap();
    app.clock.advance(chrono::TimeDelta::seconds(1));
    // The refresh's bookkeeping UPDATE can't run; the new key is served all the same.
    let lock = hold_write_lock(&app.database_url).await;
    app.state
        .keys
        .refresh(&app.state.db, app.clock.now())
        .await
        .unwrap();
    lock.rollback().await.unwrap();
    let jwks = app.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&new_kid.as_str()), "{kids:?}");
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let token = app.access_token(&c, "jane@example.com").await;
    assert_eq!(crate::helpers::decode_parts(&token).0["kid"], new_kid);
}

/// docs/spec/operations.md "Database TLS": `sslmode` in the URL is honoured —
/// `require` gives a TLS session (PostgreSQL's own `pg_stat_ssl` says so), `disable` none — and
/// `verify-full` against a server whose certificate no trusted root signed is refused, not
/// silently downgraded. Needs a PostgreSQL with TLS on (Debian's package: its snakeoil
/// certificate).
#[tokio::test]
async fn database_tls_follows_sslmode_on_postgres() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    server_kit::testing::require_backend("postgres");
    let app = spawn_app_with(|_| {}).await;
    let with = |mode: &str| {
        let sep = if app.database_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}sslmode={mode}", app.database_url)
    };
    let in_tls = |url: String| async move {
        let db = server_kit::db::connect(&url, 1).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<bool>("", "ssl").unwrap()
    };
    assert!(in_tls(with("require")).await, "sslmode=require");
    assert!(!in_tls(with("disable")).await, "sslmode=disable");
    assert!(
        server_kit::db::connect(&with("verify-full"), 1)
            .await
            .is_err(),
        "a self-signed server certificate is refused under verify-full"
    );
}
