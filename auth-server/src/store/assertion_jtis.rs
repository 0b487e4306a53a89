//! The `jti`s the token endpoint has accepted, each kept until what carried it expires
//! (`server_kit::replay`): client assertions and the JWT-bearer grant's, per client; DPoP
//! proofs', per key thumbprint. Rows are written only after a signature checked out.

use chrono::{DateTime, Utc};
use server_kit::replay::{self, ReplayTable};

use super::{Db, StoreError};

/// Client assertions and grant assertions, keyed by client_id.
pub const ASSERTIONS: ReplayTable = ReplayTable {
    table: "client_assertion_jtis",
    key_column: "client_id",
};
/// DPoP proofs, keyed by the thumbprint of the key that signed them (RFC 9449 §11.1).
pub const DPOP_PROOFS: ReplayTable = ReplayTable {
    table: "dpop_proof_jtis",
    key_column: "jkt",
};

/// Records `jti` for `client_id` until `expires_at`; false if it was already recorded and has
/// not expired (a replay).
pub async fn first_use(
    db: &Db,
    client_id: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(replay::first_use(db, ASSERTIONS, client_id, jti, expires_at, now).await?)
}

/// Records a DPoP proof's `jti` for its key until `expires_at`; false on a replay.
pub async fn first_proof_use(
    db: &Db,
    jkt: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(replay::first_use(db, DPOP_PROOFS, jkt, jti, expires_at, now).await?)
}

/// Deletes the rows of assertions and proofs that expired before `now` (the periodic sweep).
pub async fn sweep(db: &Db, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut n = replay::sweep(db, ASSERTIONS, now).await?;
    n += replay::sweep(db, DPOP_PROOFS, now).await?;
    Ok(n)
}
