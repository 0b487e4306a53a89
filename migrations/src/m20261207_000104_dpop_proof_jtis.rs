//! The rooms API's replay table of DPoP proofs (RFC 9449 §11.1): each proof's `jti`, per key
//! thumbprint, until its `iat` window ends, so every replica refuses a proof another one
//! accepted. The same table as the auth-server's (`m20261207_000011_dpop`).

use sea_orm_migration::prelude::*;

use crate::m20261207_000011_dpop::{create_proof_jtis, drop_proof_jtis};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_proof_jtis(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_proof_jtis(manager).await
    }
}
