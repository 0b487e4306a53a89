//! When a row the row cache (`row_cache.rs`) may hold has changed: a generation per kind of
//! row, which moves whenever such a row may have changed, and whether this process can know.
//!
//! Three sources move it (migration `m20261206_000010_change_signals` writes the triggers):
//! - this process's own writes, at once: `committed_here` after every commit, and after each
//!   store write of a cached row (within a transaction a reader can't see it yet, but the
//!   commit moves the generation again, so whatever was read in between is dropped);
//! - on PostgreSQL, the `auth_changes` notifications the triggers send at every writer's
//!   commit (another replica, the CLI, hand-written SQL), received on a dedicated LISTEN
//!   connection (`server_kit::listen`). While that connection is down, or silent past
//!   `listen::SILENT_AFTER` although every replica pings the channel each second, this process
//!   can't know: `live` is false and the cache is not used;
//! - on SQLite, the trigger-kept `change_counters`, polled every `SQLITE_POLL` (the CLI writes
//!   the same file from another process).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use server_kit::listen::Watch;

use super::Db;

/// The channel the triggers notify, with `clients`, `revocations` or (the heartbeat) `ping`.
pub const CHANNEL: &str = "auth_changes";
/// How often a SQLite server reads the counters the CLI's writes move.
pub const SQLITE_POLL: Duration = Duration::from_millis(100);

/// Commits this process made. A static, not a handle, because every write goes through
/// `store::commit` (or `revocations::revoke`), which hold no cache; one process is one server
/// (tests run one per process under nextest), and a spurious move only costs a cache miss.
static LOCAL: AtomicU64 = AtomicU64::new(0);

/// Called after each commit of this process: its own changes are seen at once.
pub fn committed_here() {
    LOCAL.fetch_add(1, Ordering::SeqCst);
}

/// How many commits this process has made (a CLI command asks whether it changed anything).
pub fn commits_here() -> u64 {
    LOCAL.load(Ordering::SeqCst)
}

/// How long a CLI command that changed something waits before it returns, so that every
/// running server has seen the change when the operator is told it is done: two SQLite polls,
/// and on PostgreSQL far more than a NOTIFY takes to arrive on one network.
pub const SETTLE: Duration = Duration::from_millis(2 * 100);

/// A point in the history of one kind of row: an entry cached at one generation is good only
/// while the generation has not moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

/// Which rows a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Applications and users.
    Clients,
    /// Revoked tokens.
    Revocations,
}

#[derive(Debug, Default)]
pub struct Changes {
    clients: AtomicU64,
    revocations: AtomicU64,
    live: AtomicBool,
}

impl Changes {
    /// The generation of `kind` now, or `None` while changes may go unseen (the cache is off).
    pub fn current(&self, kind: Kind) -> Option<Generation> {
        if !self.live.load(Ordering::SeqCst) {
            return None;
        }
        let remote = match kind {
            Kind::Clients => &self.clients,
            Kind::Revocations => &self.revocations,
        };
        // Both only grow, so their sum moves whenever either does.
        Some(Generation(
            LOCAL.load(Ordering::SeqCst) + remote.load(Ordering::SeqCst),
        ))
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    fn changed(&self, kind: Kind) {
        match kind {
            Kind::Clients => &self.clients,
            Kind::Revocations => &self.revocations,
        }
        .fetch_add(1, Ordering::SeqCst);
    }

    /// Everything may have changed unseen: both generations move, so no entry cached before
    /// is used again.
    fn all_changed(&self) {
        self.changed(Kind::Clients);
        self.changed(Kind::Revocations);
    }

    /// From now on changes are seen. Everything cached while they might not have been is
    /// dropped first.
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

    /// A `Changes` that is live and moves only with this process's writes.
    #[cfg(test)]
    fn local_only() -> Self {
        let changes = Self::default();
        changes.set_live();
        changes
    }
}

impl server_kit::listen::Signals for Changes {
    fn heard(&self, payload: &str) {
        match payload {
            "clients" => self.changed(Kind::Clients),
            "revocations" => self.changed(Kind::Revocations),
            _ => {}
        }
    }

    fn set_live(&self) {
        Changes::set_live(self);
    }

    fn set_down(&self) {
        Changes::set_down(self);
    }

    fn is_live(&self) -> bool {
        Changes::is_live(self)
    }
}

/// The running watch of the row cache (`server_kit::listen::Watch`): LISTEN on PostgreSQL,
/// the counters polled on SQLite.
pub type ChangeWatch = Watch<Changes>;

/// Starts watching the database `db` (reached again at `url` for the LISTEN connection).
pub fn watch(db: &Db, url: &str) -> ChangeWatch {
    Watch::start(db, url, CHANNEL, Changes::default(), poll)
}

/// SQLite: reads the trigger-kept counters every `SQLITE_POLL`; a counter that moved moves
/// its generation. Off while they can't be read.
async fn poll(db: Db, changes: Arc<Changes>) {
    let mut every = tokio::time::interval(SQLITE_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<(i64, i64)> = None;
    loop {
        every.tick().await;
        match read_counters(&db).await {
            Ok(now) => {
                if let Some(before) = seen {
                    if now.0 != before.0 {
                        changes.changed(Kind::Clients);
                    }
                    if now.1 != before.1 {
                        changes.changed(Kind::Revocations);
                    }
                }
                seen = Some(now);
                changes.set_live();
            }
            Err(e) => {
                tracing::warn!(error = %e, "row cache: cannot read the change counters; cache off");
                seen = None;
                changes.set_down();
            }
        }
    }
}

async fn read_counters(db: &Db) -> Result<(i64, i64), sea_orm::DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT name, n FROM change_counters",
        ))
        .await?;
    let (mut clients, mut revocations) = (None, None);
    for row in rows {
        let name: String = row.try_get("", "name")?;
        let n: i64 = row.try_get("", "n")?;
        match name.as_str() {
            "clients" => clients = Some(n),
            "revocations" => revocations = Some(n),
            _ => {}
        }
    }
    match (clients, revocations) {
        (Some(c), Some(r)) => Ok((c, r)),
        _ => Err(sea_orm::DbErr::Custom("change_counters lacks a row".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry's generation stops matching at this process's next commit and at a signal of
    /// its own kind, not at a signal of the other kind.
    #[test]
    fn a_generation_moves_with_local_commits_and_signals_of_its_kind() {
        let changes = Changes::local_only();
        let clients = changes.current(Kind::Clients);
        let revocations = changes.current(Kind::Revocations);
        assert!(clients.is_some());
        changes.changed(Kind::Revocations);
        assert_eq!(changes.current(Kind::Clients), clients);
        assert_ne!(changes.current(Kind::Revocations), revocations);
        let clients = changes.current(Kind::Clients);
        committed_here();
        assert_ne!(changes.current(Kind::Clients), clients);
    }

    /// While changes may go unseen there is no generation, and coming back moves both, so
    /// nothing cached before the outage is used after it.
    #[test]
    fn down_means_no_generation_and_coming_back_drops_what_was_cached() {
        let changes = Changes::local_only();
        let before = changes.current(Kind::Clients);
        changes.set_down();
        assert_eq!(changes.current(Kind::Clients), None);
        assert_eq!(changes.current(Kind::Revocations), None);
        changes.set_live();
        assert!(changes.current(Kind::Clients).is_some());
        assert_ne!(changes.current(Kind::Clients), before);
    }
}
