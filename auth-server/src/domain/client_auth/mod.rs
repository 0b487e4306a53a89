//! Client authentication, shared by every endpoint a client authenticates to: a secret (RFC 6749
//! §2.3.1, `client_secret_basic` or `client_secret_post`) or a JWT signed by one of the
//! application's keys (`private_key_jwt`, RFC 7523 §2.2). Unknown ids, malformed headers and
//! wrong secrets all take one argon2 verification and produce the same error; unknown ids and
//! wrong signatures one signature verification. The failure limits count both kinds alike.

mod presented;

pub use presented::{
    AssertionFields, ClientAuthInfo, ConflictingCredentials, Presented, presented,
};

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use secrecy::SecretString;
use shared::{ClientId, Scope};

use std::sync::Arc;

use super::assertions::{self, AssertionError, AssertionRejection, AssertionVerifier, Purpose};
use super::client_secret::{self, HashUpgrades, Lane, SecretVerifier, VerifyError};
use super::failure_limits::{Attempt, FailureLimits};
use super::secret_cache::SecretCache;
use crate::metrics::AuthMetrics;
use crate::model::{Application, AuthMethod};
use crate::model::{StoreError, User};
use crate::store::Db;
use crate::store::applications::{TokenKey, UserKey, WithUser};
use crate::store::row_cache::RowCache;

/// What authenticating a client takes besides the database: the argon2 verifier, the
/// verified-secret cache, the failure limits, the row cache the lookups go through, and the
/// counters that watch them. Built once.
#[derive(Debug)]
pub struct ClientAuthenticator {
    pub rows: RowCache,
    pub secrets: SecretVerifier,
    pub cache: SecretCache,
    pub limits: FailureLimits,
    pub metrics: AuthMetrics,
    pub assertions: AssertionVerifier,
    pub upgrades: Arc<HashUpgrades>,
}

/// What to read in the same query as the application (one database round trip), handed back
/// only to an authenticated client.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    Application,
    /// The user a token request names.
    User(UserKey<'a>),
    /// Introspection: the token's application, user and revocation.
    Token(&'a TokenKey),
}

/// An authenticated, active client and what `Lookup` asked for.
#[derive(Debug)]
pub struct Authenticated {
    pub app: Application,
    pub user: Option<User>,
    pub token: Option<WithUser>,
    /// What the JWT-bearer grant's assertion said (only for `Presented::GrantAssertion`).
    pub grant: Option<assertions::Verified>,
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
    #[error(transparent)]
    Assertion(AssertionRejection),
    /// Authenticated, but the endpoint needs a privilege the application lacks.
    #[error("This application lacks the {0} privilege")]
    LacksPrivilege(Scope),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The privilege an endpoint needs (`tokens:introspect`, `tokens:revoke`...), checked after
/// authentication.
pub fn require(app: &Application, privilege: Scope) -> Result<(), AuthError> {
    if app.scopes.contains(privilege) {
        Ok(())
    } else {
        Err(AuthError::LacksPrivilege(privilege))
    }
}

/// Authenticates the client the request presented: the one use case behind every endpoint a
/// client authenticates to. The application and what `lookup` names are read in one query.
///
/// A secret matching the verified-secret cache costs no argon2 and is never limited; otherwise
/// at most one argon2 verification runs whatever the outcome (a dummy one for an unknown id,
/// and for absent or malformed credentials, which authenticate as nobody), and the failure
/// limits refuse only wrong credentials (`check`). An assertion costs one signature check.
pub async fn authenticate(
    db: &Db,
    clients: &ClientAuthenticator,
    info: ClientAuthInfo,
    lookup: Lookup<'_>,
    now: DateTime<Utc>,
) -> Result<Authenticated, AuthError> {
    let (client_id, proof) = match info.presented {
        Presented::Credentials { client_id, secret } => (client_id, Proof::Secret(secret)),
        Presented::Assertion {
            client_id,
            assertion,
        } => (client_id, Proof::Assertion(assertion, Purpose::ClientAuth)),
        Presented::GrantAssertion {
            client_id,
            assertion,
        } => (client_id, Proof::Assertion(assertion, Purpose::Grant)),
        Presented::None | Presented::Malformed => (
            String::new(),
            Proof::Secret(SecretString::from(String::new())),
        ),
    };
    let (app, user, token) = find(db, &clients.rows, &client_id, lookup).await?;
    let (app, grant) = match proof {
        Proof::Secret(secret) => (
            check(db, clients, &client_id, secret, app, info.source, now).await?,
            None,
        ),
        Proof::Assertion(jwt, purpose) => {
            let (app, verified) = check_assertion(
                db,
                clients,
                &client_id,
                &jwt,
                app,
                purpose,
                info.source,
                now,
            )
            .await?;
            (app, (purpose == Purpose::Grant).then_some(verified))
        }
    };
    // The caller, on the span this runs in (the request's, or the grant's): its log lines and
    // trace name it from here on.
    server_kit::traces::record_client_id(app.client_id.as_str());
    Ok(Authenticated {
        app,
        user,
        token,
        grant,
    })
}

/// The application a presented client_id names and what `lookup` names, in one query; nothing
/// for a client_id that can't be one.
async fn find(
    db: &Db,
    rows: &RowCache,
    client_id: &str,
    lookup: Lookup<'_>,
) -> Result<(Option<Application>, Option<User>, Option<WithUser>), StoreError> {
    let Ok(id) = ClientId::parse(client_id) else {
        return Ok((None, None, None));
    };
    Ok(match lookup {
        Lookup::Application => (rows.find_by_client_id(db, &id).await?, None, None),
        Lookup::User(key) => rows
            .find_with_user(db, &id, key)
            .await?
            .map_or((None, None, None), |found| {
                (Some(found.app), found.user, None)
            }),
        Lookup::Token(token) => {
            let (app, found) = rows.find_caller_and_token(db, &id, token).await?;
            (app, None, found)
        }
    })
}

/// What proves the caller is the client.
enum Proof {
    Secret(SecretString),
    Assertion(String, Purpose),
}

/// The failure-limit key of a presented client_id: an attacker's 10,000-character "client_id"
/// is counted by a prefix.
fn limit_key(client_id: &str) -> String {
    client_id.chars().take(64).collect()
}

/// The tail every wrong credential shares: the attempt counts as a failure; past the limit the
/// answer is 429, else the counter records why (`wrong`, or an unknown client).
fn failed(
    clients: &ClientAuthenticator,
    attempt: Attempt,
    wrong: &'static str,
    found: bool,
) -> Result<(), AuthError> {
    let over = attempt.over_limit();
    let retry_after = attempt.retry_after();
    attempt.failed();
    if over {
        clients.metrics.failure("rate_limited");
        return Err(AuthError::Limited { retry_after });
    }
    clients
        .metrics
        .failure(if found { wrong } else { "unknown_client" });
    Ok(())
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
            failed(clients, attempt, "wrong_assertion", found.is_some())?;
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
/// 2. Credentials refused within `REFUSED_TTL`: no argon2, counted as a failure.
/// 3. Otherwise the attempt is counted first (failure_limits.rs); within the limits it is
///    verified on the normal lane, past them on the reserved lane, where a correct secret
///    still gets through and a wrong one answers 429. Concurrent misses for the same
///    credentials share one verification.
async fn check(
    db: &Db,
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
    if let Some(app) = &app
        && clients.cache.contains(&key).await
    {
        clients
            .metrics
            .secret_cache
            .with_label_values(&["hit"])
            .inc();
        return active(app.clone()).inspect_err(|_| clients.metrics.failure("inactive"));
    }
    // Refused within REFUSED_TTL (secret_cache.rs): the same answer without argon2, still a
    // failure to the limits.
    let refused = clients.cache.was_refused(&key).await;
    clients
        .metrics
        .secret_cache
        .with_label_values(&[if refused { "refused" } else { "miss" }])
        .inc();
    let attempt = clients
        .limits
        .begin(&limit_key(client_id), source, now)
        .await?;
    if refused {
        failed(clients, attempt, "wrong_secret", app.is_some())?;
        return Err(AuthError::Failed);
    }
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
    // The wait for argon2 (its bounded pool, or another request's identical verification)
    // holds no in-flight place: a flood of wrong secrets queued here must not make clients
    // whose secret is cached queue behind it (server_kit::in_flight).
    let outcome = server_kit::in_flight::released(async {
        match &app {
            // Only a known client can succeed: unknown ids are never shared nor cached.
            Some(_) => clients.cache.verify_once(key, verify).await,
            None => verify.await.map_err(Arc::new),
        }
    })
    .await;
    let limited = AuthError::Limited {
        retry_after: attempt.retry_after(),
    };
    match (outcome, app) {
        (Ok(()), Some(app)) => {
            drop(attempt); // a success gives its count back
            upgrade_outdated_hash(db, &clients.upgrades, &app, &secret, now);
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
            clients.cache.refuse(key).await;
            failed(clients, attempt, "wrong_secret", found.is_some())?;
            Err(AuthError::Failed)
        }
    }
}

/// True when the secret just verified is certainly the current one and its hash was made with
/// earlier argon2 parameters: during a rotation's grace the previous secret may be the one
/// presented, and hashing it as the current one would undo the rotation, so none is upgraded
/// until the grace ends.
fn needs_upgrade(app: &Application, now: DateTime<Utc>) -> bool {
    app.live_previous_secret(now).is_none() && client_secret::is_outdated(&app.secret_hash)
}

/// Hashes a correct secret again with the current parameters when its stored hash is outdated
/// (`needs_upgrade`), after the answer and off the request, as Django's `must_update` does: a
/// deployment's existing secrets then cost the current verification memory without a
/// rotation. The secret stays the same; the write takes only if the hash is still the one
/// verified. The next verification (the new hash is another cache key) uses the new hash.
fn upgrade_outdated_hash(
    db: &Db,
    upgrades: &Arc<HashUpgrades>,
    app: &Application,
    secret: &SecretString,
    now: DateTime<Utc>,
) {
    if !needs_upgrade(app, now) {
        return;
    }
    let Some(guard) = upgrades.start(app.id) else {
        return;
    };
    let (db, id, old, secret) = (db.clone(), app.id, app.secret_hash.clone(), secret.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let new = match tokio::task::spawn_blocking(move || client_secret::hash(&secret)).await {
            Ok(Ok(new)) => new,
            _ => {
                tracing::warn!(%id, "could not hash a secret again with the current parameters");
                return;
            }
        };
        match crate::store::applications::upgrade_secret_hash(&db, id, &old, &new).await {
            Ok(true) => {
                tracing::info!(%id, "secret hash upgraded to the current argon2 parameters")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(%id, error = %e, "could not store an upgraded secret hash"),
        }
    });
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

    /// Only an outdated current hash outside a rotation's grace is upgraded.
    #[test]
    fn an_outdated_hash_is_upgraded_only_outside_a_grace() {
        let now = Utc::now();
        let mut app = Application::fixture(now);
        app.secret_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNlZWRzZWVk$c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ".into();
        assert!(needs_upgrade(&app, now));
        app.previous_secret_hash = Some(app.secret_hash.clone());
        app.previous_secret_expires_at = Some(now + chrono::Duration::hours(1));
        assert!(!needs_upgrade(&app, now), "during a grace");
        assert!(
            needs_upgrade(&app, now + chrono::Duration::hours(2)),
            "once it ended"
        );
        app.secret_hash = client_secret::hash(&SecretString::from("s")).unwrap();
        assert!(!needs_upgrade(&app, now + chrono::Duration::hours(2)));
    }

    /// An endpoint's privilege is held or the authenticated caller is refused, naming it.
    #[test]
    fn a_privilege_is_required_of_the_application() {
        let mut app = Application::fixture(Utc::now());
        app.scopes = [Scope::RoomsCreate, Scope::TokensRevocations]
            .into_iter()
            .collect();
        assert!(require(&app, Scope::TokensRevocations).is_ok());
        assert!(matches!(
            require(&app, Scope::TokensIntrospect),
            Err(AuthError::LacksPrivilege(Scope::TokensIntrospect))
        ));
    }
}
