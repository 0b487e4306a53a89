//! Types the auth-server and the rooms API must agree on.
//!
//! Everything here is pure: no I/O, no HTTP framework, no database. Values are parsed once at
//! the edge into these types (private fields, validated constructors) so that no raw string
//! travels further than a handler.

pub mod alg;
pub mod basic_auth;
pub mod claims;
pub mod client_id;
pub mod clock;
pub mod domain;
pub mod email;
pub mod error;
pub mod grant;
pub mod scope;
#[cfg(feature = "server")]
pub mod server;
pub mod token;

pub use alg::SigningAlg;
pub use claims::{AccessTokenClaims, Actor, Audience, ClaimError, Expectations, ScopeClaim};
pub use client_id::ClientId;
pub use clock::{Clock, ManualClock, SystemClock};
pub use domain::{Domain, DomainError, DomainPattern};
pub use email::{Email, EmailError};
pub use error::{ErrorBody, ErrorCode};
pub use grant::GrantType;
pub use scope::{Scope, ScopeSet};
