//! What every request handler shares.

use std::sync::Arc;

use crate::rooms::store::Db;
use shared::Clock;

use crate::auth::verifier::Authenticator;
use crate::config::Config;

#[derive(Debug)]
pub struct AppState {
    pub db: Db,
    /// Room writes queue here on SQLite (see `WriteGate`).
    pub writes: server_kit::db::WriteGate,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub auth: Authenticator,
    pub metrics: Arc<crate::metrics::RoomsMetrics>,
}
