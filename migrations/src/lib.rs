//! Schema migrations, run at startup by each service (and by their `migrate` subcommands).
//!
//! Two migrators, because the services own separate databases: the rooms API's role may not
//! even be able to read the auth tables. Every step is written with sea-query so it runs
//! unchanged on SQLite and PostgreSQL, except the change-signal triggers, which sea-query can't
//! write (one SQL text per backend).

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::{MigrationTrait, async_trait};

mod m20261123_000001_create_applications;
mod m20261123_000002_create_users;
mod m20261123_000003_create_signing_keys;
mod m20261123_000004_create_revoked_tokens;
mod m20261123_000101_create_rooms;
mod m20261123_000102_create_room_accesses;
mod m20261201_000005_retire_signing_keys;
mod m20261202_000006_feed_indexes;
mod m20261202_000007_admin_api;
mod m20261202_000103_room_list_index;
mod m20261203_000008_failure_counters;
mod m20261204_000009_client_keys;
mod m20261206_000010_change_signals;
mod m20261207_000011_dpop;
mod m20261207_000104_dpop_proof_jtis;
mod m20261208_000105_room_change_signals;

/// The auth-server's tables: applications, users, signing keys, revoked tokens, admin keys,
/// audit events, shared failure counters, client keys, the assertion replay cache, and the
/// change signals of the row cache, DPoP (the per-application setting and the proof replay
/// table).
pub struct AuthMigrator;

#[async_trait::async_trait]
impl MigratorTrait for AuthMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_applications::Migration),
            Box::new(m20261123_000002_create_users::Migration),
            Box::new(m20261123_000003_create_signing_keys::Migration),
            Box::new(m20261123_000004_create_revoked_tokens::Migration),
            Box::new(m20261201_000005_retire_signing_keys::Migration),
            Box::new(m20261202_000006_feed_indexes::Migration),
            Box::new(m20261202_000007_admin_api::Migration),
            Box::new(m20261203_000008_failure_counters::Migration),
            Box::new(m20261204_000009_client_keys::Migration),
            Box::new(m20261206_000010_change_signals::Migration),
            Box::new(m20261207_000011_dpop::Migration),
        ]
    }
}

/// The rooms API's tables: rooms and who may see them, the DPoP proof replay table, and the
/// change signals of the room cache.
pub struct RoomsMigrator;

#[async_trait::async_trait]
impl MigratorTrait for RoomsMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000101_create_rooms::Migration),
            Box::new(m20261123_000102_create_room_accesses::Migration),
            Box::new(m20261202_000103_room_list_index::Migration),
            Box::new(m20261207_000104_dpop_proof_jtis::Migration),
            Box::new(m20261208_000105_room_change_signals::Migration),
        ]
    }
}
