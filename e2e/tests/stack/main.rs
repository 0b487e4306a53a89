#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! End-to-end tests: the real auth-server and rooms API in one process, each on port 0 over a
//! fresh database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), sharing one test clock.
//! What needs both at once lives here: the rooms API reading the auth-server's JWKS through a key
//! rotation, the revocation feed, introspection mode, both services' metrics and query plans.
//! Each service's own behaviour is tested in its own `tests/` folder.

mod dpop;
mod forged;
mod grant_access;
mod helpers;
mod in_flight;
mod introspection_mode;
mod metrics;
mod query_plans;
mod revocation;
mod verified_cache;
// The rooms API's request helpers, one copy for both harnesses.
#[allow(dead_code)]
#[path = "../../../rooms-api/tests/api/requests.rs"]
mod requests;
