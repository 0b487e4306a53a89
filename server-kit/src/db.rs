//! Opening a database: the same URL forms for SQLite (embedded default) and PostgreSQL.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Connects, creating a SQLite file's folder first.
///
/// SQLite: WAL (readers never wait for the writer), `synchronous=NORMAL` (the WAL is synced at
/// checkpoints, not on every commit: a power cut can lose the last commits, never corrupt the
/// file; an application crash loses nothing), a 5 s busy timeout, and a small pool — each
/// SQLite connection is a thread, and one writer at a time is SQLite's rule anyway.
///
/// Both: a pooled connection is pinged only after it sat idle for a while. sqlx pings on every
/// checkout by default, a full round trip (to the server, or to the SQLite connection's thread)
/// before each query: a perf profile of the token endpoint (`scripts/bench`) showed it on every hot path.
///
/// `warm` connections are opened at once and kept (servers: `DATABASE_MIN_CONNECTIONS`; the
/// CLI and tests: 1): a PostgreSQL pool that grows under the first burst of load after idle
/// opens its connections one handshake at a time in front of those requests (p99 of the first
/// 5 s at 32 connections: 1,020 ms growing from 1, 19 ms with all 16 kept; 18 ms steady).
pub async fn connect(url: &str, warm: u32) -> Result<DatabaseConnection, DbErr> {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let sqlite = url.starts_with("sqlite:");
    if let Some(path) = sqlite_path(url)
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
    }
    if let Some(path) = sqlite_path(url) {
        create_private(std::path::Path::new(path))
            .map_err(|e| DbErr::Custom(format!("cannot create {path}: {e}")))?;
    }
    let pool = if sqlite { SQLITE_POOL } else { POSTGRES_POOL };
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(pool)
        .min_connections(warm.clamp(1, pool))
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire_if_idle_for(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            // secure_delete: freed content is overwritten with zeros, so erased data (a
            // deleted user's e-mail) leaves no copy in free pages of the file.
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .pragma("secure_delete", "ON")
        });
    #[allow(unused_mut)]
    let mut db = connect_waiting_for_locks(options, sqlite).await?;
    #[cfg(feature = "testing")]
    crate::testing::observe(&mut db);
    Ok(db)
}

/// SQLite: copies the write-ahead log into the database file and truncates the log, so page
/// images written before an erasure (and zeroed since by `secure_delete`) no longer sit in the
/// log. Best effort: a reader holding an old snapshot makes SQLite stop short, and the next
/// automatic checkpoint finishes the job. Nothing on PostgreSQL (its dead row versions go at
/// the next vacuum: docs/spec/auth-server.md §8).
pub async fn checkpoint(db: &DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite
        && let Err(e) = db
            .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
    {
        tracing::warn!(error = %e, "could not checkpoint the SQLite log");
    }
}

/// `Database::connect`, retried for up to 5 s (the busy timeout) while a SQLite file is locked.
/// Opening a connection switches the file to WAL, and SQLite answers that switch "database is
/// locked" at once, without waiting, while another process (a replica starting beside this one)
/// holds the file: three replicas opening a fresh file together failed ~1 start in 6.
async fn connect_waiting_for_locks(
    options: ConnectOptions,
    sqlite: bool,
) -> Result<DatabaseConnection, DbErr> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Database::connect(options.clone()).await {
            Err(e) if sqlite && is_sqlite_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED from opening a connection.
fn is_sqlite_busy(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let DbErr::Conn(RuntimeErr::SqlxError(e)) = err else {
        return false;
    };
    match e.as_ref() {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

/// Runs `migrate` while holding a lock every process migrating the same database takes, so that
/// replicas (or a server and the CLI) starting together take turns: the first applies the
/// pending migrations, the others then find nothing pending. Without it, three starts at once on
/// an empty database raced on the same `CREATE TABLE` or `seaql_migrations` row and all but one
/// failed, on both databases.
///
/// PostgreSQL: an advisory lock (`lock`, one per service) held by a transaction on one pooled
/// connection; it ends with the transaction, also if the process dies. SQLite: an exclusive
/// `flock` on `<database file>.migrate-lock` (created 0600 beside it). Not on the database file
/// itself: closing any other descriptor of that file would drop SQLite's own POSIX locks. An
/// in-memory SQLite database is one process's own and needs none.
pub async fn migrate_exclusively<F, Fut>(
    db: &DatabaseConnection,
    url: &str,
    lock: i64,
    migrate: F,
) -> Result<(), DbErr>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), DbErr>>,
{
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let tx = db.begin().await?;
            tx.query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [lock.into()],
            ))
            .await?;
            let result = migrate().await;
            tx.commit().await?;
            result
        }
        _ => match sqlite_path(url) {
            Some(path) => {
                let lock_path = format!("{path}.migrate-lock");
                let file =
                    tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                        use std::os::unix::fs::OpenOptionsExt;
                        let file = std::fs::OpenOptions::new()
                            .create(true)
                            .truncate(false)
                            .write(true)
                            .mode(0o600)
                            .open(&lock_path)?;
                        file.lock()?;
                        Ok(file)
                    })
                    .await
                    .map_err(|e| DbErr::Custom(format!("migration lock: {e}")))?
                    .map_err(|e| DbErr::Custom(format!("migration lock: {e}")))?;
                let result = migrate().await;
                drop(file);
                result
            }
            None => migrate().await,
        },
    }
}

/// Creates an empty SQLite file readable by its owner only (0600): it will hold argon2 hashes
/// and encrypted keys. SQLite gives its `-wal` and `-shm` files the database file's mode. An
/// existing file is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Connections per SQLite pool: enough for both cores to read while one writes.
const SQLITE_POOL: u32 = 4;
/// Connections per PostgreSQL pool and replica (compose runs two replicas of the rooms API).
pub const POSTGRES_POOL: u32 = 16;

/// Serialises this process's writes on SQLite.
///
/// SQLite admits one writer at a time; a writer that finds the lock taken sleeps in SQLite's
/// busy handler, in steps of up to 100 ms, and a deferred transaction that must upgrade its lock
/// can fail outright. Under 32 concurrent room creations p99 was 0.6–1 s (`scripts/bench`, before this gate). Queued on a
/// fair async mutex instead, a writer waits only for the writers ahead of it. PostgreSQL takes
/// row locks itself: no gate. Other processes on the same file (the CLI) still meet the
/// busy timeout.
#[derive(Debug, Clone, Default)]
pub struct WriteGate(Option<std::sync::Arc<tokio::sync::Mutex<()>>>);

impl WriteGate {
    pub fn for_connection(db: &DatabaseConnection) -> Self {
        match db.get_database_backend() {
            sea_orm::DbBackend::Sqlite => Self(Some(Default::default())),
            _ => Self(None),
        }
    }

    /// Held for the whole write transaction.
    pub async fn enter(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }
}

/// The row of a lookup by a unique key, fetched with `.all()`.
///
/// Not sea-orm's `.one()`: it appends `LIMIT ?` with the 1 as a bound parameter, and SQLite lets
/// a bound LIMIT steer the plan, so every rebinding expires the prepared statement and the next
/// run parses and plans the query again (`sqlite3Reprepare`: 14 % of the token endpoint's CPU
/// in a perf profile, before this change). Every lookup here is by a primary or unique key.
pub fn at_most_one<T>(rows: Vec<T>) -> Option<T> {
    rows.into_iter().next()
}

/// True when the error means "the database can't serve this right now" (answer 503 with
/// `Retry-After` and recover by itself), as opposed to a bug or a constraint (500 or a domain
/// error): unreachable, busy or locked past the busy timeout, read-only (a standby after
/// failover), out of disk or memory, an I/O error.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => {
                    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                        return db
                            .code()
                            .and_then(|c| c.parse::<i32>().ok())
                            .is_some_and(|c| SQLITE_UNAVAILABLE.contains(&(c & 0xff)));
                    }
                    // PostgreSQL: connection failures (08), insufficient resources (53: disk
                    // full, out of memory, too many connections), admin shutdown / cannot
                    // connect now (57P), read-only transaction (25006: a standby).
                    db.code().is_some_and(|c| {
                        c.starts_with("08")
                            || c.starts_with("53")
                            || c.starts_with("57P")
                            || c == "25006"
                    })
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// SQLite primary result codes that mean "not now": BUSY, LOCKED, READONLY, IOERR, FULL,
/// CANTOPEN (extended codes keep the primary code in their low byte).
const SQLITE_UNAVAILABLE: [i32; 6] = [5, 6, 8, 10, 13, 14];

/// The file path of a `sqlite://path?query` URL, or `None` for other databases / in-memory.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/auth.sqlite?mode=rwc"),
            Some("data/auth.sqlite")
        );
        assert_eq!(sqlite_path("sqlite:///tmp/a.db"), Some("/tmp/a.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }
}
