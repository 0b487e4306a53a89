//! An admin API key: its public `key_id` names it, and only a SHA-256 digest of its secret half
//! is kept (`domain/admin_keys.rs` says why that suffices).

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey {
    pub id: Uuid,
    /// The public half of the key, shown in listings.
    pub key_id: String,
    pub name: String,
    /// SHA-256 of the key's secret half, hex.
    pub secret_digest: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AdminKey {
    /// A revoked key never opens the admin API again.
    pub fn is_usable(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// Never the digest: a log line must not help an offline guess.
impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminKey")
            .field("id", &self.id)
            .field("key_id", &self.key_id)
            .field("name", &self.name)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}
