//! The room cache (`rooms-api/src/rooms/cache.rs`): a viewer that reads again reads no row from
//! the database, and every write is seen on the next request though the reads were cached —
//! whoever made it: this server, another writer on the database (seen through the triggers),
//! another replica.

use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{ALL_ROOMS, RoomsRequests, spawn_stack};

fn lookups(state: &rooms_api::state::AppState, result: &str) -> u64 {
    state.metrics.room_cache.with_label_values(&[result]).get()
}

/// GETs `path` (200) until one is answered from memory. After a write of this server the
/// SQLite poll also sees it up to 100 ms later and drops the viewer's entries once more: a
/// spurious miss, never a stale answer.
async fn warm(r: &impl RoomsRequests, state: &rooms_api::state::AppState, token: &str, path: &str) {
    for _ in 0..40 {
        let hits = lookups(state, "hit");
        assert_eq!(r.get(token, path).await.status(), 200);
        if lookups(state, "hit") > hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path} was never answered from the room cache");
}

async fn body(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Waits (at most `within`) until GET `path` answers `status`; how long it took.
async fn answers_within(
    r: &impl RoomsRequests,
    token: &str,
    path: &str,
    status: u16,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if r.get(token, path).await.status() == status {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{path} never answered {status}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (at most `within`) until GET `path` shows the room renamed; how long it took.
async fn renamed_within(
    r: &impl RoomsRequests,
    token: &str,
    path: &str,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if body(r.get(token, path).await).await["name"] == "renamed" {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "never seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_viewer_that_reads_again_is_answered_from_memory_and_a_guess_never_is() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let id = s.create_room(&token).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    warm(&s, &s.rooms, &token, &format!("/{id}")).await;
    warm(&s, &s.rooms, &token, "").await;
    warm(&s, &s.rooms, &token, "?page=1&page_size=5").await;
    // A room that isn't there asks the database every time.
    let guess = format!("/{}", uuid::Uuid::new_v4());
    let hits = lookups(&s.rooms, "hit");
    for _ in 0..3 {
        assert_eq!(s.get(&token, &guess).await.status(), 404);
    }
    assert_eq!(lookups(&s.rooms, "hit"), hits);
}

/// This server's writes are seen by the very next request of every viewer they touch: the
/// owner's and a member's cached room, list and count.
#[tokio::test]
async fn every_write_of_this_server_is_seen_on_the_next_request_though_cached() {
    use rooms_api::rooms::entity::rooms;
    use rooms_api::rooms::store::{Role, grant_access};
    use sea_orm::EntityTrait;
    let s = spawn_stack().await;
    let app = s.client(ALL_ROOMS, &[]).await;
    let member_id = s.user("member@example.com").await;
    let owner = s.token(&app, "owner@example.com").await;
    let member = s.token(&app, "member@example.com").await;
    let a = s.create_room(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/{a}");
    let row = rooms::Entity::find_by_id(uuid::Uuid::parse_str(&a).unwrap())
        .one(&s.rooms.db)
        .await
        .unwrap()
        .unwrap();
    grant_access(&s.rooms.db, &row, &member_id, Role::Member)
        .await
        .unwrap();
    answers_within(&s, &member, &path, 200, Duration::from_secs(2)).await;
    for token in [&owner, &member] {
        warm(&s, &s.rooms, token, &path).await;
        warm(&s, &s.rooms, token, "").await;
    }

    let patched = s
        .patch(&owner, &path, json!({"access_level": "restricted"}))
        .await;
    assert_eq!(patched.status(), 200);
    for token in [&owner, &member] {
        assert_eq!(
            body(s.get(token, &path).await).await["access_level"],
            "restricted"
        );
        assert_eq!(
            body(s.get(token, "").await).await["results"][0]["access_level"],
            "restricted"
        );
    }

    warm(&s, &s.rooms, &owner, "").await;
    let b = s.create_room(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = body(s.get(&owner, "").await).await;
    assert_eq!(list["count"], 2);
    // Both were made at the test clock's one instant: the order between them is by id.
    let ids: Vec<&str> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&b.as_str()), "{ids:?}");

    warm(&s, &s.rooms, &member, &path).await;
    warm(&s, &s.rooms, &member, "").await;
    assert_eq!(s.delete(&owner, &path).await.status(), 204);
    for token in [&owner, &member] {
        assert_eq!(s.get(token, &path).await.status(), 404);
    }
    assert_eq!(body(s.get(&owner, "").await).await["count"], 1);
    let list = body(s.get(&member, "").await).await;
    assert_eq!(list["count"], 0);
    assert_eq!(list["results"], json!([]));
}

/// A write this server did not make (hand-written SQL here; the CLI or another process on
/// SQLite) reaches it through the triggers: seen within a poll on SQLite, at the NOTIFY on
/// PostgreSQL.
#[tokio::test]
async fn another_writers_change_is_seen_through_the_database() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let id = s.create_room(&token).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/{id}");
    warm(&s, &s.rooms, &token, &path).await;
    let other = server_kit::db::connect(&s.rooms.config.database_url, 1)
        .await
        .unwrap();
    other
        // The only room of this fresh database (SQLite keeps ids as blobs).
        .execute_unprepared("UPDATE rooms SET name = 'renamed'")
        .await
        .unwrap();
    let took = renamed_within(&s, &token, &path, Duration::from_secs(2)).await;
    println!("seen after {took:?}");
}

/// Two replicas on one database: a room read on one and deleted on the other is refused by
/// the first within a poll (SQLite) or a NOTIFY (PostgreSQL), and gone from its list.
#[tokio::test]
async fn a_write_on_one_replica_is_in_force_on_the_other() {
    let s = spawn_stack().await;
    let other = s.replica().await;
    let token = s.token_with(ALL_ROOMS).await;
    let id = s.create_room(&token).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/{id}");
    // The creation's own signal reaches the other replica up to a poll later and would drop
    // what it cached before: let it arrive first, so the delete's is the one measured.
    tokio::time::sleep(Duration::from_millis(300)).await;
    warm(&other, &other.rooms, &token, &path).await;
    warm(&other, &other.rooms, &token, "").await;
    let hits = lookups(&other.rooms, "hit");
    assert_eq!(other.get(&token, &path).await.status(), 200);
    assert_eq!(body(other.get(&token, "").await).await["count"], 1);
    assert_eq!(
        lookups(&other.rooms, "hit"),
        hits + 2,
        "both answered from memory"
    );
    assert_eq!(s.delete(&token, &path).await.status(), 204);
    let start = Instant::now();
    answers_within(&other, &token, &path, 404, Duration::from_secs(2)).await;
    while body(other.get(&token, "").await).await["count"] != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the list never lost the room"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    println!("the other replica refused the room and listed none after {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
}

/// When the LISTEN connection is lost and comes back, nothing cached before is used: a change
/// whose notification was lost (the trigger disabled around it, as a lost connection would
/// lose it) is seen once the listener is back, though the room was cached.
#[tokio::test]
async fn a_lost_listen_connection_drops_what_was_cached_on_postgres() {
    server_kit::testing::require_backend("postgres");
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let id = s.create_room(&token).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/{id}");
    warm(&s, &s.rooms, &token, &path).await;
    let other = server_kit::db::connect(&s.rooms.config.database_url, 1)
        .await
        .unwrap();
    // A change nobody is told of: the cached room is served (what the listener prevents).
    other
        .execute_unprepared(&format!(
            "ALTER TABLE rooms DISABLE TRIGGER rooms_updated; \
             UPDATE rooms SET name = 'renamed' WHERE id = '{id}'; \
             ALTER TABLE rooms ENABLE TRIGGER rooms_updated"
        ))
        .await
        .unwrap();
    let hits = lookups(&s.rooms, "hit");
    assert_ne!(body(s.get(&token, &path).await).await["name"], "renamed");
    assert_eq!(lookups(&s.rooms, "hit"), hits + 1);
    let killed = other
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        ))
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "one LISTEN connection per server");
    renamed_within(&s, &token, &path, Duration::from_secs(5)).await;
}
