//! Who is calling, as far as the rooms API knows: what `auth` proves and `rooms` acts on. Its
//! own module so that neither of the two depends on the other.

use shared::ScopeSet;

/// A verified caller: the delegated user, through an application, with its scopes.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub client_id: String,
    pub scopes: ScopeSet,
    /// The verification mode, for audit events.
    pub mode: &'static str,
    /// The DPoP key thumbprint the token is bound to (`cnf.jkt`), if it is.
    pub jkt: Option<String>,
}
