//! The only code that touches sea-orm. Functions take and return domain types.

pub mod applications;
pub mod entity;
pub mod keys;
pub mod revocations;
pub mod users;

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
        matches!(self, StoreError::Db(e) if shared::server::db::is_unavailable(e))
    }
}
