//! The only sea-orm code of the rooms API (with `entity.rs` and the connection opened at startup). Every read is scoped to (user, application): a room
//! outside that scope is indistinguishable from one that does not exist.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, JoinType, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, TransactionTrait,
};
use server_kit::db::at_most_one;
use uuid::Uuid;

use super::entity::{room_accesses, rooms};

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

fn visible(viewer: Viewer<'_>) -> sea_orm::Select<rooms::Entity> {
    rooms::Entity::find()
        .join(JoinType::InnerJoin, rooms::Relation::Accesses.def())
        .filter(room_accesses::Column::UserId.eq(viewer.user_id))
        .filter(rooms::Column::ClientId.eq(viewer.client_id))
}

pub async fn count(db: &impl ConnectionTrait, viewer: Viewer<'_>) -> Result<u64, DbErr> {
    visible(viewer).count(db).await
}

/// Newest first, then by id, so pages are stable.
pub async fn page(
    db: &impl ConnectionTrait,
    viewer: Viewer<'_>,
    offset: u64,
    limit: u64,
) -> Result<Vec<RoomRow>, DbErr> {
    visible(viewer)
        .order_by_desc(rooms::Column::CreatedAt)
        .order_by_desc(rooms::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await
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

/// Inserts the room and its owner row in one transaction: a failure leaves neither.
pub async fn insert_with_owner(
    db: &sea_orm::DatabaseConnection,
    row: RoomRow,
    owner: &str,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let room_id = row.id;
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
    room_accesses::Entity::insert(room_accesses::ActiveModel {
        room_id: Set(room_id),
        user_id: Set(owner.to_owned()),
        role: Set(Role::Owner.as_str().to_owned()),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await
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

pub async fn delete(db: &sea_orm::DatabaseConnection, id: Uuid) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    room_accesses::Entity::delete_many()
        .filter(room_accesses::Column::RoomId.eq(id))
        .exec(&txn)
        .await?;
    rooms::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await
}
