//! A user's lifecycle (docs/spec/auth-server.md §8): create (or give a provisional user its
//! `sub`), deactivate, activate, delete — and which tokens each kills. Deactivation and deletion
//! kill every token issued for the user before them (`tokens_not_before` to the next whole
//! second); activation leaves that time where it is, so it revives nothing. Each change lands
//! with its audit event, in one transaction.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shared::Email;
use shared::claims::next_not_before;
use uuid::Uuid;

use super::audit::{self, Actor, Change, Resource};
use super::paging::{Page, PageRequest};
use super::text;
use crate::model::StoreError;
use crate::model::{User, UserId};
use crate::store::users as store;
use crate::store::{self as db_store, Conn, Db};

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
    #[error("sub must be at most 255 characters, none of them a control character")]
    InvalidSub,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the audit trail shows of a user.
/// The fields of `audit_view` that name the person, erased when the user is deleted.
pub const PERSONAL: &[&str] = &["email", "external_sub"];

pub fn audit_view(user: &User) -> Value {
    json!({
        "email": user.email.as_typed(),
        "external_sub": user.external_sub,
        "is_active": user.is_active,
        "tokens_not_before": user.tokens_not_before,
    })
}

fn change(user: &User, action: &'static str, changes: Value) -> Change {
    Change {
        resource: Resource::User,
        resource_id: user.id.to_string(),
        action,
        changes,
    }
}

/// The user with this e-mail, created as a provisional user for `client_id` if absent, and
/// whether this call created it; the creation is audited (actor `client:<client_id>`) in its
/// own transaction. Concurrent requests for one new e-mail create it once (the unique index
/// decides).
pub async fn create_provisional(
    db: &Db,
    email: &Email,
    client_id: &shared::ClientId,
    now: DateTime<Utc>,
) -> Result<(User, bool), StoreError> {
    if let Some(user) = store::find_by_email(db, email).await? {
        return Ok((user, false));
    }
    let tx = db_store::begin(db).await?;
    let (user, created) = store::insert_if_absent(&tx, email, None, Some(client_id), now).await?;
    if created {
        let diff = audit::diff(&Value::Null, &audit_view(&user));
        audit::record(
            &tx,
            &Actor::client(client_id.as_str()),
            change(&user, "create", diff),
            now,
        )
        .await?;
    }
    db_store::commit(tx).await?;
    if created {
        tracing::info!(user_id = %user.id, "created provisional user");
    }
    Ok((user, created))
}

/// Creates the user, or attaches `sub` to the provisional user (created by the token endpoint)
/// who already has this e-mail. Anything else that exists is refused.
pub async fn create(
    db: &Db,
    actor: &Actor,
    email: &Email,
    sub: Option<String>,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    let sub = sub.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    // The column holds 255 characters and PostgreSQL text no NUL: refused here, not as a 500.
    if sub
        .as_deref()
        .is_some_and(|s| !text::printable_within(s, 255))
    {
        return Err(UserError::InvalidSub);
    }
    let tx = db_store::begin(db).await?;
    let (mut user, created) = store::insert_if_absent(&tx, email, sub.clone(), None, now)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                UserError::SubTaken
            } else {
                e.into()
            }
        })?;
    let action = if created {
        "create"
    } else {
        match (&user.external_sub, sub) {
            (None, Some(s)) => {
                store::attach_external_sub(&tx, user.id, &s).await?;
                user.external_sub = Some(s);
                "attach_sub"
            }
            _ => return Err(UserError::Exists(email.normalized().to_owned())),
        }
    };
    let before = if created {
        Value::Null
    } else {
        json!({ "external_sub": null })
    };
    let diff = if created {
        audit::diff(&before, &audit_view(&user))
    } else {
        audit::diff(&before, &json!({ "external_sub": user.external_sub }))
    };
    audit::record(&tx, actor, change(&user, action, diff), now).await?;
    db_store::commit(tx).await?;
    Ok(user)
}

pub async fn list(db: &impl Conn) -> Result<Vec<User>, UserError> {
    Ok(store::list(db).await?)
}

/// A page of users, oldest first; with `email`, the one user it names (or none).
pub async fn page(
    db: &impl Conn,
    email: Option<&Email>,
    page: PageRequest,
) -> Result<Page<User>, UserError> {
    let rows = match email {
        Some(email) => store::find_by_email(db, email)
            .await?
            .into_iter()
            .filter(|u| {
                page.after
                    .is_none_or(|c| (u.created_at, u.id.as_uuid()) > (c.at, c.id))
            })
            .collect(),
        None => store::page(db, page.after(), page.fetch()).await?,
    };
    Ok(Page::from_rows(rows, &page, |u| {
        (u.created_at, u.id.as_uuid())
    }))
}

pub async fn find(db: &impl Conn, id: Uuid) -> Result<User, UserError> {
    store::find_by_id(db, UserId(id))
        .await?
        .ok_or(UserError::NoSuchId(id))
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

/// Which user a change names.
#[derive(Debug, Clone, Copy)]
pub enum UserRef<'a> {
    Id(Uuid),
    Email(&'a Email),
}

async fn resolve(db: &impl Conn, user: UserRef<'_>) -> Result<User, UserError> {
    match user {
        UserRef::Id(id) => find(db, id).await,
        UserRef::Email(email) => find_by_email(db, email).await,
    }
}

pub async fn set_active(
    db: &Db,
    actor: &Actor,
    user: UserRef<'_>,
    active: bool,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    let tx = db_store::begin(db).await?;
    let before = resolve(&tx, user).await?;
    let user = with_active(&before, active, now);
    store::save_state(&tx, &user).await?;
    let diff = audit::diff(&audit_view(&before), &audit_view(&user));
    let action = if active { "activate" } else { "deactivate" };
    audit::record(&tx, actor, change(&user, action, diff), now).await?;
    db_store::commit(tx).await?;
    Ok(user)
}

/// The rule of `delete`: every token ever issued for the user refused.
pub fn deleted(user: &User, now: DateTime<Utc>) -> User {
    let mut next = user.clone();
    next.is_active = false;
    next.tokens_not_before = Some(next_not_before(now));
    next
}

/// Deletes the user: a tombstone without its e-mail or `sub` stays, so local verifiers learn
/// from the feed that its tokens died, and the e-mail may be registered again.
pub async fn delete(
    db: &Db,
    actor: &Actor,
    user: UserRef<'_>,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    let tx = db_store::begin(db).await?;
    let before = resolve(&tx, user).await?;
    let user = deleted(&before, now);
    store::delete(&tx, &user, now).await?;
    // Nothing personal outlives the user: not in the trail's earlier events, nor in this one.
    audit::erase(&tx, Resource::User, &user.id.to_string(), PERSONAL).await?;
    let mut diff = audit::diff(&audit_view(&before), &Value::Null);
    audit::erase_fields(&mut diff, PERSONAL);
    audit::record(&tx, actor, change(&user, "delete", diff), now).await?;
    db_store::commit(tx).await?;
    // SQLite keeps the old page images in its write-ahead log until a checkpoint: fold them
    // in now (secure_delete zeroes what they freed), so the file holds no copy of the e-mail.
    server_kit::db::checkpoint(db).await;
    Ok(user)
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
            id: UserId(Uuid::nil()),
            external_sub: None,
            email: Email::parse("Ada@Example.com").unwrap(),
            is_active: true,
            tokens_not_before: None,
            created_by: None,
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

    #[test]
    fn deletion_kills_every_earlier_token() {
        let gone = deleted(&user(), t0());
        assert!(kills(&gone, t0() - TimeDelta::milliseconds(1)));
        assert!(
            kills(&gone, t0() + TimeDelta::days(1)),
            "and it is inactive"
        );
    }
}
