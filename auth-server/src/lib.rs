//! auth-server: issues delegated access tokens to registered applications.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod model;
pub mod startup;
pub mod state;
pub mod store;
