//! The only code that queries the database (sea-orm). Functions take a `Db` and plain values
//! and return plain records; the rest of the crate holds the connection only as a `Db`.

pub mod applications;
pub mod entity;
pub mod keys;
pub mod revocations;
pub mod users;

/// The connection pool every store function takes.
pub type Db = sea_orm::DatabaseConnection;
/// A pool or an open transaction: what functions that may run inside one take.
pub use sea_orm::ConnectionTrait as Conn;

/// A database failure, or a row that no longer parses (which we treat as an internal error).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Connection-level failures (the database is down or unreachable) answer 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Db(e) if server_kit::db::is_unavailable(e))
    }

    /// A UNIQUE index refused the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(e)
            if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))))
    }
}
