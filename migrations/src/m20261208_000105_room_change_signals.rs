//! Change signals for the rooms API's room cache (`rooms-api/src/rooms/changes.rs`): the
//! database itself says whose view of the rooms changed, whoever wrote it (another replica,
//! hand-written SQL). A signal names one viewer — a (user_id, client_id) pair — because that
//! is what the cache is keyed by: a viewer's cached rooms, pages and count are dropped together.
//!
//! - PostgreSQL: row triggers `pg_notify('rooms_changes', <viewer>)`, the viewer written as
//!   the length of `user_id`, a colon, `user_id` and `client_id` (no separator can be confused
//!   with an id). A notification is sent at commit, only if the transaction commits.
//! - SQLite: the same triggers append the viewer to `room_changes`, which the server polls and
//!   prunes about a minute after it read them (`at`, the second of the write, is for people
//!   reading the table).
//!
//! What counts: any new, changed or deleted `room_accesses` row (its viewer, before and after),
//! and any change to or deletion of a `rooms` row (every viewer with an access row to it,
//! read before the deletion cascades). A new room needs no signal of its own: its owner's
//! access row is inserted with it.
//!
//! Raw SQL, one text per backend: sea-query has no triggers.

use sea_orm_migration::prelude::*;

use crate::m20261206_000010_change_signals::run;

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS room_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
     user_id TEXT NOT NULL, client_id TEXT NOT NULL, at INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS room_accesses_inserted AFTER INSERT ON room_accesses \
     BEGIN INSERT INTO room_changes (user_id, client_id, at) \
     VALUES (NEW.user_id, NEW.client_id, CAST(strftime('%s', 'now') AS INTEGER)); END",
    "CREATE TRIGGER IF NOT EXISTS room_accesses_updated AFTER UPDATE ON room_accesses \
     BEGIN INSERT INTO room_changes (user_id, client_id, at) \
     VALUES (OLD.user_id, OLD.client_id, CAST(strftime('%s', 'now') AS INTEGER)), \
     (NEW.user_id, NEW.client_id, CAST(strftime('%s', 'now') AS INTEGER)); END",
    "CREATE TRIGGER IF NOT EXISTS room_accesses_deleted AFTER DELETE ON room_accesses \
     BEGIN INSERT INTO room_changes (user_id, client_id, at) \
     VALUES (OLD.user_id, OLD.client_id, CAST(strftime('%s', 'now') AS INTEGER)); END",
    "CREATE TRIGGER IF NOT EXISTS rooms_updated AFTER UPDATE ON rooms \
     BEGIN INSERT INTO room_changes (user_id, client_id, at) \
     SELECT user_id, client_id, CAST(strftime('%s', 'now') AS INTEGER) \
     FROM room_accesses WHERE room_id = OLD.id; END",
    "CREATE TRIGGER IF NOT EXISTS rooms_deleting BEFORE DELETE ON rooms \
     BEGIN INSERT INTO room_changes (user_id, client_id, at) \
     SELECT user_id, client_id, CAST(strftime('%s', 'now') AS INTEGER) \
     FROM room_accesses WHERE room_id = OLD.id; END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS room_accesses_inserted",
    "DROP TRIGGER IF EXISTS room_accesses_updated",
    "DROP TRIGGER IF EXISTS room_accesses_deleted",
    "DROP TRIGGER IF EXISTS rooms_updated",
    "DROP TRIGGER IF EXISTS rooms_deleting",
    "DROP TABLE IF EXISTS room_changes",
];

const POSTGRES_UP: &[&str] = &[
    "CREATE OR REPLACE FUNCTION rooms_signal_access() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('rooms_changes', \
         length(OLD.user_id) || ':' || OLD.user_id || OLD.client_id); END IF; \
       IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('rooms_changes', \
         length(NEW.user_id) || ':' || NEW.user_id || NEW.client_id); END IF; \
       RETURN NULL; \
     END $$",
    "CREATE OR REPLACE FUNCTION rooms_signal_room() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       PERFORM pg_notify('rooms_changes', length(a.user_id) || ':' || a.user_id || a.client_id) \
         FROM room_accesses a WHERE a.room_id = OLD.id; \
       IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; \
       RETURN NULL; \
     END $$",
    "DROP TRIGGER IF EXISTS room_accesses_changed ON room_accesses",
    "CREATE TRIGGER room_accesses_changed AFTER INSERT OR UPDATE OR DELETE ON room_accesses \
     FOR EACH ROW EXECUTE FUNCTION rooms_signal_access()",
    "DROP TRIGGER IF EXISTS rooms_updated ON rooms",
    "CREATE TRIGGER rooms_updated AFTER UPDATE ON rooms FOR EACH ROW \
     EXECUTE FUNCTION rooms_signal_room()",
    "DROP TRIGGER IF EXISTS rooms_deleting ON rooms",
    "CREATE TRIGGER rooms_deleting BEFORE DELETE ON rooms FOR EACH ROW \
     EXECUTE FUNCTION rooms_signal_room()",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS room_accesses_changed ON room_accesses",
    "DROP TRIGGER IF EXISTS rooms_updated ON rooms",
    "DROP TRIGGER IF EXISTS rooms_deleting ON rooms",
    "DROP FUNCTION IF EXISTS rooms_signal_access()",
    "DROP FUNCTION IF EXISTS rooms_signal_room()",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_UP, POSTGRES_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_DOWN, POSTGRES_DOWN).await
    }
}
