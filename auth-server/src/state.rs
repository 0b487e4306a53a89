//! What every request handler shares. Handlers hand each domain function the parts it needs;
//! nothing below `api/` sees this struct.

use std::sync::Arc;

use shared::Clock;

use crate::config::Config;
use crate::domain::client_auth::ClientAuthenticator;
use crate::domain::failure_limits::FailureLimits;
use crate::domain::grant::{Exchange, TokenPolicy};
use crate::domain::introspection::OwnTokens;
use crate::domain::signing::KeyRing;
use crate::store::Db;

#[derive(Debug)]
pub struct AppState {
    pub db: Db,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    /// argon2, the verified-secret cache and the failure limits.
    pub clients: ClientAuthenticator,
    /// Our own tokens (introspection, revocation), with their verified-signature cache.
    pub own_tokens: OwnTokens,
    pub policy: TokenPolicy,
    /// Failed admin-key attempts, per source (the admin API's own limits).
    pub admin_limits: FailureLimits,
    pub metrics: crate::metrics::AuthMetrics,
    /// `DPOP_NONCE`: the nonces DPoP proofs must carry, if required.
    pub dpop_nonces: Option<crate::domain::dpop::Nonces>,
}

impl AppState {
    /// The token exchange's dependencies.
    pub fn exchange(&self) -> Exchange<'_> {
        Exchange {
            db: &self.db,
            clients: &self.clients,
            keys: &self.keys,
            policy: &self.policy,
            clock: self.clock.as_ref(),
            nonces: self.dpop_nonces.as_ref(),
        }
    }
}
