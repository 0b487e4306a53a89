//! The HTTP, telemetry and database glue both services run, so neither writes it twice.
//! Only compiled with the `server` feature; the rest of this crate stays free of I/O.

pub mod db;
pub mod health;
pub mod http;
pub mod metrics;
pub mod random;
pub mod secrets;
pub mod settings;
pub mod strict_json;
pub mod telemetry;
pub mod testing;
pub mod timeouts;
pub mod verified_tokens;
