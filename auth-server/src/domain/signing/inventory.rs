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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kid: &str, generation: i64, activates_at: DateTime<Utc>) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            generation,
            alg: "EdDSA".into(),
            private_key_encrypted: String::new(),
            public_jwk: String::new(),
            created_at: activates_at,
            activates_at,
            superseded_at: None,
            retired_at: None,
        }
    }

    /// A key is superseded only by a later generation that has activated: never by itself, nor
    /// by one still pending or retired.
    #[test]
    fn states_follow_the_generations_that_have_activated() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let hour = chrono::TimeDelta::hours(1);
        let one = describe(&[row("a", 1, now - hour)], now);
        assert_eq!(one[0].state, KeyState::Active, "the only key signs");
        assert_eq!(one[0].superseded_at, None);
        let due = describe(&[row("a", 1, now)], now);
        assert_eq!(due[0].state, KeyState::Active, "active from its second on");

        let mut retired = row("d", 4, now - hour / 4);
        retired.retired_at = Some(now);
        let rows = [
            row("a", 1, now - hour),
            row("b", 2, now - hour / 2),
            row("c", 3, now + hour),
            retired,
        ];
        let states: Vec<_> = describe(&rows, now)
            .into_iter()
            .map(|k| (k.kid, k.state, k.superseded_at))
            .collect();
        assert_eq!(
            states,
            [
                ("a".into(), KeyState::Superseded, Some(now - hour / 2)),
                ("b".into(), KeyState::Active, None),
                ("c".into(), KeyState::Pending, None),
                ("d".into(), KeyState::Retired, None),
            ]
        );
    }
}
