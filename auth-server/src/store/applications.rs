//! Applications (OAuth clients). Deleted applications stay as tombstones (deleted_at set) so
//! verifiers can still learn of the deletion; every read here skips them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, JoinType, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QueryResult, QueryTrait,
};
use server_kit::db::at_most_one;
use shared::{ClientId, ScopeSet};
use uuid::Uuid;

use super::entity::applications::{ActiveModel, Column, Entity, Model};
use super::entity::revoked_tokens;
use super::entity::users::{Column as UserColumn, Entity as UserEntity};
use super::{StoreError, users};
use shared::Allowlist;

/// An application as the domain sees it. `Debug` never shows the secret hash.
#[derive(Clone)]
pub struct Application {
    pub id: Uuid,
    pub client_id: ClientId,
    pub name: String,
    pub secret_hash: String,
    pub scopes: ScopeSet,
    pub domains: Allowlist,
    pub is_active: bool,
    pub tokens_not_before: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("domains", &self.domains)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

impl TryFrom<Model> for Application {
    type Error = StoreError;
    fn try_from(m: Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: m.id,
            client_id: ClientId::parse(&m.client_id)
                .map_err(|e| StoreError::Corrupt(format!("application {}: {e}", m.id)))?,
            name: m.name,
            secret_hash: m.secret_hash,
            scopes: ScopeSet::parse(&m.scopes)
                .map_err(|e| StoreError::Corrupt(format!("application {}: {e}", m.id)))?,
            domains: Allowlist::parse_stored(&m.domains)
                .map_err(|e| StoreError::Corrupt(format!("application {}: {e}", m.id)))?,
            is_active: m.is_active,
            tokens_not_before: m.tokens_not_before,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// One query: the row carries scopes and domains, so the token endpoint reads nothing else.
pub async fn find_by_client_id(
    db: &impl ConnectionTrait,
    client_id: &ClientId,
) -> Result<Option<Application>, StoreError> {
    let rows = Entity::find()
        .filter(Column::ClientId.eq(client_id.as_str()))
        .filter(Column::DeletedAt.is_null())
        .all(db)
        .await?;
    at_most_one(rows).map(Application::try_from).transpose()
}

/// Which user to read alongside an application.
#[derive(Debug, Clone, Copy)]
pub enum UserKey<'a> {
    Email(&'a shared::Email),
    Id(Uuid),
}

/// An application with what one request needs alongside it.
#[derive(Debug)]
pub struct WithUser {
    pub app: Application,
    pub user: Option<users::User>,
    /// Whether the jti asked about is in `revoked_tokens` (false when none was asked about).
    pub jti_revoked: bool,
}

/// The application and, in the same query (a LEFT JOIN on a constant condition), the user the
/// token request names: one database round trip instead of two, and on SQLite each is a
/// hand-off to the connection's thread and back (seen in a perf profile of the token endpoint, `scripts/bench`).
pub async fn find_with_user(
    db: &impl ConnectionTrait,
    client_id: &ClientId,
    user: UserKey<'_>,
) -> Result<Option<WithUser>, StoreError> {
    let rows = joined_rows(db, &[client_id], None, user, None).await?;
    at_most_one(rows).map(WithUser::try_from).transpose()
}

/// What introspection looks up for a token whose signature checked out.
#[derive(Debug, Clone)]
pub struct TokenKey {
    pub client_id: ClientId,
    pub user_id: Uuid,
    pub jti: String,
}

/// Introspection in one query: the calling application (to authenticate it) and the token's
/// application with its user and the revocation of its jti. One row per application, the
/// token's joins only on the token's row; one row if the caller introspects its own token.
pub async fn find_caller_and_token(
    db: &impl ConnectionTrait,
    caller: &ClientId,
    token: &TokenKey,
) -> Result<(Option<Application>, Option<WithUser>), StoreError> {
    let rows = joined_rows(
        db,
        &[caller, &token.client_id],
        Some(&token.client_id),
        UserKey::Id(token.user_id),
        Some(&token.jti),
    )
    .await?;
    let (mut caller_app, mut token_app) = (None, None);
    for row in rows {
        let found = WithUser::try_from(row)?;
        if found.app.client_id == *caller {
            caller_app = Some(found.app.clone());
        }
        if found.app.client_id == token.client_id {
            token_app = Some(found);
        }
    }
    Ok((caller_app, token_app))
}

/// Applications by client_id, each LEFT JOINed with `user` and the revocation of `jti`; when
/// `joins_only_for` is set, the joins match only on that application's row.
async fn joined_rows(
    db: &impl ConnectionTrait,
    client_ids: &[&ClientId],
    joins_only_for: Option<&ClientId>,
    user: UserKey<'_>,
    jti: Option<&str>,
) -> Result<Vec<JoinedRow>, StoreError> {
    let only = |cond: SimpleExpr| match joins_only_for {
        Some(id) => cond.and(Column::ClientId.eq(id.as_str())),
        None => cond,
    };
    let on = only(match user {
        UserKey::Email(email) => UserColumn::EmailNormalized.eq(email.normalized()),
        UserKey::Id(id) => UserColumn::Id.eq(id),
    });
    let by_client_id = match client_ids {
        [one] => Column::ClientId.eq(one.as_str()),
        many => Column::ClientId.is_in(many.iter().map(|id| id.as_str())),
    };
    let mut select = Entity::find()
        .filter(by_client_id)
        .filter(Column::DeletedAt.is_null())
        .select_also(UserEntity);
    let query = QueryTrait::query(&mut select);
    query.join(JoinType::LeftJoin, UserEntity, on);
    match jti {
        Some(jti) => query
            .join(
                JoinType::LeftJoin,
                revoked_tokens::Entity,
                only(revoked_tokens::Column::Jti.eq(jti)),
            )
            .expr_as(
                Expr::col((revoked_tokens::Entity, revoked_tokens::Column::Jti)),
                REVOKED_JTI,
            ),
        None => query.expr_as(Expr::cust("NULL"), REVOKED_JTI),
    };
    let statement = db.get_database_backend().build(&*query);
    // Not `.one()`: see `server_kit::db::at_most_one`.
    Ok(JoinedRow::find_by_statement(statement).all(db).await?)
}

impl TryFrom<JoinedRow> for WithUser {
    type Error = StoreError;
    fn try_from(row: JoinedRow) -> Result<Self, StoreError> {
        Ok(Self {
            app: Application::try_from(row.app)?,
            user: row.user,
            jti_revoked: row.revoked_jti.is_some(),
        })
    }
}

const REVOKED_JTI: &str = "revoked_jti";

/// One row of `joined_rows`, read with the column prefixes sea-orm gives a two-entity select.
struct JoinedRow {
    app: Model,
    user: Option<users::User>,
    revoked_jti: Option<String>,
}

impl FromQueryResult for JoinedRow {
    fn from_query_result(res: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            app: Model::from_query_result(res, "A_")?,
            user: users::User::from_query_result_optional(res, "B_")?,
            revoked_jti: res.try_get::<Option<String>>("", REVOKED_JTI)?,
        })
    }
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Application>, StoreError> {
    Entity::find()
        .filter(Column::DeletedAt.is_null())
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Application::try_from)
        .collect()
}

pub async fn insert(db: &impl ConnectionTrait, app: &Application) -> Result<(), StoreError> {
    ActiveModel {
        id: Set(app.id),
        client_id: Set(app.client_id.to_string()),
        name: Set(app.name.clone()),
        secret_hash: Set(app.secret_hash.clone()),
        scopes: Set(app.scopes.to_string()),
        domains: Set(app.domains.to_stored()),
        is_active: Set(app.is_active),
        tokens_not_before: Set(app.tokens_not_before),
        deleted_at: Set(None),
        created_at: Set(app.created_at),
        updated_at: Set(app.updated_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Writes every mutable field of `app`.
pub async fn save(db: &impl ConnectionTrait, app: &Application) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::Name, Expr::value(app.name.clone()))
        .col_expr(Column::SecretHash, Expr::value(app.secret_hash.clone()))
        .col_expr(Column::Scopes, Expr::value(app.scopes.to_string()))
        .col_expr(Column::Domains, Expr::value(app.domains.to_stored()))
        .col_expr(Column::IsActive, Expr::value(app.is_active))
        .col_expr(Column::TokensNotBefore, Expr::value(app.tokens_not_before))
        .col_expr(Column::UpdatedAt, Expr::value(app.updated_at))
        .filter(Column::Id.eq(app.id))
        .filter(Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes by tombstone (deleted_at set), writing the state the domain gave the row (inactive,
/// its tokens' not-before): hidden from every read, still known to the revocation feed.
pub async fn delete(
    db: &impl ConnectionTrait,
    app: &Application,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::IsActive, Expr::value(app.is_active))
        .col_expr(Column::TokensNotBefore, Expr::value(app.tokens_not_before))
        .col_expr(Column::DeletedAt, Expr::value(Some(now)))
        .col_expr(Column::UpdatedAt, Expr::value(app.updated_at))
        .filter(Column::Id.eq(app.id))
        .exec(db)
        .await?;
    Ok(())
}
