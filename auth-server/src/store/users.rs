//! Users: the people applications act for, keyed by normalised e-mail.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use server_kit::db::at_most_one;
use shared::{ClientId, Email};
use uuid::Uuid;

use super::StoreError;
use super::entity::users::{ActiveModel, Column, Entity, Model};

pub type User = Model;

pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &Email,
) -> Result<Option<User>, StoreError> {
    let rows = Entity::find()
        .filter(Column::EmailNormalized.eq(email.normalized()))
        .all(db)
        .await?;
    Ok(at_most_one(rows))
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<User>, StoreError> {
    Ok(at_most_one(Entity::find_by_id(id).all(db).await?))
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<User>, StoreError> {
    Ok(Entity::find()
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .all(db)
        .await?)
}

fn new_row(
    email: &Email,
    external_sub: Option<String>,
    created_by: Option<&ClientId>,
    now: DateTime<Utc>,
) -> ActiveModel {
    ActiveModel {
        id: Set(Uuid::new_v4()),
        external_sub: Set(external_sub),
        email: Set(email.as_typed().to_owned()),
        email_normalized: Set(email.normalized().to_owned()),
        is_active: Set(true),
        tokens_not_before: Set(None),
        created_by_client_id: Set(created_by.map(ToString::to_string)),
        created_at: Set(now),
    }
}

/// Inserts unless a user with this e-mail exists, then reads the row back: concurrent callers
/// for one new e-mail all get the same single user (the UNIQUE index arbitrates).
pub async fn insert_if_absent(
    db: &impl ConnectionTrait,
    email: &Email,
    external_sub: Option<String>,
    created_by: Option<&ClientId>,
    now: DateTime<Utc>,
) -> Result<(User, bool), StoreError> {
    let result = Entity::insert(new_row(email, external_sub, created_by, now))
        .on_conflict_do_nothing_on([Column::EmailNormalized])
        .exec_without_returning(db)
        .await?;
    let created = matches!(result, sea_orm::TryInsertResult::Inserted(n) if n > 0);
    let user = find_by_email(db, email)
        .await?
        .ok_or_else(|| StoreError::Corrupt("user vanished after insert".into()))?;
    Ok((user, created))
}

pub async fn attach_external_sub(
    db: &impl ConnectionTrait,
    id: Uuid,
    sub: &str,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::ExternalSub, Expr::value(Some(sub.to_owned())))
        .filter(Column::Id.eq(id))
        .filter(Column::ExternalSub.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Writes the user's state as the domain decided it (`domain::users`).
pub async fn save_state(db: &impl ConnectionTrait, user: &User) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::IsActive, Expr::value(user.is_active))
        .col_expr(Column::TokensNotBefore, Expr::value(user.tokens_not_before))
        .filter(Column::Id.eq(user.id))
        .exec(db)
        .await?;
    Ok(())
}
