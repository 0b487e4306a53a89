use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, pk_uuid, string_len, string_len_uniq, text, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Applications {
    Table,
    Id,
    ClientId,
    Name,
    SecretHash,
    Scopes,
    Domains,
    IsActive,
    TokensNotBefore,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Applications::Table)
                    .if_not_exists()
                    .col(pk_uuid(Applications::Id))
                    .col(string_len_uniq(Applications::ClientId, 40))
                    .col(string_len(Applications::Name, 255))
                    .col(text(Applications::SecretHash))
                    // Space-separated canonical lists: one row read gives everything the token
                    // endpoint needs, and arrays are not portable between the two databases.
                    .col(text(Applications::Scopes))
                    .col(text(Applications::Domains))
                    .col(boolean(Applications::IsActive))
                    .col(timestamp_with_time_zone_null(Applications::TokensNotBefore))
                    .col(timestamp_with_time_zone_null(Applications::DeletedAt))
                    .col(timestamp_with_time_zone(Applications::CreatedAt))
                    .col(timestamp_with_time_zone(Applications::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Applications::Table).to_owned())
            .await
    }
}
