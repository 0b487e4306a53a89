//! What a locally-verifying rooms API knows of the feed: revoked jtis (a sorted array plus the
//! entries added since, swapped whole), applications' and users' not-before times, and the
//! poller's progress. Requests read it without waiting on a merge.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use shared::feed::Feed;

/// Expired revocations are swept at most this often: one is dropped at most this late.
pub(super) const SWEEP_SECONDS: i64 = 60;
/// Shards of each map: a sweep or a rehash holds one shard's lock, 1/64 of the entries.
pub(super) const SHARDS: usize = 64;
/// A revoked jti, kept as the first 128 bits of its SHA-256: 16 bytes whatever the jti's
/// length, and a false match is a 2⁻¹²⁸ chance. With its `exp` as u32 seconds an entry is 20
/// bytes (a `u128` key would pad it to 32).
pub(super) type JtiDigest = [u8; 16];

pub(super) fn digest(jti: &str) -> JtiDigest {
    let h = server_kit::digest::sha256(jti.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&h[..16]);
    first
}

/// `exp` as stored: Unix seconds fit a u32 until 2106; anything outside is clamped (a later
/// expiry only keeps the revocation longer).
pub(super) fn stored_exp(exp: i64) -> u32 {
    u32::try_from(exp.max(0)).unwrap_or(u32::MAX)
}

/// Revoked jtis: a sorted array (20 bytes an entry, ~20 MiB at 1M) that requests binary-search,
/// and the entries added since it was last rebuilt in a concurrent map. The poller folds the
/// map into a new array off to the side (dropping what expired) and swaps it in: when the map
/// has grown past an eighth of the array, and once a `SWEEP_SECONDS` to expire. As a hash map
/// alone, 1M entries took ~45 MiB.
#[derive(Debug)]
pub(super) struct RevokedSet {
    pub(super) sorted: RwLock<Arc<Vec<(JtiDigest, u32)>>>,
    pub(super) recent: DashMap<JtiDigest, u32>,
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
    pub(super) fn sorted(&self) -> Arc<Vec<(JtiDigest, u32)>> {
        self.sorted
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    pub(super) fn contains(&self, d: &JtiDigest) -> bool {
        self.recent.contains_key(d) || self.sorted().binary_search_by(|(k, _)| k.cmp(d)).is_ok()
    }

    pub(super) fn len(&self) -> usize {
        self.sorted().len() + self.recent.len()
    }

    pub(super) fn insert(&self, d: JtiDigest, exp: u32) {
        self.recent.insert(d, exp);
    }

    /// Folds `recent` into a new sorted array without the entries that expired by `horizon`
    /// (Unix seconds), swaps it in, then forgets the folded entries. Only the poller calls it.
    /// Returns how many entries left.
    pub(super) fn rebuild(&self, horizon: u32) -> usize {
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
pub(super) struct Tables {
    pub(super) revoked: RevokedSet,
    pub(super) clients: DashMap<String, i64>,
    pub(super) users: DashMap<String, i64>,
    /// When expired revocations were last swept (Unix seconds).
    pub(super) swept: AtomicI64,
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
    pub(super) fn merge(&self, feed: Feed) {
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
    pub(super) fn expire(&self, now: DateTime<Utc>) -> usize {
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
pub(super) struct Meta {
    pub(super) last_success: Option<DateTime<Utc>>,
    /// Kids the auth-server announced in its last answer.
    pub(super) announced: HashSet<String>,
    /// Kids of retired keys: their tokens are refused whatever their `exp`.
    pub(super) retired: HashSet<String>,
}

/// The poller's own progress, touched by one poll at a time.
#[derive(Debug, Default)]
pub(super) struct Progress {
    pub(super) cursor: Option<String>,
    /// A snapshot whose last page has not come yet: not visible to requests.
    pub(super) building: Option<Tables>,
    pub(super) pages: u64,
    pub(super) started: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
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
}
