//! Private signing keys at rest: AES-256-GCM under `AUTH_KEY_ENCRYPTION_KEY`, with the kid as
//! associated data so a ciphertext cannot be moved to another key's row.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use secrecy::{ExposeSecret, SecretSlice};

use server_kit::random;

#[derive(Debug, thiserror::Error)]
pub enum KeyEncryptionError {
    #[error("key encryption failed")]
    Encrypt,
    #[error(
        "a stored private key cannot be decrypted: wrong AUTH_KEY_ENCRYPTION_KEY or damaged row"
    )]
    Decrypt,
}

pub struct KeyEncryptionKey(SecretSlice<u8>);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

impl KeyEncryptionKey {
    /// `bytes` must be 32 bytes long (checked by the config).
    pub fn new(bytes: SecretSlice<u8>) -> Self {
        Self(bytes)
    }

    /// A key for another purpose, the same on every replica (they share this one) and
    /// independent of it: HMAC-SHA256(this key, `purpose`).
    pub fn derive(&self, purpose: &str) -> Result<SecretSlice<u8>, KeyEncryptionError> {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.0.expose_secret())
            .map_err(|_| KeyEncryptionError::Encrypt)?;
        mac.update(purpose.as_bytes());
        Ok(SecretSlice::from(mac.finalize().into_bytes().to_vec()))
    }

    pub fn encrypt(&self, kid: &str, plaintext: &[u8]) -> Result<String, KeyEncryptionError> {
        let mut nonce = [0u8; 12];
        random::fill(&mut nonce).map_err(|_| KeyEncryptionError::Encrypt)?;
        let mut tag = [0u8; 16];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            self.0.expose_secret(),
            Some(&nonce),
            kid.as_bytes(),
            plaintext,
            &mut tag,
        )
        .map_err(|_| KeyEncryptionError::Encrypt)?;
        let mut out = Vec::with_capacity(12 + ciphertext.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(STANDARD.encode(out))
    }

    pub fn decrypt(&self, kid: &str, stored: &str) -> Result<Vec<u8>, KeyEncryptionError> {
        let raw = STANDARD
            .decode(stored)
            .map_err(|_| KeyEncryptionError::Decrypt)?;
        if raw.len() < 12 + 16 {
            return Err(KeyEncryptionError::Decrypt);
        }
        let (nonce, rest) = raw.split_at(12);
        let (ciphertext, tag) = rest.split_at(rest.len() - 16);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            self.0.expose_secret(),
            Some(nonce),
            kid.as_bytes(),
            ciphertext,
            tag,
        )
        .map_err(|_| KeyEncryptionError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let kek = KeyEncryptionKey::new(SecretSlice::from(vec![7u8; 32]));
        let sealed = kek.encrypt("kid1", b"private").unwrap();
        assert_eq!(kek.decrypt("kid1", &sealed).unwrap(), b"private");
        assert!(kek.decrypt("kid2", &sealed).is_err());
        let other = KeyEncryptionKey::new(SecretSlice::from(vec![8u8; 32]));
        assert!(other.decrypt("kid1", &sealed).is_err());
    }

    /// A stored value shorter than a nonce and a tag is damaged, never a panic; one of exactly
    /// that length is the sealing of an empty key and opens.
    #[test]
    fn a_value_shorter_than_nonce_and_tag_is_refused_and_an_empty_plaintext_opens() {
        let kek = KeyEncryptionKey::new(SecretSlice::from(vec![7u8; 32]));
        for len in [0, 1, 11, 12, 27] {
            let short = STANDARD.encode(vec![0u8; len]);
            assert!(
                matches!(
                    kek.decrypt("kid1", &short),
                    Err(KeyEncryptionError::Decrypt)
                ),
                "{len} bytes"
            );
        }
        let sealed = kek.encrypt("kid1", b"").unwrap();
        assert_eq!(STANDARD.decode(&sealed).unwrap().len(), 12 + 16);
        assert_eq!(kek.decrypt("kid1", &sealed).unwrap(), b"");
    }
}
