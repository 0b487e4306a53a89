//! docs/spec/security.md "Everywhere": a database outage answers 503, recovers by itself, and no request
//! that got a 2xx lost its write. Needs PostgreSQL (the test's own database is cut off with
//! `ALLOW_CONNECTIONS false` + `pg_terminate_backend`, leaving every other test's alone), so it
//! does its work in the PostgreSQL run of `scripts/test` and returns at once on SQLite.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

use crate::helpers::RoomsRequests as _;
use crate::helpers::{ALL_ROOMS, spawn_stack};

async fn set_connections(rooms_db_url: &str, allowed: bool) {
    let base = std::env::var("TEST_DATABASE_URL").unwrap();
    let admin = Database::connect(&base).await.unwrap();
    let name = rooms_db_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allowed}"
        ))
        .await
        .unwrap();
    if !allowed {
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_database_outage_is_503_without_lost_writes_and_recovers_by_itself_on_postgres() {
    // The outage is simulated by terminating PostgreSQL's backends.
    server_kit::testing::require_backend("postgres");
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let before = s.create_room(&token).await;
    let url = s.rooms.config.database_url.clone();

    set_connections(&url, false).await;
    let mut acknowledged = HashSet::new();
    acknowledged.insert(before["id"].as_str().unwrap().to_owned());
    for _ in 0..10 {
        let r = s.post(&token, "", None).await;
        match r.status().as_u16() {
            201 => {
                let room: Value = r.json().await.unwrap();
                acknowledged.insert(room["id"].as_str().unwrap().to_owned());
            }
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                assert_eq!(
                    r.json::<Value>().await.unwrap()["error"],
                    "temporarily_unavailable"
                );
            }
            other => panic!("outage answered {other}"),
        }
    }
    let r = s.get(&token, "").await;
    assert_eq!(r.status(), 503);
    let ready = s
        .client
        .get(format!("{}/readyz", s.rooms_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);

    set_connections(&url, true).await;
    let mut recovered = false;
    for _ in 0..50 {
        if s.get(&token, "").await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "the API recovers without a restart");
    let list: Value = s.get(&token, "?page_size=100").await.json().await.unwrap();
    let present: HashSet<String> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(acknowledged.is_subset(&present), "every 201 kept its room");
}

/// Holds SQLite's write lock on `url` until the returned transaction is dropped.
pub async fn hold_write_lock(url: &str) -> sea_orm::DatabaseTransaction {
    server_kit::testing::hold_sqlite_write_lock(url)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_locked_sqlite_database_is_503_and_recovers_by_itself_on_sqlite() {
    // PostgreSQL's outage is the test above.
    server_kit::testing::require_backend("sqlite");
    let s = spawn_stack().await;
    let url = s.rooms.config.database_url.clone();
    let token = s.token_with(ALL_ROOMS).await;
    let lock = hold_write_lock(&url).await;
    let r = s.post(&token, "", None).await;
    assert_eq!(r.status(), 503, "a write behind another process's lock");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    // Reads go on meanwhile (WAL).
    assert_eq!(s.get(&token, "").await.status(), 200);
    lock.rollback().await.unwrap();
    assert_eq!(s.post(&token, "", None).await.status(), 201, "recovered");
}
