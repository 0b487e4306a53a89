//! The key table as operators see it (`keys list`, `keys retire`): states worked out by the
//! same rules the servers sign with, without decrypting anything.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::KeyState;
use crate::model::{SigningKey, StoreError};
use crate::store::Conn as ConnectionTrait;
use crate::store::keys as key_store;

/// One row of `keys list`.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub superseded_at: Option<DateTime<Utc>>,
}

/// Every key in the table, described as of `now`.
pub async fn list(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<KeyInfo>, StoreError> {
    Ok(describe(&key_store::all(db).await?, now))
}

/// States of stored keys, by the same rules the server signs with, without decrypting anything.
pub fn describe(rows: &[SigningKey], now: DateTime<Utc>) -> Vec<KeyInfo> {
    rows.iter()
        .map(|row| {
            let superseded_at = rows
                .iter()
                .filter(|k| {
                    k.generation > row.generation && k.activates_at <= now && k.retired_at.is_none()
                })
                .map(|k| k.activates_at)
                .min();
            let state = if row.retired_at.is_some() {
                KeyState::Retired
            } else if row.activates_at > now {
                KeyState::Pending
            } else if superseded_at.is_some() {
                KeyState::Superseded
            } else {
                KeyState::Active
            };
            KeyInfo {
                kid: row.kid.clone(),
                alg: row.alg.clone(),
                state,
                created_at: row.created_at,
                activates_at: row.activates_at,
                superseded_at,
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("no key {0}")]
    NotFound(String),
    #[error("key {0} is already retired")]
    AlreadyRetired(String),
    #[error(
        "key {0} signs now: run `keys rotate --now` first, then retire it (the servers sign with the new key from their next key refresh)"
    )]
    SignsNow(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Emergency retirement of `kid` (a stolen private key can mint tokens with any `exp`): the
/// servers drop it at their next key refresh, the revocation feed lists it at once, and every
/// local verifier refuses its tokens from its next poll. The key that signs now can't be
/// retired, so there is always a signer.
pub async fn retire(
    db: &impl ConnectionTrait,
    kid: &str,
    now: DateTime<Utc>,
) -> Result<(), RetireError> {
    let rows = key_store::all(db).await?;
    let info = describe(&rows, now);
    match info.iter().find(|k| k.kid == kid) {
        None => return Err(RetireError::NotFound(kid.to_owned())),
        Some(k) if k.state == KeyState::Retired => {
            return Err(RetireError::AlreadyRetired(kid.to_owned()));
        }
        Some(k) if k.state == KeyState::Active => {
            return Err(RetireError::SignsNow(kid.to_owned()));
        }
        Some(_) => {}
    }
    if !key_store::retire(db, kid, now).await? {
        return Err(RetireError::AlreadyRetired(kid.to_owned()));
    }
    Ok(())
}
