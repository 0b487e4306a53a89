//! The rooms operations, thin: authenticate, check the scope, call `rooms::service`, render.
//! Their wire types (poem-openapi objects) are here too, converted from the service's views.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use shared::Scope;

use super::extract::{BearerAuth, IntParam, JsonBody};
use super::nullable::Nullable;
use crate::error::{ApiError, ErrorResponse};
use crate::principal::Principal;
use crate::rooms::accesses::{self, Granted};
use crate::rooms::model;
use crate::rooms::service::{self, ROOMS_PATH};
use crate::rooms::store::Role;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(remote = "model::AccessLevel", rename_all = "lowercase")]
pub enum AccessLevel {
    Public,
    Trusted,
    Restricted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(remote = "model::PublishSource", rename_all = "snake_case")]
pub enum PublishSource {
    Camera,
    Microphone,
    ScreenShare,
    ScreenShareAudio,
}

/// The only configuration keys a room accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Object)]
#[oai(deny_unknown_fields)]
pub struct RoomConfiguration {
    /// Which sources participants may publish; absent or null means the server's default.
    #[oai(skip_serializing_if_is_none)]
    pub can_publish_sources: Option<Vec<PublishSource>>,
    #[oai(skip_serializing_if_is_none)]
    pub everyone_can_mute: Option<bool>,
}

impl From<model::RoomConfiguration> for RoomConfiguration {
    fn from(c: model::RoomConfiguration) -> Self {
        Self {
            can_publish_sources: c
                .can_publish_sources
                .map(|v| v.into_iter().map(Into::into).collect()),
            everyone_can_mute: c.everyone_can_mute,
        }
    }
}

// It documents the body; `rooms::model::parse_create` reads it.
/// Create body (all optional; the server picks name, slug and PIN).
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct RoomCreate {
    /// public, trusted (default) or restricted. `public` needs ALLOW_PUBLIC_ACCESS.
    pub access_level: Option<AccessLevel>,
    pub configuration: Option<RoomConfiguration>,
}

/// Patch body: either field, not null; `configuration` replaces the whole object.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct RoomPatch {
    pub access_level: Option<AccessLevel>,
    pub configuration: Option<RoomConfiguration>,
}

/// Swagger UI's "Try it out" starts from these: valid with the default settings.
impl poem_openapi::types::Example for RoomCreate {
    fn example() -> Self {
        Self {
            access_level: Some(AccessLevel::Trusted),
            configuration: Some(RoomConfiguration {
                can_publish_sources: Some(vec![PublishSource::Camera, PublishSource::Microphone]),
                everyone_can_mute: Some(true),
            }),
        }
    }
}

impl poem_openapi::types::Example for RoomPatch {
    fn example() -> Self {
        Self {
            access_level: Some(AccessLevel::Restricted),
            configuration: None,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct Telephony {
    pub enabled: bool,
    /// TELEPHONY_PHONE_NUMBER, or null when unset.
    pub phone_number: Nullable<String>,
    pub pin_code: String,
    pub default_country: String,
}

/// A role on a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RoomRole {
    /// Created the room: every right, and the only one who may delete it.
    Owner,
    /// May change the room and share it.
    Administrator,
    /// May see the room.
    Member,
}

impl From<Role> for RoomRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => RoomRole::Owner,
            Role::Admin => RoomRole::Administrator,
            Role::Member => RoomRole::Member,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct Room {
    pub id: uuid::Uuid,
    pub name: String,
    pub slug: String,
    pub access_level: AccessLevel,
    pub configuration: RoomConfiguration,
    /// RFC 3339, UTC, microseconds.
    pub created_at: String,
    /// The delegated user's role on the room.
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<RoomRole>,
    /// ROOMS_BASE_URL/slug, when ROOMS_BASE_URL is set.
    #[oai(skip_serializing_if_is_none)]
    pub url: Option<String>,
    /// Present when TELEPHONY_ENABLED.
    #[oai(skip_serializing_if_is_none)]
    pub telephony: Option<Telephony>,
}

impl From<model::RoomView> for Room {
    fn from(r: model::RoomView) -> Self {
        Self {
            id: r.id,
            name: r.name,
            slug: r.slug,
            access_level: r.access_level.into(),
            configuration: r.configuration.into(),
            created_at: r.created_at,
            role: r.role.map(RoomRole::from),
            url: r.url,
            telephony: r.telephony.map(|t| Telephony {
                enabled: true,
                phone_number: Nullable::from(t.phone_number),
                pin_code: t.pin_code,
                default_country: t.default_country,
            }),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct RoomPage {
    pub count: u64,
    /// Absolute URL of the next page, or null.
    pub next: Nullable<String>,
    /// Absolute URL of the previous page, or null.
    pub previous: Nullable<String>,
    pub results: Vec<Room>,
}

impl From<model::PageView> for RoomPage {
    fn from(p: model::PageView) -> Self {
        Self {
            count: p.count,
            next: Nullable::from(p.next),
            previous: Nullable::from(p.previous),
            results: p.results.into_iter().map(Room::from).collect(),
        }
    }
}

/// Grant body: who, and which role.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct GrantAccess {
    /// The e-mail of the user to share the room with: in the application's allowed domains; a
    /// provisional user is created only when the application may create users.
    pub email: String,
    /// `administrator` (or its synonym `admin`) or `member`.
    pub role: String,
    /// Needed to lower a role the user already holds (default false).
    pub replace: Option<bool>,
}

impl poem_openapi::types::Example for GrantAccess {
    fn example() -> Self {
        Self {
            email: "colleague@example.com".into(),
            role: "member".into(),
            replace: None,
        }
    }
}

/// The access as it now is.
#[derive(Debug, Clone, Object)]
pub struct AccessGranted {
    pub email: String,
    pub role: RoomRole,
    /// A new access (201); false: an existing one changed or already so (200).
    pub created: bool,
    /// The user was created (a provisional user) for this grant.
    pub provisional_user_created: bool,
}

/// The e-mail is the caller's own, and the caller owns the room.
#[derive(Debug, Clone, Object)]
pub struct AlreadyOwner {
    pub detail: String,
    pub role: RoomRole,
}

#[derive(ApiResponse)]
pub enum GrantResponse {
    /// A new access.
    #[oai(status = 201)]
    Created(Json<AccessGranted>),
    /// An existing access, changed or already so.
    #[oai(status = 200)]
    Changed(Json<AccessGranted>),
    /// The e-mail is the owner's own: nothing changes.
    #[oai(status = 200)]
    Owner(Json<AlreadyOwner>),
}

#[derive(ApiResponse)]
pub enum CreatedResponse {
    /// The room, with its location.
    #[oai(status = 201)]
    Created(Json<Room>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum DeletedResponse {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

/// 401 first, then 403 for a missing scope: nothing else is looked at before.
async fn authorize(
    state: &AppState,
    auth: &BearerAuth,
    scope: Scope,
) -> Result<Principal, ApiError> {
    let principal = state.auth.authenticate(&auth.header, &auth.dpop).await?;
    server_kit::traces::record_client_id(&principal.client_id);
    if !principal.scopes.contains(scope) {
        return Err(ApiError::InsufficientScope(scope));
    }
    Ok(principal)
}

pub struct RoomsApi;

#[OpenApi(tag = "crate::api::health::Tag::Rooms")]
impl RoomsApi {
    /// List the user's rooms created through this application, newest first.
    ///
    /// Follow `next`/`previous`: without `page` they carry an opaque `cursor` (every page
    /// costs the same, however deep); with `page` (from 1) they carry page numbers.
    /// `page_size` is 1–100 (default 20). Needs `rooms:list`.
    #[oai(
        path = "/external-api/v1.0/rooms",
        method = "get",
        operation_id = "rooms_list"
    )]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// Page number, from 1.
        page: Query<Option<IntParam<1, { i64::MAX as u64 }>>>,
        /// Rooms per page, 1–100 (default 20).
        page_size: Query<Option<IntParam<1, 100>>>,
        /// Opaque position from a `next` or `previous` link; not with `page`.
        cursor: Query<Option<String>>,
        /// The room with this slug, as a page of one (empty when it is not yours to see);
        /// not with `page` or `cursor`.
        slug: Query<Option<String>>,
    ) -> Result<Json<RoomPage>, ErrorResponse> {
        let p = authorize(&state, &auth, Scope::RoomsList).await?;
        let page = service::list(
            &state.db,
            &state.cache,
            &state.config.rooms,
            &p,
            service::ListQuery {
                page: page.0.as_ref().map(|v| v.0.as_str()),
                page_size: page_size.0.as_ref().map(|v| v.0.as_str()),
                cursor: cursor.0.as_deref(),
                slug: slug.0.as_deref(),
            },
        )
        .await
        .map_err(ApiError::from)?;
        Ok(Json(page.into()))
    }

    /// Create a room for the user. Needs `rooms:create`.
    ///
    /// The body is optional; the server picks the name, slug and PIN.
    #[oai(
        path = "/external-api/v1.0/rooms",
        method = "post",
        operation_id = "rooms_create"
    )]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: JsonBody<RoomCreate>,
    ) -> Result<CreatedResponse, ErrorResponse> {
        let p = authorize(&state, &auth, Scope::RoomsCreate).await?;
        let bytes = body.bytes()?;
        let room = service::create(
            &state.db,
            &state.cache,
            &state.writes,
            &state.config.rooms,
            &p,
            state.clock.now(),
            bytes,
        )
        .await
        .map_err(ApiError::from)?;
        let location = format!("{}{ROOMS_PATH}/{}", state.config.rooms.public_url, room.id);
        Ok(CreatedResponse::Created(Json(room.into()), location))
    }

    /// Retrieve one of the user's rooms. Needs `rooms:retrieve`.
    #[oai(
        path = "/external-api/v1.0/rooms/:id",
        method = "get",
        operation_id = "rooms_retrieve"
    )]
    async fn retrieve(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// The room's id (a UUID).
        id: Path<String>,
    ) -> Result<Json<Room>, ErrorResponse> {
        let p = authorize(&state, &auth, Scope::RoomsRetrieve).await?;
        let room = service::retrieve(&state.db, &state.cache, &state.config.rooms, &p, &id.0)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(room.into()))
    }

    /// Change a room's access level and/or configuration. Needs `rooms:update` and the owner or
    /// admin role.
    #[oai(
        path = "/external-api/v1.0/rooms/:id",
        method = "patch",
        operation_id = "rooms_update"
    )]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// The room's id (a UUID).
        id: Path<String>,
        body: JsonBody<RoomPatch>,
    ) -> Result<Json<Room>, ErrorResponse> {
        let p = authorize(&state, &auth, Scope::RoomsUpdate).await?;
        let bytes = body.bytes()?;
        let room = service::update(
            &state.db,
            &state.cache,
            &state.writes,
            &state.config.rooms,
            &p,
            &id.0,
            bytes,
        )
        .await
        .map_err(ApiError::from)?;
        Ok(Json(room.into()))
    }

    /// Delete a room. Needs `rooms:delete` and the owner role.
    #[oai(
        path = "/external-api/v1.0/rooms/:id",
        method = "delete",
        operation_id = "rooms_delete"
    )]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// The room's id (a UUID).
        id: Path<String>,
    ) -> Result<DeletedResponse, ErrorResponse> {
        let p = authorize(&state, &auth, Scope::RoomsDelete).await?;
        service::delete(&state.db, &state.cache, &state.writes, &p, &id.0)
            .await
            .map_err(ApiError::from)?;
        Ok(DeletedResponse::NoContent)
    }

    /// Share a room: give a user, named by e-mail, the administrator or member role. Needs
    /// `rooms:grant-access` and the owner or administrator role.
    ///
    /// A role lower than the one the user holds needs `"replace": true`; a change that would
    /// leave the room without an owner is 409.
    #[oai(
        path = "/external-api/v1.0/rooms/:id/grant-access",
        method = "post",
        operation_id = "rooms_grant_access"
    )]
    async fn grant_access(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// The room's id (a UUID).
        id: Path<String>,
        body: JsonBody<GrantAccess>,
    ) -> Result<GrantResponse, ErrorResponse> {
        let p = authorize(&state, &auth, Scope::RoomsGrantAccess).await?;
        let bytes = body.bytes()?;
        let granted = accesses::grant_access(
            &state.db,
            &state.cache,
            &state.writes,
            &state.directory,
            &p,
            &id.0,
            bytes,
        )
        .await
        .map_err(ApiError::from)?;
        Ok(match granted {
            Granted::OwnRoom => GrantResponse::Owner(Json(AlreadyOwner {
                detail: "This is your own room: you are its owner".into(),
                role: RoomRole::Owner,
            })),
            Granted::Access {
                email,
                role,
                created,
                provisional_user_created,
            } => {
                let access = Json(AccessGranted {
                    email,
                    role: role.into(),
                    created,
                    provisional_user_created,
                });
                if created {
                    GrantResponse::Created(access)
                } else {
                    GrantResponse::Changed(access)
                }
            }
        })
    }

    /// Take a user's access to a room away. Needs `rooms:grant-access` and the owner or
    /// administrator role; the room's last owner keeps theirs (409).
    #[oai(
        path = "/external-api/v1.0/rooms/:id/accesses/:email",
        method = "delete",
        operation_id = "rooms_revoke_access"
    )]
    async fn revoke_access(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// The room's id (a UUID).
        id: Path<String>,
        /// The e-mail of the user whose access goes.
        email: Path<String>,
    ) -> Result<DeletedResponse, ErrorResponse> {
        let p = authorize(&state, &auth, Scope::RoomsGrantAccess).await?;
        accesses::revoke_access(
            &state.db,
            &state.cache,
            &state.writes,
            &state.directory,
            &p,
            &id.0,
            &email.0,
        )
        .await
        .map_err(ApiError::from)?;
        Ok(DeletedResponse::NoContent)
    }
}
