//! A user's lifecycle (docs/spec/auth-server.md §8): create (or give a provisional user its
//! `sub`), deactivate, activate — and which tokens each kills. Deactivation kills every token
//! issued for the user before it (`tokens_not_before` to the next whole second); activation
//! leaves that time where it is, so it revives nothing.

use chrono::{DateTime, Utc};
use shared::Email;
use shared::claims::next_not_before;
use uuid::Uuid;

use crate::store::users::{self as store, User};
use crate::store::{Conn, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no user with e-mail {0}")]
    NotFound(String),
    #[error("no user with id {0}")]
    NoSuchId(Uuid),
    #[error("a user with e-mail {0} already exists")]
    Exists(String),
    #[error("another user already has this sub")]
    SubTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the user, or attaches `sub` to the provisional user (created by the token endpoint)
/// who already has this e-mail. Anything else that exists is refused.
pub async fn create(
    db: &impl Conn,
    email: &Email,
    sub: Option<String>,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    let sub = sub.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (mut user, created) = store::insert_if_absent(db, email, sub.clone(), None, now)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                UserError::SubTaken
            } else {
                e.into()
            }
        })?;
    if created {
        return Ok(user);
    }
    match (&user.external_sub, sub) {
        (None, Some(s)) => {
            store::attach_external_sub(db, user.id, &s).await?;
            user.external_sub = Some(s);
            Ok(user)
        }
        _ => Err(UserError::Exists(email.normalized().to_owned())),
    }
}

pub async fn list(db: &impl Conn) -> Result<Vec<User>, UserError> {
    Ok(store::list(db).await?)
}

pub async fn find_by_email(db: &impl Conn, email: &Email) -> Result<User, UserError> {
    store::find_by_email(db, email)
        .await?
        .ok_or_else(|| UserError::NotFound(email.normalized().to_owned()))
}

/// The rule of `set_active`, without the database.
pub fn with_active(user: &User, active: bool, now: DateTime<Utc>) -> User {
    let mut next = user.clone();
    next.is_active = active;
    if !active {
        next.tokens_not_before = Some(next_not_before(now));
    }
    next
}

async fn save_active(
    db: &impl Conn,
    user: &User,
    active: bool,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    let user = with_active(user, active, now);
    store::save_state(db, &user).await?;
    Ok(user)
}

pub async fn set_active(
    db: &impl Conn,
    id: Uuid,
    active: bool,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    let user = store::find_by_id(db, id)
        .await?
        .ok_or(UserError::NoSuchId(id))?;
    save_active(db, &user, active, now).await
}

/// One lookup by e-mail, then the write.
pub async fn set_active_by_email(
    db: &impl Conn,
    email: &Email,
    active: bool,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    save_active(db, &find_by_email(db, email).await?, active, now).await
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use shared::claims::not_before_seconds;

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 250_000_000).unwrap()
    }

    fn user() -> User {
        User {
            id: Uuid::nil(),
            external_sub: None,
            email: "Ada@Example.com".into(),
            email_normalized: "ada@example.com".into(),
            is_active: true,
            tokens_not_before: None,
            created_by_client_id: None,
            created_at: t0(),
        }
    }

    /// The rule introspection and every local verifier apply to a token issued at `iat`.
    fn kills(user: &User, iat: DateTime<Utc>) -> bool {
        !user.is_active
            || user
                .tokens_not_before
                .is_some_and(|t| iat.timestamp() < not_before_seconds(t))
    }

    #[test]
    fn deactivation_kills_earlier_tokens_and_activation_revives_none() {
        let earlier = t0() - TimeDelta::milliseconds(1);
        let off = with_active(&user(), false, t0());
        assert!(kills(&off, earlier));
        let on = with_active(&off, true, t0() + TimeDelta::seconds(3));
        assert!(kills(&on, earlier), "reactivation revives no token");
        assert!(!kills(&on, t0() + TimeDelta::seconds(3)));
        assert!(!kills(&with_active(&user(), true, t0()), earlier));
    }
}
