//! The auth-server's public keys, fetched from `JWKS_URL` and cached with one verifier built per
//! key. An unknown `kid` triggers at most one refetch per 10 s (so a flood of forged kids
//! cannot hammer the auth-server), sent with `Cache-Control: no-cache`; keys are also refreshed
//! every 5 minutes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use shared::token::JwsVerifier;
use shared::{Clock, SigningAlg};

pub const REFETCH_INTERVAL: TimeDelta = TimeDelta::seconds(10);
/// The refetch limit for a kid the auth-server announced (only its own keys can be).
pub const ANNOUNCED_REFETCH_INTERVAL: TimeDelta = TimeDelta::milliseconds(500);

#[derive(Clone)]
pub struct KeyEntry {
    pub alg: SigningAlg,
    pub verifier: Arc<dyn JwsVerifier>,
    jwk: serde_json::Value,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS request failed")]
    Request(#[from] reqwest::Error),
    #[error("JWKS answered {0}")]
    Status(u16),
    #[error("JWKS document is not a JWK Set")]
    Document,
}

/// The key set is not available (never loaded, and the JWKS endpoint does not answer).
#[derive(Debug, thiserror::Error)]
#[error("signing keys unavailable")]
pub struct KeysUnavailable;

/// When the last refetch for (any unknown kid, an announced kid) ran.
type RefetchSlots = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

#[derive(Debug)]
pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<HashMap<String, KeyEntry>>>,
    /// Last refetch for an unknown kid: (any kid, an announced kid). Forged kids can only use
    /// up the first slot.
    last_refetch: tokio::sync::Mutex<RefetchSlots>,
    loaded: AtomicBool,
    fetches: AtomicU64,
}

impl JwksCache {
    pub fn new(url: String, clock: Arc<dyn Clock>) -> Result<Self, JwksError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            url,
            http,
            clock,
            keys: RwLock::new(Arc::new(HashMap::new())),
            last_refetch: tokio::sync::Mutex::new((None, None)),
            loaded: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
        })
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// How many times the JWKS was fetched (observability and tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Whether `kid` is in the current key set (a cached verification is only good while it is).
    pub fn is_known(&self, kid: &str) -> bool {
        self.keys.read().is_ok_and(|m| m.contains_key(kid))
    }

    fn lookup(&self, kid: &str) -> Option<KeyEntry> {
        self.keys.read().ok().and_then(|m| m.get(kid).cloned())
    }

    /// Fetches the set and swaps it in, reusing verifiers of unchanged keys.
    pub async fn fetch(&self) -> Result<(), JwksError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let request = self.http.get(&self.url).header("cache-control", "no-cache");
        let resp = server_kit::traces::send(server_kit::client_span!("jwks"), request).await?;
        if !resp.status().is_success() {
            return Err(JwksError::Status(resp.status().as_u16()));
        }
        let doc: serde_json::Value = resp.json().await?;
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or(JwksError::Document)?;
        let previous = self.keys.read().map(|m| Arc::clone(&m)).unwrap_or_default();
        let mut next = HashMap::new();
        for key in keys {
            let (Some(kid), Some(alg)) = (
                key.get("kid").and_then(|v| v.as_str()),
                key.get("alg").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            if let Some(existing) = previous.get(kid).filter(|e| &e.jwk == key) {
                next.insert(kid.to_owned(), existing.clone());
                continue;
            }
            match shared::token::verifier_from_jwk(alg, key) {
                Some((alg, verifier)) => {
                    next.insert(
                        kid.to_owned(),
                        KeyEntry {
                            alg,
                            verifier,
                            jwk: key.clone(),
                        },
                    );
                }
                None => tracing::warn!(
                    kid,
                    alg,
                    "ignoring a JWK that is not an EdDSA, ES256 or RS256 public key"
                ),
            }
        }
        if let Ok(mut guard) = self.keys.write() {
            *guard = Arc::new(next);
        }
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// The key for `kid`, refetching the set at most once per `REFETCH_INTERVAL` when unknown —
    /// or, for a kid the auth-server has `announced` in its revocation feed, once per
    /// `ANNOUNCED_REFETCH_INTERVAL`: forged kids that used up the slot can't get a genuine new
    /// key's tokens refused after `keys rotate --now`.
    pub async fn get(
        &self,
        kid: &str,
        announced: bool,
    ) -> Result<Option<KeyEntry>, KeysUnavailable> {
        if let Some(e) = self.lookup(kid) {
            return Ok(Some(e));
        }
        let mut slots = self.last_refetch.lock().await;
        if let Some(e) = self.lookup(kid) {
            return Ok(Some(e));
        }
        let now = self.clock.now();
        let (last, interval) = if announced {
            (&mut slots.1, ANNOUNCED_REFETCH_INTERVAL)
        } else {
            (&mut slots.0, REFETCH_INTERVAL)
        };
        if last.is_some_and(|t| now - t < interval) {
            return if self.is_loaded() {
                Ok(None)
            } else {
                Err(KeysUnavailable)
            };
        }
        *last = Some(now);
        match self.fetch().await {
            Ok(()) => Ok(self.lookup(kid)),
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refetch failed");
                if self.is_loaded() {
                    Ok(None)
                } else {
                    Err(KeysUnavailable)
                }
            }
        }
    }

    /// Keeps the set fresh: every `every` once loaded, every 2 s until the first success.
    pub fn spawn_refresh(self: Arc<Self>, every: Duration) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.fetch().await {
                    tracing::warn!(error = %e, url = %self.url, "JWKS fetch failed");
                }
                let wait = if self.is_loaded() {
                    every
                } else {
                    Duration::from_secs(2)
                };
                tokio::time::sleep(wait).await;
            }
        });
    }
}
