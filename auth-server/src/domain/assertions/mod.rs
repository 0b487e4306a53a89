//! JWT assertions signed by an application's key (docs/spec/auth-server.md §1a): as client
//! authentication (`private_key_jwt`, RFC 7523 §2.2) and as the JWT-bearer authorization grant
//! (RFC 7523 §2.1), which names the user to act for in `sub`.
//!
//! Order: the signature first, by one of the application's keys (an unknown client, or one
//! without keys, is checked against a dummy key: the same cost, the same answer); then the
//! claims, whose failures may be told apart since the caller proved it holds the key; the
//! `jti` last, recorded in the database so a replay is refused on every replica.

use chrono::{DateTime, Utc};

mod key_sources;
mod rules;

pub use key_sources::{FetchError, InlineKeys, RemoteKeys};
pub use rules::{AssertionRejection, AudienceRule, Rules};
use rules::{RawClaims, check_claims, signing_input_digest};

use super::client_keys::{self, AssertionHeader, DummyKeys, SignatureError};
use crate::model::Application;
use crate::model::StoreError;
use crate::store::{Db, assertion_jtis};

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;
/// The furthest ahead any assertion's `exp` may be, when its `iat` bounds its use
/// (`rules.rs`): libraries sign for an hour (authlib, google-auth); a day is the sane maximum.
pub const MAX_EXP_AHEAD_SECONDS: i64 = 86_400;
/// The longest `jti` stored.
pub const MAX_JTI_LEN: usize = 255;

/// What the assertion is for: the rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `private_key_jwt`: `sub` is the client_id, `jti` required, a short lifetime.
    ClientAuth,
    /// The JWT-bearer grant: `sub` is the user's e-mail, `iat` required; without a `jti` the
    /// assertion is remembered by the digest of what its signature covers.
    Grant,
}

/// The issuer an assertion claims (its client_id), read without verifying anything: what the
/// application is looked up by.
pub fn claimed_issuer(jwt: &str) -> Option<String> {
    let (_, payload) = client_keys::peek(jwt)?;
    payload.get("iss")?.as_str().map(str::to_owned)
}

/// An assertion that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub subject: String,
    /// The `scope` claim (space-separated), if any.
    pub scope: Option<String>,
}

/// Why an assertion was refused. `Invalid` is all an unauthenticated caller learns; the
/// others follow a good signature.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("The assertion is invalid")]
    Invalid,
    #[error(transparent)]
    Claims(#[from] AssertionRejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Purpose::ClientAuth => "client assertion",
            Purpose::Grant => "assertion",
        })
    }
}

/// What checking assertions takes: the fetched keys, the dummy keys and the rules. Built once.
#[derive(Debug)]
pub struct AssertionVerifier {
    pub remote: RemoteKeys,
    pub inline: InlineKeys,
    pub dummy: DummyKeys,
    pub rules: Rules,
}

/// Where an application's keys are, if it has any.
enum Keys<'a> {
    Inline(&'a str),
    Uri(&'a str),
}

fn keys_of(app: &Application) -> Option<Keys<'_>> {
    match (&app.jwks, &app.jwks_uri) {
        (Some(jwks), _) => Some(Keys::Inline(jwks)),
        (None, Some(uri)) => Some(Keys::Uri(uri)),
        (None, None) => None,
    }
}

impl AssertionVerifier {
    /// Checks `jwt` as `purpose` for `app` (None: no such client, or one that may not use an
    /// assertion here), at `now`; records its `jti`.
    pub async fn verify(
        &self,
        db: &Db,
        app: Option<&Application>,
        jwt: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Verified, AssertionError> {
        let (header, payload) = client_keys::peek(jwt).ok_or(AssertionError::Invalid)?;
        let keys = app.and_then(keys_of);
        let (Some(app), Some(keys)) = (app, keys) else {
            self.dummy.verify(jwt, &header);
            return Err(AssertionError::Invalid);
        };
        self.check_signature(jwt, &header, app.client_id.as_str(), keys)
            .await?;
        let claims: RawClaims =
            serde_json::from_value(payload).map_err(|_| AssertionError::Invalid)?;
        let (verified, jti) = check_claims(
            &claims,
            app.client_id.as_str(),
            purpose,
            &self.rules,
            now,
            || signing_input_digest(jwt),
        )
        .map_err(AssertionError::Claims)?;
        if let Some((jti, until)) = jti
            && !assertion_jtis::first_use(db, app.client_id.as_str(), &jti, until, now).await?
        {
            return Err(AssertionRejection::Replayed.into());
        }
        Ok(verified)
    }

    async fn check_signature(
        &self,
        jwt: &str,
        header: &AssertionHeader,
        client_id: &str,
        keys: Keys<'_>,
    ) -> Result<(), AssertionError> {
        match keys {
            Keys::Inline(text) => {
                let set = self.inline.get(client_id, text).map_err(|e| {
                    tracing::error!(error = %e, "a stored JWKS does not parse");
                    AssertionError::Invalid
                })?;
                set.verify(jwt, header).map_err(|_| AssertionError::Invalid)
            }
            Keys::Uri(uri) => {
                let set = match self.remote.get(uri).await {
                    Ok(set) => set,
                    Err(_) => {
                        self.dummy.verify(jwt, header);
                        return Err(AssertionError::Invalid);
                    }
                };
                match set.verify(jwt, header) {
                    Ok(()) => Ok(()),
                    // The integrator may have rotated: a new kid is looked for once.
                    Err(SignatureError::UnknownKid) => match self.remote.refetch(uri).await {
                        Some(set) => set.verify(jwt, header).map_err(|_| AssertionError::Invalid),
                        None => Err(AssertionError::Invalid),
                    },
                    Err(SignatureError::Invalid) => Err(AssertionError::Invalid),
                }
            }
        }
    }
}
