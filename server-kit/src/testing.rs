//! Test support both services' black-box tests use: a fresh, empty database per test.

use sea_orm::{ConnectionTrait, Database, DbErr};

/// A new database URL: a SQLite file under `dir` named `name`, or — when `TEST_DATABASE_URL` is
/// set — a freshly created PostgreSQL database on that server.
pub async fn fresh_database_url(dir: &std::path::Path, name: &str) -> Result<String, DbErr> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let db_name = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&base).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{db_name}\""))
                .await?;
            let (prefix, query) = match base.split_once('?') {
                Some((p, q)) => (p.to_owned(), format!("?{q}")),
                None => (base.clone(), String::new()),
            };
            let root = prefix.rsplit_once('/').map_or(prefix.as_str(), |(r, _)| r);
            Ok(format!("{root}/{db_name}{query}"))
        }
        _ => Ok(format!("sqlite://{}/{name}.sqlite?mode=rwc", dir.display())),
    }
}

/// Compares a generated file with its committed copy, rewriting it when `UPDATE_OPENAPI=1`, and
/// fails naming the first differing line (not the whole file).
pub fn check_committed(path: &std::path::Path, rendered: &str) -> Result<(), String> {
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(path, rendered)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let committed = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{} missing ({e}); run the tests with UPDATE_OPENAPI=1",
            path.display()
        )
    })?;
    if committed == rendered {
        return Ok(());
    }
    let line = committed
        .lines()
        .zip(rendered.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(rendered.lines().count()));
    Err(format!(
        "{} is stale from line {}: rerun the tests with UPDATE_OPENAPI=1",
        path.display(),
        line + 1
    ))
}

/// Holds SQLite's write lock on the database at `url` (as another process would) until the
/// returned transaction is dropped or rolled back: writes behind it meet the busy timeout.
pub async fn hold_sqlite_write_lock(url: &str) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let db = sea_orm::Database::connect(url).await?;
    let txn = db.begin().await?;
    txn.execute_unprepared("CREATE TABLE IF NOT EXISTS lock_holder (x INTEGER)")
        .await?;
    Ok(txn)
}
