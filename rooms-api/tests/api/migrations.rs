//! Upgrading a database that already holds rooms: the list index migration fills the copied
//! columns and the counts from the rows that are there, so lists and counts are right at once.
//! And replicas that start together migrate one after the other.

use chrono::{TimeDelta, Utc};
use migrations::{MigratorTrait, RoomsMigrator};
use rooms_api::rooms::store::{self, Viewer};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, Database};
use server_kit::testing::fresh_database_url;
use uuid::Uuid;

#[tokio::test]
async fn existing_rooms_are_listed_and_counted_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path(), "rooms").await.unwrap();
    let db = Database::connect(&url).await.unwrap();
    // The schema before the list index: rooms and room_accesses only.
    RoomsMigrator::up(&db, Some(2)).await.unwrap();
    let backend = db.get_database_backend();
    let t0 = Utc::now() - TimeDelta::hours(1);
    let mut ids = Vec::new();
    for (i, (user, client)) in [("u1", "c1"), ("u1", "c1"), ("u1", "c2"), ("u2", "c1")]
        .into_iter()
        .enumerate()
    {
        let id = Uuid::new_v4();
        ids.push(id);
        let created = t0 + TimeDelta::seconds(i as i64);
        let room = Query::insert()
            .into_table(Alias::new("rooms"))
            .columns(
                [
                    "id",
                    "slug",
                    "name",
                    "access_level",
                    "configuration",
                    "pin_code",
                    "client_id",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.into(),
                format!("s{i}").into(),
                format!("s{i}").into(),
                "trusted".into(),
                "{}".into(),
                format!("p{i}").into(),
                client.into(),
                created.into(),
            ])
            .to_owned();
        db.execute_raw(backend.build(&room)).await.unwrap();
        let access = Query::insert()
            .into_table(Alias::new("room_accesses"))
            .columns(["room_id", "user_id", "role"].map(Alias::new))
            .values_panic([id.into(), user.into(), "owner".into()])
            .to_owned();
        db.execute_raw(backend.build(&access)).await.unwrap();
    }

    RoomsMigrator::up(&db, None).await.unwrap();

    let u1c1 = Viewer {
        user_id: "u1",
        client_id: "c1",
    };
    assert_eq!(store::count(&db, u1c1).await.unwrap(), 2);
    let (rows, count) = store::keyset_page(&db, u1c1, None, 10).await.unwrap();
    assert_eq!(count, 2, "the page reads the same count");
    // Newest first, by the created_at copied from each room.
    assert_eq!(
        rows.iter().map(|r| r.room.id).collect::<Vec<_>>(),
        [ids[1], ids[0]]
    );
    for (viewer, n) in [(("u1", "c2"), 1), (("u2", "c1"), 1), (("u2", "c2"), 0)] {
        let v = Viewer {
            user_id: viewer.0,
            client_id: viewer.1,
        };
        assert_eq!(store::count(&db, v).await.unwrap(), n, "{viewer:?}");
        let (rows, count) = store::keyset_page(&db, v, None, 10).await.unwrap();
        assert_eq!((rows.len() as u64, count), (n, n), "{viewer:?}");
    }
}

/// Replicas started together on a database nobody migrated yet take turns migrating
/// (`server_kit::db::migrate_exclusively`): all of them start.
#[tokio::test]
async fn replicas_starting_together_on_an_unmigrated_database_all_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path(), "rooms").await.unwrap();
    let open = || rooms_api::startup::open_database(&url, 1);
    let (a, b, c) = tokio::join!(open(), open(), open());
    for r in [a, b, c] {
        if let Err(e) = r {
            panic!("a replica could not start: {e:#}");
        }
    }
}
