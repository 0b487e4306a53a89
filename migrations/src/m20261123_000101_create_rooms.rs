use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    pk_uuid, string_len, string_len_uniq, text, timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Rooms {
    Table,
    Id,
    Slug,
    Name,
    AccessLevel,
    Configuration,
    PinCode,
    ClientId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rooms::Table)
                    .if_not_exists()
                    .col(pk_uuid(Rooms::Id))
                    .col(string_len_uniq(Rooms::Slug, 32))
                    .col(string_len(Rooms::Name, 255))
                    .col(string_len(Rooms::AccessLevel, 16))
                    .col(text(Rooms::Configuration))
                    .col(string_len_uniq(Rooms::PinCode, 32))
                    // The application the room was created through: rooms are visible only via it.
                    .col(string_len(Rooms::ClientId, 40))
                    .col(timestamp_with_time_zone(Rooms::CreatedAt))
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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Rooms::Table).to_owned())
            .await
    }
}
