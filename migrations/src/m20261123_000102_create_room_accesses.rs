use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, uuid};

use super::m20261123_000101_create_rooms::Rooms;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RoomAccesses {
    Table,
    RoomId,
    UserId,
    Role,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RoomAccesses::Table)
                    .if_not_exists()
                    .col(uuid(RoomAccesses::RoomId))
                    // The token's `sub`: users live in the auth database, so no foreign key.
                    .col(string_len(RoomAccesses::UserId, 255))
                    .col(string_len(RoomAccesses::Role, 16))
                    .primary_key(
                        Index::create()
                            .col(RoomAccesses::RoomId)
                            .col(RoomAccesses::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_accesses_room")
                            .from(RoomAccesses::Table, RoomAccesses::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomAccesses::Table).to_owned())
            .await
    }
}
