//! Key material: new key pairs, a stored key decrypted into its signer and verifier (built
//! once, never per request), and the HS256 shared secret as a key.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use josekit::jwk::Jwk;
use josekit::jwk::KeyPair;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, HS256, JwsSigner, JwsVerifier, RS256};
use shared::SigningAlg;

use super::{KeyError, LoadedKey, jose};
use crate::domain::key_encryption::KeyEncryptionKey;
use crate::model::SigningKey;

pub(super) fn generate(alg: SigningAlg) -> Result<(Vec<u8>, josekit::jwk::Jwk), KeyError> {
    Ok(match alg {
        SigningAlg::EdDSA => {
            let kp = EdDSA.generate_key_pair(EdCurve::Ed25519).map_err(jose)?;
            (kp.to_der_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::ES256 => {
            let kp = ES256.generate_key_pair().map_err(jose)?;
            (kp.to_der_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::RS256 => {
            let kp = RS256.generate_key_pair(2048).map_err(jose)?;
            (kp.to_der_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::HS256 => return Err(KeyError::Jose("HS256 keys are not generated".into())),
    })
}

pub(super) fn load_row(kek: &KeyEncryptionKey, row: &SigningKey) -> Result<LoadedKey, KeyError> {
    let alg: SigningAlg = row
        .alg
        .parse()
        .map_err(|e: shared::alg::UnknownAlg| KeyError::Jose(e.to_string()))?;
    let der = kek.decrypt(&row.kid, &row.private_key_encrypted)?;
    let signer: Arc<dyn JwsSigner> = match alg {
        SigningAlg::EdDSA => Arc::new(EdDSA.signer_from_der(&der).map_err(jose)?),
        SigningAlg::ES256 => Arc::new(ES256.signer_from_der(&der).map_err(jose)?),
        SigningAlg::RS256 => Arc::new(RS256.signer_from_der(&der).map_err(jose)?),
        SigningAlg::HS256 => return Err(KeyError::Jose("HS256 key in the key table".into())),
    };
    let public_jwk: serde_json::Value =
        serde_json::from_str(&row.public_jwk).map_err(|e| KeyError::Jose(e.to_string()))?;
    let jwk = public_jwk
        .as_object()
        .cloned()
        .ok_or_else(|| KeyError::Jose("public JWK is not an object".into()))
        .and_then(|m| Jwk::from_map(m).map_err(jose))?;
    let verifier: Arc<dyn JwsVerifier> = match alg {
        SigningAlg::EdDSA => Arc::new(EdDSA.verifier_from_jwk(&jwk).map_err(jose)?),
        SigningAlg::ES256 => Arc::new(ES256.verifier_from_jwk(&jwk).map_err(jose)?),
        SigningAlg::RS256 => Arc::new(RS256.verifier_from_jwk(&jwk).map_err(jose)?),
        SigningAlg::HS256 => return Err(KeyError::Jose("HS256 key in the key table".into())),
    };
    Ok(LoadedKey {
        kid: row.kid.clone(),
        generation: row.generation,
        alg,
        created_at: row.created_at,
        activates_at: row.activates_at,
        public_jwk: Some(public_jwk),
        signer,
        verifier,
    })
}

/// `kid` of an HS256 secret: the first 16 characters of base64url(SHA-256(secret)), so both
/// sides can tell which secret signed without publishing anything.
pub fn hs256_kid(secret: &[u8]) -> String {
    let digest = server_kit::digest::sha256(secret);
    URL_SAFE_NO_PAD.encode(digest).chars().take(16).collect()
}

pub(super) fn hs256_key(secret: &[u8]) -> Result<LoadedKey, KeyError> {
    Ok(LoadedKey {
        kid: hs256_kid(secret),
        generation: 0,
        alg: SigningAlg::HS256,
        created_at: DateTime::<Utc>::MIN_UTC,
        activates_at: DateTime::<Utc>::MIN_UTC,
        public_jwk: None,
        signer: Arc::new(HS256.signer_from_bytes(secret).map_err(jose)?),
        verifier: Arc::new(HS256.verifier_from_bytes(secret).map_err(jose)?),
    })
}
