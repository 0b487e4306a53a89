#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Black-box tests: each spawns the real auth-server on port 0 over a fresh database (SQLite,
//! or PostgreSQL when TEST_DATABASE_URL is set) and talks HTTP to it.

mod admin;
mod cli;
mod config;
mod db_faults;
mod docs;
mod dpop;
mod erasure;
mod helpers;
mod introspect;
mod keys;
mod metadata;
mod private_key_jwt;
mod resolve_user;
mod revoke;
mod row_cache;
mod security;
mod shutdown;
mod timeouts;
mod token;
mod token_claims;
mod users;
