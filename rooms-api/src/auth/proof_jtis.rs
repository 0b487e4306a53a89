//! The rooms API's store of DPoP proofs already used (`dpop_proof_jtis` in the rooms database,
//! `server_kit::replay`): the one place of `auth` that speaks to the database.

use chrono::{DateTime, Utc};
use server_kit::replay::{self, ReplayTable};

/// The database the proofs are kept in: the rooms database.
pub type Db = sea_orm::DatabaseConnection;
/// The store failing (answered 503 by the caller).
pub type StoreError = sea_orm::DbErr;

/// Keyed by the thumbprint of the key that signed each proof (RFC 9449 §11.1).
const DPOP_PROOFS: ReplayTable = ReplayTable {
    table: "dpop_proof_jtis",
    key_column: "jkt",
};

/// Deletes the proofs whose window ended before `now`; one statement, bounded by legitimate
/// traffic (a row needs a token and a proof that verified).
pub async fn sweep(db: &Db, now: DateTime<Utc>) -> Result<u64, StoreError> {
    replay::sweep(db, DPOP_PROOFS, now).await
}

/// Every minute, for as long as the process runs.
pub fn spawn_sweep(db: Db, clock: std::sync::Arc<dyn shared::Clock>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = sweep(&db, clock.now()).await {
                tracing::warn!(error = %e, "DPoP proof sweep failed");
            }
        }
    });
}

/// Records a proof's `jti` for its key until `forget_at`; false if it was used before.
pub async fn first_use(
    db: &Db,
    jkt: &str,
    jti: &str,
    forget_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    replay::first_use(db, DPOP_PROOFS, jkt, jti, forget_at, now).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeDelta;
    use migrations::{MigratorTrait, RoomsMigrator};
    use shared::{Clock, ManualClock};

    use super::*;

    async fn rows(db: &Db) -> usize {
        use sea_orm::{ConnectionTrait, Statement};
        let sql = "SELECT jti FROM dpop_proof_jtis";
        db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .len()
    }

    /// The sweeper runs on its own (its first tick at once, then every minute): a proof past
    /// its window is forgotten without a request asking, so the table does not grow with use.
    #[tokio::test]
    async fn the_spawned_sweeper_forgets_proofs_past_their_window() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("r.sqlite").display()
        );
        let db = server_kit::db::connect(&url, 1).await.unwrap();
        RoomsMigrator::up(&db, None).await.unwrap();
        let clock = Arc::new(ManualClock::starting_now());
        let now = clock.now();
        let forget_at = now + TimeDelta::seconds(65);
        assert!(first_use(&db, "jkt", "old", forget_at, now).await.unwrap());
        assert!(
            first_use(&db, "jkt", "new", forget_at + TimeDelta::hours(1), now)
                .await
                .unwrap()
        );
        clock.set(forget_at + TimeDelta::seconds(1));
        spawn_sweep(db.clone(), clock);
        for _ in 0..500 {
            if rows(&db).await == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the sweeper left {} rows, 1 expected", rows(&db).await);
    }
}
