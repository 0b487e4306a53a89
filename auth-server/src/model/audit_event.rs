//! One entry of the append-only audit trail (`domain/audit.rs` writes and erases them).

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// Who made the change: `admin-key:<name>`, `cli`, `client:<client_id>`.
    pub actor: String,
    /// What was done (`create`, `update`, `rotate-secret`, `delete`, ...).
    pub action: String,
    /// Which kind of record (`application`, `user`, `admin-key`, `signing-key`).
    pub resource: String,
    pub resource_id: String,
    /// JSON: `{field: {"before": …, "after": …}}`, never a secret.
    pub changes: String,
}
