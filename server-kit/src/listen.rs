//! Hearing other writers' changes on PostgreSQL: a dedicated LISTEN connection on one channel,
//! a ping through the pool each second so silence can be told from death, and a cache that is
//! turned off whenever changes may go unseen. Both services' caches of database rows
//! (the auth-server's row cache, the rooms API's room cache) stand on it: what each signal
//! means is theirs (`Signals`); when a signal can be trusted is here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// How often each replica pings the channel, so a listener can tell silence from death.
pub const PING_EVERY: Duration = Duration::from_secs(1);
/// A listener that heard nothing (not even a ping) for this long is taken for dead.
pub const SILENT_AFTER: Duration = Duration::from_secs(3);
/// How long a failed LISTEN connection waits before trying again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// The payload of the heartbeat; never passed to `Signals::heard`.
pub const PING: &str = "ping";

/// What a cache fed by a watch does with what the watch learns.
pub trait Signals: Send + Sync + 'static {
    /// A notification arrived (any payload but the ping).
    fn heard(&self, payload: &str);
    /// Changes are seen from now on: whatever was cached while they might not have been must
    /// be dropped first. Called again on every notification (a no-op once live).
    fn set_live(&self);
    /// Changes may go unseen from now on: the cache must not be used.
    fn set_down(&self);
    fn is_live(&self) -> bool;
}

/// Running watch tasks; they end when this is dropped.
#[derive(Debug, Default)]
pub struct Tasks(Vec<AbortHandle>);

impl Tasks {
    pub fn new(tasks: Vec<AbortHandle>) -> Self {
        Self(tasks)
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A running watch of the database for one cache: its signals, and the tasks that feed them
/// (LISTEN on PostgreSQL, the service's own poll on SQLite), which end when it is dropped.
#[derive(Debug)]
pub struct Watch<S> {
    pub changes: Arc<S>,
    _tasks: Tasks,
}

impl<S: Signals> Watch<S> {
    /// Watches `db` (reached again at `url` for the LISTEN connection on PostgreSQL, on
    /// `channel`); on SQLite, `poll(db, changes)` runs instead.
    pub fn start<F>(
        db: &DatabaseConnection,
        url: &str,
        channel: &'static str,
        changes: S,
        poll: impl FnOnce(DatabaseConnection, Arc<S>) -> F,
    ) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let changes = Arc::new(changes);
        let tasks = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => on_postgres(db, url, channel, changes.clone()),
            _ => Tasks::new(vec![
                tokio::spawn(poll(db.clone(), Arc::clone(&changes))).abort_handle(),
            ]),
        };
        Self {
            changes,
            _tasks: tasks,
        }
    }

    /// Waits (at most `within`) until changes are seen, so a server that starts serving uses
    /// its cache from its first request; whether they are.
    pub async fn ready(&self, within: Duration) -> bool {
        ready(self.changes.as_ref(), within).await
    }
}

/// Waits (at most `within`) until `signals` is live; whether it is.
pub async fn ready(signals: &dyn Signals, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !signals.is_live() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Starts the LISTEN connection on `channel` (opened at `url`) and the pinger (through `db`).
pub fn on_postgres(
    db: &DatabaseConnection,
    url: &str,
    channel: &'static str,
    signals: Arc<dyn Signals>,
) -> Tasks {
    let heard = Arc::new(Heard::default());
    Tasks(vec![
        tokio::spawn(listen(
            url.to_owned(),
            channel,
            Arc::clone(&signals),
            Arc::clone(&heard),
        ))
        .abort_handle(),
        tokio::spawn(ping(db.clone(), channel, signals, heard)).abort_handle(),
    ])
}

/// When the listener last heard anything, in milliseconds since `start`.
#[derive(Debug)]
struct Heard {
    start: Instant,
    at_ms: AtomicU64,
}

impl Default for Heard {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            at_ms: AtomicU64::new(0),
        }
    }
}

impl Heard {
    fn now(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at_ms.store(ms, Ordering::SeqCst);
    }

    fn silent_for(&self) -> Duration {
        let at = Duration::from_millis(self.at_ms.load(Ordering::SeqCst));
        self.start.elapsed().saturating_sub(at)
    }
}

/// The LISTEN connection: a notification is passed on; a lost connection turns the cache off
/// until a new one has subscribed.
async fn listen(url: String, channel: &'static str, signals: Arc<dyn Signals>, heard: Arc<Heard>) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, channel, "cannot open the LISTEN connection; cache off");
                signals.set_down();
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(channel).await {
            tracing::warn!(error = %e, channel, "LISTEN failed; cache off");
            signals.set_down();
            tokio::time::sleep(RECONNECT_AFTER).await;
            continue;
        }
        heard.now();
        signals.set_live();
        tracing::info!(channel, "listening for changes");
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    heard.now();
                    if notification.payload() != PING {
                        signals.heard(notification.payload());
                    }
                    // Back from a silence the pinger took for death.
                    signals.set_live();
                }
                Ok(None) | Err(_) => {
                    tracing::warn!(channel, "the LISTEN connection was lost; cache off");
                    signals.set_down();
                    break;
                }
            }
        }
    }
}

/// Pings the channel each second through the pool, and turns the cache off when the listener
/// has heard nothing for `SILENT_AFTER` (a connection dead without a reset).
async fn ping(
    db: DatabaseConnection,
    channel: &'static str,
    signals: Arc<dyn Signals>,
    heard: Arc<Heard>,
) {
    let mut every = tokio::time::interval(PING_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sql = format!("SELECT pg_notify('{channel}', '{PING}')");
    loop {
        every.tick().await;
        if let Err(e) = db.execute_unprepared(&sql).await {
            tracing::debug!(error = %e, channel, "ping failed");
        }
        if silenced(signals.as_ref(), &heard) {
            tracing::warn!(channel, "the LISTEN connection is silent; cache off");
        }
    }
}

/// Turns the cache off when the listener has heard nothing, not even a ping, for longer than
/// `SILENT_AFTER`; whether it did.
fn silenced(signals: &dyn Signals, heard: &Heard) -> bool {
    let silent = signals.is_live() && heard.silent_for() > SILENT_AFTER;
    if silent {
        signals.set_down();
    }
    silent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Signals for Flag {
        fn heard(&self, _: &str) {}
        fn set_live(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
        fn set_down(&self) {
            self.0.store(false, Ordering::SeqCst);
        }
        fn is_live(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// A listener silent past `SILENT_AFTER` (a connection dead without a reset: pings stopped
    /// arriving) turns the cache off; one that heard something within it does not.
    #[tokio::test(start_paused = true)]
    async fn a_silent_listener_turns_the_cache_off() {
        let signals = Flag::default();
        signals.set_live();
        let heard = Heard::default();
        heard.now();
        tokio::time::advance(SILENT_AFTER).await;
        assert!(!silenced(&signals, &heard));
        assert!(signals.is_live());
        heard.now();
        tokio::time::advance(SILENT_AFTER + Duration::from_millis(1)).await;
        assert!(silenced(&signals, &heard));
        assert!(!signals.is_live());
    }

    /// `ready` answers as soon as the signals are live, and false once its time is up.
    #[tokio::test(start_paused = true)]
    async fn ready_waits_for_live_and_no_longer_than_asked() {
        let signals = Flag::default();
        assert!(!ready(&signals, Duration::from_millis(50)).await);
        signals.set_live();
        assert!(ready(&signals, Duration::ZERO).await);
    }
}
