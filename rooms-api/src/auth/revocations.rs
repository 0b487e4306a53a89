//! The revocation feed (docs/spec/auth-server.md §6) as seen by a locally-verifying rooms API: polled
//! every `REVOCATION_POLL_SECONDS`, page by page, applied to every request, and failing closed
//! when it has not been reachable for `max(3 × poll, 60 s)`.
//!
//! Requests never wait on a merge: new entries go to concurrent maps in 64 shards (a delta's
//! inserts lock one shard for one insert at a time), revoked jtis are folded into a sorted array
//! built on the side and swapped in by one pointer store, a snapshot is built on the side too,
//! and expired revocations leave when the array is rebuilt (once a minute), never by a pass over
//! a map under one lock.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use dashmap::DashMap;
use secrecy::ExposeSecret;
use shared::basic_auth::encode_basic;
use shared::feed::Feed;
use shared::{AccessTokenClaims, Clock};

use crate::config::RevocationConfig;

/// More announced kids than this are ignored (the table holds a few keys).
const MAX_ANNOUNCED: usize = 64;
/// Expired revocations are swept at most this often: one is dropped at most this late.
const SWEEP_SECONDS: i64 = 60;
/// Shards of each map: a sweep or a rehash holds one shard's lock, 1/64 of the entries.
const SHARDS: usize = 64;
/// A failed page is retried after 1 s, 2 s, 4 s, … up to this (or the poll interval, if longer).
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A revoked jti, kept as the first 128 bits of its SHA-256: 16 bytes whatever the jti's
/// length, and a false match is a 2⁻¹²⁸ chance. With its `exp` as u32 seconds an entry is 20
/// bytes (a `u128` key would pad it to 32).
type JtiDigest = [u8; 16];

fn digest(jti: &str) -> JtiDigest {
    let h = openssl::sha::sha256(jti.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&h[..16]);
    first
}

/// `exp` as stored: Unix seconds fit a u32 until 2106; anything outside is clamped (a later
/// expiry only keeps the revocation longer).
fn stored_exp(exp: i64) -> u32 {
    u32::try_from(exp.max(0)).unwrap_or(u32::MAX)
}

/// Revoked jtis: a sorted array (20 bytes an entry, ~20 MiB at 1M) that requests binary-search,
/// and the entries added since it was last rebuilt in a concurrent map. The poller folds the
/// map into a new array off to the side (dropping what expired) and swaps it in: when the map
/// has grown past an eighth of the array, and once a `SWEEP_SECONDS` to expire. As a hash map
/// alone, 1M entries took ~45 MiB.
#[derive(Debug)]
struct RevokedSet {
    sorted: RwLock<Arc<Vec<(JtiDigest, u32)>>>,
    recent: DashMap<JtiDigest, u32>,
}

impl Default for RevokedSet {
    fn default() -> Self {
        Self {
            sorted: RwLock::new(Arc::new(Vec::new())),
            recent: DashMap::with_shard_amount(SHARDS),
        }
    }
}

impl RevokedSet {
    fn sorted(&self) -> Arc<Vec<(JtiDigest, u32)>> {
        self.sorted
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    fn contains(&self, d: &JtiDigest) -> bool {
        self.recent.contains_key(d) || self.sorted().binary_search_by(|(k, _)| k.cmp(d)).is_ok()
    }

    fn len(&self) -> usize {
        self.sorted().len() + self.recent.len()
    }

    fn insert(&self, d: JtiDigest, exp: u32) {
        self.recent.insert(d, exp);
    }

    /// Folds `recent` into a new sorted array without the entries that expired by `horizon`
    /// (Unix seconds), swaps it in, then forgets the folded entries. Only the poller calls it.
    /// Returns how many entries left.
    fn rebuild(&self, horizon: u32) -> usize {
        let old = self.sorted();
        let mut added: Vec<(JtiDigest, u32)> =
            self.recent.iter().map(|e| (*e.key(), *e.value())).collect();
        added.sort_unstable_by_key(|e| e.0);
        let mut merged = Vec::with_capacity(old.len() + added.len());
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < added.len() {
            let next = match (old.get(i), added.get(j)) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    i += 1;
                    j += 1;
                    (a.0, a.1.max(b.1))
                }
                (Some(a), Some(b)) if a.0 < b.0 => {
                    i += 1;
                    *a
                }
                (Some(a), None) => {
                    i += 1;
                    *a
                }
                (_, Some(b)) => {
                    j += 1;
                    *b
                }
                (None, None) => break,
            };
            if next.1 > horizon {
                merged.push(next);
            }
        }
        merged.shrink_to_fit();
        let before = old.len() + added.len();
        let after = merged.len();
        drop(old);
        if let Ok(mut s) = self.sorted.write() {
            *s = Arc::new(merged);
        }
        // Now in the array: forget them here (a newer exp that raced in stays).
        for (d, exp) in added {
            self.recent.remove_if(&d, |_, e| *e == exp);
        }
        before.saturating_sub(after)
    }
}

/// What requests read. Replaced whole when a snapshot completes; merged into otherwise.
#[derive(Debug)]
struct Tables {
    revoked: RevokedSet,
    clients: DashMap<String, i64>,
    users: DashMap<String, i64>,
    /// When expired revocations were last swept (Unix seconds).
    swept: AtomicI64,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            revoked: RevokedSet::default(),
            clients: DashMap::with_shard_amount(SHARDS),
            users: DashMap::with_shard_amount(SHARDS),
            swept: AtomicI64::new(0),
        }
    }
}

impl Tables {
    fn merge(&self, feed: Feed) {
        for r in feed.revoked {
            self.revoked.insert(digest(&r.jti), stored_exp(r.exp));
        }
        // Keep the map small next to the array (amortised: each rebuild at least doubles
        // nothing, it grows the array by an eighth or more).
        let (sorted, recent) = (self.revoked.sorted().len(), self.revoked.recent.len());
        if recent > 4096 && recent > sorted / 8 {
            self.revoked.rebuild(0);
        }
        for c in feed.clients_not_before {
            let mut e = self.clients.entry(c.client_id).or_insert(c.not_before);
            *e = (*e).max(c.not_before);
        }
        for u in feed.users_not_before {
            let mut e = self.users.entry(u.user_id).or_insert(u.not_before);
            *e = (*e).max(u.not_before);
        }
    }

    /// Drops revocations of tokens past any leeway (before that, a revoked token would be
    /// accepted again: claims::REVOCATION_RETENTION_SECONDS), at most once a `SWEEP_SECONDS`,
    /// by rebuilding the array without them. Returns how many left.
    fn expire(&self, now: DateTime<Utc>) -> usize {
        let t = now.timestamp();
        if t - self.swept.load(Ordering::Relaxed) < SWEEP_SECONDS {
            return 0;
        }
        self.swept.store(t, Ordering::Relaxed);
        self.revoked
            .rebuild(stored_exp(t - shared::claims::REVOCATION_RETENTION_SECONDS))
    }
}

/// Everything but the tables: small, replaced at each page.
#[derive(Debug, Default)]
struct Meta {
    last_success: Option<DateTime<Utc>>,
    /// Kids the auth-server announced in its last answer.
    announced: HashSet<String>,
    /// Kids of retired keys: their tokens are refused whatever their `exp`.
    retired: HashSet<String>,
}

/// The poller's own progress, touched by one poll at a time.
#[derive(Debug, Default)]
struct Progress {
    cursor: Option<String>,
    /// A snapshot whose last page has not come yet: not visible to requests.
    building: Option<Tables>,
    pages: u64,
    started: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("revocation feed request timed out after {0:?}")]
    Timeout(Duration),
    #[error("revocation feed unreachable: {0}")]
    Request(String),
    #[error("revocation feed answered {0}")]
    Status(u16),
}

impl FeedError {
    fn from_reqwest(e: reqwest::Error, timeout: Duration) -> Self {
        if e.is_timeout() {
            return FeedError::Timeout(timeout);
        }
        // reqwest's Display omits the cause ("error sending request"); say what failed.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        FeedError::Request(text)
    }
}

/// Runs `work` on tokio's blocking pool and waits for it. Should that thread be gone (the
/// runtime shutting down), the work is lost with it, which is harmless then.
async fn off_the_runtime<T: Default + Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(work).await.unwrap_or_default()
}

/// One page's request deadline: a page holds at most 5,000 entries (~320 KiB).
const PAGE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct RevocationFeed {
    config: RevocationConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    tables: RwLock<Arc<Tables>>,
    meta: RwLock<Meta>,
    progress: tokio::sync::Mutex<Progress>,
    polls: AtomicU64,
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
            polls: AtomicU64::new(0),
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

    pub fn poll_count(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
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

    async fn fetch(&self, cursor: Option<&str>) -> Result<Feed, FeedError> {
        let creds = &self.config.credentials;
        let mut url = self.config.url.clone();
        // The cursor is base64url: safe in a query string as is.
        if let Some(c) = cursor {
            url = format!("{url}?cursor={c}");
        }
        if let Some(limit) = self.config.page_size {
            let sep = if cursor.is_some() { '&' } else { '?' };
            url = format!("{url}{sep}limit={limit}");
        }
        let resp = self
            .http
            .get(url)
            .header(
                "authorization",
                encode_basic(&creds.client_id, creds.secret.expose_secret()),
            )
            .send()
            .await
            .map_err(|e| FeedError::from_reqwest(e, PAGE_TIMEOUT))?;
        if !resp.status().is_success() {
            return Err(FeedError::Status(resp.status().as_u16()));
        }
        resp.json()
            .await
            .map_err(|e| FeedError::from_reqwest(e, PAGE_TIMEOUT))
    }

    /// One page: a snapshot's pages are gathered on the side and swapped in after the last;
    /// a delta's are merged as they come. Returns whether more pages follow. A failed page
    /// leaves the cursor where it was, so the retry resumes there.
    pub async fn poll_page(&self) -> Result<bool, FeedError> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let mut progress = self.progress.lock().await;
        let feed = self.fetch(progress.cursor.as_deref()).await?;
        let now = self.clock.now();
        let more = feed.more;
        if feed.complete {
            progress.building = Some(Tables::default());
            progress.pages = 0;
            progress.started = Some(Instant::now());
        }
        progress.pages += 1;
        let mut meta = Meta {
            last_success: None,
            announced: feed.kids.iter().take(MAX_ANNOUNCED).cloned().collect(),
            // Every answer lists every retired key: replace, never merge.
            retired: feed
                .retired_kids
                .iter()
                .take(MAX_ANNOUNCED)
                .cloned()
                .collect(),
        };
        let cursor = feed.cursor.clone();
        // Merging sorts up to every revoked jti (~100 ms at 1M): on a blocking thread, so
        // the runtime's workers go on serving requests (on a worker, GET p99 at 1 connection
        // went 3.9 -> 88 ms while 100k revocations a second were merged, PostgreSQL run).
        let building = progress.building.take();
        let live = self.tables.read().map(|t| Arc::clone(&t)).ok();
        let building = off_the_runtime(move || {
            match (&building, live) {
                (Some(b), _) => b.merge(feed),
                (None, Some(t)) => t.merge(feed),
                (None, None) => {}
            }
            building
        })
        .await;
        progress.building = building;
        progress.cursor = Some(cursor);
        if !more {
            if let Some(built) = progress.building.take() {
                let entries = built.revoked.len();
                let old = self
                    .tables
                    .write()
                    .map(|mut t| std::mem::replace(&mut *t, Arc::new(built)))
                    .ok();
                tracing::info!(
                    pages = progress.pages,
                    revoked = entries,
                    elapsed_ms = progress
                        .started
                        .map_or(0, |s| s.elapsed().as_millis() as u64),
                    "revocation feed snapshot loaded"
                );
                // The old tables are freed by the poller, off the runtime, not by a request.
                off_the_runtime(move || drop(old)).await;
            }
            let live = self.tables.read().map(|t| Arc::clone(&t)).ok();
            if let Some(t) = live {
                off_the_runtime(move || t.expire(now)).await;
            }
            meta.last_success = Some(now);
        } else {
            meta.last_success = self.meta.read().ok().and_then(|m| m.last_success);
        }
        if let Ok(mut m) = self.meta.write() {
            *m = meta;
        }
        Ok(more)
    }

    /// Pulls until the feed says nothing more follows (a whole snapshot, or every change).
    pub async fn poll_once(&self) -> Result<(), FeedError> {
        while self.poll_page().await? {}
        Ok(())
    }

    pub fn spawn(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let wait = match self.poll_page().await {
                    Ok(true) => {
                        failures = 0;
                        continue;
                    }
                    Ok(false) => {
                        failures = 0;
                        self.config.poll
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let wait = backoff(failures, self.config.poll);
                        tracing::warn!(error = %e, failures, retry_in_ms = wait.as_millis() as u64,
                            "revocation feed poll failed");
                        wait
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
    }
}

/// 1 s, 2 s, 4 s, … capped at `max(poll, 30 s)`, each cut by up to half at random so that
/// rooms APIs restarted together don't retry together.
fn backoff(failures: u32, poll: Duration) -> Duration {
    let cap = poll.max(MAX_BACKOFF);
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cap);
    let mut r = [0u8; 2];
    let jitter = match getrandom::fill(&mut r) {
        Ok(()) => f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    };
    base.mul_f64(0.5 + jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::feed::RevokedEntry;

    fn feed(revoked: &[(&str, i64)]) -> Feed {
        Feed {
            cursor: String::new(),
            complete: false,
            more: false,
            revoked: revoked
                .iter()
                .map(|(j, e)| RevokedEntry {
                    jti: (*j).to_owned(),
                    exp: *e,
                })
                .collect(),
            clients_not_before: vec![],
            users_not_before: vec![],
            kids: vec![],
            retired_kids: vec![],
        }
    }

    #[test]
    fn expiry_drops_only_what_is_past_every_leeway_once_a_minute() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let horizon = now.timestamp() - shared::claims::REVOCATION_RETENTION_SECONDS;
        let t = Tables::default();
        t.merge(feed(&[
            ("old", horizon - 1),
            ("edge", horizon + 1),
            ("alive", now.timestamp() + 60),
        ]));
        assert_eq!(t.expire(now), 1);
        assert!(!t.revoked.contains(&digest("old")));
        assert!(t.revoked.contains(&digest("edge")));
        assert!(t.revoked.contains(&digest("alive")));
        // Not again within a sweep interval, whatever has expired since.
        assert_eq!(t.expire(now + TimeDelta::seconds(SWEEP_SECONDS - 1)), 0);
        assert_eq!(t.expire(now + TimeDelta::seconds(SWEEP_SECONDS)), 1);
        assert_eq!(t.revoked.len(), 1);
    }

    #[test]
    fn the_sorted_array_and_the_recent_map_answer_as_one_set() {
        let set = RevokedSet::default();
        let jtis: Vec<String> = (0..10_000).map(|i| format!("jti-{i}")).collect();
        for (i, j) in jtis.iter().enumerate() {
            set.insert(digest(j), 100 + (i % 3) as u32);
            if i == 5_000 {
                // Half folded into the array, half still in the map.
                assert_eq!(set.rebuild(0), 0);
            }
        }
        // Re-sent entries are held once.
        set.insert(digest("jti-7"), 101);
        assert!(jtis.iter().all(|j| set.contains(&digest(j))));
        assert!(!set.contains(&digest("never")));
        assert_eq!(set.rebuild(0), 1);
        assert_eq!(set.len(), 10_000);
        assert!(set.recent.is_empty());
        // Rebuilding drops what expired by the horizon, and only that.
        let dropped = set.rebuild(100);
        assert_eq!(dropped, 3_334);
        assert!(!set.contains(&digest("jti-0")));
        assert!(set.contains(&digest("jti-1")) && set.contains(&digest("jti-2")));
        assert!(set.sorted().windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let poll = Duration::from_secs(10);
        for (n, full) in [(1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (40, 30)] {
            let d = backoff(n, poll);
            let full = Duration::from_secs(full);
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
    }
}
