#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Black-box tests: the real auth-server and rooms-api, each on port 0 over a fresh database
//! (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), the rooms API reading the
//! auth-server's JWKS over HTTP.

mod bearer;
mod creation;
mod db_faults;
mod docs;
mod forged;
mod helpers;
mod in_flight;
mod input;
mod introspection_mode;
mod logs;
mod metrics;
mod migrations;
mod query_plans;
mod revocation;
mod rooms;
mod stack_script;
