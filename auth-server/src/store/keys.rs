//! Signing-key rows. Private halves are stored encrypted; this module never decrypts.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::StoreError;
use super::entity::signing_keys::{ActiveModel, Column, Entity, Model};

use crate::model::SigningKey;

impl From<Model> for SigningKey {
    fn from(m: Model) -> Self {
        SigningKey {
            kid: m.kid,
            generation: m.generation,
            alg: m.alg,
            private_key_encrypted: m.private_key_encrypted,
            public_jwk: m.public_jwk,
            created_at: m.created_at,
            activates_at: m.activates_at,
            superseded_at: m.superseded_at,
            retired_at: m.retired_at,
        }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        SigningKey::from(self.clone()).fmt(f)
    }
}

pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<SigningKey>, StoreError> {
    Ok(Entity::find()
        .order_by_asc(Column::Generation)
        .all(db)
        .await?
        .into_iter()
        .map(SigningKey::from)
        .collect())
}

/// The kids of every key not retired, ascending by generation: what a replica must publish.
/// Two small columns of a table of a few rows (one per rotation).
pub async fn live_kids(db: &impl ConnectionTrait) -> Result<Vec<String>, StoreError> {
    Ok(Entity::find()
        .select_only()
        .column(Column::Kid)
        .filter(Column::RetiredAt.is_null())
        .order_by_asc(Column::Generation)
        .into_tuple()
        .all(db)
        .await?)
}

/// Inserts a key at `row.generation`. `Ok(false)` when another process took that generation
/// first (the caller re-reads and, for the first key, simply uses the winner's).
pub async fn insert(db: &impl ConnectionTrait, row: SigningKey) -> Result<bool, StoreError> {
    let active = ActiveModel {
        kid: Set(row.kid),
        generation: Set(row.generation),
        alg: Set(row.alg),
        private_key_encrypted: Set(row.private_key_encrypted),
        public_jwk: Set(row.public_jwk),
        created_at: Set(row.created_at),
        activates_at: Set(row.activates_at),
        superseded_at: Set(None),
        retired_at: Set(None),
    };
    match Entity::insert(active).exec_without_returning(db).await {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Records that every key older than `generation` stopped signing at `at`.
pub async fn mark_superseded(
    db: &impl ConnectionTrait,
    generation: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::SupersededAt, Expr::value(Some(at)))
        .filter(Column::Generation.lt(generation))
        .filter(Column::SupersededAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Marks `kid` retired at `now`; `Ok(false)` when there is no such key.
pub async fn retire(
    db: &impl ConnectionTrait,
    kid: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = Entity::update_many()
        .col_expr(Column::RetiredAt, Expr::value(Some(now)))
        .filter(Column::Kid.eq(kid))
        .filter(Column::RetiredAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
