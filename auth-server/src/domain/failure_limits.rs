//! Brute-force limits on client authentication (docs/spec/security.md "Client authentication").
//!
//! Three counters per attempt, each kept for a window from its first attempt:
//! - per (client_id, source): `limit`;
//! - per client_id across all sources: `10 × limit` (distributed guessing);
//! - per source across all client_ids: `10 × limit` (one address spraying random ids). IPv6
//!   sources count by their /64, the block one subscriber gets.
//!
//! An attempt is counted *before* its argon2 runs (`begin`), atomically, so N concurrent guesses
//! can't all slip under the limit; a success gives its count back. Being over a limit does not
//! refuse a request by itself: the caller verifies it on the reserved lane and refuses only a
//! wrong secret (client_auth.rs), so guesses never lock out the real client. Unknown client_ids
//! are counted exactly like known ones, so a 429 never says whether an id exists.
//!
//! Where the counters live follows the database: on SQLite (one process) in bounded maps in
//! memory; on PostgreSQL in the `failure_counters` table every replica shares, so a fleet of N
//! replicas has one limit, not N (one upsert per counted attempt, next to the argon2 run it
//! guards; store/failure_counters.rs).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::StoreError;
use crate::store::{Db, failure_counters};

/// Entries per map. A flood of random client_ids from random sources fills them and then
/// evicts the least used: memory stays under ~30 MiB for the three maps together.
pub const MAX_ENTRIES: u64 = 100_000;
/// The per-client and per-source ceilings, as a multiple of the per-pair limit.
pub const CEILING_FACTOR: u32 = 10;

type Counters<K> = moka::sync::Cache<K, Arc<AtomicU32>>;

#[derive(Debug)]
pub struct FailureLimits {
    limit: u32,
    window: Duration,
    counters: Store,
}

/// Where the counters are kept.
#[derive(Debug)]
enum Store {
    Memory {
        per_pair: Counters<(String, IpAddr)>,
        per_client: Counters<String>,
        per_source: Counters<IpAddr>,
    },
    Shared(Db),
}

/// One counted attempt. Dropped without `failed()`, its count is given back: a success, or a
/// verification that never ran (argon2 busy), costs the client nothing.
#[derive(Debug)]
pub struct Attempt {
    held: Held,
    over: bool,
    retry_after: u64,
    failed: bool,
}

#[derive(Debug)]
enum Held {
    Memory([Arc<AtomicU32>; 3]),
    /// The database's keys and when they were counted (a give-back within that window).
    Shared {
        db: Db,
        keys: [String; 3],
        at: DateTime<Utc>,
    },
}

impl Attempt {
    /// True when this attempt went past one of the limits: it may still succeed, but only on
    /// the reserved lane, and a failure answers 429.
    pub fn over_limit(&self) -> bool {
        self.over
    }

    pub fn retry_after(&self) -> u64 {
        self.retry_after
    }

    /// Keeps the count: a wrong secret or an unknown client_id.
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.failed {
            return;
        }
        match &mut self.held {
            Held::Memory(counters) => {
                for c in counters.iter() {
                    // Never below zero, even if the entry was evicted and re-created meanwhile.
                    let _ =
                        c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
                }
            }
            Held::Shared { db, keys, at } => {
                // Off the request path: the answer does not wait for the give-back.
                let (db, keys, at) = (db.clone(), std::mem::take(keys), *at);
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        if let Err(e) = failure_counters::give_back(&db, &keys, at).await {
                            tracing::warn!(error = %e, "failure counter give-back failed");
                        }
                    });
                }
            }
        }
    }
}

use server_kit::source::source_key;

impl FailureLimits {
    /// Counters in this process's memory (one process: SQLite, tests of the rules).
    pub fn new(limit: u32, window: Duration) -> Self {
        fn counters<K>(window: Duration) -> Counters<K>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
        {
            moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(window)
                .build()
        }
        Self {
            limit,
            window,
            counters: Store::Memory {
                per_pair: counters(window),
                per_client: counters(window),
                per_source: counters(window),
            },
        }
    }

    /// Counters where `db` keeps them for every replica (PostgreSQL), else in memory.
    pub fn for_database(db: &Db, limit: u32, window: Duration) -> Self {
        if crate::store::is_shared(db) {
            Self {
                limit,
                window,
                counters: Store::Shared(db.clone()),
            }
        } else {
            Self::new(limit, window)
        }
    }

    /// Whether the counters are shared by every replica.
    pub fn is_shared(&self) -> bool {
        matches!(self.counters, Store::Shared(_))
    }

    /// Counts an attempt before its verification runs. The window of a key starts at its first
    /// attempt. Fails only if the shared counters can't be reached (the database is down, and
    /// with it the lookup this attempt needs anyway).
    pub async fn begin(
        &self,
        client_id: &str,
        source: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Attempt, StoreError> {
        let source = source_key(source);
        let ceiling = self.limit.saturating_mul(CEILING_FACTOR);
        let limits = [self.limit, ceiling, ceiling];
        let window_secs = self.window.as_secs().max(1);
        match &self.counters {
            Store::Memory {
                per_pair,
                per_client,
                per_source,
            } => {
                let fresh = || Arc::new(AtomicU32::new(0));
                let counters = [
                    per_pair.get_with((client_id.to_owned(), source), fresh),
                    per_client.get_with(client_id.to_owned(), fresh),
                    per_source.get_with(source, fresh),
                ];
                let mut over = false;
                for (c, limit) in counters.iter().zip(limits) {
                    // `>=` before the increment: the limit-th attempt still runs normally.
                    let before = c
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_add(1))
                        .unwrap_or(u32::MAX);
                    over |= before >= limit;
                }
                Ok(Attempt {
                    held: Held::Memory(counters),
                    over,
                    retry_after: window_secs,
                    failed: false,
                })
            }
            Store::Shared(db) => {
                let keys = shared_keys(client_id, source);
                let window = chrono::Duration::seconds(i64::try_from(window_secs).unwrap_or(60));
                let counted = failure_counters::count(db, &keys, now, now + window).await?;
                let refused = shared_refusal(&counted, limits, now);
                Ok(Attempt {
                    held: Held::Shared {
                        db: db.clone(),
                        keys,
                        at: now,
                    },
                    over: refused.is_some(),
                    retry_after: refused.unwrap_or(window_secs),
                    failed: false,
                })
            }
        }
    }
}

/// Whether the shared counts (this attempt included) refuse it, and if so in how many seconds
/// to come back: until the window that refuses ends, not a whole new window, rounded up so a
/// client told to come back in N s is not refused again, and at least 1 s.
fn shared_refusal(
    counted: &[failure_counters::Counted; 3],
    limits: [u32; 3],
    now: DateTime<Utc>,
) -> Option<u64> {
    let mut refused = None;
    for (c, limit) in counted.iter().zip(limits) {
        // The limit-th attempt still runs normally, as in memory.
        if c.count.saturating_sub(1) >= limit {
            let left_ms = (c.expires_at - now).num_milliseconds();
            let left = u64::try_from((left_ms + 999).div_euclid(1000).max(1)).unwrap_or(1);
            refused = Some(refused.map_or(left, |r: u64| r.max(left)));
        }
    }
    refused
}

/// The three rows an attempt counts on: pair, client_id, source. A NUL (which PostgreSQL text
/// can't hold) is written as `\0`; client_ids come here cut to 64 characters.
fn shared_keys(client_id: &str, source: IpAddr) -> [String; 3] {
    let client = client_id.replace('\0', "\\0");
    [
        format!("p:{source}|{client}"),
        format!("c:{client}"),
        format!("s:{source}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn per_pair_limit_per_client_and_per_source_ceilings() {
        let l = FailureLimits::new(3, Duration::from_secs(60));
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            let t = l.begin("id", a, Utc::now()).await.unwrap();
            assert!(!t.over_limit());
            t.failed();
        }
        let t = l.begin("id", a, Utc::now()).await.unwrap();
        assert!(t.over_limit());
        assert_eq!(t.retry_after(), 60);
        t.failed();
        // Another source still has room, until the per-client ceiling (30).
        let b = ip("10.0.0.2");
        assert!(!l.begin("id", b, Utc::now()).await.unwrap().over_limit());
        for i in 0..27u8 {
            l.begin("id", IpAddr::from([10, 1, 0, i]), Utc::now())
                .await
                .unwrap()
                .failed();
        }
        assert!(l.begin("id", b, Utc::now()).await.unwrap().over_limit());
        assert!(!l.begin("other", b, Utc::now()).await.unwrap().over_limit());
        // One source spraying client_ids meets its own ceiling (30) across ids.
        let c = ip("10.2.0.1");
        for i in 0..30 {
            l.begin(&format!("random-{i}"), c, Utc::now())
                .await
                .unwrap()
                .failed();
        }
        assert!(
            l.begin("never-seen", c, Utc::now())
                .await
                .unwrap()
                .over_limit()
        );
    }

    /// A flood of random client_ids from random sources: each map keeps at most MAX_ENTRIES,
    /// whatever the flood's size (memory bounded), and a flooding source is still limited.
    #[tokio::test]
    async fn a_flood_of_distinct_keys_keeps_each_map_within_its_cap() {
        let l = FailureLimits::new(3, Duration::from_secs(60));
        let n = MAX_ENTRIES as u32 + 20_000;
        for i in 0..n {
            let source = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            l.begin(&format!("random-{i}"), source, Utc::now())
                .await
                .unwrap()
                .failed();
        }
        let Store::Memory {
            per_pair,
            per_client,
            per_source,
        } = &l.counters
        else {
            panic!("in memory");
        };
        per_pair.run_pending_tasks();
        per_client.run_pending_tasks();
        per_source.run_pending_tasks();
        for (name, count) in [
            ("per pair", per_pair.entry_count()),
            ("per client", per_client.entry_count()),
            ("per source", per_source.entry_count()),
        ] {
            assert!(count <= MAX_ENTRIES, "{name}: {count}");
        }
    }

    #[tokio::test]
    async fn in_flight_attempts_count_and_successes_give_their_count_back() {
        let l = FailureLimits::new(2, Duration::from_secs(60));
        let a = ip("192.0.2.1");
        // Three concurrent attempts: the third is over before any has finished.
        let first = l.begin("id", a, Utc::now()).await.unwrap();
        let second = l.begin("id", a, Utc::now()).await.unwrap();
        let third = l.begin("id", a, Utc::now()).await.unwrap();
        assert!(!first.over_limit() && !second.over_limit());
        assert!(third.over_limit());
        drop((first, second, third)); // all succeeded
        assert!(!l.begin("id", a, Utc::now()).await.unwrap().over_limit());
    }

    #[tokio::test]
    async fn ipv6_sources_count_by_their_64() {
        let l = FailureLimits::new(1, Duration::from_secs(60));
        for i in 0..10u16 {
            let addr = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i]);
            l.begin(&format!("id-{i}"), addr, Utc::now())
                .await
                .unwrap()
                .failed();
        }
        let same_64 = IpAddr::from([0x2001, 0xdb8, 0, 1, 0xffff, 0, 0, 1]);
        assert!(
            l.begin("id-new", same_64, Utc::now())
                .await
                .unwrap()
                .over_limit()
        );
        let other_64 = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert!(
            !l.begin("id-new2", other_64, Utc::now())
                .await
                .unwrap()
                .over_limit()
        );
    }

    /// The shared counters' verdict: the limit-th attempt runs, the next is refused until the
    /// refusing window ends (rounded up, at least 1 s; the longest if several refuse).
    #[test]
    fn shared_counts_refuse_past_the_limit_until_the_window_ends() {
        use failure_counters::Counted;
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |count, ms| Counted {
            count,
            expires_at: now + chrono::Duration::milliseconds(ms),
        };
        let limits = [3, 30, 30];
        assert_eq!(
            shared_refusal(&[at(3, 9_000), at(3, 9_000), at(3, 9_000)], limits, now),
            None
        );
        assert_eq!(
            shared_refusal(&[at(4, 9_000), at(4, 9_000), at(4, 9_000)], limits, now),
            Some(9)
        );
        assert_eq!(
            shared_refusal(&[at(4, 8_001), at(31, 20_000), at(1, 1)], limits, now),
            Some(20)
        );
        assert_eq!(
            shared_refusal(&[at(4, 1), at(1, 0), at(1, 0)], limits, now),
            Some(1)
        );
        assert_eq!(
            shared_refusal(&[at(4, -5_000), at(1, 0), at(1, 0)], limits, now),
            Some(1)
        );
        assert_eq!(
            shared_refusal(&[at(1, 0), at(1, 0), at(31, 2_500)], limits, now),
            Some(3)
        );
    }

    #[test]
    fn counters_in_memory_are_not_shared_and_in_the_database_are() {
        assert!(!FailureLimits::new(3, Duration::from_secs(60)).is_shared());
        let shared = FailureLimits {
            limit: 3,
            window: Duration::from_secs(60),
            counters: Store::Shared(Db::default()),
        };
        assert!(shared.is_shared());
    }
}
