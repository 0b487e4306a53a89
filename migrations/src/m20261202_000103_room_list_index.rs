//! Room lists cost O(page), not O(rooms): `room_accesses` carries its room's `client_id` and
//! `created_at`, so one index — (user_id, client_id, created_at, room_id) — yields a viewer's
//! rooms already in list order, and `room_counts` holds each viewer's count.
//!
//! Before this, a list joined every access row of the user to `rooms` and sorted them (or
//! walked all of an application's rooms through `idx_rooms_client_created` to find one user's):
//! 400 ms for a user with 110k rooms. The old indexes are dropped: the new one's prefix serves
//! every lookup they did, and nothing reads rooms by (client_id, created_at) any more.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len};

use crate::m20261123_000101_create_rooms::Rooms;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RoomAccesses {
    Table,
    RoomId,
    UserId,
    ClientId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RoomCounts {
    Table,
    UserId,
    ClientId,
    Rooms,
}

const LIST_INDEX: &str = "idx_room_accesses_list";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Added with defaults (SQLite adds a NOT NULL column only with one), then filled in.
        manager
            .alter_table(
                Table::alter()
                    .table(RoomAccesses::Table)
                    .add_column(
                        ColumnDef::new(RoomAccesses::ClientId)
                            .string_len(40)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RoomAccesses::Table)
                    .add_column(
                        ColumnDef::new(RoomAccesses::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default("1970-01-01 00:00:00+00:00"),
                    )
                    .to_owned(),
            )
            .await?;
        for (to, from) in [
            (RoomAccesses::ClientId, Rooms::ClientId),
            (RoomAccesses::CreatedAt, Rooms::CreatedAt),
        ] {
            let value = Query::select()
                .column((Rooms::Table, from))
                .from(Rooms::Table)
                .and_where(
                    Expr::col((Rooms::Table, Rooms::Id))
                        .equals((RoomAccesses::Table, RoomAccesses::RoomId)),
                )
                .to_owned();
            manager
                .exec_stmt(
                    Query::update()
                        .table(RoomAccesses::Table)
                        .value(to, SimpleExpr::SubQuery(None, Box::new(value.into())))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(LIST_INDEX)
                    .table(RoomAccesses::Table)
                    .col(RoomAccesses::UserId)
                    .col(RoomAccesses::ClientId)
                    .col(RoomAccesses::CreatedAt)
                    .col(RoomAccesses::RoomId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_room_accesses_user")
                    .table(RoomAccesses::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_rooms_client_created")
                    .table(Rooms::Table)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RoomCounts::Table)
                    .if_not_exists()
                    .col(string_len(RoomCounts::UserId, 255))
                    .col(string_len(RoomCounts::ClientId, 40))
                    .col(big_integer(RoomCounts::Rooms))
                    .primary_key(
                        Index::create()
                            .col(RoomCounts::UserId)
                            .col(RoomCounts::ClientId),
                    )
                    .to_owned(),
            )
            .await?;
        let counts = Query::select()
            .column(RoomAccesses::UserId)
            .column(RoomAccesses::ClientId)
            .expr(Expr::col(RoomAccesses::RoomId).count())
            .from(RoomAccesses::Table)
            .group_by_col(RoomAccesses::UserId)
            .group_by_col(RoomAccesses::ClientId)
            .to_owned();
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(RoomCounts::Table)
                    .columns([RoomCounts::UserId, RoomCounts::ClientId, RoomCounts::Rooms])
                    .select_from(counts)
                    .map_err(|e| DbErr::Migration(e.to_string()))?
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomCounts::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(LIST_INDEX)
                    .table(RoomAccesses::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_room_accesses_user")
                    .table(RoomAccesses::Table)
                    .col(RoomAccesses::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rooms_client_created")
                    .table(Rooms::Table)
                    .col(Rooms::ClientId)
                    .col(Rooms::CreatedAt)
                    .to_owned(),
            )
            .await?;
        for column in [RoomAccesses::CreatedAt, RoomAccesses::ClientId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RoomAccesses::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
