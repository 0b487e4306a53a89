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
    /// `DPOP_NONCE`: the proof lacks a nonce this server gave out recently (RFC 9449 §8).
    #[error("Authorization server requires nonce in DPoP proof")]
    UseNonce,
}

/// The proof's own checks, before client authentication (a request with a bad proof is
/// malformed, whoever sends it): `None` when no proof was sent.
/// With `nonces`, the proof must also carry a nonce given out recently.
pub fn check(
    presented: &DpopPresented,
    nonces: Option<&Nonces>,
    now: DateTime<Utc>,
) -> Result<Option<Proof>, DpopRefusal> {
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
    let proof = dpop::verify(proof, &request).map_err(DpopRefusal::Proof)?;
    if let Some(nonces) = nonces
        && !proof
            .nonce
            .as_deref()
            .is_some_and(|n| nonces.accepts(n, now))
    {
        return Err(DpopRefusal::UseNonce);
    }
    Ok(Some(proof))
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

/// Server nonces (RFC 9449 §8, `DPOP_NONCE=true`): a proof must carry a nonce this server
/// gave out recently. Stateless and the same on every replica: a nonce is a time window's
/// number and its HMAC under a key derived from the key-encryption key all replicas share, so
/// any replica accepts any replica's nonce, and nothing is stored.
pub struct Nonces {
    key: secrecy::SecretSlice<u8>,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces(<key redacted>)")
    }
}

/// A nonce's window: one is given out for the current window and accepted in it and the next,
/// so it lives 60 to 120 s.
pub const NONCE_WINDOW_SECONDS: i64 = 60;

impl Nonces {
    pub fn new(key: secrecy::SecretSlice<u8>) -> Self {
        Self { key }
    }

    fn tag(&self, window: i64) -> Option<[u8; 16]> {
        use hmac::{KeyInit, Mac};
        use secrecy::ExposeSecret;
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.key.expose_secret()).ok()?;
        mac.update(&window.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        Some(tag)
    }

    /// The nonce to give out at `now` (the `DPoP-Nonce` header).
    pub fn current(&self, now: DateTime<Utc>) -> Option<String> {
        use base64::Engine;
        let window = now.timestamp().div_euclid(NONCE_WINDOW_SECONDS);
        let mut raw = window.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.tag(window)?);
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
    }

    /// Whether `nonce` was given out by a replica in this window or the one before.
    pub fn accepts(&self, nonce: &str, now: DateTime<Utc>) -> bool {
        use base64::Engine;
        let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((window, tag)) = raw.split_first_chunk::<8>() else {
            return false;
        };
        let window = i64::from_be_bytes(*window);
        let current = now.timestamp().div_euclid(NONCE_WINDOW_SECONDS);
        if window != current && window != current - 1 {
            return false;
        }
        // Constant time: a guesser learns nothing from how long a wrong tag takes.
        self.tag(window)
            .is_some_and(|expected| openssl::memcmp::eq(&expected, tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretSlice;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn a_nonce_lives_one_to_two_windows_and_any_replica_accepts_it() {
        let one = Nonces::new(SecretSlice::from(vec![7u8; 32]));
        let other = Nonces::new(SecretSlice::from(vec![7u8; 32]));
        let stranger = Nonces::new(SecretSlice::from(vec![8u8; 32]));
        let t = 1_800_000_000 - 1_800_000_000 % NONCE_WINDOW_SECONDS;
        let nonce = one.current(at(t + 10)).unwrap();
        assert_eq!(nonce.len(), 32);
        assert!(
            other.accepts(&nonce, at(t + 10)),
            "another replica accepts it"
        );
        assert!(other.accepts(&nonce, at(t + 2 * NONCE_WINDOW_SECONDS - 1)));
        assert!(
            !other.accepts(&nonce, at(t + 2 * NONCE_WINDOW_SECONDS)),
            "expired"
        );
        assert!(!other.accepts(&nonce, at(t - 1)), "not before its window");
        assert!(!stranger.accepts(&nonce, at(t + 10)), "another key's");
        let mut forged = nonce.clone().into_bytes();
        forged[31] = if forged[31] == b'A' { b'B' } else { b'A' };
        assert!(!one.accepts(std::str::from_utf8(&forged).unwrap(), at(t + 10)));
        assert!(!one.accepts("", at(t + 10)));
        assert!(!one.accepts("not base64!", at(t + 10)));
    }
}
