//! The `jti` of every assertion accepted (private_key_jwt, the JWT-bearer grant), kept until
//! the assertion expires: a second use of the same `jti` by the same client is a replay. In the
//! database on both backends, so every replica refuses a replay another one accepted (and a
//! restart forgets nothing). Rows are written only after a signature checked out.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ConnectionTrait, ExprTrait};

use super::{Db, StoreError};

#[derive(sea_orm::DeriveIden)]
enum ClientAssertionJtis {
    Table,
    ClientId,
    Jti,
    ExpiresAt,
}

/// Records `jti` for `client_id` until `expires_at`; false if it was already recorded and has
/// not expired (a replay). One statement (insert, or do nothing on the primary key), so two
/// replicas racing with the same assertion can't both win. A row left by an expired assertion
/// is taken over.
pub async fn first_use(
    db: &Db,
    client_id: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let backend = db.get_database_backend();
    let mut insert = Query::insert();
    insert.into_table(ClientAssertionJtis::Table).columns([
        ClientAssertionJtis::ClientId,
        ClientAssertionJtis::Jti,
        ClientAssertionJtis::ExpiresAt,
    ]);
    insert
        .values([client_id.into(), jti.into(), expires_at.into()])
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    insert.on_conflict(
        OnConflict::columns([ClientAssertionJtis::ClientId, ClientAssertionJtis::Jti])
            .update_column(ClientAssertionJtis::ExpiresAt)
            .action_and_where(
                Expr::col((ClientAssertionJtis::Table, ClientAssertionJtis::ExpiresAt)).lte(now),
            )
            .to_owned(),
    );
    let result = db.execute_raw(backend.build(&insert)).await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the rows of assertions that expired before `now` (the periodic sweep).
pub async fn sweep(db: &Db, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let delete = Query::delete()
        .from_table(ClientAssertionJtis::Table)
        .and_where(Expr::col(ClientAssertionJtis::ExpiresAt).lt(now))
        .to_owned();
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(backend.build(&delete))
        .await?
        .rows_affected())
}
