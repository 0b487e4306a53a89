//! Signature-verified claims cached by SHA-256 of the token, for both services: a token reused
//! for an hour pays one signature check (EdDSA verification is ~110 µs, the hash ~1 µs).
//!
//! Only the signature is remembered. Whatever can change — expiry, `nbf`, revocation, the
//! application's and user's state, the key still being published — stays the caller's check on
//! every request; a hit whose key is gone is dropped.

use std::sync::Arc;
use std::time::Duration;

use shared::AccessTokenClaims;

/// Bounded by entries; an entry outlives its token's `exp` at most by this, and an expired token
/// fails the caller's claim checks anyway.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
struct Verified {
    kid: Option<String>,
    claims: Arc<AccessTokenClaims>,
}

#[derive(Debug, Clone)]
pub struct VerifiedTokens {
    entries: moka::sync::Cache<[u8; 32], Verified>,
}

impl VerifiedTokens {
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(MAX_AGE)
                .build(),
        }
    }

    pub fn key(token: &str) -> [u8; 32] {
        openssl::sha::sha256(token.as_bytes())
    }

    /// The cached claims, if this exact token was verified before and `key_published` still
    /// holds for the `kid` it was verified with.
    pub fn get(
        &self,
        key: &[u8; 32],
        key_published: impl FnOnce(Option<&str>) -> bool,
    ) -> Option<Arc<AccessTokenClaims>> {
        let hit = self.entries.get(key)?;
        if key_published(hit.kid.as_deref()) {
            Some(hit.claims)
        } else {
            self.entries.invalidate(key);
            None
        }
    }

    /// Remembers claims whose signature was just verified with key `kid`.
    pub fn insert(
        &self,
        key: [u8; 32],
        kid: Option<String>,
        claims: AccessTokenClaims,
    ) -> Arc<AccessTokenClaims> {
        let claims = Arc::new(claims);
        self.entries.insert(
            key,
            Verified {
                kid,
                claims: Arc::clone(&claims),
            },
        );
        claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        serde_json::from_value(serde_json::json!({
            "iss": "i", "aud": "a", "sub": "u", "client_id": "c", "exp": 2_000_000_000
        }))
        .unwrap()
    }

    #[test]
    fn hit_only_while_the_key_is_published() {
        let cache = VerifiedTokens::new(10);
        let key = VerifiedTokens::key("a.b.c");
        assert!(cache.get(&key, |_| true).is_none());
        cache.insert(key, Some("k1".into()), claims());
        assert!(cache.get(&key, |kid| kid == Some("k1")).is_some());
        assert!(cache.get(&VerifiedTokens::key("a.b.d"), |_| true).is_none());
        // A retired key drops the entry for good.
        assert!(cache.get(&key, |_| false).is_none());
        assert!(cache.get(&key, |_| true).is_none());
    }
}
