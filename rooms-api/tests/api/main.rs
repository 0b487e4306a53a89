#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Black-box tests of the rooms API: the real server on port 0 over a fresh database (SQLite, or
//! PostgreSQL when TEST_DATABASE_URL is set), trusting a test issuer's JWKS over HTTP
//! (`helpers.rs`). What needs the real auth-server too is tested in `e2e/`.

mod bearer;
mod binaries;
mod creation;
mod db_faults;
mod docs;
mod helpers;
mod input;
mod logs;
mod migrations;
mod requests;
mod room_cache;
mod rooms;
mod stack_script;
mod traces;
