//! The only sea-orm code of the rooms API (with `entity.rs` and the connection opened at startup), the room cache's change log on SQLite included. Every read is scoped to (user, application): a room
//! outside that scope is indistinguishable from one that does not exist.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, JoinType, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Statement,
    TransactionTrait, Value,
};
use server_kit::db::at_most_one;
use uuid::Uuid;

use super::entity::{room_accesses, room_counts, rooms};

pub type RoomRow = rooms::Model;
/// The connection pool every function here takes; the service names it only by this alias.
pub type Db = sea_orm::DatabaseConnection;
/// A failed statement.
pub type StoreError = DbErr;

/// A UNIQUE index refused the write (a slug or PIN collision).
pub fn is_unique_violation(e: &StoreError) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// A stored value that could not be encoded: reported like a failed statement.
pub fn encoding_error(e: &serde_json::Error) -> StoreError {
    DbErr::Custom(e.to_string())
}

/// Roles of the data model. Rooms created through this API get one row: the owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// Who is asking: the token's subject, through the application that holds the token.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user_id: &'a str,
    pub client_id: &'a str,
}

/// The viewer's rooms, driven by `idx_room_accesses_list` (user_id, client_id, created_at,
/// room_id): the rows come out of the index already in list order, so a page reads a page.
fn visible(viewer: Viewer<'_>) -> sea_orm::Select<rooms::Entity> {
    rooms::Entity::find()
        .join(JoinType::InnerJoin, rooms::Relation::Accesses.def())
        .filter(room_accesses::Column::UserId.eq(viewer.user_id))
        .filter(room_accesses::Column::ClientId.eq(viewer.client_id))
        // Always equal by construction; checked again so a stray row can't widen visibility.
        .filter(rooms::Column::ClientId.eq(viewer.client_id))
}

/// How many rooms the viewer sees: one row of `room_counts`, never a count of rooms.
pub async fn count(db: &impl ConnectionTrait, viewer: Viewer<'_>) -> Result<u64, DbErr> {
    let rows =
        room_counts::Entity::find_by_id((viewer.user_id.to_owned(), viewer.client_id.to_owned()))
            .all(db)
            .await?;
    Ok(at_most_one(rows).map_or(0, |r| u64::try_from(r.rooms).unwrap_or(0)))
}

/// A position in the list: the (created_at, id) of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Which side of a position a keyset page reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Older than the position (the next page), newest first.
    After,
    /// Newer than the position (the previous page); returned newest first too.
    Before,
}

fn key() -> SimpleExpr {
    Expr::tuple([
        Expr::col((room_accesses::Entity, room_accesses::Column::CreatedAt)),
        Expr::col((room_accesses::Entity, room_accesses::Column::RoomId)),
    ])
}

fn at(p: Position) -> SimpleExpr {
    Expr::tuple([Expr::value(p.created_at), Expr::value(p.id)])
}

/// In list order (newest first, then by id, so pages are stable), or its reverse: the order of
/// `idx_room_accesses_list`, read forwards or backwards.
fn in_list_order(
    q: sea_orm::Select<rooms::Entity>,
    reverse: bool,
) -> sea_orm::Select<rooms::Entity> {
    let order = if reverse { Order::Asc } else { Order::Desc };
    q.order_by(room_accesses::Column::CreatedAt, order.clone())
        .order_by(room_accesses::Column::RoomId, order)
}

/// A room as a list shows it: with the viewer's role on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub room: RoomRow,
    pub role: Option<Role>,
}

const VIEWER_ROLE: &str = "viewer_role";

/// The viewer's role, read beside each room (the access row is joined already).
fn with_role(q: sea_orm::Select<rooms::Entity>) -> sea_orm::Select<rooms::Entity> {
    q.expr_as(
        Expr::col((room_accesses::Entity, room_accesses::Column::Role)),
        VIEWER_ROLE,
    )
}

/// Offset paging (`?page=`) walks the index up to the offset: cheap for the first pages,
/// O(offset) for deep ones.
pub async fn page(
    db: &impl ConnectionTrait,
    viewer: Viewer<'_>,
    offset: u64,
    limit: u64,
) -> Result<Vec<Listed>, DbErr> {
    with_role(in_list_order(visible(viewer), false))
        .offset(offset)
        .limit(limit)
        .into_model::<Listed>()
        .all(db)
        .await
}

/// Up to `limit` rooms on one side of `from` (or from the top), newest first: an index range,
/// O(limit) whatever the depth. With them, in the same statement, the viewer's `count` (a
/// scalar subquery on `room_counts`' primary key): a list page is one database round trip,
/// two only when the page is empty and the count has to be read on its own.
pub async fn keyset_page(
    db: &impl ConnectionTrait,
    viewer: Viewer<'_>,
    from: Option<(Position, Direction)>,
    limit: u64,
) -> Result<(Vec<Listed>, u64), DbErr> {
    let mut q = visible(viewer);
    let ascending = matches!(from, Some((_, Direction::Before)));
    match from {
        Some((p, Direction::After)) => q = q.filter(key().lt(at(p))),
        Some((p, Direction::Before)) => q = q.filter(key().gt(at(p))),
        None => {}
    }
    let with_count = with_role(in_list_order(q, ascending))
        .limit(limit)
        .expr_as(count_of(viewer), VIEWER_COUNT)
        .into_model::<WithCount>()
        .all(db)
        .await?;
    let count = match with_count.first() {
        Some(first) => first.count.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
        None => count(db, viewer).await?,
    };
    let mut rows: Vec<Listed> = with_count.into_iter().map(|r| r.listed).collect();
    if ascending {
        rows.reverse();
    }
    Ok((rows, count))
}

const VIEWER_COUNT: &str = "viewer_count";

/// `(SELECT rooms FROM room_counts WHERE user_id = ? AND client_id = ?)`.
fn count_of(viewer: Viewer<'_>) -> SimpleExpr {
    let query = sea_orm::sea_query::Query::select()
        .column(room_counts::Column::Rooms)
        .from(room_counts::Entity)
        .and_where(room_counts::Column::UserId.eq(viewer.user_id))
        .and_where(room_counts::Column::ClientId.eq(viewer.client_id))
        .to_owned();
    SimpleExpr::SubQuery(None, Box::new(query.into()))
}

impl sea_orm::FromQueryResult for Listed {
    fn from_query_result(res: &sea_orm::QueryResult, pre: &str) -> Result<Self, DbErr> {
        let role: Option<String> = res.try_get(pre, VIEWER_ROLE)?;
        Ok(Self {
            room: RoomRow::from_query_result(res, pre)?,
            role: role.as_deref().and_then(Role::parse),
        })
    }
}

/// A listed room and the viewer's count read beside it.
struct WithCount {
    listed: Listed,
    count: Option<i64>,
}

impl sea_orm::FromQueryResult for WithCount {
    fn from_query_result(res: &sea_orm::QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            listed: Listed::from_query_result(res, pre)?,
            count: res.try_get::<Option<i64>>(pre, VIEWER_COUNT)?,
        })
    }
}

/// The room and the viewer's role on it, if the viewer may see it at all.
pub async fn find_visible(
    db: &impl ConnectionTrait,
    viewer: Viewer<'_>,
    id: Uuid,
) -> Result<Option<(RoomRow, Option<Role>)>, DbErr> {
    let rows = rooms::Entity::find_by_id(id)
        .filter(rooms::Column::ClientId.eq(viewer.client_id))
        .find_also_related(room_accesses::Entity)
        .filter(room_accesses::Column::UserId.eq(viewer.user_id))
        .all(db)
        .await?;
    let found = at_most_one(rows);
    Ok(found.and_then(|(room, access)| {
        access.map(|a| {
            let role = Role::parse(&a.role);
            (room, role)
        })
    }))
}

/// The room with this slug and the viewer's role on it, if the viewer may see it: the slug's
/// UNIQUE index, then the access row's primary key.
pub async fn find_visible_by_slug(
    db: &impl ConnectionTrait,
    viewer: Viewer<'_>,
    slug: &str,
) -> Result<Option<(RoomRow, Option<Role>)>, DbErr> {
    let rows = rooms::Entity::find()
        .filter(rooms::Column::Slug.eq(slug))
        .filter(rooms::Column::ClientId.eq(viewer.client_id))
        .find_also_related(room_accesses::Entity)
        .filter(room_accesses::Column::UserId.eq(viewer.user_id))
        .all(db)
        .await?;
    Ok(at_most_one(rows).and_then(|(room, access)| access.map(|a| (room, Role::parse(&a.role)))))
}

/// Inserts the room and its owner row in one transaction: a failure leaves neither.
pub async fn insert_with_owner(
    db: &sea_orm::DatabaseConnection,
    row: RoomRow,
    owner: &str,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let (room_id, client_id, created_at) = (row.id, row.client_id.clone(), row.created_at);
    rooms::Entity::insert(rooms::ActiveModel {
        id: Set(row.id),
        slug: Set(row.slug),
        name: Set(row.name),
        access_level: Set(row.access_level),
        configuration: Set(row.configuration),
        pin_code: Set(row.pin_code),
        client_id: Set(row.client_id),
        created_at: Set(row.created_at),
    })
    .exec_without_returning(&txn)
    .await?;
    grant(&txn, room_id, &client_id, created_at, owner, Role::Owner).await?;
    txn.commit().await
}

/// Gives `user` a role on a room (the room's `client_id` and `created_at` are copied into the
/// access row) and counts the room in the user's `room_counts`. Part of the caller's transaction.
pub async fn grant(
    db: &impl ConnectionTrait,
    room_id: Uuid,
    client_id: &str,
    created_at: DateTime<Utc>,
    user: &str,
    role: Role,
) -> Result<(), DbErr> {
    room_accesses::Entity::insert(room_accesses::ActiveModel {
        room_id: Set(room_id),
        user_id: Set(user.to_owned()),
        role: Set(role.as_str().to_owned()),
        client_id: Set(client_id.to_owned()),
        created_at: Set(created_at),
    })
    .exec_without_returning(db)
    .await?;
    room_counts::Entity::insert(room_counts::ActiveModel {
        user_id: Set(user.to_owned()),
        client_id: Set(client_id.to_owned()),
        rooms: Set(1),
    })
    .on_conflict(
        OnConflict::columns([room_counts::Column::UserId, room_counts::Column::ClientId])
            .value(
                room_counts::Column::Rooms,
                Expr::col((room_counts::Entity, room_counts::Column::Rooms)).add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// [`grant`] on its own transaction (tooling and tests that add members to a room).
pub async fn grant_access(
    db: &sea_orm::DatabaseConnection,
    room: &RoomRow,
    user: &str,
    role: Role,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    grant(&txn, room.id, &room.client_id, room.created_at, user, role).await?;
    txn.commit().await
}

/// What a change to one user's access does, as the rooms' rules decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange {
    /// A new access row with this role (and the room counted in the user's list).
    Insert(Role),
    /// The row's role becomes this.
    Update(Role),
    /// The row goes (and the room leaves the user's count).
    Delete,
    /// Nothing to write.
    Keep,
}

/// What `change_access` did.
#[derive(Debug)]
pub enum Changed<E> {
    /// The user's role before, and what was applied.
    Applied(Option<Role>, AccessChange),
    /// `decide` refused.
    Refused(E),
    /// The room was deleted meanwhile.
    RoomGone,
}

/// Reads `user`'s role on `room` (and, when it is the owner's, whether they are its only
/// owner), asks `decide`, and applies its answer — all in one transaction, with the room's row
/// locked on PostgreSQL, so two changes to one room's accesses take turns and "the last owner"
/// is decided on what is committed (on SQLite the writer is one at a time anyway). The role is
/// read by the access table's primary key; the owners are counted only for an owner.
pub async fn change_access<E>(
    db: &sea_orm::DatabaseConnection,
    room: &RoomRow,
    user: &str,
    decide: impl FnOnce(Option<Role>, bool) -> Result<AccessChange, E>,
) -> Result<Changed<E>, DbErr> {
    let txn = db.begin().await?;
    let mut lock = rooms::Entity::find_by_id(room.id);
    if db.get_database_backend() == DbBackend::Postgres {
        lock = lock.lock_exclusive();
    }
    if lock.all(&txn).await?.is_empty() {
        return Ok(Changed::RoomGone);
    }
    let before = at_most_one(
        room_accesses::Entity::find_by_id((room.id, user.to_owned()))
            .all(&txn)
            .await?,
    )
    .and_then(|a| Role::parse(&a.role));
    let sole_owner = before == Some(Role::Owner)
        && room_accesses::Entity::find()
            .filter(room_accesses::Column::RoomId.eq(room.id))
            .filter(room_accesses::Column::Role.eq(Role::Owner.as_str()))
            .count(&txn)
            .await?
            <= 1;
    let change = match decide(before, sole_owner) {
        Ok(change) => change,
        Err(e) => return Ok(Changed::Refused(e)),
    };
    match change {
        AccessChange::Insert(role) => {
            grant(&txn, room.id, &room.client_id, room.created_at, user, role).await?;
        }
        AccessChange::Update(role) => {
            room_accesses::Entity::update_many()
                .col_expr(room_accesses::Column::Role, Expr::value(role.as_str()))
                .filter(room_accesses::Column::RoomId.eq(room.id))
                .filter(room_accesses::Column::UserId.eq(user))
                .exec(&txn)
                .await?;
        }
        AccessChange::Delete => {
            room_accesses::Entity::delete_many()
                .filter(room_accesses::Column::RoomId.eq(room.id))
                .filter(room_accesses::Column::UserId.eq(user))
                .exec(&txn)
                .await?;
            room_counts::Entity::update_many()
                .col_expr(
                    room_counts::Column::Rooms,
                    Expr::col(room_counts::Column::Rooms).sub(1),
                )
                .filter(room_counts::Column::UserId.eq(user))
                .filter(room_counts::Column::ClientId.eq(&room.client_id))
                .exec(&txn)
                .await?;
        }
        AccessChange::Keep => {}
    }
    txn.commit().await?;
    Ok(Changed::Applied(before, change))
}

pub async fn update(
    db: &impl ConnectionTrait,
    id: Uuid,
    access_level: Option<&str>,
    configuration: Option<&str>,
) -> Result<(), DbErr> {
    let mut q = rooms::Entity::update_many().filter(rooms::Column::Id.eq(id));
    if let Some(a) = access_level {
        q = q.col_expr(rooms::Column::AccessLevel, Expr::value(a.to_owned()));
    }
    if let Some(c) = configuration {
        q = q.col_expr(rooms::Column::Configuration, Expr::value(c.to_owned()));
    }
    q.exec(db).await?;
    Ok(())
}

/// Who may see a room: (user_id, client_id) of each access row.
pub async fn viewers_of(
    db: &impl ConnectionTrait,
    room_id: Uuid,
) -> Result<Vec<(String, String)>, DbErr> {
    Ok(room_accesses::Entity::find()
        .filter(room_accesses::Column::RoomId.eq(room_id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.user_id, a.client_id))
        .collect())
}

/// Deletes the room; whether this call deleted it (of concurrent deletes, one does; the
/// others find nothing and change nothing), and who could see it: (user_id, client_id) of
/// each access row this call deleted.
pub async fn delete(
    db: &sea_orm::DatabaseConnection,
    id: Uuid,
) -> Result<(bool, Vec<(String, String)>), DbErr> {
    let txn = db.begin().await?;
    // Every viewer whose access row this transaction deleted counts one room fewer. Counted
    // from the rows deleted, not from a read before: two concurrent deletes of one room would
    // both have read the viewers and decremented twice.
    let viewers = room_accesses::Entity::delete_many()
        .filter(room_accesses::Column::RoomId.eq(id))
        .exec_with_returning(&txn)
        .await?;
    for v in &viewers {
        room_counts::Entity::update_many()
            .col_expr(
                room_counts::Column::Rooms,
                Expr::col(room_counts::Column::Rooms).sub(1),
            )
            .filter(room_counts::Column::UserId.eq(&v.user_id))
            .filter(room_counts::Column::ClientId.eq(&v.client_id))
            .exec(&txn)
            .await?;
    }
    let deleted = rooms::Entity::delete_by_id(id)
        .exec(&txn)
        .await?
        .rows_affected
        > 0;
    txn.commit().await?;
    Ok((
        deleted,
        viewers
            .into_iter()
            .map(|v| (v.user_id, v.client_id))
            .collect(),
    ))
}

/// SQLite: the last sequence number of the `room_changes` log (0 when empty).
pub async fn change_log_end(db: &Db) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT COALESCE(MAX(seq), 0) AS seq FROM room_changes",
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "seq"),
        None => Ok(0),
    }
}

/// SQLite: up to `limit` rows of the `room_changes` log after `after`, in order: (seq,
/// user_id, client_id). A range of the primary key.
pub async fn change_log_after(
    db: &Db,
    after: i64,
    limit: u64,
) -> Result<Vec<(i64, String, String)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT seq, user_id, client_id FROM room_changes WHERE seq > ? ORDER BY seq LIMIT ?",
            [Value::from(after), Value::from(limit)],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok((
                row.try_get("", "seq")?,
                row.try_get("", "user_id")?,
                row.try_get("", "client_id")?,
            ))
        })
        .collect()
}

/// SQLite: forgets the `room_changes` rows up to `upto`.
pub async fn prune_change_log(db: &Db, upto: i64) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "DELETE FROM room_changes WHERE seq <= ?",
        [Value::from(upto)],
    ))
    .await?;
    Ok(())
}
