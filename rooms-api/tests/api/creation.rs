//! docs/spec/security.md "Rooms": a room and its owner row are written in one transaction, and a
//! slug or PIN another room holds is retried with new values, never shared. Driven through
//! `service::create_with` with generators that collide on purpose: random values almost never
//! do, so a test of concurrent creations alone would pass without the retry.

use std::sync::atomic::{AtomicUsize, Ordering};

use rooms_api::principal::Principal;
use rooms_api::rooms::service::{self, MAX_CREATE_ATTEMPTS, RoomsError};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use shared::{Clock, ScopeSet};

use crate::helpers::{ALL_ROOMS, Stack, spawn_stack};

fn principal(user: &str) -> Principal {
    Principal {
        user_id: user.into(),
        client_id: "client-1".into(),
        scopes: ScopeSet::parse(ALL_ROOMS).unwrap(),
        mode: "test",
        jkt: None,
    }
}

async fn count(s: &Stack, table: &str) -> i64 {
    s.rooms
        .db
        .query_one_raw(Statement::from_string(
            s.rooms.db.get_database_backend(),
            format!("SELECT count(*) FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

async fn create(
    s: &Stack,
    user: &str,
    fresh: &mut service::SlugAndPin<'_>,
) -> Result<rooms_api::rooms::model::RoomView, RoomsError> {
    service::create_with(
        &s.rooms.db,
        &s.rooms.cache,
        &s.rooms.writes,
        &s.rooms.config.rooms,
        &principal(user),
        s.clock.now(),
        b"",
        fresh,
    )
    .await
}

#[tokio::test]
async fn a_slug_or_pin_taken_by_another_room_is_retried_with_new_values() {
    let s = spawn_stack().await;
    let first = create(&s, "u1", &mut |_| {
        Ok(("aaa-aaaa-aaa".into(), "1111111111".into()))
    })
    .await
    .unwrap();
    assert_eq!(first.slug, "aaa-aaaa-aaa");
    // The first room's slug, then its PIN, then free values.
    let mut values = vec![
        ("aaa-aaaa-aaa", "2222222222"),
        ("bbb-bbbb-bbb", "1111111111"),
        ("ccc-cccc-ccc", "3333333333"),
    ]
    .into_iter();
    let calls = AtomicUsize::new(0);
    let second = create(&s, "u2", &mut |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        let (slug, pin) = values.next().unwrap();
        Ok((slug.into(), pin.into()))
    })
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(second.slug, "ccc-cccc-ccc");
    assert_eq!(count(&s, "rooms").await, 2);
    assert_eq!(
        count(&s, "room_accesses").await,
        2,
        "one owner row each, none left over"
    );
}

#[tokio::test]
async fn a_generator_that_always_collides_gives_up_and_writes_nothing() {
    let s = spawn_stack().await;
    create(&s, "u1", &mut |_| {
        Ok(("aaa-aaaa-aaa".into(), "1111111111".into()))
    })
    .await
    .unwrap();
    let calls = AtomicUsize::new(0);
    let err = create(&s, "u2", &mut |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(("aaa-aaaa-aaa".into(), "9999999999".into()))
    })
    .await
    .unwrap_err();
    assert!(matches!(err, RoomsError::Exhausted), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), MAX_CREATE_ATTEMPTS);
    assert_eq!(count(&s, "rooms").await, 1);
    assert_eq!(count(&s, "room_accesses").await, 1);
}

/// The owner row can't be written (a trigger refuses it): the room is not written either, so no
/// room exists that nobody can see.
#[tokio::test]
async fn a_room_whose_owner_row_fails_is_not_written_either() {
    let s = spawn_stack().await;
    let db = &s.rooms.db;
    let backend = db.get_database_backend();
    let ddl: &[&str] = match backend {
        DbBackend::Sqlite => &[
            "CREATE TRIGGER refuse_owner BEFORE INSERT ON room_accesses \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        ],
        _ => &[
            "CREATE FUNCTION refuse_owner() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_owner BEFORE INSERT ON room_accesses \
             FOR EACH ROW EXECUTE FUNCTION refuse_owner()",
        ],
    };
    for sql in ddl {
        db.execute_unprepared(sql).await.unwrap();
    }
    let err = create(&s, "u1", &mut service::random_slug_and_pin)
        .await
        .unwrap_err();
    assert!(matches!(err, RoomsError::Db(_)), "{err:?}");
    assert_eq!(
        count(&s, "rooms").await,
        0,
        "the room went with its owner row"
    );
}
