//! rooms-api: verifies delegated access tokens and serves the delegated user's rooms.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod directory;
pub mod error;
pub mod metrics;
pub mod principal;
pub mod rooms;
pub mod startup;
pub mod state;
