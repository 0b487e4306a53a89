//! RFC 7662 introspection of our own tokens (docs/spec/auth-server.md §4), and the shared "is this one of
//! our tokens, and still good?" check revocation also uses.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use server_kit::verified_tokens::VerifiedTokens;
use shared::claims::{Expectations, not_before_seconds};
use shared::token::{self, TypPolicy};
use shared::{AccessTokenClaims, Actor, ClientId, ScopeSet};

use super::client_auth::{self, AuthError, ClientAuthInfo, ClientAuthenticator, Lookup};
use super::signing::KeyRing;
use crate::store::Db;
use crate::store::applications::{TokenKey, WithUser};
use shared::Scope;

/// What recognising one of our own tokens takes: the keys that sign them, the cache of
/// signatures already checked, and what their claims must say (built once, not per call).
#[derive(Debug)]
pub struct OwnTokens {
    pub keys: Arc<KeyRing>,
    pub verified: VerifiedTokens,
    expect: Expectations,
}

impl OwnTokens {
    pub fn new(keys: Arc<KeyRing>, verified: VerifiedTokens, issuer: &str, audience: &str) -> Self {
        Self {
            keys,
            verified,
            expect: Expectations {
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
                // Tokens minted right after a not-before change carry the next whole second
                // as iat.
                leeway_seconds: 1,
            },
        }
    }
}

/// A token whose signature (by one of our keys) and claims check out. Says nothing yet about
/// revocation or the application's and user's current state. The signature check is cached by
/// a hash of the token while its key is still ours; the claims are checked on every call.
pub fn verify_own(
    own: &OwnTokens,
    token: &str,
    now: DateTime<Utc>,
) -> Option<Arc<AccessTokenClaims>> {
    let keys = own.keys.snapshot();
    let cache_key = VerifiedTokens::key(token);
    let cached = own.verified.get(&cache_key, |kid| {
        kid.is_some_and(|k| keys.find(k).is_some())
    });
    let claims = match cached {
        Some(claims) => claims,
        None => {
            let header = token::decode_header(token).ok()?;
            token::check_typ(&header, TypPolicy::AccessTokenOnly).ok()?;
            let key = keys.find(header.kid.as_deref()?)?;
            let claims =
                token::verify_signature(token, &header, key.alg, key.verifier.as_ref()).ok()?;
            own.verified.insert(cache_key, header.kid, claims)
        }
    };
    claims.validate(&own.expect, now).ok()?;
    Some(claims)
}

/// What the RFC 7662 active answer says (`active` is implied; the wire type is in `api/`).
#[derive(Debug, Clone)]
pub struct ActiveToken {
    pub scope: Option<String>,
    pub client_id: String,
    pub sub: String,
    pub user_id: String,
    /// The delegated user's e-mail.
    pub username: String,
    pub token_type: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    pub delegated: bool,
    /// The acting party: the application.
    pub actor: Actor,
    /// A DPoP-bound token's key thumbprint (RFC 9449 §6.2): a resource server that
    /// introspects must check the request's proof against it.
    pub jkt: Option<String>,
}

/// A token of ours whose signature and claims check out, with what introspection must look up
/// about it (its application, user and jti).
pub struct Checked {
    claims: Arc<AccessTokenClaims>,
    sub: String,
    pub key: TokenKey,
}

/// The part of introspection that needs no database: `None` is inactive already.
pub fn check(own: &OwnTokens, token: &str, now: DateTime<Utc>) -> Option<Checked> {
    let claims = verify_own(own, token, now)?;
    let jti = claims.jti.clone()?;
    let sub = claims.subject()?.to_owned();
    let client_id = ClientId::parse(&claims.client_id).ok()?;
    let user_id = uuid::Uuid::parse_str(&sub).ok()?;
    Some(Checked {
        claims,
        sub,
        key: TokenKey {
            client_id,
            user_id,
            jti,
        },
    })
}

/// Active, with what the token may do now; or inactive, for any reason at all. `found` is the
/// token's application with its user and revocation, as read for `checked.key`.
pub fn answer(own: &OwnTokens, checked: Checked, found: Option<WithUser>) -> Option<ActiveToken> {
    let Checked { claims, sub, key } = checked;
    let WithUser {
        app,
        user,
        jti_revoked: false,
    } = found?
    else {
        return None;
    };
    if !app.is_active
        || app
            .tokens_not_before
            .is_some_and(|t| claims.issued_before(not_before_seconds(t)))
    {
        return None;
    }
    let user = user?;
    if !user.is_active
        || user
            .tokens_not_before
            .is_some_and(|t| claims.issued_before(not_before_seconds(t)))
    {
        return None;
    }
    let scopes: ScopeSet = claims.scopes().intersection(app.scopes.token_scopes());
    let iat = claims.iat.unwrap_or(claims.exp);
    Some(ActiveToken {
        scope: scopes.to_claim(),
        client_id: claims.client_id.clone(),
        sub: sub.clone(),
        user_id: sub,
        username: user.email.as_typed().to_owned(),
        token_type: if claims.cnf.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
        .to_owned(),
        exp: claims.exp,
        iat,
        nbf: claims.nbf.unwrap_or(iat),
        iss: claims.iss.clone(),
        aud: own.expect.audience.clone(),
        jti: key.jti,
        delegated: true,
        actor: claims.act.clone().unwrap_or(Actor {
            sub: claims.client_id.clone(),
        }),
        jkt: claims.jkt().map(str::to_owned),
    })
}

/// Why introspection answered nothing about the token.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    /// The caller is not an authenticated, active client holding `tokens:introspect`.
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("token is required")]
    NoToken,
}

/// Introspection (RFC 7662) as one use case. The token's signature first (cached, no I/O), so
/// the caller's application and the token's application, user and revocation are read in one
/// query; then the caller must be authenticated and hold `tokens:introspect` (before anything
/// is said about the token, even that it is missing); then the answer. `Ok(None)`: inactive.
pub async fn introspect(
    db: &Db,
    clients: &ClientAuthenticator,
    own: &OwnTokens,
    caller: ClientAuthInfo,
    token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<ActiveToken>, IntrospectError> {
    let token = token.filter(|t| !t.is_empty());
    let checked = token.and_then(|t| check(own, t, now));
    let lookup = match &checked {
        Some(c) => Lookup::Token(&c.key),
        None => Lookup::Application,
    };
    let authenticated = client_auth::authenticate(db, clients, caller, lookup, now).await?;
    client_auth::require(&authenticated.app, Scope::TokensIntrospect)?;
    if token.is_none() {
        return Err(IntrospectError::NoToken);
    }
    Ok(checked.and_then(|c| answer(own, c, authenticated.token)))
}
