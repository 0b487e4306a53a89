//! Integrators without shared secrets (docs/spec/auth-server.md §1a):
//!
//! - `applications.token_endpoint_auth_method`: `client_secret` (Basic or post, every
//!   application so far) or `private_key_jwt`.
//! - `applications.jwks` / `applications.jwks_uri`: the application's public keys, inline or
//!   fetched; at most one is set. An application registered without a secret has an empty
//!   `secret_hash` (the column stays NOT NULL: SQLite can't relax a constraint in place).
//! - `client_assertion_jtis`: the `jti` of every assertion accepted, until it expires, so a
//!   replay is refused on every replica; `expires_at` is indexed for the sweep. Rows are written
//!   only after a signature checked out, so an outsider can't grow the table.
//!
//! SQLite alters one column per statement, so each column is its own `ALTER TABLE`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, text_null, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Applications {
    Table,
    TokenEndpointAuthMethod,
    Jwks,
    JwksUri,
}

#[derive(DeriveIden)]
enum ClientAssertionJtis {
    Table,
    ClientId,
    Jti,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            string_len(Applications::TokenEndpointAuthMethod, 32)
                .default("client_secret")
                .to_owned(),
            text_null(Applications::Jwks),
            text_null(Applications::JwksUri),
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
            .create_table(
                Table::create()
                    .table(ClientAssertionJtis::Table)
                    .if_not_exists()
                    .col(string_len(ClientAssertionJtis::ClientId, 64))
                    .col(string_len(ClientAssertionJtis::Jti, 255))
                    .col(timestamp_with_time_zone(ClientAssertionJtis::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(ClientAssertionJtis::ClientId)
                            .col(ClientAssertionJtis::Jti),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_client_assertion_jtis_expires_at")
                    .table(ClientAssertionJtis::Table)
                    .col(ClientAssertionJtis::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ClientAssertionJtis::Table).to_owned())
            .await?;
        for column in [
            Applications::TokenEndpointAuthMethod,
            Applications::Jwks,
            Applications::JwksUri,
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
