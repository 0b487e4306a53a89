use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, pk_uuid, string_len, string_len_null, string_len_uniq, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    ExternalSub,
    Email,
    EmailNormalized,
    IsActive,
    TokensNotBefore,
    CreatedByClientId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(pk_uuid(Users::Id))
                    .col(string_len_null(Users::ExternalSub, 255).unique_key())
                    .col(string_len(Users::Email, 254))
                    // Normalised in Rust by `shared::Email`, never by SQL lower(): SQLite and
                    // PostgreSQL fold case differently.
                    .col(string_len_uniq(Users::EmailNormalized, 254))
                    .col(boolean(Users::IsActive))
                    .col(timestamp_with_time_zone_null(Users::TokensNotBefore))
                    .col(string_len_null(Users::CreatedByClientId, 40))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}
