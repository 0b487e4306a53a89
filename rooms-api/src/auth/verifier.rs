//! Local verification (docs/spec/rooms-api.md §1): the configured algorithm only, signature, `typ`, then
//! the shared claim checks.

use std::sync::Arc;

use secrecy::ExposeSecret;
use server_kit::verified_tokens::VerifiedTokens;
use shared::claims::Expectations;
use shared::token::JwsVerifier;
use shared::token::{self, TokenRejection, TypPolicy};
use shared::{AccessTokenClaims, Clock, SigningAlg};

use super::AuthFailure;
use super::bearer::BearerHeader;
use super::dpop::{BindingDeps, BindingError, DpopRequest, check_binding};
use super::introspection::Introspector;
use super::jwks::JwksCache;
use super::revocations::RevocationFeed;
use crate::config::{Config, VerificationMode};
use crate::metrics::RoomsMetrics;
use crate::principal::Principal;

#[derive(Debug)]
enum Keys {
    Jwks(Arc<JwksCache>),
    Hs256(Arc<dyn JwsVerifier>),
    Introspection(Arc<Introspector>),
}

#[derive(Debug)]
pub struct Authenticator {
    mode: VerificationMode,
    keys: Keys,
    expect: Expectations,
    clock: Arc<dyn Clock>,
    /// Local modes only: revocations and not-before times from the auth-server.
    revocations: Option<Arc<RevocationFeed>>,
    metrics: Arc<RoomsMetrics>,
    /// Signature-verified claims by SHA-256 of the token (see `verified_claims`).
    verified: VerifiedTokens,
    /// The rooms database: DPoP proofs' `jti`s (`proof_jtis`), written through the same
    /// `WriteGate` as the rooms.
    db: super::proof_jtis::Db,
    writes: server_kit::db::WriteGate,
    /// Verifiers built from DPoP proofs' keys.
    dpop_keys: server_kit::dpop_keys::DpopKeys,
}

impl Authenticator {
    pub fn new(
        config: &Config,
        clock: Arc<dyn Clock>,
        metrics: Arc<RoomsMetrics>,
        db: super::proof_jtis::Db,
        writes: server_kit::db::WriteGate,
    ) -> anyhow::Result<Self> {
        let keys = match config.verification {
            VerificationMode::Jwks => Keys::Jwks(Arc::new(JwksCache::new(
                config.jwks_url.clone(),
                Arc::clone(&clock),
            )?)),
            VerificationMode::Hs256 => {
                let secret = config
                    .hs256_secret
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("TOKEN_HS256_SECRET is required"))?;
                Keys::Hs256(token::hs256_verifier(secret.expose_secret())?)
            }
            VerificationMode::Introspection => {
                let c = config
                    .introspection
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("introspection settings are required"))?;
                Keys::Introspection(Arc::new(Introspector::new(
                    c,
                    config.issuer.clone(),
                    config.audience.clone(),
                    Arc::clone(&clock),
                    metrics.introspection_cache.clone(),
                )?))
            }
        };
        let revocations = match (&config.revocation, config.verification) {
            (_, VerificationMode::Introspection) => None,
            (Some(r), _) => Some(Arc::new(RevocationFeed::new(
                r.clone(),
                Arc::clone(&clock),
            )?)),
            (None, _) => {
                tracing::warn!(
                    "REVOCATION_CLIENT_ID/REVOCATION_CLIENT_SECRET are unset: revoked tokens and \
                     deactivated applications or users are honoured only when their tokens expire"
                );
                None
            }
        };
        Ok(Self {
            mode: config.verification,
            keys,
            expect: Expectations {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                leeway_seconds: config.leeway_seconds,
            },
            clock,
            revocations,
            metrics,
            verified: VerifiedTokens::new(config.verified_token_cache_bytes),
            db,
            writes,
            dpop_keys: Default::default(),
        })
    }

    pub fn revocations(&self) -> Option<&Arc<RevocationFeed>> {
        self.revocations.as_ref()
    }

    pub fn introspector(&self) -> Option<&Arc<Introspector>> {
        match &self.keys {
            Keys::Introspection(i) => Some(i),
            _ => None,
        }
    }

    pub fn jwks(&self) -> Option<&Arc<JwksCache>> {
        match &self.keys {
            Keys::Jwks(c) => Some(c),
            _ => None,
        }
    }

    /// Ready when keys are loaded (or a shared secret is configured, or the introspection
    /// endpoint answers), and the revocation feed, when configured, is fresh.
    pub async fn is_ready(&self) -> bool {
        if self.revocations.as_ref().is_some_and(|f| !f.is_fresh()) {
            return false;
        }
        match &self.keys {
            Keys::Jwks(c) => c.is_loaded(),
            Keys::Hs256(_) => true,
            Keys::Introspection(i) => !matches!(
                i.authenticate("readiness-probe", self.mode.as_str()).await,
                Err(AuthFailure::Unavailable)
            ),
        }
    }

    /// What the verified-token cache holds now, in bytes by its own estimate: at most
    /// `VERIFIED_TOKEN_CACHE_MIB`, whatever the number of distinct tokens presented.
    pub fn verified_cache_bytes(&self) -> u64 {
        self.verified.weighed_bytes()
    }

    /// A key the auth-server retired (its feed lists it): no token it signed is accepted.
    fn is_retired(&self, kid: &str) -> bool {
        self.revocations
            .as_ref()
            .is_some_and(|feed| feed.is_retired(kid))
    }

    /// The signature check, cached by a hash of the token: a token reused for an hour pays one
    /// signature verification. Everything that can change — expiry, revocation, not-before, the
    /// key still being published — is checked again on every request by the caller and here.
    async fn verified_claims(&self, token: &str) -> Result<Arc<AccessTokenClaims>, AuthFailure> {
        let key = VerifiedTokens::key(token);
        let hit = self.verified.get(&key, |kid| match (&self.keys, kid) {
            (Keys::Jwks(cache), Some(kid)) => cache.is_known(kid) && !self.is_retired(kid),
            (Keys::Jwks(_), None) => false,
            _ => true,
        });
        if let Some(claims) = hit {
            self.metrics.token_cache.with_label_values(&["hit"]).inc();
            return Ok(claims);
        }
        self.metrics.token_cache.with_label_values(&["miss"]).inc();
        let invalid = AuthFailure::Invalid;
        let jose = token::decode_header(token).map_err(invalid)?;
        let claims = match &self.keys {
            Keys::Hs256(verifier) => {
                token::check_typ(&jose, TypPolicy::AllowPlainJwt).map_err(invalid)?;
                token::verify_signature(token, &jose, SigningAlg::HS256, verifier.as_ref())
                    .map_err(invalid)?
            }
            Keys::Jwks(cache) => {
                token::check_typ(&jose, TypPolicy::AccessTokenOnly).map_err(invalid)?;
                // Only algorithms a JWK can carry are considered; `none` and HS* never are.
                let alg: SigningAlg = jose
                    .alg
                    .parse()
                    .ok()
                    .filter(|a: &SigningAlg| a.is_asymmetric())
                    .ok_or(AuthFailure::Invalid(TokenRejection::Algorithm))?;
                let kid = jose
                    .kid
                    .as_deref()
                    .ok_or(AuthFailure::Invalid(TokenRejection::UnknownKey))?;
                if self.is_retired(kid) {
                    return Err(AuthFailure::Invalid(TokenRejection::Revoked));
                }
                let announced = self
                    .revocations
                    .as_ref()
                    .is_some_and(|feed| feed.announced(kid));
                let entry = cache
                    .get(kid, announced)
                    .await
                    .map_err(|_| AuthFailure::Unavailable)?
                    .ok_or(AuthFailure::Invalid(TokenRejection::UnknownKey))?;
                if entry.alg != alg {
                    return Err(AuthFailure::Invalid(TokenRejection::Algorithm));
                }
                token::verify_signature(token, &jose, entry.alg, entry.verifier.as_ref())
                    .map_err(invalid)?
            }
            Keys::Introspection(_) => return Err(AuthFailure::Unavailable),
        };
        Ok(self.verified.insert(key, jose.kid, claims))
    }

    /// Verifies the token, then its DPoP binding; refusals are counted by reason.
    pub async fn authenticate(
        &self,
        header: &BearerHeader,
        dpop: &DpopRequest,
    ) -> Result<Principal, AuthFailure> {
        let result = match self.verify(header).await {
            Ok(principal) => self.bound(header, principal, dpop).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            let reason = match e {
                AuthFailure::Missing => "missing_token",
                AuthFailure::MalformedHeader => "invalid_request",
                AuthFailure::Invalid(_) => "invalid_token",
                AuthFailure::Unavailable => "unavailable",
                AuthFailure::Dpop(_) => "invalid_dpop",
            };
            self.metrics
                .auth_failures
                .with_label_values(&[reason])
                .inc();
        }
        result
    }

    /// The DPoP rule for a verified token (`dpop::check_binding`), in every verification mode.
    async fn bound(
        &self,
        header: &BearerHeader,
        principal: Principal,
        dpop: &DpopRequest,
    ) -> Result<Principal, AuthFailure> {
        let BearerHeader::Token(token, scheme) = header else {
            return Err(AuthFailure::Missing);
        };
        let deps = BindingDeps {
            db: &self.db,
            writes: &self.writes,
            keys: &self.dpop_keys,
        };
        match check_binding(
            deps,
            token,
            *scheme,
            principal.jkt.as_deref(),
            dpop,
            self.clock.now(),
        )
        .await
        {
            Ok(()) => Ok(principal),
            Err(BindingError::Refused(why)) => Err(AuthFailure::Dpop(why)),
            Err(BindingError::Store(e)) => {
                tracing::warn!(error = %e, "DPoP replay table unavailable");
                Err(AuthFailure::Unavailable)
            }
        }
    }

    async fn verify(&self, header: &BearerHeader) -> Result<Principal, AuthFailure> {
        let token = match header {
            BearerHeader::Missing => return Err(AuthFailure::Missing),
            BearerHeader::Malformed => return Err(AuthFailure::MalformedHeader),
            BearerHeader::Token(t, _) => t,
        };
        if let Keys::Introspection(i) = &self.keys {
            return i.authenticate(token, self.mode.as_str()).await;
        }
        // Fail closed: without a fresh feed, a revoked token could pass.
        if self.revocations.as_ref().is_some_and(|f| !f.is_fresh()) {
            return Err(AuthFailure::Unavailable);
        }
        let claims = self.verified_claims(token).await?;
        claims
            .validate(&self.expect, self.clock.now())
            .map_err(|e| AuthFailure::Invalid(e.into()))?;
        let user_id = claims
            .subject()
            .ok_or(AuthFailure::Invalid(TokenRejection::Subject))?
            .to_owned();
        if self
            .revocations
            .as_ref()
            .is_some_and(|f| f.is_refused(&claims, &user_id))
        {
            return Err(AuthFailure::Invalid(TokenRejection::Revoked));
        }
        Ok(Principal {
            user_id,
            client_id: claims.client_id.clone(),
            scopes: claims.scopes(),
            mode: self.mode.as_str(),
            jkt: claims.jkt().map(str::to_owned),
        })
    }
}
