//! Who is calling: the `Authorization` header (`bearer`), the keys (`jwks`), and the checks of
//! docs/spec/rooms-api.md §1 (`verifier`). The result is a `Principal`; nothing else about the caller is
//! known to the rooms API.

pub mod bearer;
pub mod dpop;
pub mod introspection;
pub mod jwks;
pub mod proof_jtis;
pub mod revocations;
pub mod verifier;

use shared::token::TokenRejection;

/// Why a request is not authenticated: the bearer table of docs/spec/rooms-api.md §2.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("Missing access token")]
    Missing,
    #[error("Malformed Authorization header")]
    MalformedHeader,
    #[error("{0}")]
    Invalid(TokenRejection),
    #[error("Token verification is temporarily unavailable")]
    Unavailable,
    /// A DPoP-bound token without its proof, a bad proof, or a bound token sent as Bearer.
    #[error("{0}")]
    Dpop(dpop::DpopFailure),
}
