//! Revoked token ids and the change log the revocation feed reads.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::StoreError;
use super::entity::{applications, revoked_tokens, users};

/// Records a revocation; revoking twice is harmless.
pub async fn revoke(
    db: &impl ConnectionTrait,
    jti: &str,
    client_id: &str,
    exp: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    revoked_tokens::Entity::insert(revoked_tokens::ActiveModel {
        jti: Set(jti.to_owned()),
        client_id: Set(client_id.to_owned()),
        exp: Set(exp),
        revoked_at: Set(now),
    })
    .on_conflict_do_nothing_on([revoked_tokens::Column::Jti])
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn is_revoked(db: &impl ConnectionTrait, jti: &str) -> Result<bool, StoreError> {
    // Not `.one()`: see `server_kit::db::at_most_one`.
    let rows = revoked_tokens::Entity::find_by_id(jti.to_owned())
        .all(db)
        .await?;
    Ok(!rows.is_empty())
}

/// Entries of the feed: revoked jtis whose token can still be alive, and `tokens_not_before`
/// values young enough to matter, optionally only those changed since `since`.
pub struct FeedRows {
    pub revoked: Vec<revoked_tokens::Model>,
    pub clients: Vec<(String, DateTime<Utc>)>,
    pub users: Vec<(uuid::Uuid, DateTime<Utc>)>,
}

pub async fn feed(
    db: &impl ConnectionTrait,
    alive_after: DateTime<Utc>,
    relevant_after: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
) -> Result<FeedRows, StoreError> {
    let mut revoked =
        revoked_tokens::Entity::find().filter(revoked_tokens::Column::Exp.gt(alive_after));
    if let Some(s) = since {
        revoked = revoked.filter(revoked_tokens::Column::RevokedAt.gt(s));
    }
    let mut clients = applications::Entity::find()
        .filter(applications::Column::TokensNotBefore.gt(relevant_after));
    let mut user_rows =
        users::Entity::find().filter(users::Column::TokensNotBefore.gt(relevant_after));
    if let Some(s) = since {
        clients = clients.filter(applications::Column::TokensNotBefore.gt(s));
        user_rows = user_rows.filter(users::Column::TokensNotBefore.gt(s));
    }
    Ok(FeedRows {
        revoked: revoked.all(db).await?,
        clients: clients
            .all(db)
            .await?
            .into_iter()
            .filter_map(|a| a.tokens_not_before.map(|t| (a.client_id, t)))
            .collect(),
        users: user_rows
            .all(db)
            .await?
            .into_iter()
            .filter_map(|u| u.tokens_not_before.map(|t| (u.id, t)))
            .collect(),
    })
}

/// Drops what can no longer matter: revocations of expired tokens and old tombstones.
pub async fn purge(
    db: &impl ConnectionTrait,
    revoked_expired_before: DateTime<Utc>,
    tombstones_before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let a = revoked_tokens::Entity::delete_many()
        .filter(revoked_tokens::Column::Exp.lt(revoked_expired_before))
        .exec(db)
        .await?
        .rows_affected;
    let b = applications::Entity::delete_many()
        .filter(applications::Column::DeletedAt.lt(tombstones_before))
        .exec(db)
        .await?
        .rows_affected;
    Ok(a + b)
}
