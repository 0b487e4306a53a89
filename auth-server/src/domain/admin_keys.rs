//! Admin API keys (docs/spec/admin-api.md "Authentication"). A key is
//! `adm_<key_id>_<secret>`: `key_id` (16 base62 characters) finds the row, `secret` (43 base62
//! characters, ~256 bits from the OS CSPRNG) proves possession. Keys are created and revoked by
//! the CLI on the server's host; the API can list and revoke them.
//!
//! The secret is stored as its SHA-256 digest, not an argon2id hash: argon2 exists to make
//! guessing a *low-entropy* password expensive, and a 256-bit random secret can't be guessed
//! at any cost, so a slow hash would only spend megabytes and ~50 ms of a core on every admin
//! call. A database dump still yields no usable key (a preimage of SHA-256 is out of reach).
//! Digests are compared in constant time, an unknown `key_id` is compared against a dummy
//! digest, and wrong keys count against the failure limits (a correct key is never refused).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use server_kit::random;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::audit::{self, Actor, CLI_ACTOR, Change, Resource};
use super::failure_limits::FailureLimits;
use crate::model::AdminKey;
use crate::model::StoreError;
use crate::store::admin_keys as store;
use crate::store::{self as db_store, Conn, Db};

const PREFIX: &str = "adm_";
const KEY_ID_LEN: usize = 16;
const SECRET_LEN: usize = 43;

#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    #[error(
        "name must be 1 to 64 letters, digits, '.', '-' or '_', and not \"{CLI_ACTOR}\" (the CLI's name in the audit trail)"
    )]
    InvalidName,
    #[error("an admin key named {0} exists: revoke it first or choose another name")]
    NameTaken(String),
    #[error("no admin key {0}")]
    NotFound(Uuid),
    #[error("admin key {0} is already revoked")]
    AlreadyRevoked(Uuid),
    #[error("cannot mint a key: {0}")]
    Mint(#[from] random::RandomError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminAuthError {
    #[error("a valid admin key is required")]
    Failed,
    #[error("too many failed admin authentications, retry later")]
    Limited { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn digest(secret: &str) -> String {
    server_kit::digest::sha256(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn valid_name(name: &str) -> Result<String, AdminKeyError> {
    let name = name.trim();
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && name != CLI_ACTOR;
    ok.then(|| name.to_owned())
        .ok_or(AdminKeyError::InvalidName)
}

/// What the audit trail and the listings show of a key: never its digest.
pub fn audit_view(key: &AdminKey) -> Value {
    json!({
        "name": key.name,
        "key_id": key.key_id,
        "revoked_at": key.revoked_at,
    })
}

/// Creates a key named `name`; returns it with the full key, shown this once.
pub async fn create(
    db: &Db,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(AdminKey, SecretString), AdminKeyError> {
    let name = valid_name(name)?;
    let key_id = random::base62(KEY_ID_LEN)?;
    let secret = random::base62(SECRET_LEN)?;
    let key = AdminKey {
        id: Uuid::new_v4(),
        key_id: key_id.clone(),
        name: name.clone(),
        secret_digest: digest(&secret),
        created_at: now,
        revoked_at: None,
    };
    let tx = db_store::begin(db).await?;
    if store::list(&tx)
        .await?
        .iter()
        .any(|k| k.revoked_at.is_none() && k.name == name)
    {
        return Err(AdminKeyError::NameTaken(name));
    }
    store::insert(&tx, &key).await?;
    let change = Change {
        resource: Resource::AdminKey,
        resource_id: key.id.to_string(),
        action: "create",
        changes: audit::diff(&Value::Null, &audit_view(&key)),
    };
    audit::record(&tx, actor, change, now).await?;
    db_store::commit(tx).await?;
    Ok((
        key,
        SecretString::from(format!("{PREFIX}{key_id}_{secret}")),
    ))
}

pub async fn list(db: &impl Conn) -> Result<Vec<AdminKey>, AdminKeyError> {
    Ok(store::list(db).await?)
}

/// Keys that can authenticate: none means every admin call is refused (a startup warning).
pub async fn usable(db: &impl Conn) -> Result<u64, AdminKeyError> {
    Ok(store::count_usable(db).await?)
}

/// Revokes a key at once: its next call is refused. A key may revoke itself.
pub async fn revoke(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<AdminKey, AdminKeyError> {
    let tx = db_store::begin(db).await?;
    let before = store::find(&tx, id)
        .await?
        .ok_or(AdminKeyError::NotFound(id))?;
    if !store::revoke(&tx, id, now).await? {
        return Err(AdminKeyError::AlreadyRevoked(id));
    }
    let after = AdminKey {
        revoked_at: Some(now),
        ..before.clone()
    };
    let change = Change {
        resource: Resource::AdminKey,
        resource_id: id.to_string(),
        action: "revoke",
        changes: audit::diff(&audit_view(&before), &audit_view(&after)),
    };
    audit::record(&tx, actor, change, now).await?;
    db_store::commit(tx).await?;
    Ok(after)
}

/// Splits `adm_<key_id>_<secret>`; anything else has no key id.
fn split(presented: &str) -> (Option<&str>, &str) {
    let Some(rest) = presented.strip_prefix(PREFIX) else {
        return (None, presented);
    };
    match rest.split_once('_') {
        Some((id, secret))
            if id.len() == KEY_ID_LEN && id.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            (Some(id), secret)
        }
        _ => (None, presented),
    }
}

/// The key a call presents, if it is one of ours and not revoked. Malformed, unknown, revoked
/// and wrong keys cost the same work and get the same error; wrong guesses are counted per
/// source (`limits`), and past the limit a wrong key answers 429 while a right one still works.
pub async fn authenticate(
    db: &impl Conn,
    limits: &FailureLimits,
    presented: &SecretString,
    source: IpAddr,
    now: DateTime<Utc>,
) -> Result<AdminKey, AdminAuthError> {
    let (key_id, secret) = split(presented.expose_secret());
    let found = match key_id {
        Some(id) => store::find_by_key_id(db, id).await?,
        None => None,
    };
    let expected = found
        .as_ref()
        .map_or_else(|| "0".repeat(64), |k| k.secret_digest.clone());
    let matches: bool = digest(secret).as_bytes().ct_eq(expected.as_bytes()).into();
    match found {
        Some(key) if matches && key.revoked_at.is_none() => Ok(key),
        _ => {
            // Counted only when wrong: a digest comparison is cheap, so there is no
            // verification to reserve a count for, and a correct key writes nothing.
            let limit_key = format!("admin:{}", key_id.unwrap_or("-"));
            let attempt = limits.begin(&limit_key, source, now).await?;
            let over = attempt.over_limit();
            let retry_after = attempt.retry_after();
            attempt.failed();
            if over {
                Err(AdminAuthError::Limited { retry_after })
            } else {
                Err(AdminAuthError::Failed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_and_never_the_cli() {
        assert_eq!(valid_name(" ops-bot.1 ").unwrap(), "ops-bot.1");
        for bad in ["", "cli", "has space", "é", &"x".repeat(65)] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_split_into_id_and_secret_and_anything_else_has_no_id() {
        let id = "A".repeat(KEY_ID_LEN);
        let key = format!("adm_{id}_s3cr_et");
        assert_eq!(split(&key), (Some(id.as_str()), "s3cr_et"));
        for other in [
            "",
            "adm_",
            "adm_short_x",
            "Bearer x",
            "adm_!!!!!!!!!!!!!!!!_x",
        ] {
            assert_eq!(split(other).0, None, "{other:?}");
        }
    }
}
