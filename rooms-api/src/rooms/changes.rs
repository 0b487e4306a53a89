//! When what the room cache (`cache.rs`) holds for a viewer may have changed.
//!
//! A viewer is a (user_id, client_id) pair: everything cached is one viewer's (a room as they
//! see it, a page of their list, their count), so a change is signalled per viewer and drops
//! only that viewer's entries. Every signal takes the next number of one sequence; an entry
//! remembers the sequence number current when its read began, and is fresh while no signal for
//! its viewer has a higher number. A signal numbered at or below it was given after its commit,
//! so that read saw the change.
//!
//! Three sources signal (migration `m20261208_000105_room_change_signals` writes the triggers):
//! - this process's own writes, at once: the store returns the viewers each write touched and
//!   the service signals them before it answers;
//! - on PostgreSQL, the `rooms_changes` notifications the triggers send at every writer's
//!   commit (another replica, hand-written SQL), on a LISTEN connection (`server_kit::listen`:
//!   while it is down or silent the cache is off, and coming back drops everything);
//! - on SQLite, the trigger-kept `room_changes` log, polled every `SQLITE_POLL` and pruned
//!   about `KEEP_LOG` after its rows were read (a poll later than `KEEP_LOG / 2` after the one
//!   before may have lost rows another process pruned: it drops everything).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use server_kit::listen::{Signals, Watch};
use tokio::time::Instant;

use super::store::{self, Db, Viewer};

/// The channel the PostgreSQL triggers notify.
pub const CHANNEL: &str = "rooms_changes";
/// How often a SQLite server reads the change log.
pub const SQLITE_POLL: Duration = Duration::from_millis(100);
/// How long the SQLite change log keeps a row.
pub const KEEP_LOG: Duration = Duration::from_secs(60);
/// How many viewers' last signals are remembered one by one; past it they are forgotten
/// together and every entry cached before counts as stale (`floor`).
const MAX_VIEWERS: usize = 65_536;
/// Rows of the change log read per poll; more means a burst the poll drops everything for.
const POLL_ROWS: u64 = 10_000;

/// The key of a viewer: `user_id`'s length, a colon, `user_id`, then `client_id`, the same
/// text the PostgreSQL triggers notify, so neither id can run into the other.
pub fn viewer_key(viewer: Viewer<'_>) -> String {
    format!(
        "{}:{}{}",
        viewer.user_id.len(),
        viewer.user_id,
        viewer.client_id
    )
}

/// The sequence of signals, each viewer's last, and whether signals can be missed.
#[derive(Debug, Default)]
pub struct Changes {
    seq: AtomicU64,
    /// Entries read at or before this are stale for every viewer not in `last`.
    floor: AtomicU64,
    last: RwLock<HashMap<String, u64>>,
    live: AtomicBool,
}

/// The sequence number a read began at: the entry it fills is fresh while no signal for its
/// viewer is numbered above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAt(u64);

impl Changes {
    /// Where a read begins, or `None` while changes may go unseen (the cache is off).
    pub fn begin(&self) -> Option<ReadAt> {
        self.live
            .load(Ordering::SeqCst)
            .then(|| ReadAt(self.seq.load(Ordering::SeqCst)))
    }

    /// Whether an entry of `viewer` read at `at` is still good.
    pub fn fresh(&self, viewer: &str, at: ReadAt) -> bool {
        if !self.live.load(Ordering::SeqCst) {
            return false;
        }
        let last = match self.last.read() {
            Ok(last) => last.get(viewer).copied(),
            Err(_) => return false,
        };
        last.unwrap_or(0).max(self.floor.load(Ordering::SeqCst)) <= at.0
    }

    /// `viewer`'s view may have changed: whatever was read for it before is stale.
    pub fn changed(&self, viewer: &str) {
        let Ok(mut last) = self.last.write() else {
            self.all_changed();
            return;
        };
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        if last.len() >= MAX_VIEWERS && !last.contains_key(viewer) {
            // Forgetting them one by one would make their entries fresh again.
            self.floor.store(n, Ordering::SeqCst);
            last.clear();
        }
        last.insert(viewer.to_owned(), n);
    }

    /// Everything may have changed unseen: no entry read before is used again.
    pub fn all_changed(&self) {
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.store(n, Ordering::SeqCst);
        if let Ok(mut last) = self.last.write() {
            last.clear();
        }
    }

    /// A `Changes` that is live and moves only with what it is told.
    #[cfg(test)]
    pub fn local_only() -> Self {
        let changes = Self::default();
        changes.set_live();
        changes
    }
}

impl Signals for Changes {
    fn heard(&self, payload: &str) {
        self.changed(payload);
    }

    fn set_live(&self) {
        if !self.live.load(Ordering::SeqCst) {
            self.all_changed();
            self.live.store(true, Ordering::SeqCst);
        }
    }

    fn set_down(&self) {
        self.live.store(false, Ordering::SeqCst);
        self.all_changed();
    }

    fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }
}

/// The running watch of the room cache (`server_kit::listen::Watch`): LISTEN on PostgreSQL,
/// the change log polled on SQLite.
pub type ChangeWatch = Watch<Changes>;

/// Starts watching the database `db` (reached again at `url` for the LISTEN connection).
pub fn watch(db: &Db, url: &str) -> ChangeWatch {
    Watch::start(db, url, CHANNEL, Changes::default(), poll)
}

/// SQLite: reads the change log past the last row seen every `SQLITE_POLL`, signals each
/// viewer in it, and prunes rows older than `KEEP_LOG` every few seconds. Off while the log
/// can't be read.
async fn poll(db: Db, changes: Arc<Changes>) {
    let mut every = tokio::time::interval(SQLITE_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<(i64, Instant)> = None;
    let mut last_prune = Instant::now();
    let mut marks: std::collections::VecDeque<(Instant, i64)> = Default::default();
    loop {
        every.tick().await;
        let after = match seen {
            Some((seq, at)) if at.elapsed() < KEEP_LOG / 2 => seq,
            // First poll, or late enough that pruned rows may have gone unread: start from the
            // end of the log and drop everything (`set_live` after `set_down`).
            _ => match store::change_log_end(&db).await {
                Ok(seq) => {
                    changes.set_down();
                    seq
                }
                Err(e) => {
                    tracing::warn!(error = %e, "room cache: cannot read the change log; cache off");
                    changes.set_down();
                    seen = None;
                    continue;
                }
            },
        };
        match store::change_log_after(&db, after, POLL_ROWS).await {
            Ok(rows) => {
                let mut seq = after;
                if rows.len() as u64 >= POLL_ROWS {
                    changes.all_changed();
                    seq = rows.last().map_or(after, |r| r.0);
                } else {
                    for (n, user_id, client_id) in &rows {
                        changes.changed(&viewer_key(Viewer { user_id, client_id }));
                        seq = *n;
                    }
                }
                seen = Some((seq, Instant::now()));
                changes.set_live();
            }
            Err(e) => {
                tracing::warn!(error = %e, "room cache: cannot read the change log; cache off");
                changes.set_down();
                seen = None;
                continue;
            }
        }
        // Rows are pruned by the sequence number this poll saw `KEEP_LOG` ago (a range of the
        // primary key, never a scan).
        if last_prune.elapsed() >= KEEP_LOG / 10 {
            last_prune = Instant::now();
            if let Some((seq, _)) = seen {
                marks.push_back((Instant::now(), seq));
            }
            let mut upto = None;
            while marks
                .front()
                .is_some_and(|(at, _)| at.elapsed() >= KEEP_LOG)
            {
                upto = marks.pop_front().map(|(_, seq)| seq);
            }
            if let Some(upto) = upto
                && let Err(e) = store::prune_change_log(&db, upto).await
            {
                tracing::debug!(error = %e, "room cache: pruning the change log failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JANE: &str = "4:janeapp";
    const JOHN: &str = "4:johnapp";

    /// A signal makes stale what its viewer read before it, not what another viewer read, nor
    /// what was read after it.
    #[test]
    fn a_signal_drops_its_viewers_earlier_reads_only() {
        let changes = Changes::local_only();
        let before = changes.begin().unwrap();
        assert!(changes.fresh(JANE, before));
        changes.changed(JANE);
        assert!(!changes.fresh(JANE, before));
        assert!(changes.fresh(JOHN, before));
        let after = changes.begin().unwrap();
        assert!(changes.fresh(JANE, after));
    }

    /// A read that began before a signal stays stale though it ended after it (the race a fill
    /// after a concurrent write would lose).
    #[test]
    fn a_read_that_began_before_a_signal_is_stale_though_it_ended_after() {
        let changes = Changes::local_only();
        let began = changes.begin().unwrap();
        changes.changed(JANE);
        // The read ends now and is cached with where it began.
        assert!(!changes.fresh(JANE, began));
    }

    /// While changes may go unseen nothing is fresh and no read can begin; coming back drops
    /// everything read before.
    #[test]
    fn down_means_nothing_is_fresh_and_coming_back_drops_everything() {
        let changes = Changes::local_only();
        let before = changes.begin().unwrap();
        changes.set_down();
        assert_eq!(changes.begin(), None);
        assert!(!changes.fresh(JANE, before));
        changes.set_live();
        assert!(!changes.fresh(JANE, before));
        assert!(changes.fresh(JANE, changes.begin().unwrap()));
    }

    /// Past `MAX_VIEWERS` remembered viewers they are forgotten together, and a forgotten
    /// viewer's earlier reads stay stale (the floor), while later reads are fresh.
    #[test]
    fn forgetting_viewers_never_makes_an_old_read_fresh() {
        let changes = Changes::local_only();
        let before = changes.begin().unwrap();
        changes.changed(JANE);
        for i in 0..MAX_VIEWERS {
            changes.changed(&format!("{i}"));
        }
        assert!(!changes.fresh(JANE, before));
        assert!(!changes.fresh(JOHN, before));
        assert!(changes.last.read().unwrap().len() <= MAX_VIEWERS);
        assert!(changes.fresh(JANE, changes.begin().unwrap()));
    }

    /// The key of a viewer can't be made by another pair of ids.
    #[test]
    fn viewer_keys_do_not_run_into_each_other() {
        let a = viewer_key(Viewer {
            user_id: "ab",
            client_id: "c",
        });
        let b = viewer_key(Viewer {
            user_id: "a",
            client_id: "bc",
        });
        assert_ne!(a, b);
        assert_eq!(a, "2:abc");
    }
}
