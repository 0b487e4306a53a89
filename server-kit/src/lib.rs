//! The server kit: the HTTP, telemetry and database plumbing both services run, so neither
//! writes it twice. Nothing here is contract: what the services must agree on is in `shared`.

pub mod db;
pub mod digest;
pub mod docs;
pub mod dpop_keys;
pub mod health;
pub mod http;
pub mod in_flight;
pub mod listen;
pub mod metrics;
pub mod random;
pub mod replay;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod source;
pub mod strict_json;
pub mod telemetry;
/// Test databases and fault helpers for the services' black-box tests; compiled only with the
/// `testing` feature, which only their dev-dependencies turn on, so release binaries lack it.
#[cfg(feature = "testing")]
pub mod testing;
pub mod timeouts;
pub mod traces;
pub mod verified_tokens;
