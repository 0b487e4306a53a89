//! The verified-secret cache (docs/spec/security.md "Client authentication"): after a successful
//! argon2 verification, an HMAC of the secret — keyed per process, bound to the client_id and to
//! the stored PHC string — is kept in memory until it has gone unused for the idle time
//! (`AUTH_SECRET_CACHE_IDLE_SECONDS`, 5 minutes by default), so an active client never pays
//! argon2 again and never meets the failure limits. A rotated secret changes the PHC string, so
//! the cache misses at once on every replica; wrong secrets never match and pay the full argon2.
//!
//! It is also the single flight of verifications: concurrent misses for the same credentials
//! share one argon2 run (`verify_once`), so a busy client whose entry lapsed (a restart, a new
//! replica, an idle spell) costs one verification, not one per in-flight request.
//!
//! And it remembers refusals, apart: a verification is a pure function of (stored hash,
//! secret), so credentials that failed one fail every later one until the hash changes, which
//! changes the key. A client retrying with a stale secret (after a rotation, in a loop) then
//! costs argon2 once per `REFUSED_TTL`, not once per request, and a flood of one repeated guess
//! holds no argon2 memory and no waiting requests. The refusals live in a cache of their own,
//! so a stranger's guesses can never evict a verified client's entry; they are still counted
//! by the failure limits like any wrong secret, and unknown client ids are remembered the same
//! way, so a repeat answers as fast whether or not the id exists.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use server_kit::random;

pub const DEFAULT_IDLE: Duration = Duration::from_secs(300);

/// How long a refused (client_id, stored hash, secret) is answered without argon2.
pub const REFUSED_TTL: Duration = Duration::from_secs(60);

/// Refusals remembered at most: ~100 bytes each, so ~1 MiB, whoever sends the guesses.
pub const REFUSED_CAPACITY: u64 = 10_000;

/// What a cache entry is found by: the HMAC of (client_id, stored hash, secret).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub struct SecretCache {
    /// Keyed once: the HMAC key never changes for the life of the process, and each lookup
    /// clones this keyed state (OpenSSL 3's per-call `EVP_DigestSignInit` was 5 % of a token
    /// request's CPU, bench/RESULTS.md "Profiles").
    key: HmacSha256,
    entries: moka::future::Cache<CacheKey, ()>,
    /// Credentials whose verification failed, for `REFUSED_TTL`.
    refused: moka::future::Cache<CacheKey, ()>,
}

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCache")
            .field("entries", &self.entries.entry_count())
            .field("refused", &self.refused.entry_count())
            .finish()
    }
}

impl SecretCache {
    pub fn new(capacity: u64, idle: Duration) -> Result<Self, random::RandomError> {
        Self::with_refusals_for(capacity, idle, REFUSED_TTL)
    }

    /// `new` with refusals kept `refused_ttl` (tests shorten it).
    fn with_refusals_for(
        capacity: u64,
        idle: Duration,
        refused_ttl: Duration,
    ) -> Result<Self, random::RandomError> {
        let mut raw = vec![0u8; 32];
        random::fill(&mut raw)?;
        let key = HmacSha256::new_from_slice(&raw).map_err(|_| random::RandomError)?;
        Ok(Self {
            key,
            entries: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(idle)
                .build(),
            refused: moka::future::Cache::builder()
                .max_capacity(REFUSED_CAPACITY)
                .time_to_live(refused_ttl)
                .build(),
        })
    }

    /// The key of these credentials.
    pub fn key(&self, client_id: &str, phc: &str, secret: &SecretString) -> CacheKey {
        let mut mac = self.key.clone();
        // Length-prefixed parts: no two (client_id, phc, secret) triples share an input.
        for part in [
            client_id.as_bytes(),
            phc.as_bytes(),
            secret.expose_secret().as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        CacheKey(mac.finalize().into_bytes().into())
    }

    /// True when these exact credentials were verified recently; a hit renews the entry.
    pub async fn contains(&self, key: &CacheKey) -> bool {
        self.entries.get(key).await.is_some()
    }

    /// True when these exact credentials failed a verification within `REFUSED_TTL`. A hit
    /// does not renew the entry: a refusal is re-checked by argon2 once per `REFUSED_TTL`.
    pub async fn was_refused(&self, key: &CacheKey) -> bool {
        self.refused.get(key).await.is_some()
    }

    /// Remembers that these credentials failed a verification (not a busy pool: only a
    /// verification that ran and said no).
    pub async fn refuse(&self, key: CacheKey) {
        self.refused.insert(key, ()).await;
    }

    /// Runs `verify` once for all concurrent callers with the same key; its success is
    /// remembered, its failure handed to every caller that waited for it and not remembered.
    pub async fn verify_once<E, F>(&self, key: CacheKey, verify: F) -> Result<(), Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<(), E>>,
    {
        self.entries.try_get_with(key, verify).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Many distinct verified secrets (every one a success: failures are never kept) stay within
    /// the capacity; the least used go first.
    #[tokio::test]
    async fn verified_entries_stay_within_the_capacity() {
        let c = SecretCache::new(100, Duration::from_secs(300)).unwrap();
        for i in 0..1_000 {
            let k = c.key(&format!("client-{i}"), "phc", &SecretString::from("s"));
            c.verify_once(k, async { Ok::<(), ()>(()) }).await.unwrap();
        }
        c.entries.run_pending_tasks().await;
        assert!(
            c.entries.entry_count() <= 100,
            "{}",
            c.entries.entry_count()
        );
        assert!(c.entries.entry_count() > 0);
    }

    #[tokio::test]
    async fn matches_only_the_same_secret_client_and_hash() {
        let c = SecretCache::new(10, DEFAULT_IDLE).unwrap();
        let s = SecretString::from("secret");
        let k = c.key("id", "phc1", &s);
        assert!(!c.contains(&k).await);
        c.verify_once(k, async { Ok::<_, ()>(()) }).await.unwrap();
        assert!(c.contains(&k).await);
        for other in [
            c.key("id", "phc2", &s),
            c.key("id", "phc1", &SecretString::from("secreT")),
            c.key("other", "phc1", &s),
        ] {
            assert!(
                !c.contains(&other).await,
                "a rotated hash, another secret or id misses"
            );
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_verification_and_failures_are_not_kept() {
        let c = SecretCache::new(10, DEFAULT_IDLE).unwrap();
        let k = c.key("id", "phc", &SecretString::from("s"));
        let runs = AtomicUsize::new(0);
        let verify = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<(), _>("wrong")
        };
        let results = futures::future::join_all((0..32).map(|_| c.verify_once(k, verify()))).await;
        assert!(results.iter().all(Result::is_err));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!c.contains(&k).await);
    }

    /// A refusal is remembered for its exact key only, in a cache of its own: a flood of
    /// refusals stays within its capacity and evicts no verified entry.
    #[tokio::test]
    async fn refusals_are_kept_apart_bounded_and_never_evict_a_verified_entry() {
        let c = SecretCache::new(10, DEFAULT_IDLE).unwrap();
        let good = c.key("id", "phc", &SecretString::from("right"));
        c.verify_once(good, async { Ok::<_, ()>(()) })
            .await
            .unwrap();
        let wrong = c.key("id", "phc", &SecretString::from("wrong"));
        assert!(!c.was_refused(&wrong).await);
        c.refuse(wrong).await;
        assert!(c.was_refused(&wrong).await);
        assert!(!c.was_refused(&good).await);
        assert!(
            !c.was_refused(&c.key("id", "phc2", &SecretString::from("wrong")))
                .await,
            "a changed hash is verified again"
        );
        for i in 0..REFUSED_CAPACITY + 2_000 {
            c.refuse(c.key("id", "phc", &SecretString::from(format!("g{i}"))))
                .await;
        }
        c.refused.run_pending_tasks().await;
        assert!(c.refused.entry_count() <= REFUSED_CAPACITY);
        assert!(c.contains(&good).await, "verified entries are untouched");
    }

    /// A refusal lasts its time to live from when it was made, however often it is asked
    /// about: argon2 checks it again once per `REFUSED_TTL`.
    #[tokio::test]
    async fn a_refusal_expires_and_being_asked_about_does_not_renew_it() {
        let c =
            SecretCache::with_refusals_for(10, DEFAULT_IDLE, Duration::from_millis(400)).unwrap();
        let k = c.key("id", "phc", &SecretString::from("wrong"));
        c.refuse(k).await;
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(c.was_refused(&k).await, "within its time");
        }
        // 150 ms after the last question, 450 ms after the refusal: renewed by the questions
        // it would still be here.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!c.was_refused(&k).await, "past 400 ms from the refusal");
    }

    #[tokio::test]
    async fn an_entry_in_use_outlives_the_idle_time() {
        let c = SecretCache::new(10, Duration::from_millis(300)).unwrap();
        let k = c.key("id", "phc", &SecretString::from("s"));
        c.verify_once(k, async { Ok::<_, ()>(()) }).await.unwrap();
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(c.contains(&k).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!c.contains(&k).await, "idle past 300 ms");
    }
}
