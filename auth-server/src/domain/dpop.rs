//! DPoP at the token endpoint (docs/spec/auth-server.md §1b, RFC 9449 §5): a token request may
//! carry a proof of possession of a key pair; the token it gets is then bound to that key
//! (`cnf.jkt`) and useless without it. An application with `dpop_bound_access_tokens` must.
//!
//! The proof's own checks are `shared::dpop`'s (the rooms API makes the same ones); this adds
//! what the token endpoint decides: one header only, the application's requirement, and each
//! proof used once on every replica (`dpop_proof_jtis`, written only once the client has
//! authenticated, so a stranger can't grow the table).

use chrono::{DateTime, Utc};
use shared::dpop::{self, Proof, ProofError};

use crate::model::{Application, StoreError};
use crate::store::{Db, assertion_jtis};

pub use shared::dpop::ProofHeader as DpopHeader;

/// What the token request brought for DPoP: its header, and the URL the client addressed
/// (this server's issuer and the request's path, what `htu` must name).
#[derive(Debug, Clone, Default)]
pub struct DpopPresented {
    pub header: DpopHeader,
    pub url: String,
}

/// Why a token request's DPoP was refused: `invalid_dpop_proof` (400), its text the
/// `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpopRefusal {
    #[error(transparent)]
    Proof(ProofError),
    #[error("Send one DPoP header, not several")]
    Several,
    #[error("This application's tokens are DPoP-bound: send a DPoP proof")]
    Required,
}

/// The proof's own checks, before client authentication (a request with a bad proof is
/// malformed, whoever sends it): `None` when no proof was sent.
pub fn check(presented: &DpopPresented, now: DateTime<Utc>) -> Result<Option<Proof>, DpopRefusal> {
    let proof = match &presented.header {
        DpopHeader::Absent => return Ok(None),
        DpopHeader::Several => return Err(DpopRefusal::Several),
        DpopHeader::One(proof) => proof,
    };
    let request = dpop::Request {
        method: "POST",
        url: &presented.url,
        access_token: None,
        now: now.timestamp(),
    };
    dpop::verify(proof, &request)
        .map(Some)
        .map_err(DpopRefusal::Proof)
}

/// A refusal, or the store failing while recording the proof.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Refused(DpopRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// After `app` authenticated: its requirement holds, and the proof is used for the first
/// time. Returns the thumbprint the token is bound to, `None` for a bearer token.
pub async fn bind(
    db: &Db,
    app: &Application,
    proof: Option<Proof>,
    now: DateTime<Utc>,
) -> Result<Option<String>, BindError> {
    let Some(proof) = proof else {
        if app.dpop_bound_access_tokens {
            return Err(BindError::Refused(DpopRefusal::Required));
        }
        return Ok(None);
    };
    let forget_at = DateTime::from_timestamp(proof.replay_window_end(), 0).unwrap_or(now);
    if !assertion_jtis::first_proof_use(db, &proof.jkt, &proof.jti, forget_at, now).await? {
        return Err(BindError::Refused(DpopRefusal::Proof(ProofError::Replayed)));
    }
    Ok(Some(proof.jkt))
}
