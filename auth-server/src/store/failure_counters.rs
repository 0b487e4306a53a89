//! The failure-limit counters every replica shares (PostgreSQL only; see
//! domain/failure_limits.rs for the rules). Three keys per attempt. Every statement here locks
//! its rows in key order (the upsert's VALUES sorted, the give-back's `ORDER BY key FOR
//! UPDATE`), so concurrent counts and give-backs on shared keys never deadlock: a give-back that
//! scanned the index (key order) against an upsert in the caller's order did, under a flood.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use super::{Db, StoreError};

/// One counter after an attempt was counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// Attempts in the window, this one included.
    pub count: u32,
    pub expires_at: DateTime<Utc>,
}

/// Counts one attempt on each key: a window that ended (or a new key) starts again at 1 and
/// ends at `window_ends`. One statement, so concurrent attempts on every replica are counted
/// exactly once each. Returns the counters in the order of `keys`.
pub async fn count(
    db: &Db,
    keys: &[String; 3],
    now: DateTime<Utc>,
    window_ends: DateTime<Utc>,
) -> Result<[Counted; 3], StoreError> {
    const SQL: &str = "INSERT INTO failure_counters (key, count, expires_at) \
        VALUES ($1, 1, $4), ($2, 1, $4), ($3, 1, $4) \
        ON CONFLICT (key) DO UPDATE SET \
          count = CASE WHEN failure_counters.expires_at <= $5 THEN 1 \
                       ELSE failure_counters.count + 1 END, \
          expires_at = CASE WHEN failure_counters.expires_at <= $5 THEN excluded.expires_at \
                            ELSE failure_counters.expires_at END \
        RETURNING key, count, expires_at";
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let values: Vec<Value> = vec![
        sorted[0].clone().into(),
        sorted[1].clone().into(),
        sorted[2].clone().into(),
        window_ends.into(),
        now.into(),
    ];
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            SQL,
            values,
        ))
        .await?;
    let mut out: [Option<Counted>; 3] = [None, None, None];
    for row in rows {
        let key: String = row.try_get("", "key")?;
        let count: i32 = row.try_get("", "count")?;
        let expires_at: DateTime<Utc> = row.try_get("", "expires_at")?;
        if let Some(i) = keys.iter().position(|k| *k == key) {
            out[i] = Some(Counted {
                count: u32::try_from(count).unwrap_or(0),
                expires_at,
            });
        }
    }
    match out {
        [Some(a), Some(b), Some(c)] => Ok([a, b, c]),
        _ => Err(StoreError::Corrupt(
            "failure counter upsert returned fewer rows than keys".into(),
        )),
    }
}

/// Gives one attempt back on each key (a success, or a verification that never ran), within
/// the window it was counted in.
pub async fn give_back(db: &Db, keys: &[String; 3], now: DateTime<Utc>) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE failure_counters SET count = count - 1 WHERE key IN \
        (SELECT key FROM failure_counters WHERE key IN ($1, $2, $3) \
         AND count > 0 AND expires_at > $4 ORDER BY key FOR UPDATE)";
    let values: Vec<Value> = vec![
        keys[0].clone().into(),
        keys[1].clone().into(),
        keys[2].clone().into(),
        now.into(),
    ];
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        SQL,
        values,
    ))
    .await?;
    Ok(())
}

/// Deletes counters whose window ended, at most `batch` rows a call (short locks; the sweep
/// runs again until nothing is left).
pub async fn sweep(db: &Db, now: DateTime<Utc>, batch: u64) -> Result<u64, StoreError> {
    // Rows an attempt holds are skipped (it is resetting them): the sweep never waits on a
    // lock, so it can't deadlock with a count.
    const SQL: &str = "DELETE FROM failure_counters WHERE key IN \
        (SELECT key FROM failure_counters WHERE expires_at <= $1 \
         LIMIT $2 FOR UPDATE SKIP LOCKED) AND expires_at <= $1";
    let values: Vec<Value> = vec![now.into(), i64::try_from(batch).unwrap_or(i64::MAX).into()];
    Ok(db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            SQL,
            values,
        ))
        .await?
        .rows_affected())
}
