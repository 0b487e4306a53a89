//! A signing key as stored: its private half encrypted (`domain/key_encryption.rs`), its public
//! half a JWK. `domain/signing.rs` decides its state and builds its signer.

use chrono::{DateTime, Utc};

#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    /// One per rotation, unique: the newest key whose `activates_at` has passed signs.
    pub generation: i64,
    pub alg: String,
    /// AES-256-GCM of the private key's DER, the kid as associated data.
    pub private_key_encrypted: String,
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub superseded_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Never the encrypted private half.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}
