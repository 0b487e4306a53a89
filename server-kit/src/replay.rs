//! Replay tables: a `(key, jti)` pair remembered until it expires, in the database every
//! replica shares, so a second use is refused whichever replica sees it, and a restart forgets
//! nothing. The auth-server keeps client assertions' and DPoP proofs' `jti`s this way, the
//! rooms API DPoP proofs'. A row is written only for something whose signature checked out,
//! so an outsider can't grow a table; each is swept once its entries expire.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, ExprTrait};

/// A table with columns `<key>`, `jti` and `expires_at`, its primary key `(<key>, jti)` and
/// `expires_at` indexed (migrations: `client_assertion_jtis`, `dpop_proof_jtis`).
#[derive(Debug, Clone, Copy)]
pub struct ReplayTable {
    pub table: &'static str,
    /// Whose `jti`s these are: a client_id, a key thumbprint.
    pub key_column: &'static str,
}

/// Records `jti` for `key` until `expires_at`; false if it was already recorded and has not
/// expired (a replay). One statement (insert, or do nothing on the primary key), so two
/// replicas racing with the same proof can't both win. A row left by an expired entry is
/// taken over.
pub async fn first_use(
    db: &DatabaseConnection,
    t: ReplayTable,
    key: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let (table, key_column) = (Alias::new(t.table), Alias::new(t.key_column));
    let (jti_column, expires) = (Alias::new("jti"), Alias::new("expires_at"));
    let mut insert = Query::insert();
    insert
        .into_table(table.clone())
        .columns([key_column.clone(), jti_column.clone(), expires.clone()])
        .values([key.into(), jti.into(), expires_at.into()])
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    insert.on_conflict(
        OnConflict::columns([key_column, jti_column])
            .update_column(expires.clone())
            .action_and_where(Expr::col((table, expires)).lte(now))
            .to_owned(),
    );
    let backend = db.get_database_backend();
    let result = db.execute_raw(backend.build(&insert)).await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the entries that expired before `now` (the periodic sweep); one statement, bounded
/// by legitimate traffic.
pub async fn sweep(
    db: &DatabaseConnection,
    t: ReplayTable,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let delete = Query::delete()
        .from_table(Alias::new(t.table))
        .and_where(Expr::col(Alias::new("expires_at")).lt(now))
        .to_owned();
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(backend.build(&delete))
        .await?
        .rows_affected())
}
