//! Signing keys and their lifecycle (docs/spec/auth-server.md §3).
//!
//! A key is published (JWKS) from the moment it exists, signs from `activates_at`, and stays
//! published after a newer key takes over until its last token has expired. Every process keeps
//! the key table in memory (signers built once per key) and re-reads it every
//! `KEY_REFRESH_SECONDS`, so replicas and the CLI agree through the database alone.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use josekit::jws::{self, JwsHeader};
use secrecy::{ExposeSecret, SecretSlice};
use shared::claims::ACCESS_TOKEN_TYP;
use shared::{AccessTokenClaims, SigningAlg};

use super::key_encryption::{KeyEncryptionError, KeyEncryptionKey};
use crate::model::{SigningKey, StoreError};
use crate::store::Conn as ConnectionTrait;
use crate::store::keys as key_store;
use server_kit::random;

mod inventory;
mod key_set;
mod material;

pub use inventory::{KeyInfo, RetireError, describe, list, retire};
pub use key_set::{KeySet, KeyState, LoadedKey};
pub use material::hs256_kid;
use material::{generate, hs256_key, load_row};

/// How long a rotated key is published before it signs: the JWKS cache lifetime.
pub const PUBLISH_AHEAD: TimeDelta = TimeDelta::seconds(300);
/// Extra time a superseded key stays published after its last token's expiry.
pub const RETIRE_MARGIN: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Encryption(#[from] KeyEncryptionError),
    #[error("key material error: {0}")]
    Jose(String),
    #[error("no signing key is active yet")]
    NoActiveKey,
    #[error("AUTH_KEY_ENCRYPTION_KEY is needed for asymmetric signing keys")]
    MissingKek,
    #[error("could not claim a key generation after several attempts")]
    Contended,
    #[error("HS256 keys are the shared secret: rotate TOKEN_HS256_SECRET instead")]
    Symmetric,
}

fn jose(e: josekit::JoseError) -> KeyError {
    KeyError::Jose(e.to_string())
}

/// The shared key ring: a snapshot swapped whole on refresh.
#[derive(Debug)]
pub struct KeyRing {
    alg: SigningAlg,
    kek: Option<KeyEncryptionKey>,
    hs256: Option<LoadedKey>,
    current: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// Builds the ring; for an asymmetric algorithm, makes sure a key of that algorithm exists
    /// (race-safe) and loads the table.
    pub async fn load(
        db: &impl ConnectionTrait,
        alg: SigningAlg,
        hs256_secret: Option<&SecretSlice<u8>>,
        kek: Option<KeyEncryptionKey>,
        now: DateTime<Utc>,
    ) -> Result<Self, KeyError> {
        let hs256 = match (alg, hs256_secret) {
            (SigningAlg::HS256, Some(secret)) => Some(hs256_key(secret.expose_secret())?),
            (SigningAlg::HS256, None) => return Err(KeyError::NoActiveKey),
            _ => None,
        };
        let ring = Self {
            alg,
            kek,
            hs256,
            current: RwLock::new(Arc::new(KeySet::default())),
        };
        if alg.is_asymmetric() {
            ring.ensure_key_for_alg(db, now).await?;
            ring.refresh(db, now).await?;
        }
        Ok(ring)
    }

    pub fn snapshot(&self) -> Arc<KeySet> {
        match &self.hs256 {
            Some(k) => Arc::new(KeySet {
                keys: vec![k.clone()],
            }),
            None => self
                .current
                .read()
                .map(|g| Arc::clone(&g))
                .unwrap_or_default(),
        }
    }

    /// Makes sure this replica publishes every key the table holds before it answers a JWKS
    /// request: one read of the live kids, and a refresh only when they differ from the loaded
    /// set. Another replica may already sign with a key inserted a moment ago (`keys rotate
    /// --now`, then its refresh); a verifier that sees its kid refetches the JWKS through the
    /// load balancer, and whichever replica answers must have it. Waiting for this replica's
    /// own refresh (`KEY_REFRESH_SECONDS`) would answer 401 meanwhile.
    pub async fn publish_current(
        &self,
        db: &impl ConnectionTrait,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        if self.hs256.is_some() {
            return Ok(());
        }
        let live = key_store::live_kids(db).await?;
        let loaded = self.snapshot();
        let same = live.len() == loaded.keys.len()
            && live.iter().zip(&loaded.keys).all(|(kid, k)| *kid == k.kid);
        if same {
            return Ok(());
        }
        self.refresh(db, now).await
    }

    /// Re-reads the key table and records supersessions.
    pub async fn refresh(
        &self,
        db: &impl ConnectionTrait,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        if self.hs256.is_some() {
            return Ok(());
        }
        let kek = self.kek.as_ref().ok_or(KeyError::MissingKek)?;
        let rows = key_store::all(db).await?;
        let previous = self.snapshot();
        let mut keys = Vec::with_capacity(rows.len());
        // A retired key is never loaded: out of the JWKS, never signing, its tokens unverifiable.
        for row in rows.into_iter().filter(|r| r.retired_at.is_none()) {
            // Reuse already-built signers: decrypting and parsing keys is not free.
            if let Some(k) = previous.keys.iter().find(|k| k.kid == row.kid) {
                keys.push(k.clone());
                continue;
            }
            keys.push(load_row(kek, &row)?);
        }
        let set = Arc::new(KeySet { keys });
        // Published before anything is written: reading and serving keys must go on when
        // writes can't (a lock, a read-only standby after failover).
        if let Ok(mut guard) = self.current.write() {
            *guard = Arc::clone(&set);
        }
        if let Some(active) = set.signing_key(now)
            && let Err(e) =
                key_store::mark_superseded(db, active.generation, active.activates_at).await
        {
            // Retried at the next refresh; only the superseded keys' JWKS grace clock waits.
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::from(e)),
                "could not record superseded signing keys; the key set is published anyway"
            );
        }
        Ok(())
    }

    /// Creates a key of the configured algorithm unless the newest key already is one. The
    /// first key ever signs at once; a key for a switched algorithm is published ahead.
    async fn ensure_key_for_alg(
        &self,
        db: &impl ConnectionTrait,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        for _ in 0..5 {
            let rows = key_store::all(db).await?;
            let newest = rows.last();
            if newest.is_some_and(|r| r.alg == self.alg.as_str()) {
                return Ok(());
            }
            let activates_at = if newest.is_none() {
                now
            } else {
                now + PUBLISH_AHEAD
            };
            let generation = newest.map_or(1, |r| r.generation + 1);
            if self
                .insert_new_key(db, generation, now, activates_at)
                .await?
            {
                tracing::info!(alg = %self.alg, generation, "created signing key");
                return Ok(());
            }
        }
        Err(KeyError::Contended)
    }

    /// `keys rotate`: a new key, published now, signing from `now + 300 s` (or at once).
    pub async fn rotate(
        &self,
        db: &impl ConnectionTrait,
        now: DateTime<Utc>,
        immediately: bool,
    ) -> Result<String, KeyError> {
        if !self.alg.is_asymmetric() {
            return Err(KeyError::Symmetric);
        }
        let activates_at = if immediately {
            now
        } else {
            now + PUBLISH_AHEAD
        };
        for _ in 0..5 {
            let rows = key_store::all(db).await?;
            let generation = rows.last().map_or(1, |r| r.generation + 1);
            if let Some(kid) = self
                .insert_new_key_returning_kid(db, generation, now, activates_at)
                .await?
            {
                return Ok(kid);
            }
        }
        Err(KeyError::Contended)
    }

    async fn insert_new_key(
        &self,
        db: &impl ConnectionTrait,
        generation: i64,
        now: DateTime<Utc>,
        activates_at: DateTime<Utc>,
    ) -> Result<bool, KeyError> {
        Ok(self
            .insert_new_key_returning_kid(db, generation, now, activates_at)
            .await?
            .is_some())
    }

    async fn insert_new_key_returning_kid(
        &self,
        db: &impl ConnectionTrait,
        generation: i64,
        now: DateTime<Utc>,
        activates_at: DateTime<Utc>,
    ) -> Result<Option<String>, KeyError> {
        let kek = self.kek.as_ref().ok_or(KeyError::MissingKek)?;
        let kid = random::base62(22).map_err(|e| KeyError::Jose(e.to_string()))?;
        let (private_der, mut jwk) = generate(self.alg)?;
        jwk.set_key_id(&kid);
        jwk.set_algorithm(self.alg.as_str());
        jwk.set_key_use("sig");
        let row = SigningKey {
            kid: kid.clone(),
            generation,
            alg: self.alg.as_str().to_owned(),
            private_key_encrypted: kek.encrypt(&kid, &private_der)?,
            public_jwk: jwk.to_string(),
            created_at: now,
            activates_at,
            superseded_at: None,
            retired_at: None,
        };
        Ok(key_store::insert(db, row).await?.then_some(kid))
    }

    /// Signs an access token with the current signing key.
    pub fn sign(&self, claims: &AccessTokenClaims, now: DateTime<Utc>) -> Result<String, KeyError> {
        // For traces only (target `otel`): the key and the algorithm, never the claims.
        let span = tracing::info_span!(target: server_kit::traces::TARGET, "sign", kid = tracing::field::Empty);
        let _in = span.enter();
        let set = self.snapshot();
        let key = set.signing_key(now).ok_or(KeyError::NoActiveKey)?;
        span.record("kid", key.kid.as_str());
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Jose(e.to_string()))?;
        let mut header = JwsHeader::new();
        header.set_token_type(ACCESS_TOKEN_TYP);
        header.set_key_id(&key.kid);
        jws::serialize_compact(&payload, &header, key.signer.as_ref()).map_err(jose)
    }
}

#[cfg(test)]
mod tests {
    //! The key rules without a database: which key signs, which state each is in, what the JWKS
    //! shows, and a stored key's round trip (encrypted, decrypted, signing, verifying).

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::new(SecretSlice::from(vec![7u8; 32]))
    }

    /// A stored EdDSA key of `generation` that signs from `activates_at`.
    fn row(kek: &KeyEncryptionKey, generation: i64, activates_at: DateTime<Utc>) -> SigningKey {
        let (der, jwk) = generate(SigningAlg::EdDSA).unwrap();
        let kid = format!("k{generation}");
        let mut public = jwk.as_ref().clone();
        public.insert("kid".into(), kid.clone().into());
        SigningKey {
            private_key_encrypted: kek.encrypt(&kid, &der).unwrap(),
            kid,
            generation,
            alg: "EdDSA".into(),
            public_jwk: serde_json::Value::Object(public).to_string(),
            created_at: t0(),
            activates_at,
            superseded_at: None,
            retired_at: None,
        }
    }

    fn set(rows: &[SigningKey]) -> KeySet {
        let kek = kek();
        KeySet {
            keys: rows.iter().map(|r| load_row(&kek, r).unwrap()).collect(),
        }
    }

    #[test]
    fn the_newest_key_whose_time_has_come_signs_and_states_follow() {
        let kek = kek();
        let rotated = t0() + PUBLISH_AHEAD;
        let keys = set(&[row(&kek, 1, t0()), row(&kek, 2, rotated)]);
        let (old, new) = (&keys.keys()[0], &keys.keys()[1]);
        let before = rotated - TimeDelta::seconds(1);
        assert_eq!(keys.signing_key(before).unwrap().kid, "k1");
        assert_eq!(keys.state(old, before), KeyState::Active);
        assert_eq!(keys.state(new, before), KeyState::Pending);
        assert_eq!(keys.superseded_at(old, before), None);
        assert_eq!(keys.signing_key(rotated).unwrap().kid, "k2");
        assert_eq!(keys.state(old, rotated), KeyState::Superseded);
        assert_eq!(keys.state(new, rotated), KeyState::Active);
        assert_eq!(keys.superseded_at(old, rotated), Some(rotated));
        assert!(keys.signing_key(t0() - TimeDelta::seconds(1)).is_none());
        assert_eq!(keys.find("k2").unwrap().generation, 2);
        assert!(keys.find("k3").is_none());
    }

    #[test]
    fn the_jwks_keeps_a_superseded_key_until_its_last_token_expired_plus_a_margin() {
        let kek = kek();
        let rotated = t0() + PUBLISH_AHEAD;
        let keys = set(&[row(&kek, 1, t0()), row(&kek, 2, rotated)]);
        let ttl = TimeDelta::seconds(3600);
        let kids = |now| -> Vec<String> {
            keys.jwks(now, ttl)["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        // Published while pending, so verifiers know it before it signs.
        assert_eq!(kids(t0()), ["k1", "k2"]);
        let gone = rotated + ttl + RETIRE_MARGIN;
        assert_eq!(kids(gone - TimeDelta::seconds(1)), ["k1", "k2"]);
        assert_eq!(kids(gone), ["k2"]);
    }

    #[test]
    fn a_stored_key_decrypts_signs_and_verifies_and_only_with_its_key_encryption_key() {
        let kek = kek();
        let stored = row(&kek, 1, t0());
        let key = load_row(&kek, &stored).unwrap();
        let mut header = JwsHeader::new();
        header.set_key_id(&key.kid);
        let jwt = jws::serialize_compact(b"{\"a\":1}", &header, key.signer.as_ref()).unwrap();
        let (payload, _) = jws::deserialize_compact(&jwt, key.verifier.as_ref()).unwrap();
        assert_eq!(payload, b"{\"a\":1}");
        let other = KeyEncryptionKey::new(SecretSlice::from(vec![8u8; 32]));
        assert!(load_row(&other, &stored).is_err());
        // The kid is bound to the ciphertext: a row renamed does not decrypt.
        let renamed = SigningKey {
            kid: "k9".into(),
            ..stored
        };
        assert!(load_row(&kek, &renamed).is_err());
    }

    #[test]
    fn describe_tells_each_state_and_ignores_retired_keys_as_successors() {
        let kek = kek();
        let rotated = t0() + PUBLISH_AHEAD;
        let mut retired = row(&kek, 3, rotated);
        retired.retired_at = Some(rotated);
        let rows = [
            row(&kek, 1, t0()),
            row(&kek, 2, t0() + PUBLISH_AHEAD * 2),
            retired,
        ];
        let now = rotated + TimeDelta::seconds(1);
        let info = describe(&rows, now);
        let states: Vec<KeyState> = info.iter().map(|k| k.state).collect();
        assert_eq!(
            states,
            [KeyState::Active, KeyState::Pending, KeyState::Retired]
        );
        assert_eq!(info[0].superseded_at, None);
        let later = t0() + PUBLISH_AHEAD * 2;
        assert_eq!(describe(&rows, later)[0].state, KeyState::Superseded);
        assert_eq!(describe(&rows, later)[0].superseded_at, Some(later));
    }

    #[test]
    fn an_hs256_kid_is_the_start_of_the_secrets_digest() {
        assert_eq!(hs256_kid(b"secret"), "K7gNU3sdo-OL0wNh");
        let key = hs256_key(b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(key.alg, SigningAlg::HS256);
        assert!(key.public_jwk.is_none());
    }
}
