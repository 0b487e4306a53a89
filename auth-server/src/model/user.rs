//! A user: a person applications act for, known by a normalised e-mail.

use chrono::{DateTime, Utc};
use shared::{ClientId, Email};
use uuid::Uuid;

/// A user's id: the `sub` of the tokens issued for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    /// The upstream identity provider's `sub`, once known; `None` for a provisional user.
    pub external_sub: Option<String>,
    pub email: Email,
    pub is_active: bool,
    /// Tokens issued for this user before this instant are dead.
    pub tokens_not_before: Option<DateTime<Utc>>,
    /// The application whose token request created this (provisional) user, if one did.
    pub created_by: Option<ClientId>,
    pub created_at: DateTime<Utc>,
}
