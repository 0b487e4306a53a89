//! Who is calling: the `Authorization` header (`bearer`), the keys (`jwks`), and the checks of
//! docs/spec/rooms-api.md §1 (`verifier`). The result is a `Principal`; nothing else about the caller is
//! known to the rooms API.

pub mod bearer;
pub mod introspection;
pub mod jwks;
pub mod revocations;
pub mod verifier;

use shared::ScopeSet;

/// A verified caller: the delegated user, through an application, with its scopes.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub client_id: String,
    pub scopes: ScopeSet,
    /// The verification mode, for audit events.
    pub mode: &'static str,
}
