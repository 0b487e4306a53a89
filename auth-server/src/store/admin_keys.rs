//! Admin API keys: one row per key, found by its public `key_id`; the secret half is kept
//! only as a SHA-256 digest (domain/admin_keys.rs says why that suffices).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use server_kit::db::at_most_one;
use uuid::Uuid;

use super::StoreError;
use super::entity::admin_keys::{ActiveModel, Column, Entity, Model};
use crate::model::AdminKey;

impl From<Model> for AdminKey {
    fn from(m: Model) -> Self {
        AdminKey {
            id: m.id,
            key_id: m.key_id,
            name: m.name,
            secret_digest: m.secret_digest,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
        }
    }
}

pub async fn insert(db: &impl ConnectionTrait, key: &AdminKey) -> Result<(), StoreError> {
    ActiveModel {
        id: Set(key.id),
        key_id: Set(key.key_id.clone()),
        name: Set(key.name.clone()),
        secret_digest: Set(key.secret_digest.clone()),
        created_at: Set(key.created_at),
        revoked_at: Set(key.revoked_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The key a call names, revoked or not (the domain decides).
pub async fn find_by_key_id(
    db: &impl ConnectionTrait,
    key_id: &str,
) -> Result<Option<AdminKey>, StoreError> {
    Ok(at_most_one(
        Entity::find()
            .filter(Column::KeyId.eq(key_id))
            .all(db)
            .await?,
    )
    .map(AdminKey::from))
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<AdminKey>, StoreError> {
    Ok(at_most_one(Entity::find_by_id(id).all(db).await?).map(AdminKey::from))
}

/// Every key, oldest first; there are a handful, never a growing table.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<AdminKey>, StoreError> {
    Ok(Entity::find()
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(AdminKey::from)
        .collect())
}

pub async fn count_usable(db: &impl ConnectionTrait) -> Result<u64, StoreError> {
    Ok(Entity::find()
        .filter(Column::RevokedAt.is_null())
        .count(db)
        .await?)
}

/// Marks the key revoked; false if it already was.
pub async fn revoke(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(Some(now)))
        .filter(Column::Id.eq(id))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}
