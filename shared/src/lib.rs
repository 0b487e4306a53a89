//! The contract: what the auth-server and the rooms API must agree on (identifiers, e-mails,
//! domains and allowlists, scopes, claims and the JWS rules, error codes, the revocation feed,
//! user resolution).
//!
//! No I/O, no HTTP framework, no database: the server plumbing is the `server-kit` crate. The
//! `openapi` feature only derives schemas on the wire types. Values are parsed once at the edge
//! into these types (private fields, validated constructors) so that no raw string travels
//! further than a handler.

pub mod alg;
pub mod allowlist;
pub mod basic_auth;
pub mod claims;
pub mod client_id;
pub mod clock;
pub mod domain;
pub mod dpop;
pub mod email;
pub mod error;
pub mod feed;
pub mod grant;
pub mod scope;
pub mod token;
pub mod users;

pub use alg::SigningAlg;
pub use allowlist::Allowlist;
pub use claims::{AccessTokenClaims, Actor, Audience, ClaimError, Expectations, ScopeClaim};
pub use client_id::ClientId;
pub use clock::{Clock, ManualClock, SystemClock};
pub use domain::{Domain, DomainError, DomainPattern};
pub use email::{Email, EmailError};
pub use error::{ErrorBody, ErrorCode};
pub use grant::GrantType;
pub use scope::{Scope, ScopeSet};
