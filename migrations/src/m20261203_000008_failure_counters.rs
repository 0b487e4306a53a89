//! Failure-limit counters shared by every auth-server replica (docs/spec/security.md "Client
//! authentication"): one row per counted key (a client_id and source pair, a client_id, a
//! source), whose window ends at `expires_at`. Used on PostgreSQL, where several replicas share
//! the database; SQLite (one process) keeps its counters in memory and leaves this table empty.
//! `expires_at` is indexed for the sweep that deletes ended windows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, string_len, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FailureCounters {
    Table,
    Key,
    Count,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FailureCounters::Table)
                    .if_not_exists()
                    .col(string_len(FailureCounters::Key, 400).primary_key())
                    .col(integer(FailureCounters::Count))
                    .col(timestamp_with_time_zone(FailureCounters::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_failure_counters_expires_at")
                    .table(FailureCounters::Table)
                    .col(FailureCounters::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FailureCounters::Table).to_owned())
            .await
    }
}
