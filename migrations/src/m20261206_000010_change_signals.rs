//! Change signals for the auth-server's row cache (`auth-server/src/store/changes.rs`): the
//! database itself says when a row a replica may hold in memory changed, whoever wrote it (the
//! admin API of any replica, the CLI, hand-written SQL).
//!
//! - PostgreSQL: row triggers `pg_notify('auth_changes', 'clients' | 'revocations')`; every
//!   replica LISTENs. A notification is sent at commit, only if the transaction commits.
//! - SQLite (one server process, but the CLI writes the same file): the same triggers add one
//!   to a row of `change_counters`, which the server polls.
//!
//! What counts: any update or delete of an `applications` row that leaves `last_token_at`
//! alone (the token endpoint's once-a-minute note, `touch_last_token`, is the only write of
//! that column and changes nothing a request decides on), any update or delete of a `users`
//! row, and any new or changed `revoked_tokens` row. Inserts of applications and users need
//! no signal: the cache never holds an absence.
//!
//! Raw SQL, one text per backend: sea-query has no triggers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS change_counters (name TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO change_counters (name, n) VALUES ('clients', 0), ('revocations', 0)",
    "CREATE TRIGGER IF NOT EXISTS applications_changed AFTER UPDATE ON applications \
     WHEN OLD.last_token_at IS NEW.last_token_at \
     BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'clients'; END",
    "CREATE TRIGGER IF NOT EXISTS applications_deleted AFTER DELETE ON applications \
     BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'clients'; END",
    "CREATE TRIGGER IF NOT EXISTS users_changed AFTER UPDATE ON users \
     BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'clients'; END",
    "CREATE TRIGGER IF NOT EXISTS users_deleted AFTER DELETE ON users \
     BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'clients'; END",
    "CREATE TRIGGER IF NOT EXISTS revoked_tokens_inserted AFTER INSERT ON revoked_tokens \
     BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'revocations'; END",
    "CREATE TRIGGER IF NOT EXISTS revoked_tokens_updated AFTER UPDATE ON revoked_tokens \
     BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'revocations'; END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS applications_changed",
    "DROP TRIGGER IF EXISTS applications_deleted",
    "DROP TRIGGER IF EXISTS users_changed",
    "DROP TRIGGER IF EXISTS users_deleted",
    "DROP TRIGGER IF EXISTS revoked_tokens_inserted",
    "DROP TRIGGER IF EXISTS revoked_tokens_updated",
    "DROP TABLE IF EXISTS change_counters",
];

const POSTGRES_UP: &[&str] = &[
    "CREATE OR REPLACE FUNCTION auth_signal_change() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN PERFORM pg_notify('auth_changes', TG_ARGV[0]); RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS applications_changed ON applications",
    "CREATE TRIGGER applications_changed AFTER UPDATE ON applications FOR EACH ROW \
     WHEN (OLD.last_token_at IS NOT DISTINCT FROM NEW.last_token_at) \
     EXECUTE FUNCTION auth_signal_change('clients')",
    "DROP TRIGGER IF EXISTS applications_deleted ON applications",
    "CREATE TRIGGER applications_deleted AFTER DELETE ON applications FOR EACH ROW \
     EXECUTE FUNCTION auth_signal_change('clients')",
    "DROP TRIGGER IF EXISTS users_changed ON users",
    "CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users FOR EACH ROW \
     EXECUTE FUNCTION auth_signal_change('clients')",
    "DROP TRIGGER IF EXISTS revoked_tokens_changed ON revoked_tokens",
    "CREATE TRIGGER revoked_tokens_changed AFTER INSERT OR UPDATE ON revoked_tokens FOR EACH ROW \
     EXECUTE FUNCTION auth_signal_change('revocations')",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS applications_changed ON applications",
    "DROP TRIGGER IF EXISTS applications_deleted ON applications",
    "DROP TRIGGER IF EXISTS users_changed ON users",
    "DROP TRIGGER IF EXISTS revoked_tokens_changed ON revoked_tokens",
    "DROP FUNCTION IF EXISTS auth_signal_change()",
];

/// Runs one backend's list of raw statements (the triggers sea-query can't write); the room
/// signals' migration uses it too.
pub(crate) async fn run(
    manager: &SchemaManager<'_>,
    sqlite: &[&str],
    postgres: &[&str],
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let statements = match db.get_database_backend() {
        DbBackend::Postgres => postgres,
        _ => sqlite,
    };
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_UP, POSTGRES_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_DOWN, POSTGRES_DOWN).await
    }
}
