//! Client authentication, shared by every endpoint a client authenticates to: a secret (RFC 6749
//! §2.3.1, `client_secret_basic` or `client_secret_post`) or a JWT signed by one of the
//! application's keys (`private_key_jwt`, RFC 7523 §2.2). Unknown ids, malformed headers and
//! wrong secrets all take one argon2 verification and produce the same error; unknown ids and
//! wrong signatures one signature verification. The failure limits count both kinds alike.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use secrecy::SecretString;
use shared::ClientId;
use shared::basic_auth::{self, BasicAuthError};

use std::sync::Arc;

use super::assertions::{self, AssertionError, AssertionVerifier, Purpose};
use super::client_secret::{Lane, SecretVerifier, VerifyError};
use super::failure_limits::FailureLimits;
use super::secret_cache::SecretCache;
use crate::metrics::AuthMetrics;
use crate::model::{Application, AuthMethod};
use crate::model::{StoreError, User};
use crate::store::Db;
use crate::store::applications::{self, TokenKey, UserKey, WithUser};

/// What authenticating a client takes besides the database: the argon2 verifier, the
/// verified-secret cache, the failure limits, and the counters that watch them. Built once.
#[derive(Debug)]
pub struct ClientAuthenticator {
    pub secrets: SecretVerifier,
    pub cache: SecretCache,
    pub limits: FailureLimits,
    pub metrics: AuthMetrics,
    pub assertions: AssertionVerifier,
}

/// Credentials as presented, before any lookup.
pub enum Presented {
    /// No credentials anywhere.
    None,
    /// A Basic header that does not decode: fails authentication (never a 400).
    Malformed,
    Credentials {
        client_id: String,
        secret: SecretString,
    },
    /// `client_assertion` (private_key_jwt); `client_id` is its `iss`, not yet verified.
    Assertion {
        client_id: String,
        assertion: String,
    },
}

/// The body fields of `private_key_jwt` (RFC 7521 §4.2), as received.
#[derive(Default, Clone)]
pub struct AssertionFields {
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConflictingCredentials(pub &'static str);

/// Reads credentials from the `Authorization` header and the body fields. Both may name the
/// client (some libraries send `client_id` in the body too), but only if they agree and the
/// credentials are sent once: a secret and an assertion together are refused.
pub fn presented(
    authorization: Option<&str>,
    body_client_id: Option<&str>,
    body_client_secret: Option<String>,
    assertion: AssertionFields,
) -> Result<Presented, ConflictingCredentials> {
    let basic = authorization.filter(|h| basic_auth::is_basic(h));
    match (assertion.client_assertion_type, assertion.client_assertion) {
        (None, None) => {}
        (Some(kind), Some(jwt)) => {
            if basic.is_some() || body_client_secret.is_some() {
                return Err(ConflictingCredentials(
                    "Client credentials must be sent once: a client_assertion or a secret, not both",
                ));
            }
            if kind != shared::grant::CLIENT_ASSERTION_JWT_BEARER {
                return Err(ConflictingCredentials(
                    "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
            }
            // An unreadable assertion names no client: it fails as an assertion (no lookup, no
            // argon2), counted under the empty client_id like any malformed credential.
            let iss = assertions::claimed_issuer(&jwt).unwrap_or_default();
            if !iss.is_empty() && body_client_id.is_some_and(|id| id != iss) {
                return Err(ConflictingCredentials(
                    "client_id in the body differs from the client assertion's iss",
                ));
            }
            return Ok(Presented::Assertion {
                client_id: iss,
                assertion: jwt,
            });
        }
        _ => {
            return Err(ConflictingCredentials(
                "client_assertion and client_assertion_type go together",
            ));
        }
    }
    match basic {
        Some(header) => {
            if body_client_secret.is_some() {
                return Err(ConflictingCredentials(
                    "Client credentials must be sent once: Basic authorization or client_secret in the body, not both",
                ));
            }
            match basic_auth::parse_basic(header) {
                Ok(creds) => {
                    if body_client_id.is_some_and(|id| id != creds.username) {
                        return Err(ConflictingCredentials(
                            "client_id in the body differs from the Basic authorization",
                        ));
                    }
                    Ok(Presented::Credentials {
                        client_id: creds.username,
                        secret: SecretString::from(creds.password),
                    })
                }
                Err(BasicAuthError::Malformed | BasicAuthError::NotBasic) => {
                    Ok(Presented::Malformed)
                }
            }
        }
        None => match (body_client_id, body_client_secret) {
            (None, None) => Ok(Presented::None),
            (Some(id), secret) => Ok(Presented::Credentials {
                client_id: id.to_owned(),
                secret: SecretString::from(secret.unwrap_or_default()),
            }),
            (None, Some(_)) => Ok(Presented::Malformed),
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Client authentication failed")]
    Failed,
    #[error("Application is inactive")]
    Inactive,
    #[error(transparent)]
    Busy(#[from] VerifyError),
    #[error("Too many failed authentications, retry later")]
    Limited { retry_after: u64 },
    /// A client assertion with a good signature whose claims are refused: the caller holds
    /// the key, so it is told which rule.
    #[error("{0}")]
    Assertion(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Authenticates the client. A secret matching the verified-secret cache costs no argon2 and
/// is never limited; otherwise at most one argon2 verification runs whatever the outcome (a
/// dummy one for an unknown id), and the failure limits refuse only wrong secrets (`check`).
pub async fn authenticate(
    db: &Db,
    clients: &ClientAuthenticator,
    presented: Presented,
    source: IpAddr,
    now: DateTime<Utc>,
) -> Result<Application, AuthError> {
    Ok(
        authenticate_with_user(db, clients, presented, source, None, now)
            .await?
            .0,
    )
}

/// `authenticate`, reading the user `user` names in the same query as the application (the
/// token endpoint's next step needs it). The user is returned only to an authenticated client.
pub async fn authenticate_with_user(
    db: &Db,
    clients: &ClientAuthenticator,
    presented: Presented,
    source: IpAddr,
    user: Option<UserKey<'_>>,
    now: DateTime<Utc>,
) -> Result<(Application, Option<User>), AuthError> {
    let (client_id, proof) = credentials(presented);
    let (app, user) = find_with_user(db, &client_id, user).await?;
    let app = prove(db, clients, &client_id, proof, app, source, now).await?;
    Ok((app, user))
}

/// The application a presented client_id names, and the user `user` names, in one query;
/// nothing for a client_id that can't be one.
async fn find_with_user(
    db: &Db,
    client_id: &str,
    user: Option<UserKey<'_>>,
) -> Result<(Option<Application>, Option<User>), StoreError> {
    Ok(match (ClientId::parse(client_id), user) {
        (Ok(id), Some(key)) => applications::find_with_user(db, &id, key)
            .await?
            .map_or((None, None), |found| (Some(found.app), found.user)),
        (Ok(id), None) => (applications::find_by_client_id(db, &id).await?, None),
        (Err(_), _) => (None, None),
    })
}

/// `authenticate` for introspection, reading the token's application, user and revocation in
/// the same query as the caller's application. The token's part is returned only to an
/// authenticated client.
pub async fn authenticate_with_token(
    db: &Db,
    clients: &ClientAuthenticator,
    presented: Presented,
    source: IpAddr,
    token: &TokenKey,
    now: DateTime<Utc>,
) -> Result<(Application, Option<WithUser>), AuthError> {
    let (client_id, proof) = credentials(presented);
    let (app, found) = match ClientId::parse(&client_id) {
        Ok(id) => applications::find_caller_and_token(db, &id, token).await?,
        Err(_) => (None, None),
    };
    let app = prove(db, clients, &client_id, proof, app, source, now).await?;
    Ok((app, found))
}

/// What proves the caller is the client.
enum Proof {
    Secret(SecretString),
    Assertion(String),
}

/// Absent or malformed credentials authenticate as nobody: the same dummy argon2 and error as
/// an unknown client_id.
fn credentials(presented: Presented) -> (String, Proof) {
    match presented {
        Presented::Credentials { client_id, secret } => (client_id, Proof::Secret(secret)),
        Presented::Assertion {
            client_id,
            assertion,
        } => (client_id, Proof::Assertion(assertion)),
        Presented::None | Presented::Malformed => (
            String::new(),
            Proof::Secret(SecretString::from(String::new())),
        ),
    }
}

async fn prove(
    db: &Db,
    clients: &ClientAuthenticator,
    client_id: &str,
    proof: Proof,
    app: Option<Application>,
    source: IpAddr,
    now: DateTime<Utc>,
) -> Result<Application, AuthError> {
    match proof {
        Proof::Secret(secret) => check(clients, client_id, secret, app, source, now).await,
        Proof::Assertion(jwt) => check_assertion(
            db,
            clients,
            client_id,
            &jwt,
            app,
            Purpose::ClientAuth,
            source,
            now,
        )
        .await
        .map(|(app, _)| app),
    }
}

/// The failure-limit key of a presented client_id: an attacker's 10,000-character "client_id"
/// is counted by a prefix.
fn limit_key(client_id: &str) -> String {
    client_id.chars().take(64).collect()
}

/// The JWT-bearer grant's authentication (RFC 7523 §2.1): the assertion, whose `iss`
/// (`client_id`, read unverified) names the application, both authenticates it and names the
/// user (`sub`, read unverified into the same query as the application and used only once the
/// assertion checked out). Any application with keys may use the grant, whatever its
/// `token_endpoint_auth_method`.
pub async fn authenticate_grant(
    db: &Db,
    clients: &ClientAuthenticator,
    client_id: &str,
    jwt: &str,
    source: IpAddr,
    user: Option<UserKey<'_>>,
    now: DateTime<Utc>,
) -> Result<(Application, Option<User>, assertions::Verified), AuthError> {
    let (app, user) = find_with_user(db, client_id, user).await?;
    let (app, verified) = check_assertion(
        db,
        clients,
        client_id,
        jwt,
        app,
        Purpose::Grant,
        source,
        now,
    )
    .await?;
    Ok((app, user, verified))
}

/// Authenticates an assertion for `purpose`. Counted by the failure limits like a secret; a
/// signature is cheap next to argon2, so past the limit it is still checked and a valid
/// assertion gets through (a correct credential is never refused), a wrong one answers 429.
#[allow(clippy::too_many_arguments)]
async fn check_assertion(
    db: &Db,
    clients: &ClientAuthenticator,
    client_id: &str,
    jwt: &str,
    app: Option<Application>,
    purpose: Purpose,
    source: IpAddr,
    now: DateTime<Utc>,
) -> Result<(Application, assertions::Verified), AuthError> {
    let attempt = clients
        .limits
        .begin(&limit_key(client_id), source, now)
        .await?;
    // Client authentication by assertion is for applications registered for it; the grant
    // for any application with keys (the verifier checks it has some).
    let eligible = app
        .as_ref()
        .filter(|a| purpose == Purpose::Grant || a.auth_method == AuthMethod::PrivateKeyJwt);
    let outcome = clients
        .assertions
        .verify(db, eligible, jwt, purpose, now)
        .await;
    match (outcome, app) {
        (Ok(verified), Some(app)) => {
            drop(attempt); // a success gives its count back
            active(app)
                .map(|app| (app, verified))
                .inspect_err(|_| clients.metrics.failure("inactive"))
        }
        (Err(AssertionError::Store(e)), _) => {
            drop(attempt);
            Err(AuthError::Store(e))
        }
        (outcome, found) => {
            let over = attempt.over_limit();
            let retry_after = attempt.retry_after();
            attempt.failed();
            if over {
                clients.metrics.failure("rate_limited");
                return Err(AuthError::Limited { retry_after });
            }
            clients.metrics.failure(if found.is_some() {
                "wrong_assertion"
            } else {
                "unknown_client"
            });
            match outcome {
                Err(AssertionError::Claims(reason)) => Err(AuthError::Assertion(reason)),
                _ => Err(AuthError::Failed),
            }
        }
    }
}

/// Why one shared verification did not succeed.
#[derive(Debug)]
enum Miss {
    Wrong,
    Verify(VerifyError),
}

/// Authenticates `client_id`/`secret` against the application found for it (if any).
///
/// The secrets an application accepts at `now` are its current one and, during a rotation's
/// grace, the previous one (`Application::accepted_hashes`); the cache is bound to both.
///
/// 1. Credentials in the verified-secret cache: no argon2, no limit.
/// 2. Otherwise the attempt is counted first (failure_limits.rs); within the limits it is
///    verified on the normal lane, past them on the reserved lane, where a correct secret
///    still gets through and a wrong one answers 429. Concurrent misses for the same
///    credentials share one verification.
async fn check(
    clients: &ClientAuthenticator,
    client_id: &str,
    secret: SecretString,
    app: Option<Application>,
    source: IpAddr,
    now: DateTime<Utc>,
) -> Result<Application, AuthError> {
    let hashes: Vec<String> = app.as_ref().map_or_else(Vec::new, |a| {
        a.accepted_hashes(now)
            .into_iter()
            .map(str::to_owned)
            .collect()
    });
    let phc = if hashes.is_empty() {
        clients.secrets.dummy_hash().to_owned()
    } else {
        hashes.join("\n")
    };
    let key = clients.cache.key(client_id, &phc, &secret);
    if let (Some(app), Some(key)) = (&app, &key)
        && clients.cache.contains(key).await
    {
        clients
            .metrics
            .secret_cache
            .with_label_values(&["hit"])
            .inc();
        return active(app.clone()).inspect_err(|_| clients.metrics.failure("inactive"));
    }
    clients
        .metrics
        .secret_cache
        .with_label_values(&["miss"])
        .inc();
    let attempt = clients
        .limits
        .begin(&limit_key(client_id), source, now)
        .await?;
    let lane = if attempt.over_limit() {
        Lane::Reserved { source }
    } else {
        Lane::Normal
    };
    let verify = async {
        clients
            .metrics
            .argon2_verifications
            .with_label_values(&[if lane == Lane::Normal {
                "normal"
            } else {
                "reserved"
            }])
            .inc();
        if hashes.is_empty() {
            // An unknown client: the dummy verification, which always fails.
            return match clients.secrets.verify(secret.clone(), None, lane).await {
                Ok(_) => Err(Miss::Wrong),
                Err(e) => Err(Miss::Verify(e)),
            };
        }
        // During a grace a wrong secret costs two verifications (documented).
        for stored in &hashes {
            match clients
                .secrets
                .verify(secret.clone(), Some(stored.clone()), lane)
                .await
            {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(Miss::Verify(e)),
            }
        }
        Err(Miss::Wrong)
    };
    let outcome = match (key, &app) {
        // Only a known client can succeed: unknown ids are never shared nor cached.
        (Some(key), Some(_)) => clients.cache.verify_once(key, verify).await,
        _ => verify.await.map_err(Arc::new),
    };
    let limited = AuthError::Limited {
        retry_after: attempt.retry_after(),
    };
    match (outcome, app) {
        (Ok(()), Some(app)) => {
            drop(attempt); // a success gives its count back
            active(app).inspect_err(|_| clients.metrics.failure("inactive"))
        }
        (Err(miss), _) if matches!(*miss, Miss::Verify(_)) => {
            let over = attempt.over_limit();
            drop(attempt); // never verified: not a failure
            if over {
                // The reserved lane is full: the limit answers, as it would have.
                clients.metrics.failure("rate_limited");
                return Err(limited);
            }
            match &*miss {
                Miss::Verify(VerifyError::Busy) => Err(AuthError::Busy(VerifyError::Busy)),
                _ => Err(AuthError::Busy(VerifyError::Task)),
            }
        }
        (_, found) => {
            let over = attempt.over_limit();
            attempt.failed();
            if over {
                clients.metrics.failure("rate_limited");
                return Err(limited);
            }
            clients.metrics.failure(if found.is_some() {
                "wrong_secret"
            } else {
                "unknown_client"
            });
            Err(AuthError::Failed)
        }
    }
}

fn active(app: Application) -> Result<Application, AuthError> {
    if app.is_active {
        Ok(app)
    } else {
        Err(AuthError::Inactive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use shared::basic_auth::encode_basic;

    #[test]
    fn reads_basic_or_body_and_refuses_conflicts() {
        let h = encode_basic("abc", "s3cret");
        match presented(Some(&h), Some("abc"), None, AssertionFields::default()).unwrap() {
            Presented::Credentials { client_id, secret } => {
                assert_eq!(client_id, "abc");
                assert_eq!(secret.expose_secret(), "s3cret");
            }
            _ => panic!("expected credentials"),
        }
        assert!(presented(Some(&h), Some("other"), None, AssertionFields::default()).is_err());
        assert!(presented(Some(&h), None, Some("x".into()), AssertionFields::default()).is_err());
        assert!(matches!(
            presented(None, None, None, AssertionFields::default()),
            Ok(Presented::None)
        ));
        assert!(matches!(
            presented(Some("Bearer x"), None, None, AssertionFields::default()),
            Ok(Presented::None)
        ));
        assert!(matches!(
            presented(Some("Basic !!"), None, None, AssertionFields::default()),
            Ok(Presented::Malformed)
        ));
        assert!(matches!(
            presented(None, Some("id"), None, AssertionFields::default()),
            Ok(Presented::Credentials { .. })
        ));
    }
}
