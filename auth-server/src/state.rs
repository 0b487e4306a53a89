//! What every request handler shares.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use shared::Clock;
use shared::server::verified_tokens::VerifiedTokens;

use crate::config::Config;
use crate::domain::client_secret::SecretVerifier;
use crate::domain::failure_limits::FailureLimits;
use crate::domain::secret_cache::SecretCache;
use crate::domain::signing::KeyRing;

#[derive(Debug)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    pub secrets: SecretVerifier,
    pub secret_cache: SecretCache,
    /// Our own tokens whose signature checked out (introspection, revocation).
    pub verified_tokens: VerifiedTokens,
    pub failure_limits: FailureLimits,
    pub metrics: crate::metrics::AuthMetrics,
}
