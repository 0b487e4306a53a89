//! Sharing a room (docs/spec/rooms-api.md §3a): who may give whom which role, and take it back.
//!
//! The grantee is named by e-mail and resolved by the auth-server (`Directory`), under the
//! calling application's allowlist and user-creation policy, exactly as a token request for
//! that e-mail would be. The rules on roles are plain functions (`decide_grant`,
//! `decide_revoke`) over the state the store reads in the same transaction as the write.

use serde_json::Value;
use server_kit::db::WriteGate;
use shared::users::Refusal;

use super::cache::RoomCache;
pub use super::model::Conflict;
use super::model::Invalid;
use super::service::{RoomsError, forget_room, parse_id, viewer};
use super::store::{self, AccessChange, Changed, Db, Role};
use crate::principal::Principal;

/// The user an application may act for, by e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub user_id: String,
    /// The auth-server created the user (a provisional user) for this call.
    pub created: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Refused(Refusal),
    #[error("sharing rooms is not configured (no credentials for the auth-server)")]
    NotConfigured,
    #[error("the auth-server could not resolve the user")]
    Unavailable,
}

/// Where users are resolved by e-mail (the auth-server, `crate::directory`; tests inject one).
pub trait Directory: Send + Sync {
    /// The user `application` may act for at `email`; `create`: a provisional user may be
    /// created when the application's policy allows it.
    fn resolve(
        &self,
        application: &str,
        email: &str,
        create: bool,
    ) -> impl Future<Output = Result<Resolved, DirectoryError>> + Send;
}

/// A rank, to tell a promotion from a demotion.
fn rank(role: Role) -> u8 {
    match role {
        Role::Member => 0,
        Role::Admin => 1,
        Role::Owner => 2,
    }
}

/// Giving `wanted` to a user whose role is `current`: a new access, a promotion, or nothing
/// when it is already theirs; a demotion only with `replace`, and never of a room's only owner.
pub fn decide_grant(
    current: Option<Role>,
    wanted: Role,
    replace: bool,
    sole_owner: bool,
) -> Result<AccessChange, Conflict> {
    match current {
        None => Ok(AccessChange::Insert(wanted)),
        Some(c) if c == wanted => Ok(AccessChange::Keep),
        Some(c) if rank(wanted) > rank(c) => Ok(AccessChange::Update(wanted)),
        Some(_) if !replace => Err(Conflict::LowerRole),
        Some(Role::Owner) if sole_owner => Err(Conflict::LastOwner),
        Some(_) => Ok(AccessChange::Update(wanted)),
    }
}

/// Taking a user's access away: none to take is `None`; a room's only owner keeps theirs.
pub fn decide_revoke(current: Option<Role>, sole_owner: bool) -> Result<AccessChange, Revoke> {
    match current {
        None => Err(Revoke::NoAccess),
        Some(Role::Owner) if sole_owner => Err(Revoke::Conflict(Conflict::LastOwner)),
        Some(_) => Ok(AccessChange::Delete),
    }
}

/// Why a revocation changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    NoAccess,
    Conflict(Conflict),
}

/// What a grant body asks: `{"email", "role", "replace"?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub email: String,
    pub role: Role,
    pub replace: bool,
}

const LONGEST_EMAIL: usize = 254;

/// Parses a grant body. `role` is `administrator` (or its synonym `admin`) or `member`;
/// `owner` is refused with its reason (a room has the owner who created it).
pub fn parse_grant(body: &[u8]) -> Result<GrantRequest, Invalid> {
    let map = super::model::parse_object(body)?;
    let mut errors = Invalid::default();
    let email = match map.get("email") {
        Some(Value::String(e)) if !e.trim().is_empty() && e.trim().len() <= LONGEST_EMAIL => {
            Some(e.trim().to_owned())
        }
        Some(Value::String(_)) => {
            errors.add("email", "must be an e-mail address");
            None
        }
        Some(_) => {
            errors.add("email", "must be a string");
            None
        }
        None => {
            errors.add("email", "is required");
            None
        }
    };
    let role = match map.get("role").map(|v| v.as_str()) {
        Some(Some("administrator" | "admin")) => Some(Role::Admin),
        Some(Some("member")) => Some(Role::Member),
        Some(Some("owner")) => {
            errors.add(
                "role",
                "owner cannot be granted: a room's owner is the user who created it (use administrator)",
            );
            None
        }
        Some(_) => {
            errors.add("role", "must be administrator (or admin) or member");
            None
        }
        None => {
            errors.add("role", "is required (administrator or member)");
            None
        }
    };
    let replace = match map.get("replace") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.add("replace", "must be a boolean");
            false
        }
    };
    match (email, role) {
        (Some(email), Some(role)) if errors.fields.is_empty() => Ok(GrantRequest {
            email,
            role,
            replace,
        }),
        _ => Err(errors),
    }
}

/// What a grant did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    /// The e-mail is the caller's own and the caller owns the room: nothing to change.
    OwnRoom,
    /// `created`: a new access (201); else an existing one was changed or already so (200).
    Access {
        email: String,
        role: Role,
        created: bool,
        provisional_user_created: bool,
    },
}

/// The room the caller may manage the accesses of: visible, and theirs as owner or
/// administrator (decided on the database's rows, never the cache's).
async fn managed_room(
    db: &Db,
    principal: &Principal,
    id: &str,
) -> Result<(store::RoomRow, Role), RoomsError> {
    let id = parse_id(id)?;
    let (room, role) = store::find_visible(db, viewer(principal), id)
        .await?
        .ok_or(RoomsError::NotFound)?;
    match role {
        Some(role @ (Role::Owner | Role::Admin)) => Ok((room, role)),
        _ => Err(RoomsError::InsufficientRole),
    }
}

fn email_refused(refusal: Refusal) -> RoomsError {
    let message = match refusal {
        Refusal::InvalidEmail => "must be an e-mail address",
        Refusal::DomainNotAllowed => "this application may not act for users of this e-mail domain",
        Refusal::UserNotFound => {
            "no user has this e-mail address, and this application may not create users"
        }
        Refusal::UserDisabled => "this user's account is disabled",
        // The token of this application was accepted a moment ago: it was deactivated since.
        Refusal::UnknownApplication => return RoomsError::ApplicationGone,
    };
    let mut i = Invalid::default();
    i.add("email", message);
    RoomsError::Invalid(i)
}

impl From<DirectoryError> for RoomsError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Refused(r) => email_refused(r),
            DirectoryError::NotConfigured | DirectoryError::Unavailable => {
                RoomsError::DirectoryUnavailable
            }
        }
    }
}

/// Applies `decide`'s answer to `user`'s access on `room` through the SQLite writer's gate,
/// then drops what the room's viewers and `user` had cached (even on failure: the write may
/// have committed). `Ok(Err(e))`: `decide` refused; a room deleted meanwhile is 404.
async fn change<E>(
    db: &Db,
    cache: &RoomCache,
    writes: &WriteGate,
    principal: &Principal,
    room: &store::RoomRow,
    user: &str,
    decide: impl FnOnce(Option<Role>, bool) -> Result<AccessChange, E>,
) -> Result<Result<(Option<Role>, AccessChange), E>, RoomsError> {
    let write = writes.enter().await;
    let changed = store::change_access(db, room, user, decide).await;
    drop(write);
    forget_room(cache, principal, room.id, user, &room.client_id, db).await;
    match changed? {
        Changed::Applied(before, change) => Ok(Ok((before, change))),
        Changed::Refused(e) => Ok(Err(e)),
        Changed::RoomGone => Err(RoomsError::NotFound),
    }
}

/// `POST /rooms/{id}/grant-access/`: in the contract's order — body (400), the room (404), the
/// caller's role (403), the grantee (400 / 503), then the change (409 or done).
pub async fn grant_access(
    db: &Db,
    cache: &RoomCache,
    writes: &WriteGate,
    directory: &impl Directory,
    principal: &Principal,
    id: &str,
    body: &[u8],
) -> Result<Granted, RoomsError> {
    let request = parse_grant(body)?;
    let (room, own_role) = managed_room(db, principal, id).await?;
    let grantee = directory
        .resolve(&principal.client_id, &request.email, true)
        .await?;
    if grantee.user_id == principal.user_id && own_role == Role::Owner {
        return Ok(Granted::OwnRoom);
    }
    let (before, change) = change(
        db,
        cache,
        writes,
        principal,
        &room,
        &grantee.user_id,
        |current, sole_owner| decide_grant(current, request.role, request.replace, sole_owner),
    )
    .await?
    .map_err(RoomsError::Conflict)?;
    let role = match change {
        AccessChange::Insert(r) | AccessChange::Update(r) => r,
        AccessChange::Keep | AccessChange::Delete => before.unwrap_or(request.role),
    };
    tracing::info!(target: "audit", event = "room_access_granted", room_id = %room.id,
        grantee_id = %grantee.user_id, role = role.as_str(), user_id = %principal.user_id,
        client_id = %principal.client_id, verification_mode = principal.mode,
        "room_access_granted");
    Ok(Granted::Access {
        email: request.email,
        role,
        created: before.is_none(),
        provisional_user_created: grantee.created,
    })
}

/// `DELETE /rooms/{id}/accesses/{email}`: the same checks as a grant; a user with no access
/// on the room is 404, the room's only owner 409. Never creates a user.
pub async fn revoke_access(
    db: &Db,
    cache: &RoomCache,
    writes: &WriteGate,
    directory: &impl Directory,
    principal: &Principal,
    id: &str,
    email: &str,
) -> Result<(), RoomsError> {
    let (room, _) = managed_room(db, principal, id).await?;
    let grantee = match directory.resolve(&principal.client_id, email, false).await {
        // Nobody with that e-mail has any access, to this room or any.
        Err(DirectoryError::Refused(Refusal::UserNotFound)) => {
            return Err(RoomsError::NoSuchAccess);
        }
        other => other?,
    };
    match change(
        db,
        cache,
        writes,
        principal,
        &room,
        &grantee.user_id,
        decide_revoke,
    )
    .await?
    {
        Ok(_) => {}
        Err(Revoke::NoAccess) => return Err(RoomsError::NoSuchAccess),
        Err(Revoke::Conflict(c)) => return Err(RoomsError::Conflict(c)),
    }
    tracing::info!(target: "audit", event = "room_access_revoked", room_id = %room.id,
        grantee_id = %grantee.user_id, user_id = %principal.user_id,
        client_id = %principal.client_id, verification_mode = principal.mode,
        "room_access_revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_add_promote_or_keep_and_lower_a_role_only_when_told_never_the_last_owner() {
        use AccessChange::*;
        use Role::*;
        for replace in [false, true] {
            assert_eq!(
                decide_grant(None, Member, replace, false),
                Ok(Insert(Member))
            );
            assert_eq!(decide_grant(Some(Admin), Admin, replace, false), Ok(Keep));
            assert_eq!(
                decide_grant(Some(Member), Admin, replace, false),
                Ok(Update(Admin))
            );
        }
        assert_eq!(
            decide_grant(Some(Admin), Member, false, false),
            Err(Conflict::LowerRole)
        );
        assert_eq!(
            decide_grant(Some(Admin), Member, true, false),
            Ok(Update(Member))
        );
        assert_eq!(
            decide_grant(Some(Owner), Admin, false, true),
            Err(Conflict::LowerRole)
        );
        assert_eq!(
            decide_grant(Some(Owner), Admin, true, true),
            Err(Conflict::LastOwner)
        );
        assert_eq!(
            decide_grant(Some(Owner), Admin, true, false),
            Ok(Update(Admin))
        );
    }

    #[test]
    fn a_revocation_needs_an_access_and_leaves_the_last_owner_theirs() {
        assert_eq!(decide_revoke(None, false), Err(Revoke::NoAccess));
        assert_eq!(
            decide_revoke(Some(Role::Owner), true),
            Err(Revoke::Conflict(Conflict::LastOwner))
        );
        assert_eq!(
            decide_revoke(Some(Role::Owner), false),
            Ok(AccessChange::Delete)
        );
        assert_eq!(
            decide_revoke(Some(Role::Member), true),
            Ok(AccessChange::Delete)
        );
    }

    #[test]
    fn a_grant_body_names_an_email_and_a_role_admin_being_administrator() {
        let g = parse_grant(br#"{"email": " ann@example.com ", "role": "admin"}"#).unwrap();
        assert_eq!(
            g,
            GrantRequest {
                email: "ann@example.com".into(),
                role: Role::Admin,
                replace: false
            }
        );
        let g = parse_grant(br#"{"email": "a@b.co", "role": "member", "replace": true}"#).unwrap();
        assert_eq!((g.role, g.replace), (Role::Member, true));
        for (body, field) in [
            (&br#"{"role": "member"}"#[..], "email"),
            (br#"{"email": 3, "role": "member"}"#, "email"),
            (br#"{"email": "  ", "role": "member"}"#, "email"),
            (br#"{"email": "a@b.co"}"#, "role"),
            (br#"{"email": "a@b.co", "role": "owner"}"#, "role"),
            (br#"{"email": "a@b.co", "role": "boss"}"#, "role"),
            (
                br#"{"email": "a@b.co", "role": "member", "replace": "yes"}"#,
                "replace",
            ),
            (br#"[1]"#, "body"),
        ] {
            let e = parse_grant(body).unwrap_err();
            assert!(e.fields.contains_key(field), "{field}: {e:?}");
        }
    }
}
