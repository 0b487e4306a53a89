//! Client secrets: generated once, shown once, stored as argon2id PHC strings, verified on the
//! blocking pool with bounded concurrency (each verification holds ~19 MiB and ~18 ms of CPU).

use std::sync::Arc;
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use shared::server::random::{self, RandomError};

pub const CLIENT_SECRET_LEN: usize = 48;
/// How long a request may wait for an argon2 slot before answering 503.
pub const ARGON2_WAIT: Duration = Duration::from_secs(2);

/// Pinned at the OWASP minimum for argon2id: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Result<Argon2<'static>, argon2::Error> {
    Ok(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19_456, 2, 1, None)?,
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("password hashing failed")]
    Hash,
}

/// Generates a secret: 48 base62 characters, about 286 bits.
pub fn generate() -> Result<SecretString, SecretError> {
    Ok(SecretString::from(random::base62(CLIENT_SECRET_LEN)?))
}

pub fn hash(secret: &SecretString) -> Result<String, SecretError> {
    let hasher = argon2().map_err(|_| SecretError::Hash)?;
    hasher
        .hash_password(secret.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| SecretError::Hash)
}

fn verify_blocking(secret: &str, phc: &str) -> bool {
    argon2().is_ok_and(|a| a.verify_password(secret.as_bytes(), phc).is_ok())
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("too many secret verifications in progress")]
    Busy,
    #[error("secret verification task failed")]
    Task,
}

/// Runs argon2 verifications off the async workers, at most `max` at once.
#[derive(Debug, Clone)]
pub struct SecretVerifier {
    permits: Arc<Semaphore>,
    /// Verified against for unknown client_ids, so they cost the same time as a wrong secret.
    dummy_hash: Arc<str>,
}

impl SecretVerifier {
    pub fn new(max_concurrent: usize) -> Result<Self, SecretError> {
        let dummy = SecretString::from(random::base62(CLIENT_SECRET_LEN)?);
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            dummy_hash: hash(&dummy)?.into(),
        })
    }

    /// Verifies `secret` against `stored` (or, when `None`, against the dummy hash, which always
    /// fails). Waits at most `ARGON2_WAIT` for a slot.
    pub async fn verify(
        &self,
        secret: SecretString,
        stored: Option<String>,
    ) -> Result<bool, VerifyError> {
        let permit = tokio::time::timeout(ARGON2_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| VerifyError::Busy)?
            .map_err(|_| VerifyError::Task)?;
        let known = stored.is_some();
        let phc: Arc<str> = match stored {
            Some(s) => s.into(),
            None => Arc::clone(&self.dummy_hash),
        };
        let ok = tokio::task::spawn_blocking(move || {
            let ok = verify_blocking(secret.expose_secret(), &phc);
            drop(permit);
            ok
        })
        .await
        .map_err(|_| VerifyError::Task)?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verify_and_dummy() {
        let secret = generate().unwrap();
        assert_eq!(secret.expose_secret().len(), 48);
        let phc = hash(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!phc.contains(secret.expose_secret()));
        let v = SecretVerifier::new(2).unwrap();
        assert!(v.verify(secret.clone(), Some(phc.clone())).await.unwrap());
        assert!(
            !v.verify(SecretString::from("wrong"), Some(phc))
                .await
                .unwrap()
        );
        assert!(!v.verify(secret, None).await.unwrap());
    }
}
