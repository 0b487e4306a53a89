//! The admin API (docs/spec/admin-api.md), served on its own private listener
//! (`AUTH_ADMIN_LISTEN`). Every operation authenticates an admin key first, then calls the same
//! domain function the CLI calls, as that key's actor in the audit trail.

pub mod admin_keys;
pub mod applications;
pub mod audit;
pub mod signing_keys;
pub mod users;

use std::sync::Arc;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::{OpenApiService, SecurityScheme, Tags};
use secrecy::SecretString;

use crate::domain::admin_keys as domain;
use crate::domain::audit::Actor;
use crate::error::problem::AdminError;
use crate::state::AppState;

#[derive(Tags)]
pub enum AdminTag {
    /// Applications (OAuth clients) and their secrets.
    Applications,
    /// The people applications act for.
    Users,
    /// The keys tokens are signed with.
    SigningKeys,
    /// The keys of this API.
    AdminKeys,
    /// Every administrative change, made here or by the CLI.
    Audit,
}

/// An admin key, `adm_<key_id>_<secret>`, created with `auth-server admin-key create`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "adm_<key_id>_<secret>")]
pub struct AdminKey(Bearer);

/// Authenticates the call's admin key: the actor its changes are recorded under.
pub async fn authenticate(
    state: &Arc<AppState>,
    key: &AdminKey,
    req: &Request,
) -> Result<Actor, AdminError> {
    let source = super::client::source_address(state, req);
    let presented = SecretString::from(key.0.token.clone());
    let key = domain::authenticate(
        &state.db,
        &state.admin_limits,
        &presented,
        source,
        state.clock.now(),
    )
    .await?;
    Ok(Actor::AdminKey(key.name))
}

pub type AdminApis = (
    applications::ApplicationsApi,
    users::UsersApi,
    signing_keys::SigningKeysApi,
    admin_keys::AdminKeysApi,
    audit::AuditApi,
);

/// The admin API's OpenAPI service (no database needed to render it).
pub fn service() -> OpenApiService<AdminApis, ()> {
    OpenApiService::new(
        (
            applications::ApplicationsApi,
            users::UsersApi,
            signing_keys::SigningKeysApi,
            admin_keys::AdminKeysApi,
            audit::AuditApi,
        ),
        "auth-server admin API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Administration of the auth-server over HTTP: applications and their secrets, users, \
         signing keys, admin keys and the audit trail. Served on the private AUTH_ADMIN_LISTEN \
         listener; every call carries an admin key (`auth-server admin-key create --name NAME`) \
         as a bearer token. Errors are RFC 9457 problem details.",
    )
}
