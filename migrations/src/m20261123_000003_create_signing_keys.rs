use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer_uniq, string_len, string_len_uniq, text, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Generation,
    Alg,
    PrivateKeyEncrypted,
    PublicJwk,
    CreatedAt,
    ActivatesAt,
    SupersededAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .if_not_exists()
                    .col(string_len_uniq(SigningKeys::Kid, 64).primary_key())
                    // Unique and dense: two processes creating "the next key" at once collide
                    // here and exactly one wins, which makes the first key race-safe.
                    .col(big_integer_uniq(SigningKeys::Generation))
                    .col(string_len(SigningKeys::Alg, 16))
                    .col(text(SigningKeys::PrivateKeyEncrypted))
                    .col(text(SigningKeys::PublicJwk))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone(SigningKeys::ActivatesAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::SupersededAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}
