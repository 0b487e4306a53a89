//! DPoP (RFC 9449) on the auth-server:
//! - `applications.dpop_bound_access_tokens`: the application must send a DPoP proof with every
//!   token request (RFC 9449 §5.2's client metadata name); false for every existing one.
//! - `dpop_proof_jtis`: the `jti` of every proof accepted, per key thumbprint, until its `iat`
//!   window ends, so a replay is refused on every replica. Rows are written only after the
//!   proof's signature and the client's authentication checked out. The rooms API keeps the
//!   same table in its own database (`m20261207_000104_dpop_proof_jtis`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{boolean, string_len, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Applications {
    Table,
    DpopBoundAccessTokens,
}

#[derive(DeriveIden)]
enum DpopProofJtis {
    Table,
    Jkt,
    Jti,
    ExpiresAt,
}

/// The replay table of DPoP proofs, in whichever database `manager` is.
pub(crate) async fn create_proof_jtis(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(DpopProofJtis::Table)
                .if_not_exists()
                // An RFC 7638 SHA-256 thumbprint is 43 characters.
                .col(string_len(DpopProofJtis::Jkt, 64))
                .col(string_len(DpopProofJtis::Jti, 255))
                .col(timestamp_with_time_zone(DpopProofJtis::ExpiresAt))
                .primary_key(
                    Index::create()
                        .col(DpopProofJtis::Jkt)
                        .col(DpopProofJtis::Jti),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_dpop_proof_jtis_expires_at")
                .table(DpopProofJtis::Table)
                .col(DpopProofJtis::ExpiresAt)
                .to_owned(),
        )
        .await
}

pub(crate) async fn drop_proof_jtis(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(DpopProofJtis::Table).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Applications::Table)
                    .add_column(
                        boolean(Applications::DpopBoundAccessTokens)
                            .default(false)
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        create_proof_jtis(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_proof_jtis(manager).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Applications::Table)
                    .drop_column(Applications::DpopBoundAccessTokens)
                    .to_owned(),
            )
            .await
    }
}
