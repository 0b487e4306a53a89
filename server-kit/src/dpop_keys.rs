//! The verifiers built from DPoP proofs' keys, kept (`shared::dpop::KeyCache`): a client signs
//! every proof with the same key, and building a verifier from a JWK costs more than checking a
//! signature with it. Bounded in entries, so a stranger sending proofs with ever new keys only
//! churns it; a verifier holds a public key only, so keeping one for a key whose proof then
//! failed lets nobody in.

use std::sync::Arc;

use shared::dpop::KeyCache;
use shared::token::JwsVerifier;

/// The most verifiers kept (each a parsed public key, under a kilobyte).
pub const MAX_KEYS: u64 = 10_000;

pub struct DpopKeys(moka::sync::Cache<String, Arc<dyn JwsVerifier>>);

impl std::fmt::Debug for DpopKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DpopKeys")
            .field(&self.0.entry_count())
            .finish()
    }
}

impl Default for DpopKeys {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(MAX_KEYS)
                // A client's key is in use for as long as its token lives (an hour at most).
                .time_to_idle(std::time::Duration::from_secs(3600))
                .build(),
        )
    }
}

impl KeyCache for DpopKeys {
    fn verifier(
        &self,
        id: &str,
        build: &mut dyn FnMut() -> Option<Arc<dyn JwsVerifier>>,
    ) -> Option<Arc<dyn JwsVerifier>> {
        if let Some(v) = self.0.get(id) {
            return Some(v);
        }
        let v = build()?;
        self.0.insert(id.to_owned(), Arc::clone(&v));
        Some(v)
    }
}
