//! Applications (OAuth clients). Deleted applications stay as tombstones (deleted_at set) so
//! verifiers can still learn of the deletion; every read here skips them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, JoinType, LikeExpr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait,
};
use server_kit::db::at_most_one;
use shared::{ClientId, ScopeSet};
use uuid::Uuid;

use super::entity::applications::{ActiveModel, Column, Entity, Model};
use super::entity::revoked_tokens;
use super::entity::users::{Column as UserColumn, Entity as UserEntity};
use super::{StoreError, users};
use crate::model::{Application, AuthMethod, User};
use shared::Allowlist;

impl TryFrom<Model> for Application {
    type Error = StoreError;
    fn try_from(m: Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: m.id,
            client_id: ClientId::parse(&m.client_id)
                .map_err(|e| StoreError::Corrupt(format!("application {}: {e}", m.id)))?,
            name: m.name,
            secret_hash: m.secret_hash,
            previous_secret_hash: m.previous_secret_hash,
            previous_secret_expires_at: m.previous_secret_expires_at,
            scopes: ScopeSet::parse(&m.scopes)
                .map_err(|e| StoreError::Corrupt(format!("application {}: {e}", m.id)))?,
            domains: Allowlist::parse_stored(&m.domains)
                .map_err(|e| StoreError::Corrupt(format!("application {}: {e}", m.id)))?,
            is_active: m.is_active,
            tokens_not_before: m.tokens_not_before,
            token_ttl_seconds: m
                .token_ttl_seconds
                .map(u32::try_from)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("application {}: {e}", m.id)))?,
            last_token_at: m.last_token_at,
            auth_method: AuthMethod::parse(&m.token_endpoint_auth_method).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "application {}: unknown token_endpoint_auth_method",
                    m.id
                ))
            })?,
            jwks: m.jwks,
            jwks_uri: m.jwks_uri,
            dpop_bound_access_tokens: m.dpop_bound_access_tokens,
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
    pub user: Option<User>,
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
            user: row.user.map(User::try_from).transpose()?,
            jti_revoked: row.revoked_jti.is_some(),
        })
    }
}

const REVOKED_JTI: &str = "revoked_jti";

/// One row of `joined_rows`, read with the column prefixes sea-orm gives a two-entity select.
struct JoinedRow {
    app: Model,
    user: Option<users::Row>,
    revoked_jti: Option<String>,
}

impl FromQueryResult for JoinedRow {
    fn from_query_result(res: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            app: Model::from_query_result(res, "A_")?,
            user: users::Row::from_query_result_optional(res, "B_")?,
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

/// At most `limit` applications after `after` in (created_at, id) order, read along
/// `idx_applications_deleted_created`. `name_contains` filters case-insensitively on the way: a
/// search reads rows until it has `limit` matches (admin only; documented as such).
pub async fn page(
    db: &impl ConnectionTrait,
    after: Option<(DateTime<Utc>, Uuid)>,
    name_contains: Option<&str>,
    limit: u64,
) -> Result<Vec<Application>, StoreError> {
    let mut query = Entity::find().filter(Column::DeletedAt.is_null());
    if let Some((at, id)) = after {
        query = query.filter(
            Expr::tuple([Expr::col(Column::CreatedAt), Expr::col(Column::Id)])
                .gt(Expr::tuple([Expr::value(at), Expr::value(id)])),
        );
    }
    if let Some(needle) = name_contains {
        query = query.filter(
            Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(Column::Name))).like(
                LikeExpr::new(format!("%{}%", super::escape_like(&needle.to_lowercase())))
                    .escape('\\'),
            ),
        );
    }
    // `deleted_at` leads the order (NULL for every row here): PostgreSQL walks the index in
    // order only when the ORDER BY names its columns from the first.
    query
        .order_by_asc(Column::DeletedAt)
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(Application::try_from)
        .collect()
}

/// Records that the application obtained a token at `at`, unless a write in the last minute
/// already did (so at most one write a minute per application, whatever the traffic).
pub async fn touch_last_token(
    db: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::LastTokenAt, Expr::value(Some(at)))
        .filter(Column::Id.eq(id))
        .filter(
            Column::LastTokenAt
                .is_null()
                .or(Column::LastTokenAt.lte(at - chrono::TimeDelta::minutes(1))),
        )
        .exec(db)
        .await?;
    Ok(())
}

pub async fn insert(db: &impl ConnectionTrait, app: &Application) -> Result<(), StoreError> {
    ActiveModel {
        id: Set(app.id),
        client_id: Set(app.client_id.to_string()),
        name: Set(app.name.clone()),
        secret_hash: Set(app.secret_hash.clone()),
        previous_secret_hash: Set(app.previous_secret_hash.clone()),
        previous_secret_expires_at: Set(app.previous_secret_expires_at),
        scopes: Set(app.scopes.to_string()),
        domains: Set(app.domains.to_stored()),
        is_active: Set(app.is_active),
        tokens_not_before: Set(app.tokens_not_before),
        token_ttl_seconds: Set(app.token_ttl_seconds.map(ttl_column)),
        last_token_at: Set(app.last_token_at),
        token_endpoint_auth_method: Set(app.auth_method.as_str().to_owned()),
        jwks: Set(app.jwks.clone()),
        jwks_uri: Set(app.jwks_uri.clone()),
        dpop_bound_access_tokens: Set(app.dpop_bound_access_tokens),
        deleted_at: Set(None),
        created_at: Set(app.created_at),
        updated_at: Set(app.updated_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Lifetimes are bounded by `TOKEN_TTL_SECONDS` (a u32) long before i32's limit.
fn ttl_column(ttl: u32) -> i32 {
    i32::try_from(ttl).unwrap_or(i32::MAX)
}

/// Writes every mutable field of `app` (not `last_token_at`: only the token endpoint does).
pub async fn save(db: &impl ConnectionTrait, app: &Application) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::Name, Expr::value(app.name.clone()))
        .col_expr(Column::SecretHash, Expr::value(app.secret_hash.clone()))
        .col_expr(
            Column::PreviousSecretHash,
            Expr::value(app.previous_secret_hash.clone()),
        )
        .col_expr(
            Column::PreviousSecretExpiresAt,
            Expr::value(app.previous_secret_expires_at),
        )
        .col_expr(
            Column::TokenTtlSeconds,
            Expr::value(app.token_ttl_seconds.map(ttl_column)),
        )
        .col_expr(Column::Scopes, Expr::value(app.scopes.to_string()))
        .col_expr(Column::Domains, Expr::value(app.domains.to_stored()))
        .col_expr(Column::IsActive, Expr::value(app.is_active))
        .col_expr(Column::TokensNotBefore, Expr::value(app.tokens_not_before))
        .col_expr(
            Column::TokenEndpointAuthMethod,
            Expr::value(app.auth_method.as_str()),
        )
        .col_expr(Column::Jwks, Expr::value(app.jwks.clone()))
        .col_expr(Column::JwksUri, Expr::value(app.jwks_uri.clone()))
        .col_expr(
            Column::DpopBoundAccessTokens,
            Expr::value(app.dpop_bound_access_tokens),
        )
        .col_expr(Column::UpdatedAt, Expr::value(app.updated_at))
        .filter(Column::Id.eq(app.id))
        .filter(Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    // Outside a transaction this is the commit; inside one, `store::commit` moves it again.
    super::changes::committed_here();
    Ok(())
}

/// Replaces the stored secret hash by `new` only while it is still `old`: the same secret hashed
/// again with the current parameters (`client_secret::is_outdated`). A rotation or a delete in
/// between wins; true when this write took. Neither `updated_at` nor anything an operator
/// sees changes: the credential is the same.
pub async fn upgrade_secret_hash(
    db: &impl ConnectionTrait,
    id: Uuid,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let done = Entity::update_many()
        .col_expr(Column::SecretHash, Expr::value(new))
        .filter(Column::Id.eq(id))
        .filter(Column::SecretHash.eq(old))
        .filter(Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    let took = done.rows_affected == 1;
    if took {
        super::changes::committed_here();
    }
    Ok(took)
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
        .col_expr(Column::PreviousSecretHash, Expr::value(None::<String>))
        .col_expr(Column::UpdatedAt, Expr::value(app.updated_at))
        .filter(Column::Id.eq(app.id))
        .exec(db)
        .await?;
    // Outside a transaction this is the commit; inside one, `store::commit` moves it again.
    super::changes::committed_here();
    Ok(())
}
