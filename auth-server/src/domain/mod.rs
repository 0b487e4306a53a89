//! The auth-server's rules, as plain functions and types over the store; no HTTP here.

pub mod allowlist;
pub mod client_auth;
pub mod client_secret;
pub mod failure_limits;
pub mod grant;
pub mod introspection;
pub mod key_encryption;
pub mod registration;
pub mod revocation;
pub mod secret_cache;
pub mod signing;
pub mod source;
