//! The verified-secret cache (security.md "Hot path"): after a successful argon2 verification,
//! an HMAC of the secret — keyed per process, bound to the client_id and to the stored PHC
//! string — is kept in memory for at most 5 minutes. A rotated secret changes the PHC string, so
//! the cache misses at once on every replica; wrong secrets never match and pay the full argon2.

use std::time::Duration;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use secrecy::{ExposeSecret, SecretString};
use shared::server::random;
use subtle::ConstantTimeEq;

pub const MAX_AGE: Duration = Duration::from_secs(300);

pub struct SecretCache {
    /// Built once: the HMAC key never changes for the life of the process.
    key: PKey<Private>,
    entries: moka::sync::Cache<String, [u8; 32]>,
}

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl SecretCache {
    pub fn new(capacity: u64) -> Result<Self, random::RandomError> {
        let mut raw = vec![0u8; 32];
        random::fill(&mut raw)?;
        let key = PKey::hmac(&raw).map_err(|_| random::RandomError)?;
        Ok(Self {
            key,
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(MAX_AGE)
                .build(),
        })
    }

    fn mac(&self, client_id: &str, phc: &str, secret: &SecretString) -> Option<[u8; 32]> {
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).ok()?;
        // Length-prefixed parts: no two (client_id, phc, secret) triples share an input.
        for part in [
            client_id.as_bytes(),
            phc.as_bytes(),
            secret.expose_secret().as_bytes(),
        ] {
            signer.update(&(part.len() as u64).to_be_bytes()).ok()?;
            signer.update(part).ok()?;
        }
        let out = signer.sign_to_vec().ok()?;
        out.try_into().ok()
    }

    /// True when this exact secret was verified against this exact stored hash recently.
    pub fn matches(&self, client_id: &str, phc: &str, secret: &SecretString) -> bool {
        let (Some(stored), Some(mac)) = (
            self.entries.get(client_id),
            self.mac(client_id, phc, secret),
        ) else {
            return false;
        };
        bool::from(stored.ct_eq(&mac))
    }

    pub fn remember(&self, client_id: &str, phc: &str, secret: &SecretString) {
        if let Some(mac) = self.mac(client_id, phc, secret) {
            self.entries.insert(client_id.to_owned(), mac);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_secret_client_and_hash() {
        let c = SecretCache::new(10).unwrap();
        let s = SecretString::from("secret");
        assert!(!c.matches("id", "phc1", &s));
        c.remember("id", "phc1", &s);
        assert!(c.matches("id", "phc1", &s));
        assert!(!c.matches("id", "phc2", &s), "a rotated hash misses");
        assert!(!c.matches("id", "phc1", &SecretString::from("secreT")));
        assert!(!c.matches("other", "phc1", &s));
    }
}
