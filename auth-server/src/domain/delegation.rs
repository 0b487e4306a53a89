//! Which user an application may act for, named by e-mail (docs/spec/auth-server.md §1 steps
//! 7–8): one rule for the two fronts that ask it — the token endpoint (the user a token will
//! name) and user resolution (§6a: the user a resource server shares something with, on the
//! application's behalf).

use chrono::{DateTime, Utc};
use shared::users::Refusal;
use shared::{ClientId, Email, Scope};

use super::client_auth::{self, AuthError, ClientAuthInfo, ClientAuthenticator, Lookup};
use super::input::non_blank;
use crate::model::{Application, StoreError, User};
use crate::store::Db;
use crate::store::applications::UserKey;

#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user `app` may act for at `email`, given `found` (the user with that e-mail as read,
/// if any), and whether this call created them. In order: the allowlist (before the user, so a
/// refusal there says nothing about who exists); the user, created as a provisional user only
/// when `may_create` (the caller's wish), `allow_user_creation` (the server's setting) and the
/// application has an explicit domain list all hold; then the user must be active.
pub async fn delegated_user(
    db: &Db,
    allow_user_creation: bool,
    may_create: bool,
    app: &Application,
    found: Option<User>,
    email: &Email,
    now: DateTime<Utc>,
) -> Result<(User, bool), DelegationError> {
    if !app.domains.admits(email) {
        return Err(DelegationError::Refused(Refusal::DomainNotAllowed));
    }
    let (user, created) = match found {
        Some(user) => (user, false),
        None if may_create && allow_user_creation && app.domains.is_explicit() => {
            super::users::create_provisional(db, email, &app.client_id, now).await?
        }
        None => return Err(DelegationError::Refused(Refusal::UserNotFound)),
    };
    if !user.is_active {
        return Err(DelegationError::Refused(Refusal::UserDisabled));
    }
    Ok((user, created))
}

/// A resolution request's fields, as received.
#[derive(Debug, Default)]
pub struct ResolveRequest<'a> {
    /// The acting application's client_id.
    pub application: Option<&'a str>,
    pub email: Option<&'a str>,
    /// May a provisional user be created (when the policy allows it).
    pub create: bool,
}

/// The user resolved, and whether this request created them.
#[derive(Debug)]
pub struct Resolved {
    pub user: User,
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The caller is not an authenticated, active client holding `users:resolve`.
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0} is required")]
    Missing(&'static str),
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DelegationError> for ResolveError {
    fn from(e: DelegationError) -> Self {
        match e {
            DelegationError::Refused(r) => ResolveError::Refused(r),
            DelegationError::Store(e) => ResolveError::Store(e),
        }
    }
}

/// User resolution (§6a) as one use case: the caller authenticates and must hold
/// `users:resolve` before anything is said about the request; then the acting application
/// (active), the e-mail, and `delegated_user`'s rule, exactly as a token request for that
/// application and e-mail would meet it.
pub async fn resolve(
    db: &Db,
    clients: &ClientAuthenticator,
    allow_user_creation: bool,
    caller: ClientAuthInfo,
    request: ResolveRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Resolved, ResolveError> {
    let authenticated =
        client_auth::authenticate(db, clients, caller, Lookup::Application, now).await?;
    client_auth::require(&authenticated.app, Scope::UsersResolve)?;
    let application = non_blank(request.application)
        .ok_or(ResolveError::Missing(shared::users::fields::APPLICATION))?;
    let email =
        non_blank(request.email).ok_or(ResolveError::Missing(shared::users::fields::EMAIL))?;
    let client_id = ClientId::parse(application)
        .map_err(|_| ResolveError::Refused(Refusal::UnknownApplication))?;
    let email = Email::parse(email).map_err(|_| ResolveError::Refused(Refusal::InvalidEmail))?;
    let found = clients
        .rows
        .find_with_user(db, &client_id, UserKey::Email(&email))
        .await?;
    let Some(found) = found.filter(|f| f.app.is_active) else {
        return Err(ResolveError::Refused(Refusal::UnknownApplication));
    };
    let (user, created) = delegated_user(
        db,
        allow_user_creation,
        request.create,
        &found.app,
        found.user,
        &email,
        now,
    )
    .await?;
    Ok(Resolved { user, created })
}
