//! Signature-verified claims cached by SHA-256 of the token, for both services: a token reused
//! for an hour pays one signature check (EdDSA verification is ~110 µs, the hash ~1 µs).
//!
//! Only the signature is remembered. Whatever can change — expiry, `nbf`, revocation, the
//! application's and user's state, the key still being published — stays the caller's check on
//! every request; a hit whose key is gone is dropped.

use std::sync::Arc;
use std::time::Duration;

use shared::AccessTokenClaims;

/// An entry outlives its token's `exp` at most by this, and an expired token fails the caller's
/// claim checks anyway.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What an entry costs beyond its claims' JSON length: moka's node and its bookkeeping, the
/// 32-byte key, the `Arc` and the struct. With ~400 B of claims an entry weighs ~1 KB, as
/// measured (RSS over 100k cached tokens: ~1.05 KB each).
const ENTRY_OVERHEAD: u32 = 640;

#[derive(Debug, Clone)]
struct Verified {
    kid: Option<String>,
    claims: Arc<AccessTokenClaims>,
}

#[derive(Debug, Clone)]
pub struct VerifiedTokens {
    entries: moka::sync::Cache<[u8; 32], Verified>,
}

fn weight(_: &[u8; 32], v: &Verified) -> u32 {
    let claims = serde_json::to_vec(&*v.claims).map_or(512, |j| j.len());
    let kid = v.kid.as_ref().map_or(0, String::len);
    ENTRY_OVERHEAD.saturating_add(u32::try_from(claims + kid).unwrap_or(u32::MAX))
}

impl VerifiedTokens {
    /// A cache that holds at most `max_bytes` of entries (by estimate), least used out first
    /// (`VERIFIED_TOKEN_CACHE_MIB`).
    pub fn new(max_bytes: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(weight)
                .time_to_live(MAX_AGE)
                .build(),
        }
    }

    /// The bytes the cache holds now, by the same estimate (for tests and metrics).
    pub fn weighed_bytes(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }

    pub fn key(token: &str) -> [u8; 32] {
        crate::digest::sha256(token.as_bytes())
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
    fn the_budget_bounds_the_bytes_held() {
        let cache = VerifiedTokens::new(10_000);
        for i in 0..100 {
            let key = VerifiedTokens::key(&format!("token-{i}"));
            cache.insert(key, Some("k1".into()), claims());
        }
        let held = cache.weighed_bytes();
        assert!(held <= 10_000, "{held}");
        // Roughly a kilobyte an entry: about ten of them fit.
        assert!(held >= 5_000, "{held}");
    }

    #[test]
    fn hit_only_while_the_key_is_published() {
        let cache = VerifiedTokens::new(1 << 20);
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
