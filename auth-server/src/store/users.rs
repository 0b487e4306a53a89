//! Users: the people applications act for, keyed by normalised e-mail.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use server_kit::db::at_most_one;
use shared::{ClientId, Email};
use uuid::Uuid;

use super::StoreError;
use super::entity::users::{ActiveModel, Column, Entity, Model};
use crate::model::{User, UserId};

/// A `users` row, as read alongside an application (`applications::find_with_user`).
pub(crate) type Row = Model;

impl TryFrom<Model> for User {
    type Error = StoreError;
    fn try_from(m: Model) -> Result<Self, StoreError> {
        let corrupt =
            |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("user {}: {e}", m.id));
        Ok(User {
            id: UserId(m.id),
            email: Email::parse(&m.email).map_err(|e| corrupt(&e))?,
            external_sub: m.external_sub,
            is_active: m.is_active,
            tokens_not_before: m.tokens_not_before,
            created_by: m
                .created_by_client_id
                .as_deref()
                .map(ClientId::parse)
                .transpose()
                .map_err(|e| corrupt(&e))?,
            created_at: m.created_at,
        })
    }
}

fn records(rows: Vec<Model>) -> Result<Vec<User>, StoreError> {
    rows.into_iter().map(User::try_from).collect()
}

pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &Email,
) -> Result<Option<User>, StoreError> {
    let rows = Entity::find()
        .filter(Column::EmailNormalized.eq(email.normalized()))
        .all(db)
        .await?;
    at_most_one(rows).map(User::try_from).transpose()
}

/// A user by id; a deleted user's tombstone is nobody.
pub async fn find_by_id(db: &impl ConnectionTrait, id: UserId) -> Result<Option<User>, StoreError> {
    at_most_one(
        Entity::find_by_id(id.as_uuid())
            .filter(Column::DeletedAt.is_null())
            .all(db)
            .await?,
    )
    .map(User::try_from)
    .transpose()
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<User>, StoreError> {
    records(
        Entity::find()
            .filter(Column::DeletedAt.is_null())
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::Id)
            .all(db)
            .await?,
    )
}

/// At most `limit` users after `after` in (created_at, id) order, along `idx_users_created`.
pub async fn page(
    db: &impl ConnectionTrait,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<User>, StoreError> {
    let mut query = Entity::find().filter(Column::DeletedAt.is_null());
    if let Some((at, id)) = after {
        query = query.filter(
            Expr::tuple([Expr::col(Column::CreatedAt), Expr::col(Column::Id)])
                .gt(Expr::tuple([Expr::value(at), Expr::value(id)])),
        );
    }
    records(
        query
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(db)
            .await?,
    )
}

/// Deletes by tombstone: the row stays (inactive, its `tokens_not_before` set by the domain) so
/// the revocation feed still tells local verifiers, but its e-mail and `sub` are gone, so the
/// e-mail can be registered again and nothing personal is kept.
pub async fn delete(
    db: &impl ConnectionTrait,
    user: &User,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let placeholder = format!("deleted-{}@deleted.invalid", user.id.as_uuid().simple());
    Entity::update_many()
        .col_expr(Column::IsActive, Expr::value(false))
        .col_expr(Column::TokensNotBefore, Expr::value(user.tokens_not_before))
        .col_expr(Column::Email, Expr::value(placeholder.clone()))
        .col_expr(Column::EmailNormalized, Expr::value(placeholder))
        .col_expr(Column::ExternalSub, Expr::value(None::<String>))
        .col_expr(Column::DeletedAt, Expr::value(Some(now)))
        .filter(Column::Id.eq(user.id.as_uuid()))
        .exec(db)
        .await?;
    // Outside a transaction this is the commit; inside one, `store::commit` moves it again.
    super::changes::committed_here();
    Ok(())
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
        deleted_at: Set(None),
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
    id: UserId,
    sub: &str,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::ExternalSub, Expr::value(Some(sub.to_owned())))
        .filter(Column::Id.eq(id.as_uuid()))
        .filter(Column::ExternalSub.is_null())
        .exec(db)
        .await?;
    // Outside a transaction this is the commit; inside one, `store::commit` moves it again.
    super::changes::committed_here();
    Ok(())
}

/// Writes the user's state as the domain decided it (`domain::users`).
pub async fn save_state(db: &impl ConnectionTrait, user: &User) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::IsActive, Expr::value(user.is_active))
        .col_expr(Column::TokensNotBefore, Expr::value(user.tokens_not_before))
        .filter(Column::Id.eq(user.id.as_uuid()))
        .exec(db)
        .await?;
    // Outside a transaction this is the commit; inside one, `store::commit` moves it again.
    super::changes::committed_here();
    Ok(())
}
