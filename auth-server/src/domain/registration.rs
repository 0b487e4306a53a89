//! Registering an application: the one place a client_id and secret are minted.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use shared::client_id::CLIENT_ID_LEN;
use shared::server::random;
use shared::{ClientId, ScopeSet};
use uuid::Uuid;

use super::allowlist::Allowlist;
use super::client_secret;
use crate::store::{applications, applications::Application};

/// Creates the application and returns it with its secret — the only time the secret exists
/// outside the caller's hands.
pub async fn register(
    db: &impl ConnectionTrait,
    name: String,
    scopes: ScopeSet,
    domains: Allowlist,
    now: DateTime<Utc>,
) -> anyhow::Result<(Application, SecretString)> {
    let secret = client_secret::generate()?;
    let app = Application {
        id: Uuid::new_v4(),
        client_id: ClientId::parse(&random::base62(CLIENT_ID_LEN)?)?,
        name,
        secret_hash: client_secret::hash(&secret)?,
        scopes,
        domains,
        is_active: true,
        tokens_not_before: None,
        created_at: now,
        updated_at: now,
    };
    applications::insert(db, &app).await?;
    Ok((app, secret))
}
