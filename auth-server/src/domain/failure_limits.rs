//! Brute-force limits on client authentication (security.md): failures are counted per
//! (client_id, source address), with a ceiling ten times higher per client_id across all
//! sources, in bounded maps that expire with the window. Unknown client_ids are counted exactly
//! like known ones, so a 429 never says whether an id exists. Only requests that would run
//! argon2 are counted or refused: a client presenting its cached secret never is.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug)]
pub struct FailureLimits {
    limit: u32,
    window: Duration,
    per_source: moka::sync::Cache<(String, IpAddr), Arc<AtomicU32>>,
    per_client: moka::sync::Cache<String, Arc<AtomicU32>>,
}

/// Refused: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: u64,
}

impl FailureLimits {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            per_source: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            per_client: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
        }
    }

    fn count<K>(map: &moka::sync::Cache<K, Arc<AtomicU32>>, key: &K) -> u32
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    {
        map.get(key).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Checked before argon2 runs.
    pub fn check(&self, client_id: &str, source: IpAddr) -> Result<(), Limited> {
        let per_source = Self::count(&self.per_source, &(client_id.to_owned(), source));
        let per_client = Self::count(&self.per_client, &client_id.to_owned());
        if per_source >= self.limit || per_client >= self.limit.saturating_mul(10) {
            return Err(Limited {
                retry_after: self.window.as_secs().max(1),
            });
        }
        Ok(())
    }

    /// Counts one failed authentication. The window starts at the first failure of a key.
    pub fn record_failure(&self, client_id: &str, source: IpAddr) {
        self.per_source
            .get_with((client_id.to_owned(), source), || {
                Arc::new(AtomicU32::new(0))
            })
            .fetch_add(1, Ordering::Relaxed);
        self.per_client
            .get_with(client_id.to_owned(), || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_limit_and_per_client_ceiling() {
        let l = FailureLimits::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check("id", a).is_ok());
            l.record_failure("id", a);
        }
        assert_eq!(l.check("id", a), Err(Limited { retry_after: 60 }));
        // Another source still has room, until the per-client ceiling (30).
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check("id", b).is_ok());
        for i in 0..27u8 {
            l.record_failure("id", IpAddr::from([10, 1, 0, i]));
        }
        assert!(l.check("id", b).is_err());
        assert!(l.check("other", b).is_ok());
    }
}
