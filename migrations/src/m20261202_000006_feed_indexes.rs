//! Indexes that make the revocation feed cost O(what it sends): each part of the feed is read
//! in the order of one of these, from a lower bound, a page at a time (docs/spec/auth-server.md,
//! "Revocation feed"). Before them, every poll read every application and user row.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Applications {
    Table,
    ClientId,
    TokensNotBefore,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TokensNotBefore,
}

#[derive(DeriveIden)]
enum RevokedTokens {
    Table,
    Jti,
    Exp,
    RevokedAt,
}

/// (name, table, columns): the order each feed query pages in.
fn indexes() -> Vec<(&'static str, DynIden, Vec<DynIden>)> {
    vec![
        (
            "idx_applications_not_before",
            Applications::Table.into_iden(),
            vec![
                Applications::TokensNotBefore.into_iden(),
                Applications::ClientId.into_iden(),
            ],
        ),
        (
            "idx_users_not_before",
            Users::Table.into_iden(),
            vec![Users::TokensNotBefore.into_iden(), Users::Id.into_iden()],
        ),
        (
            "idx_revoked_tokens_exp",
            RevokedTokens::Table.into_iden(),
            vec![
                RevokedTokens::Exp.into_iden(),
                RevokedTokens::Jti.into_iden(),
            ],
        ),
        (
            "idx_revoked_tokens_revoked_at_jti",
            RevokedTokens::Table.into_iden(),
            vec![
                RevokedTokens::RevokedAt.into_iden(),
                RevokedTokens::Jti.into_iden(),
            ],
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, columns) in indexes() {
            let mut index = Index::create();
            index.name(name).table(table);
            for c in columns {
                index.col(c);
            }
            manager.create_index(index).await?;
        }
        // Superseded by (revoked_at, jti), whose prefix serves every lookup it did.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_revoked_tokens_revoked_at")
                    .table(RevokedTokens::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in indexes() {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_revoked_tokens_revoked_at")
                    .table(RevokedTokens::Table)
                    .col(RevokedTokens::RevokedAt)
                    .to_owned(),
            )
            .await
    }
}
