//! The admin API and the secret lifecycle (docs/spec/admin-api.md):
//!
//! - `applications`: a second secret valid until a grace ends (rotation with overlap), an
//!   optional per-application token lifetime, and when the application last obtained a token;
//!   `(deleted_at, created_at, id)` for the admin list's cursor and the tombstone purge.
//! - `users.deleted_at`: a deleted user is a tombstone (inactive, its e-mail replaced) so local
//!   verifiers still learn from the feed that its tokens died.
//! - `admin_keys`: the admin API's bearer keys, stored as SHA-256 digests.
//! - `audit_events`: every administrative change, append-only, read along `(at, id)`,
//!   `(resource, at, id)` or `(resource_id, at, id)`.
//!
//! SQLite alters one column per statement, so each column is its own `ALTER TABLE`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    integer_null, pk_uuid, string_len, string_len_uniq, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
    CreatedAt,
    DeletedAt,
    PreviousSecretHash,
    PreviousSecretExpiresAt,
    TokenTtlSeconds,
    LastTokenAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum AdminKeys {
    Table,
    Id,
    KeyId,
    Name,
    SecretDigest,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Actor,
    Action,
    Resource,
    ResourceId,
    Changes,
}

/// (name, table, columns): the order each admin list and the tombstone purge read in.
fn indexes() -> Vec<(&'static str, DynIden, Vec<DynIden>)> {
    vec![
        // Live applications in the admin list's order (`deleted_at IS NULL` is its
        // equality prefix), and the tombstone purge's range (`deleted_at < ?`).
        (
            "idx_applications_deleted_created",
            Applications::Table.into_iden(),
            vec![
                Applications::DeletedAt.into_iden(),
                Applications::CreatedAt.into_iden(),
                Applications::Id.into_iden(),
            ],
        ),
        (
            "idx_users_created",
            Users::Table.into_iden(),
            vec![Users::CreatedAt.into_iden(), Users::Id.into_iden()],
        ),
        (
            "idx_audit_events_at",
            AuditEvents::Table.into_iden(),
            vec![AuditEvents::At.into_iden(), AuditEvents::Id.into_iden()],
        ),
        (
            "idx_audit_events_resource_at",
            AuditEvents::Table.into_iden(),
            vec![
                AuditEvents::Resource.into_iden(),
                AuditEvents::At.into_iden(),
                AuditEvents::Id.into_iden(),
            ],
        ),
        // One resource's history (`resource_id`, with or without `resource`).
        (
            "idx_audit_events_resource_id_at",
            AuditEvents::Table.into_iden(),
            vec![
                AuditEvents::ResourceId.into_iden(),
                AuditEvents::At.into_iden(),
                AuditEvents::Id.into_iden(),
            ],
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            text_null(Applications::PreviousSecretHash),
            timestamp_with_time_zone_null(Applications::PreviousSecretExpiresAt),
            integer_null(Applications::TokenTtlSeconds),
            timestamp_with_time_zone_null(Applications::LastTokenAt),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Applications::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Users::DeletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AdminKeys::Table)
                    .if_not_exists()
                    .col(pk_uuid(AdminKeys::Id))
                    // The public half of a key (`adm_<key_id>_<secret>`): what a call is looked up by.
                    .col(string_len_uniq(AdminKeys::KeyId, 32))
                    .col(string_len(AdminKeys::Name, 64))
                    .col(string_len(AdminKeys::SecretDigest, 64))
                    .col(timestamp_with_time_zone(AdminKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(AdminKeys::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(pk_uuid(AuditEvents::Id))
                    .col(timestamp_with_time_zone(AuditEvents::At))
                    .col(string_len(AuditEvents::Actor, 64))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(string_len(AuditEvents::Resource, 32))
                    .col(string_len(AuditEvents::ResourceId, 64))
                    .col(text(AuditEvents::Changes))
                    .to_owned(),
            )
            .await?;
        for (name, table, columns) in indexes() {
            let mut index = Index::create();
            index.name(name).table(table);
            for c in columns {
                index.col(c);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AdminKeys::Table).to_owned())
            .await?;
        for name in ["idx_applications_deleted_created", "idx_users_created"] {
            manager
                .drop_index(Index::drop().name(name).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::DeletedAt)
                    .to_owned(),
            )
            .await?;
        for column in [
            Applications::PreviousSecretHash,
            Applications::PreviousSecretExpiresAt,
            Applications::TokenTtlSeconds,
            Applications::LastTokenAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Applications::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
