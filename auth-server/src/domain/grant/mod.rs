//! The token endpoint's grants: what they share (the policy, the request, the errors, steps
//! 7–9 that issue the token) and the dispatch on the grant type, one file per grant —
//! `client_credentials.rs` (docs/spec/auth-server.md §1) and `jwt_bearer.rs` (§1a).

mod client_credentials;
mod jwt_bearer;

use secrecy::SecretString;
use shared::claims::{Issue, not_before_seconds};
use shared::{AccessTokenClaims, Clock, Email, GrantType};
use uuid::Uuid;

use super::assertions::AssertionRejection;
use super::client_auth::{AuthError, ClientAuthenticator};
use super::client_secret::VerifyError;
use super::delegation::{DelegationError, delegated_user};
use super::dpop::{BindError, DpopPresented, DpopRefusal};
use super::signing::{KeyError, KeyRing};
use crate::model::StoreError;
use crate::model::{Application, User};
use crate::store::Db;
use crate::store::applications;
use crate::store::row_cache::RowCache;
use shared::ScopeSet;
use shared::users::Refusal;

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
/// request's path: the row just read (perhaps from the row cache, where this column does not
/// move) and this process's own notes say when the last write was, so a busy application
/// costs one UPDATE a minute per replica, not one per token; a failed write is only logged.
fn note_last_token(
    db: &Db,
    rows: &RowCache,
    app: &Application,
    now: chrono::DateTime<chrono::Utc>,
) {
    if !rows.note_due(app, now) {
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
    /// `DPOP_NONCE`: the nonces a DPoP proof must carry, when required.
    pub nonces: Option<&'a super::dpop::Nonces>,
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
    /// The `DPoP` header and the URL it must name.
    pub dpop: DpopPresented,
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
    /// Bound to a DPoP key: `token_type` is `DPoP`, not `Bearer`.
    pub dpop_bound: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// A DPoP proof missing, malformed, failed or replayed (RFC 9449 §5).
    #[error(transparent)]
    InvalidDpopProof(DpopRefusal),
    #[error("Supported grants: client_credentials and urn:ietf:params:oauth:grant-type:jwt-bearer")]
    UnsupportedGrantType,
    #[error("Client authentication required")]
    NoCredentials,
    #[error("Client authentication failed")]
    InvalidClient,
    /// A client assertion with a good signature broke a rule (which one is said).
    #[error(transparent)]
    InvalidClientAssertion(AssertionRejection),
    /// The JWT-bearer grant's assertion was refused.
    #[error(transparent)]
    InvalidGrant(AssertionRejection),
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
            // No privilege is asked of a token request.
            e @ AuthError::LacksPrivilege(_) => TokenError::Internal(e.into()),
        }
    }
}

impl From<BindError> for TokenError {
    fn from(e: BindError) -> Self {
        match e {
            BindError::Refused(refusal) => TokenError::InvalidDpopProof(refusal),
            BindError::Store(e) => e.into(),
        }
    }
}

impl From<DelegationError> for TokenError {
    fn from(e: DelegationError) -> Self {
        match e {
            DelegationError::Refused(Refusal::DomainNotAllowed) => TokenError::DomainNotAllowed,
            DelegationError::Refused(Refusal::UserDisabled) => TokenError::UserDisabled,
            // A token request's e-mail was parsed and its application authenticated before.
            DelegationError::Refused(
                Refusal::UserNotFound | Refusal::InvalidEmail | Refusal::UnknownApplication,
            ) => TokenError::UserNotFound,
            DelegationError::Store(e) => e.into(),
        }
    }
}

impl From<KeyError> for TokenError {
    fn from(e: KeyError) -> Self {
        TokenError::Internal(e.into())
    }
}

/// The field when it is present and not blank.
fn non_blank(v: &Option<String>) -> Option<&str> {
    super::input::non_blank(v.as_deref())
}

/// The token endpoint: dispatched on the grant type, one file per grant. An unknown grant
/// type takes the client_credentials order, which refuses it at its step 2 (after the
/// malformed-request checks of step 1, as the contract orders them).
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
    match grant_type.parse::<GrantType>() {
        Ok(GrantType::JwtBearer) => {
            jwt_bearer::exchange(deps, request, authorization, source).await
        }
        parsed => {
            client_credentials::exchange(deps, request, parsed.ok(), authorization, source).await
        }
    }
}

/// Steps 7–9, shared by both grants; `jkt` binds the token to a DPoP key.
async fn issue(
    deps: Exchange<'_>,
    app: Application,
    found: Option<User>,
    email: Email,
    scopes: ScopeSet,
    jkt: Option<String>,
) -> Result<Issued, TokenError> {
    // 7. The allowlist, before the user so a 403 says nothing about who exists. 8. The user.
    let now = deps.clock.now();
    let (user, _) = delegated_user(
        deps.db,
        deps.policy.allow_user_creation,
        true,
        &app,
        found,
        &email,
        now,
    )
    .await?;
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
        jkt,
    });
    let dpop_bound = claims.cnf.is_some();
    let token = deps.keys.sign(&claims, now)?;
    tracing::info!(user_id = %user.id, "issued access token");
    note_last_token(deps.db, &deps.clients.rows, &app, issue_at);
    Ok(Issued {
        access_token: SecretString::from(token),
        expires_in: ttl_seconds,
        scope: scopes.to_claim(),
        client_id: app.client_id.to_string(),
        dpop_bound,
    })
}
