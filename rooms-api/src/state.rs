//! What every request handler shares.

use std::sync::Arc;

use crate::rooms::store::Db;
use shared::Clock;

use crate::auth::verifier::Authenticator;
use crate::config::Config;

#[derive(Debug)]
pub struct AppState {
    pub db: Db,
    /// Reads of rooms and list pages, per viewer (`rooms::cache`).
    pub cache: crate::rooms::cache::RoomCache,
    /// What keeps `cache` fresh; its tasks end with the state.
    pub watch: crate::rooms::changes::ChangeWatch,
    /// Room writes queue here on SQLite (see `WriteGate`).
    pub writes: server_kit::db::WriteGate,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub auth: Authenticator,
    /// Where users are resolved by e-mail to share rooms (the auth-server).
    pub directory: crate::directory::AuthServerDirectory,
    pub metrics: Arc<crate::metrics::RoomsMetrics>,
}
