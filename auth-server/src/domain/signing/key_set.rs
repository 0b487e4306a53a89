//! A snapshot of the key table as the servers hold it: which key signs at a time, each key's
//! state, and the JWKS to publish.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use josekit::jws::{JwsSigner, JwsVerifier};
use serde::Serialize;
use shared::SigningAlg;

use super::RETIRE_MARGIN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Pending,
    Active,
    Superseded,
    Retired,
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Superseded => "superseded",
            KeyState::Retired => "retired",
        })
    }
}

/// One loaded key: its signer is built once, here, never per request.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    pub kid: String,
    pub generation: i64,
    pub alg: SigningAlg,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub public_jwk: Option<serde_json::Value>,
    pub(super) signer: Arc<dyn JwsSigner>,
    /// For introspection and revocation of our own tokens.
    pub verifier: Arc<dyn JwsVerifier>,
}

/// A snapshot of the key table.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// Ascending by generation.
    pub(super) keys: Vec<LoadedKey>,
}

impl KeySet {
    /// The newest key whose time has come.
    pub fn signing_key(&self, now: DateTime<Utc>) -> Option<&LoadedKey> {
        self.keys
            .iter()
            .filter(|k| k.activates_at <= now)
            .max_by_key(|k| k.generation)
    }

    /// When a newer key took over from `key`, if one has.
    pub fn superseded_at(&self, key: &LoadedKey, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.keys
            .iter()
            .filter(|k| k.generation > key.generation && k.activates_at <= now)
            .map(|k| k.activates_at)
            .min()
    }

    pub fn state(&self, key: &LoadedKey, now: DateTime<Utc>) -> KeyState {
        if key.activates_at > now {
            KeyState::Pending
        } else if self.superseded_at(key, now).is_some() {
            KeyState::Superseded
        } else {
            KeyState::Active
        }
    }

    pub fn keys(&self) -> &[LoadedKey] {
        &self.keys
    }

    pub fn find(&self, kid: &str) -> Option<&LoadedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The public keys a verifier may meet: pending, active, and superseded ones until their
    /// last token (issued at the latest at supersession) has expired, plus a margin.
    pub fn jwks(&self, now: DateTime<Utc>, token_ttl: TimeDelta) -> serde_json::Value {
        let keys: Vec<&serde_json::Value> = self
            .keys
            .iter()
            .filter(|k| match self.superseded_at(k, now) {
                Some(at) => at + token_ttl + RETIRE_MARGIN > now,
                None => true,
            })
            .filter_map(|k| k.public_jwk.as_ref())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
