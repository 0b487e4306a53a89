//! How a storage failure looks to the domain and the fronts. The store turns the database
//! driver's errors into this at its boundary, so nothing outside `store/` names sea-orm.

/// The cause of a failure, kept for the logs (a driver error never reaches a client).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A database failure, or a row that no longer parses (which we treat as an internal error).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is down or unreachable: answered 503, not 500.
    #[error("database unavailable")]
    Unavailable(#[source] Cause),
    /// A UNIQUE index refused the write.
    #[error("unique constraint violated")]
    UniqueViolation(#[source] Cause),
    #[error("database error")]
    Failed(#[source] Cause),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Connection-level failures (the database is down or unreachable) answer 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// A UNIQUE index refused the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::UniqueViolation(_))
    }
}
