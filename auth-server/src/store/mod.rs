//! The only code that queries the database (sea-orm). Functions take a `Db` and plain values
//! and return plain records; the rest of the crate holds the connection only as a `Db`.

pub mod admin_keys;
pub mod applications;
pub mod assertion_jtis;
pub mod audit;
pub mod changes;
pub mod entity;
pub mod failure_counters;
pub mod keys;
pub mod revocations;
pub mod row_cache;
pub mod users;

/// The connection pool every store function takes.
pub type Db = sea_orm::DatabaseConnection;
/// A pool or an open transaction: what functions that may run inside one take.
pub use sea_orm::ConnectionTrait as Conn;

pub use crate::model::StoreError;

/// The store's boundary: a driver error becomes the domain's `StoreError`, classified here
/// because only here is sea-orm known.
impl From<sea_orm::DbErr> for StoreError {
    fn from(e: sea_orm::DbErr) -> Self {
        if server_kit::db::is_unavailable(&e) {
            StoreError::Unavailable(Box::new(e))
        } else if matches!(
            e.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) {
            StoreError::UniqueViolation(Box::new(e))
        } else {
            StoreError::Failed(Box::new(e))
        }
    }
}

/// Whether several replicas may share this database: PostgreSQL. A SQLite file belongs to one
/// process, so state every replica must see can stay in that process's memory.
pub fn is_shared(db: &Db) -> bool {
    db.get_database_backend() == sea_orm::DbBackend::Postgres
}

/// An open transaction: several writes that land together or not at all (a change and its
/// audit event).
pub type Tx = sea_orm::DatabaseTransaction;

/// On SQLite the transaction takes the write lock at once (a write that matches no row): a
/// deferred transaction that reads first and writes later fails with SQLITE_BUSY, without
/// waiting, when another connection (the server, a CLI command) wrote in between.
pub async fn begin(db: &Db) -> Result<Tx, StoreError> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let tx = db.begin().await?;
    if tx.get_database_backend() == sea_orm::DbBackend::Sqlite {
        tx.execute_unprepared("UPDATE audit_events SET actor = actor WHERE 0 = 1")
            .await?;
    }
    Ok(tx)
}

/// Commits, and tells this process's row cache that what it holds may have changed
/// (`changes::committed_here`).
pub async fn commit(tx: Tx) -> Result<(), StoreError> {
    tx.commit().await?;
    changes::committed_here();
    Ok(())
}

/// `s` with LIKE's wildcards escaped (`\\` is the escape character).
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
