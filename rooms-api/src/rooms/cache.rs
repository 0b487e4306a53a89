//! The reads of a room and of a list page kept in memory, per viewer, so an integrator that
//! reads again costs no database round trip (on SQLite a hand-off to the connection's thread
//! and back: more than half of a GET's CPU, bench/RESULTS.md "Profiles").
//!
//! An entry is used only while it is fresh (`changes.rs`): any write that touches a viewer's
//! view of the rooms — a room of theirs changed or deleted, an access of theirs granted or
//! taken — drops everything cached for that viewer, at once for this process's writes, at the
//! NOTIFY's arrival for another replica's on PostgreSQL, within one poll of the change log
//! (100 ms) for another process's on SQLite. While changes may go unseen nothing is read from
//! the cache. Only rooms that were found are kept (a guessed id always asks the database), and
//! the whole cache is bounded in bytes. Writes never decide on what is cached: an update or a
//! delete reads the room and its role from the database.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec};
use uuid::Uuid;

use super::changes::{Changes, ReadAt, viewer_key};
use super::store::{self, Db, Direction, Listed, Position, Role, RoomRow, StoreError, Viewer};

/// The byte budget (weighed approximately: the strings plus a fixed overhead per row).
pub const MAX_BYTES: u64 = 8 << 20;
/// An entry is dropped after this long whatever happens: a bound on memory held by reads no
/// longer asked for, not on staleness (`changes.rs` is).
const TIME_TO_LIVE: Duration = Duration::from_secs(600);
/// What an entry or a row costs besides its strings (moka's node, the key, the structs).
const OVERHEAD: usize = 192;

/// Which read of a viewer's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum What {
    Room(Uuid),
    Keyset(Option<(Position, Direction)>, u64),
    Offset(u64, u64),
    Count,
}

#[derive(Debug)]
enum Read {
    Room(RoomRow, Option<Role>),
    Keyset(Arc<[Listed]>, u64),
    Rows(Arc<[Listed]>),
    Count(u64),
}

#[derive(Debug)]
struct Entry {
    at: ReadAt,
    read: Read,
}

fn row_weight(r: &RoomRow) -> usize {
    OVERHEAD
        + r.slug.len()
        + r.name.len()
        + r.access_level.len()
        + r.configuration.len()
        + r.pin_code.len()
        + r.client_id.len()
}

fn entry_weight(key: &(String, What), entry: &Arc<Entry>) -> u32 {
    let rows = match &entry.read {
        Read::Room(row, _) => row_weight(row),
        Read::Keyset(rows, _) | Read::Rows(rows) => rows.iter().map(|l| row_weight(&l.room)).sum(),
        Read::Count(_) => 0,
    };
    u32::try_from(OVERHEAD + key.0.len() + rows).unwrap_or(u32::MAX)
}

pub struct RoomCache {
    changes: Arc<Changes>,
    entries: moka::sync::Cache<(String, What), Arc<Entry>>,
    /// `rooms_room_cache_total{result}`: `hit`, `miss`, or `off` (changes may go unseen),
    /// resolved once: a label lookup per request is a hash and a lock on the metric's map.
    hit: IntCounter,
    miss: IntCounter,
    off: IntCounter,
}

impl std::fmt::Debug for RoomCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomCache")
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl RoomCache {
    pub fn new(changes: Arc<Changes>, max_bytes: u64, lookups: IntCounterVec) -> Self {
        Self {
            changes,
            entries: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(entry_weight)
                .time_to_live(TIME_TO_LIVE)
                .build(),
            hit: lookups.with_label_values(&["hit"]),
            miss: lookups.with_label_values(&["miss"]),
            off: lookups.with_label_values(&["off"]),
        }
    }

    /// This process changed what `viewers` see: their entries are stale from now on.
    pub fn changed<'a>(&self, viewers: impl IntoIterator<Item = Viewer<'a>>) {
        for viewer in viewers {
            self.changes.changed(&viewer_key(viewer));
        }
    }

    /// This process may have changed anyone's view (a write whose viewers could not be read):
    /// every entry is stale from now on.
    pub fn changed_all(&self) {
        self.changes.all_changed();
    }

    /// The fresh entry for `what`, or where a read to fill it begins (`None`: the cache is off).
    fn lookup(&self, key: &(String, What)) -> Result<Arc<Entry>, Option<ReadAt>> {
        let Some(at) = self.changes.begin() else {
            self.off.inc();
            return Err(None);
        };
        match self.entries.get(key) {
            Some(entry) if self.changes.fresh(&key.0, entry.at) => {
                self.hit.inc();
                Ok(entry)
            }
            _ => {
                self.miss.inc();
                Err(Some(at))
            }
        }
    }

    fn fill(&self, key: (String, What), at: Option<ReadAt>, read: Read) {
        if let Some(at) = at {
            self.entries.insert(key, Arc::new(Entry { at, read }));
        }
    }

    #[cfg(test)]
    fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks();
    }

    #[cfg(test)]
    fn weighed_size(&self) -> u64 {
        self.entries.weighted_size()
    }

    /// `store::find_visible`, from memory when fresh; only a room found is kept.
    pub async fn find_visible(
        &self,
        db: &Db,
        viewer: Viewer<'_>,
        id: Uuid,
    ) -> Result<Option<(RoomRow, Option<Role>)>, StoreError> {
        let key = (viewer_key(viewer), What::Room(id));
        let at = match self.lookup(&key) {
            Ok(entry) => match &entry.read {
                Read::Room(row, role) => return Ok(Some((row.clone(), *role))),
                _ => None,
            },
            Err(at) => at,
        };
        let found = store::find_visible(db, viewer, id).await?;
        if let Some((row, role)) = &found {
            self.fill(key, at, Read::Room(row.clone(), *role));
        }
        Ok(found)
    }

    /// `store::keyset_page`, from memory when fresh.
    pub async fn keyset_page(
        &self,
        db: &Db,
        viewer: Viewer<'_>,
        from: Option<(Position, Direction)>,
        limit: u64,
    ) -> Result<(Arc<[Listed]>, u64), StoreError> {
        let key = (viewer_key(viewer), What::Keyset(from, limit));
        let at = match self.lookup(&key) {
            Ok(entry) => match &entry.read {
                Read::Keyset(rows, count) => return Ok((Arc::clone(rows), *count)),
                _ => None,
            },
            Err(at) => at,
        };
        let (rows, count) = store::keyset_page(db, viewer, from, limit).await?;
        let rows: Arc<[Listed]> = rows.into();
        self.fill(key, at, Read::Keyset(Arc::clone(&rows), count));
        Ok((rows, count))
    }

    /// `store::page` (offset paging), from memory when fresh.
    pub async fn page(
        &self,
        db: &Db,
        viewer: Viewer<'_>,
        offset: u64,
        limit: u64,
    ) -> Result<Arc<[Listed]>, StoreError> {
        let key = (viewer_key(viewer), What::Offset(offset, limit));
        let at = match self.lookup(&key) {
            Ok(entry) => match &entry.read {
                Read::Rows(rows) => return Ok(Arc::clone(rows)),
                _ => None,
            },
            Err(at) => at,
        };
        let rows: Arc<[Listed]> = store::page(db, viewer, offset, limit).await?.into();
        self.fill(key, at, Read::Rows(Arc::clone(&rows)));
        Ok(rows)
    }

    /// `store::count`, from memory when fresh.
    pub async fn count(&self, db: &Db, viewer: Viewer<'_>) -> Result<u64, StoreError> {
        let key = (viewer_key(viewer), What::Count);
        let at = match self.lookup(&key) {
            Ok(entry) => match &entry.read {
                Read::Count(n) => return Ok(*n),
                _ => None,
            },
            Err(at) => at,
        };
        let n = store::count(db, viewer).await?;
        self.fill(key, at, Read::Count(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use server_kit::listen::Signals;

    fn row(i: usize) -> RoomRow {
        RoomRow {
            id: Uuid::new_v4(),
            slug: format!("abc-defg-{i:03}"),
            name: format!("abc-defg-{i:03}"),
            access_level: "trusted".into(),
            configuration: "{}".into(),
            pin_code: "1234567890".into(),
            client_id: "c".repeat(40),
            created_at: chrono::Utc::now(),
        }
    }

    fn counter() -> IntCounterVec {
        IntCounterVec::new(prometheus::Opts::new("t", "t"), &["result"]).unwrap()
    }

    /// However many viewers read however many pages, the cache holds at most its byte budget.
    #[test]
    fn the_cache_is_bounded_in_bytes_under_a_flood_of_distinct_reads() {
        let budget = 256 << 10;
        let changes = Arc::new(Changes::local_only());
        let cache = RoomCache::new(Arc::clone(&changes), budget, counter());
        let at = changes.begin().unwrap();
        let page: Vec<Listed> = (0..20)
            .map(|i| Listed {
                room: row(i),
                role: Some(Role::Member),
            })
            .collect();
        for i in 0..5_000 {
            let viewer = format!("36:{}{}", Uuid::new_v4(), "c".repeat(40));
            cache.fill(
                (viewer.clone(), What::Room(Uuid::new_v4())),
                Some(at),
                Read::Room(row(i), None),
            );
            cache.fill(
                (viewer, What::Keyset(None, 21)),
                Some(at),
                Read::Keyset(page.clone().into(), 20),
            );
        }
        cache.run_pending_tasks();
        assert!(cache.weighed_size() <= budget, "{}", cache.weighed_size());
        assert!(cache.weighed_size() > budget / 2, "it holds what fits");
    }

    /// While changes may go unseen nothing is served, though it was cached while they were
    /// seen, and nothing read meanwhile is kept; when they are seen again, what was cached
    /// before is not served either.
    #[test]
    fn nothing_is_kept_while_changes_may_go_unseen() {
        let changes = Arc::new(Changes::local_only());
        let cache = RoomCache::new(Arc::clone(&changes), MAX_BYTES, counter());
        let key = || ("v".to_owned(), What::Count);
        let Err(at) = cache.lookup(&key()) else {
            panic!("an empty cache hit")
        };
        assert!(at.is_some());
        cache.fill(key(), at, Read::Count(1));
        assert!(cache.lookup(&key()).is_ok(), "served while live");
        changes.set_down();
        let Err(at) = cache.lookup(&key()) else {
            panic!("served while changes may go unseen")
        };
        assert_eq!(at, None, "no read can begin");
        cache.fill(key(), at, Read::Count(2));
        cache.run_pending_tasks();
        assert_eq!(
            cache.entries.entry_count(),
            1,
            "the read while off was not kept"
        );
        changes.set_live();
        assert!(
            cache.lookup(&key()).is_err(),
            "an entry from before the outage"
        );
    }
}
