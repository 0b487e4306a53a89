//! RFC 7009 revocation (docs/spec/auth-server.md §5) and the revocation feed for locally-verifying
//! resource servers (§6).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use shared::claims::not_before_seconds;
use shared::feed::{ClientNotBefore, Feed, RevokedEntry, UserNotBefore};

use super::introspection::{OwnTokens, verify_own};
use crate::store::{Db, StoreError, applications::Application, keys, revocations};

/// How long past `exp` a revocation is still kept and published: past the longest leeway any
/// verifier may use (shared::claims::REVOCATION_RETENTION_SECONDS).
pub const LEEWAY: TimeDelta = TimeDelta::seconds(shared::claims::REVOCATION_RETENTION_SECONDS);
/// How far back a cursor query reaches again, so rows committed out of order are not skipped.
pub const OVERLAP: TimeDelta = TimeDelta::seconds(5);

/// Revokes `token` if it is one of ours, issued to `caller`; anything else is silently ignored
/// (RFC 7009 §2.2: the answer is 200 either way).
pub async fn revoke(
    db: &Db,
    own: &OwnTokens,
    caller: &Application,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(claims) = verify_own(own, token, now) else {
        return Ok(());
    };
    if claims.client_id != caller.client_id.as_str() {
        tracing::info!("revocation of another application's token ignored");
        return Ok(());
    }
    let (Some(jti), Some(exp)) = (
        claims.jti.as_deref(),
        DateTime::from_timestamp(claims.exp, 0),
    ) else {
        return Ok(());
    };
    revocations::revoke(db, jti, &claims.client_id, exp, now).await?;
    tracing::info!(jti, "token revoked");
    Ok(())
}

fn encode_cursor(t: DateTime<Utc>) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{}", t.timestamp_micros()))
}

fn decode_cursor(c: &str) -> Option<DateTime<Utc>> {
    let raw = URL_SAFE_NO_PAD.decode(c).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let micros: i64 = text.strip_prefix("v1:")?.parse().ok()?;
    DateTime::from_timestamp_micros(micros)
}

/// A full snapshot without (or with an unknown) cursor; otherwise the changes since it, with
/// `OVERLAP` re-sent (applying an entry twice is harmless).
///
/// `token_ttl_seconds` bounds how long a not-before time matters: no token outlives it.
pub async fn feed(
    db: &Db,
    cursor: Option<&str>,
    token_ttl_seconds: i64,
    now: DateTime<Utc>,
) -> Result<Feed, StoreError> {
    let since = cursor.and_then(decode_cursor).filter(|t| *t <= now);
    let ttl = TimeDelta::seconds(token_ttl_seconds);
    let rows = revocations::feed(
        db,
        now - LEEWAY,
        now - ttl - LEEWAY,
        since.map(|t| t - OVERLAP),
    )
    .await?;
    // A few rows: every key the table holds.
    let keys = keys::all(db).await?;
    Ok(Feed {
        cursor: encode_cursor(now),
        complete: since.is_none(),
        revoked: rows
            .revoked
            .into_iter()
            .map(|r| RevokedEntry {
                jti: r.jti,
                exp: r.exp.timestamp(),
            })
            .collect(),
        clients_not_before: rows
            .clients
            .into_iter()
            .map(|(client_id, t)| ClientNotBefore {
                client_id,
                not_before: not_before_seconds(t),
            })
            .collect(),
        users_not_before: rows
            .users
            .into_iter()
            .map(|(id, t)| UserNotBefore {
                user_id: id.to_string(),
                not_before: not_before_seconds(t),
            })
            .collect(),
        kids: keys
            .iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.kid.clone())
            .collect(),
        retired_kids: keys
            .into_iter()
            .filter(|k| k.retired_at.is_some())
            .map(|k| k.kid)
            .collect(),
    })
}

/// Deletes revocations and tombstones that can no longer matter.
pub async fn purge(db: &Db, token_ttl_seconds: i64, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let ttl = TimeDelta::seconds(token_ttl_seconds);
    revocations::purge(db, now - LEEWAY, now - ttl - LEEWAY).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_ignored() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        assert_eq!(decode_cursor(&encode_cursor(t)), Some(t));
        assert_eq!(decode_cursor("garbage"), None);
        assert_eq!(decode_cursor(""), None);
    }
}
