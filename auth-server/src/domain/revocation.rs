//! RFC 7009 revocation (docs/spec/auth-server.md §5) and the revocation feed for locally-verifying
//! resource servers (§6).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use shared::claims::not_before_seconds;

use super::introspection::verify_own;
use crate::state::AppState;
use crate::store::{StoreError, applications::Application, revocations};

/// How long past `exp` a revocation is still kept and published: past the longest leeway any
/// verifier may use (shared::claims::REVOCATION_RETENTION_SECONDS).
pub const LEEWAY: TimeDelta = TimeDelta::seconds(shared::claims::REVOCATION_RETENTION_SECONDS);
/// How far back a cursor query reaches again, so rows committed out of order are not skipped.
pub const OVERLAP: TimeDelta = TimeDelta::seconds(5);

/// Revokes `token` if it is one of ours, issued to `caller`; anything else is silently ignored
/// (RFC 7009 §2.2: the answer is 200 either way).
pub async fn revoke(state: &AppState, caller: &Application, token: &str) -> Result<(), StoreError> {
    let now = state.clock.now();
    let Some(claims) = verify_own(state, token, now) else {
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
    revocations::revoke(&state.db, jti, &claims.client_id, exp, now).await?;
    tracing::info!(jti, "token revoked");
    Ok(())
}

#[derive(Debug, Serialize, poem_openapi::Object)]
pub struct RevokedEntry {
    pub jti: String,
    pub exp: i64,
}

#[derive(Debug, Serialize, poem_openapi::Object)]
pub struct ClientNotBefore {
    pub client_id: String,
    pub not_before: i64,
}

#[derive(Debug, Serialize, poem_openapi::Object)]
pub struct UserNotBefore {
    pub user_id: String,
    pub not_before: i64,
}

#[derive(Debug, Serialize, poem_openapi::Object)]
pub struct Feed {
    /// Opaque; send it back as `?cursor=` to get only what changed since.
    pub cursor: String,
    /// True for a full snapshot: replace what you hold. False: merge.
    pub complete: bool,
    pub revoked: Vec<RevokedEntry>,
    pub clients_not_before: Vec<ClientNotBefore>,
    pub users_not_before: Vec<UserNotBefore>,
    /// Every signing key's `kid` in the key table, pending ones included: a local verifier
    /// that meets one of these and lacks it refetches the JWKS at once, past its refetch rate
    /// limit (a `keys rotate --now` key is announced before it signs).
    pub kids: Vec<String>,
    /// Retired keys (`keys retire`): refuse every token signed by one, whatever its `exp`.
    pub retired_kids: Vec<String>,
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
pub async fn feed(state: &AppState, cursor: Option<&str>) -> Result<Feed, StoreError> {
    let now = state.clock.now();
    let since = cursor.and_then(decode_cursor).filter(|t| *t <= now);
    let ttl = TimeDelta::seconds(state.config.token_ttl_seconds);
    let rows = revocations::feed(
        &state.db,
        now - LEEWAY,
        now - ttl - LEEWAY,
        since.map(|t| t - OVERLAP),
    )
    .await?;
    // A few rows: every key the table holds.
    let keys = crate::store::keys::all(&state.db).await?;
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
pub async fn purge(state: &AppState) -> Result<u64, StoreError> {
    let now = state.clock.now();
    let ttl = TimeDelta::seconds(state.config.token_ttl_seconds);
    revocations::purge(&state.db, now - LEEWAY, now - ttl - LEEWAY).await
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
