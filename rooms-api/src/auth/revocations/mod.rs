//! The revocation feed (docs/spec/auth-server.md §6) as seen by a locally-verifying rooms API: polled
//! every `REVOCATION_POLL_SECONDS`, page by page (`poller.rs`), applied to every request (here),
//! and failing closed when it has not been reachable for `max(3 × poll, 60 s)`.
//!
//! Requests never wait on a merge (`state.rs`): new entries go to concurrent maps in 64 shards
//! (a delta's inserts lock one shard for one insert at a time), revoked jtis are folded into a
//! sorted array built on the side and swapped in by one pointer store, a snapshot is built on
//! the side too, and expired revocations leave when the array is rebuilt (once a minute), never
//! by a pass over a map under one lock.

mod poller;
mod state;

use std::sync::{Arc, RwLock};

use chrono::TimeDelta;
use shared::{AccessTokenClaims, Clock};

use crate::config::RevocationConfig;
pub use poller::FeedError;
use poller::PAGE_TIMEOUT;
use state::{Meta, Progress, Tables, digest};

/// More announced kids than this are ignored (the table holds a few keys).
const MAX_ANNOUNCED: usize = 64;
#[derive(Debug)]
pub struct RevocationFeed {
    config: RevocationConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    tables: RwLock<Arc<Tables>>,
    meta: RwLock<Meta>,
    progress: tokio::sync::Mutex<Progress>,
}

impl RevocationFeed {
    pub fn new(config: RevocationConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Ok(Self {
            config,
            http: reqwest::Client::builder().timeout(PAGE_TIMEOUT).build()?,
            clock,
            tables: RwLock::new(Arc::new(Tables::default())),
            meta: RwLock::new(Meta::default()),
            progress: tokio::sync::Mutex::new(Progress::default()),
        })
    }

    fn staleness_limit(&self) -> TimeDelta {
        let three_polls =
            TimeDelta::from_std(self.config.poll * 3).unwrap_or(TimeDelta::seconds(60));
        three_polls.max(TimeDelta::seconds(60))
    }

    /// Fresh enough to trust: a complete pull succeeded within `max(3 × poll, 60 s)`.
    pub fn is_fresh(&self) -> bool {
        let now = self.clock.now();
        self.meta
            .read()
            .ok()
            .and_then(|s| s.last_success)
            .is_some_and(|t| now - t < self.staleness_limit())
    }

    /// True when `kid` names a retired key: refuse the token.
    pub fn is_retired(&self, kid: &str) -> bool {
        self.meta
            .read()
            .map(|s| s.retired.contains(kid))
            .unwrap_or(true)
    }

    /// True when the auth-server's feed named `kid` as one of its keys.
    pub fn announced(&self, kid: &str) -> bool {
        self.meta
            .read()
            .map(|s| s.announced.contains(kid))
            .unwrap_or(false)
    }

    /// Refused when revoked, or issued before its client's or user's `not_before`.
    pub fn is_refused(&self, claims: &AccessTokenClaims, user_id: &str) -> bool {
        // The lock is held for one pointer copy; the lookups run on the tables it names.
        let Ok(tables) = self.tables.read().map(|t| Arc::clone(&t)) else {
            return true;
        };
        if claims
            .jti
            .as_deref()
            .is_some_and(|j| tables.revoked.contains(&digest(j)))
        {
            return true;
        }
        let client_nb = tables.clients.get(&claims.client_id).map(|e| *e);
        let user_nb = tables.users.get(user_id).map(|e| *e);
        [client_nb, user_nb]
            .into_iter()
            .flatten()
            .any(|nb| claims.issued_before(nb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ManualClock;
    use std::time::Duration;

    fn feed(poll_seconds: u64, clock: &Arc<ManualClock>) -> RevocationFeed {
        let config = RevocationConfig {
            url: "http://127.0.0.1:9/oauth/revocations".into(),
            credentials: crate::config::ClientCredentials {
                client_id: "c".into(),
                secret: "s".to_owned().into(),
            },
            poll: Duration::from_secs(poll_seconds),
            page_size: None,
        };
        RevocationFeed::new(config, Arc::clone(clock) as Arc<dyn Clock>).unwrap()
    }

    /// Fresh until `max(3 × poll, 60 s)` after the last complete pull, that instant excluded;
    /// never fresh before a first one.
    #[test]
    fn stale_after_three_polls_or_a_minute_whichever_is_longer() {
        for (poll, limit) in [(1, 60), (30, 90)] {
            let clock = Arc::new(ManualClock::starting_now());
            let f = feed(poll, &clock);
            assert!(!f.is_fresh(), "never pulled");
            f.meta.write().unwrap().last_success = Some(clock.now());
            clock.advance(TimeDelta::seconds(limit - 1));
            assert!(f.is_fresh(), "poll {poll}: {} s after", limit - 1);
            clock.advance(TimeDelta::seconds(1));
            assert!(!f.is_fresh(), "poll {poll}: {limit} s after");
        }
    }
}
