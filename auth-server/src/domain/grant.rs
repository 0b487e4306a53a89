//! The client_credentials grant with user delegation (docs/spec/auth-server.md §1), in its exact order:
//! each step's failure is the answer and nothing later runs; and the JWT-bearer grant (§1a),
//! whose assertion authenticates the application and names the user, after which the same
//! steps run in the same order (e-mail, allowlist, user, token).

use secrecy::SecretString;
use shared::claims::{Issue, not_before_seconds};
use shared::{AccessTokenClaims, Clock, Email, GrantType};
use uuid::Uuid;

use super::client_auth::{self, AssertionFields, AuthError, ClientAuthenticator, Presented};
use super::client_secret::VerifyError;
use super::signing::{KeyError, KeyRing};
use crate::model::StoreError;
use crate::model::{Application, User};
use crate::store::Db;
use crate::store::applications::{self, UserKey};
use shared::ScopeSet;

/// What the tokens this server issues say, and whether it may create users on the way.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: i64,
    pub allow_user_creation: bool,
}

impl TokenPolicy {
    /// The lifetime of `app`'s tokens: its own if set, never past the server's.
    pub fn ttl_for(&self, app: &Application) -> i64 {
        let server = u32::try_from(self.ttl_seconds).unwrap_or(u32::MAX);
        i64::from(app.effective_token_ttl(server))
    }
}

/// Records when `app` last obtained a token, at most once a minute per application and off the
/// request's path: the row just read says when the last write was, so a busy application costs
/// one UPDATE a minute, not one per token; a failed write is only logged.
fn note_last_token(db: &Db, app: &Application, now: chrono::DateTime<chrono::Utc>) {
    if app
        .last_token_at
        .is_some_and(|t| now - t < chrono::TimeDelta::minutes(1))
    {
        return;
    }
    let (db, id) = (db.clone(), app.id);
    tokio::spawn(async move {
        if let Err(e) = applications::touch_last_token(&db, id, now).await {
            tracing::warn!(error = %e, "could not record the application's last token time");
        }
    });
}

/// Everything the exchange reads or writes, passed in: no hidden state.
#[derive(Clone, Copy)]
pub struct Exchange<'a> {
    pub db: &'a Db,
    pub clients: &'a ClientAuthenticator,
    pub keys: &'a KeyRing,
    pub policy: &'a TokenPolicy,
    /// Read at step 8 and again after waiting for a not-before second (step 9).
    pub clock: &'a dyn Clock,
}

/// The token request's fields exactly as received (JSON or form).
#[derive(Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    /// The JWT-bearer grant's assertion.
    pub assertion: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Issued {
    pub access_token: SecretString,
    pub expires_in: i64,
    pub scope: Option<String>,
    pub client_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("Supported grants: client_credentials and urn:ietf:params:oauth:grant-type:jwt-bearer")]
    UnsupportedGrantType,
    #[error("Client authentication required")]
    NoCredentials,
    #[error("Client authentication failed")]
    InvalidClient,
    /// A client assertion with a good signature broke a rule (which one is said).
    #[error("{0}")]
    InvalidClientAssertion(String),
    /// The JWT-bearer grant's assertion was refused.
    #[error("{0}")]
    InvalidGrant(String),
    /// Scopes asked for that the application may not have (JWT-bearer grant).
    #[error("{0}")]
    InvalidScope(String),
    #[error("Application is inactive")]
    InactiveClient,
    #[error("Too many concurrent authentications, retry shortly")]
    Busy,
    #[error("Too many failed authentications, retry later")]
    RateLimited { retry_after: u64 },
    #[error("scope must be the e-mail address of the user to act for")]
    MalformedEmail,
    #[error("This application is not authorized for this email domain")]
    DomainNotAllowed,
    #[error("User not found")]
    UserNotFound,
    #[error("User account is disabled")]
    UserDisabled,
    #[error("The database is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The longest a token request waits for a `tokens_not_before` in the future: a change names
/// at most the next second, so more means clock skew between the writer and this server.
const MAX_NOT_BEFORE_WAIT: std::time::Duration = std::time::Duration::from_millis(1100);

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::from(e)),
                "database unavailable"
            );
            TokenError::Unavailable
        } else {
            TokenError::Internal(e.into())
        }
    }
}

impl From<AuthError> for TokenError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Failed => TokenError::InvalidClient,
            AuthError::Assertion(reason) => TokenError::InvalidClientAssertion(reason),
            AuthError::Limited { retry_after } => TokenError::RateLimited { retry_after },
            AuthError::Inactive => TokenError::InactiveClient,
            AuthError::Busy(VerifyError::Busy) => TokenError::Busy,
            AuthError::Busy(e @ VerifyError::Task) => TokenError::Internal(e.into()),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<KeyError> for TokenError {
    fn from(e: KeyError) -> Self {
        TokenError::Internal(e.into())
    }
}

fn non_blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

#[tracing::instrument(skip_all, fields(client_id = tracing::field::Empty))]
pub async fn exchange(
    deps: Exchange<'_>,
    request: TokenRequest,
    authorization: Option<&str>,
    source: std::net::IpAddr,
) -> Result<Issued, TokenError> {
    // 1. Malformed request.
    let grant_type = non_blank(&request.grant_type)
        .ok_or(TokenError::InvalidRequest("grant_type is required"))?;
    if grant_type == shared::grant::JWT_BEARER {
        return jwt_bearer(deps, request, authorization, source).await;
    }
    let scope = non_blank(&request.scope).ok_or(TokenError::InvalidRequest(
        "scope is required: the e-mail address of the user to act for",
    ))?;
    let presented = client_auth::presented(
        authorization,
        request.client_id.as_deref(),
        request.client_secret.clone(),
        AssertionFields {
            client_assertion_type: request.client_assertion_type.clone(),
            client_assertion: request.client_assertion.clone(),
        },
    )
    .map_err(|e| TokenError::InvalidRequest(e.0))?;
    // 2. Grant type.
    let _grant: GrantType = grant_type
        .parse()
        .map_err(|_| TokenError::UnsupportedGrantType)?;
    // 3. Credentials present at all.
    if matches!(presented, Presented::None) {
        return Err(TokenError::NoCredentials);
    }
    // 4. (failure limits: docs/spec/security.md) 5. Client authentication. A well-formed e-mail's user
    // is read in the same query as the application; nothing about it is used before step 8.
    let parsed = Email::parse(scope);
    let (app, found) = client_auth::authenticate_with_user(
        deps.db,
        deps.clients,
        presented,
        source,
        parsed.as_ref().ok().map(UserKey::Email),
        deps.clock.now(),
    )
    .await?;
    tracing::Span::current().record("client_id", app.client_id.as_str());
    // 6. The e-mail.
    let email = parsed.map_err(|_| TokenError::MalformedEmail)?;
    let scopes = app.scopes.token_scopes();
    issue(deps, app, found, email, scopes).await
}

/// The JWT-bearer grant (RFC 7523 §2.1): the assertion authenticates the application (its
/// `iss`) and names the user (`sub`); the scopes, a subset of the application's, come from the
/// `scope` parameter or the assertion's `scope` claim. Then steps 7–9 as for
/// client_credentials.
async fn jwt_bearer(
    deps: Exchange<'_>,
    request: TokenRequest,
    authorization: Option<&str>,
    source: std::net::IpAddr,
) -> Result<Issued, TokenError> {
    // 1. Malformed request.
    let assertion = non_blank(&request.assertion).ok_or(TokenError::InvalidRequest(
        "assertion is required: a JWT signed by the application's key",
    ))?;
    let other_credentials = authorization.is_some_and(shared::basic_auth::is_basic)
        || request.client_secret.is_some()
        || request.client_assertion.is_some()
        || request.client_assertion_type.is_some();
    if other_credentials {
        return Err(TokenError::InvalidRequest(
            "The JWT-bearer grant's assertion authenticates the application: send no other client credentials",
        ));
    }
    // Read unverified: `iss` finds the application, `sub` picks the user read in the same
    // query; nothing about either is trusted until the assertion checked out.
    let claimed = super::client_keys::peek(assertion).map(|(_, claims)| claims);
    let claim = |name: &str| {
        claimed
            .as_ref()
            .and_then(|c| c.get(name)?.as_str().map(str::to_owned))
    };
    let (claimed_iss, unverified_sub) = (claim("iss"), claim("sub"));
    if let (Some(id), Some(iss)) = (non_blank(&request.client_id), &claimed_iss)
        && id != iss
    {
        return Err(TokenError::InvalidRequest(
            "client_id differs from the assertion's iss",
        ));
    }
    // 4–5. Authentication by the assertion.
    let parsed_sub = unverified_sub.as_deref().map(Email::parse);
    let user_key = match &parsed_sub {
        Some(Ok(email)) => Some(UserKey::Email(email)),
        _ => None,
    };
    let (app, found, verified) = client_auth::authenticate_grant(
        deps.db,
        deps.clients,
        claimed_iss.as_deref().unwrap_or_default(),
        assertion,
        source,
        user_key,
        deps.clock.now(),
    )
    .await
    .map_err(|e| match e {
        AuthError::Failed => TokenError::InvalidGrant("The assertion is invalid".into()),
        AuthError::Assertion(reason) => TokenError::InvalidGrant(reason),
        other => other.into(),
    })?;
    tracing::Span::current().record("client_id", app.client_id.as_str());
    // The scopes asked for, a subset of the application's; none asked for: all of them.
    let asked = non_blank(&request.scope)
        .map(str::to_owned)
        .or(verified.scope.clone());
    let scopes = down_scope(&app, asked.as_deref())?;
    // 6. The e-mail: the verified `sub`.
    let email = Email::parse(&verified.subject).map_err(|_| {
        TokenError::InvalidGrant(
            "The assertion's sub must be the e-mail address of the user to act for".into(),
        )
    })?;
    // The user read alongside belongs to the verified `sub` only if the two agree.
    let found = found.filter(|_| unverified_sub.as_deref() == Some(verified.subject.as_str()));
    issue(deps, app, found, email, scopes).await
}

/// The token scopes asked for (space-separated rooms scopes), checked against `app`'s.
fn down_scope(app: &Application, asked: Option<&str>) -> Result<ScopeSet, TokenError> {
    let allowed = app.scopes.token_scopes();
    let Some(asked) = asked.filter(|a| !a.trim().is_empty()) else {
        return Ok(allowed);
    };
    let asked = ScopeSet::parse(asked).map_err(|unknown| {
        TokenError::InvalidScope(format!(
            "unknown scope {:?}: ask for rooms scopes (rooms:create rooms:list rooms:retrieve rooms:update rooms:delete)",
            unknown.0.chars().take(64).collect::<String>()
        ))
    })?;
    // `allowed` holds no privilege, so asking for one is refused here too.
    match asked.iter().find(|scope| !allowed.contains(*scope)) {
        Some(scope) => Err(TokenError::InvalidScope(format!(
            "This application may not ask for {scope}"
        ))),
        None => Ok(asked),
    }
}

/// Steps 7–9, shared by both grants.
async fn issue(
    deps: Exchange<'_>,
    app: Application,
    found: Option<User>,
    email: Email,
    scopes: ScopeSet,
) -> Result<Issued, TokenError> {
    // 7. The allowlist, before the user so a 403 says nothing about who exists.
    if !app.domains.admits(&email) {
        return Err(TokenError::DomainNotAllowed);
    }
    // 8. The user.
    let now = deps.clock.now();
    let user = match found {
        Some(user) => user,
        None if deps.policy.allow_user_creation && app.domains.is_explicit() => {
            crate::domain::users::create_provisional(deps.db, &email, &app.client_id, now).await?
        }
        None => return Err(TokenError::UserNotFound),
    };
    if !user.is_active {
        return Err(TokenError::UserDisabled);
    }
    // 9. The token. A change just now (a rotation, a reactivation) names the next whole second
    // as `tokens_not_before`: wait for it, so the token's iat is the real second it is minted in
    // and any later change, even within that second, still kills it (claims::next_not_before).
    let not_before = [app.tokens_not_before, user.tokens_not_before]
        .into_iter()
        .flatten()
        .map(not_before_seconds)
        .filter_map(|s| chrono::DateTime::from_timestamp(s, 0))
        .max();
    let issue_at = match not_before {
        Some(nb) if nb > now => {
            let wait = (nb - now)
                .to_std()
                .unwrap_or_default()
                .min(MAX_NOT_BEFORE_WAIT);
            tokio::time::sleep(wait).await;
            // Past the wait (clock skew with whoever wrote the change) iat is lifted instead.
            deps.clock.now().max(nb)
        }
        _ => now,
    };
    let ttl_seconds = deps.policy.ttl_for(&app);
    let claims = AccessTokenClaims::issue(Issue {
        issuer: &deps.policy.issuer,
        audience: &deps.policy.audience,
        user_id: &user.id.to_string(),
        client_id: app.client_id.as_str(),
        scopes,
        now: issue_at,
        ttl_seconds,
        jti: Uuid::new_v4().to_string(),
    });
    let token = deps.keys.sign(&claims, now)?;
    tracing::info!(user_id = %user.id, "issued access token");
    note_last_token(deps.db, &app, issue_at);
    Ok(Issued {
        access_token: SecretString::from(token),
        expires_in: ttl_seconds,
        scope: scopes.to_claim(),
        client_id: app.client_id.to_string(),
    })
}
