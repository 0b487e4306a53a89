//! The revocation feed's wire types (docs/spec/auth-server.md §6): the auth-server writes them,
//! every locally-verifying rooms API reads them. One definition, so the two can't drift.

use serde::{Deserialize, Serialize};

/// A revoked token, kept in the feed until `exp` plus the largest leeway has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct RevokedEntry {
    pub jti: String,
    pub exp: i64,
}

/// Tokens of this client issued before `not_before` (Unix seconds) are dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct ClientNotBefore {
    pub client_id: String,
    pub not_before: i64,
}

/// Tokens for this user issued before `not_before` (Unix seconds) are dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct UserNotBefore {
    pub user_id: String,
    pub not_before: i64,
}

/// One answer of `GET /oauth/revocations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct Feed {
    /// Opaque; send it back as `?cursor=` to get only what changed since.
    pub cursor: String,
    /// True on the first page of a full snapshot: replace what you hold (once its last page
    /// has come). False: merge.
    pub complete: bool,
    /// More pages of this snapshot or delta follow: ask again at once with `cursor`.
    #[serde(default)]
    pub more: bool,
    pub revoked: Vec<RevokedEntry>,
    pub clients_not_before: Vec<ClientNotBefore>,
    pub users_not_before: Vec<UserNotBefore>,
    /// Every signing key's `kid` in the key table, pending ones included: a local verifier
    /// that meets one of these and lacks it refetches the JWKS at once, past its refetch rate
    /// limit (a `keys rotate --now` key is announced before it signs).
    #[serde(default)]
    pub kids: Vec<String>,
    /// Retired keys (`keys retire`): refuse every token signed by one, whatever its `exp`.
    #[serde(default)]
    pub retired_kids: Vec<String>,
}
