//! Thin operations: authenticate, check the scope, then call `service`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use shared::Scope;

use super::model::{Room, RoomCreate, RoomPage, RoomPatch};
use super::service::{self, ROOMS_PATH};
use crate::api::extract::{BearerAuth, IntParam, JsonBody};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorResponse};
use crate::state::AppState;

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
    let principal = state.auth.authenticate(&auth.0).await?;
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
    /// `page` starts at 1; `page_size` is 1–100 (default 20). Needs `rooms:list`.
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
    ) -> Result<Json<RoomPage>, ErrorResponse> {
        let p = authorize(&state, &auth, Scope::RoomsList).await?;
        let page = service::list(
            &state.db,
            &state.config.rooms,
            &p,
            page.0.as_ref().map(|v| v.0.as_str()),
            page_size.0.as_ref().map(|v| v.0.as_str()),
        )
        .await
        .map_err(ApiError::from)?;
        Ok(Json(page))
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
            &state.writes,
            &state.config.rooms,
            &p,
            state.clock.now(),
            bytes,
        )
        .await
        .map_err(ApiError::from)?;
        let location = format!("{}{ROOMS_PATH}/{}", state.config.rooms.public_url, room.id);
        Ok(CreatedResponse::Created(Json(room), location))
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
        let room = service::retrieve(&state.db, &state.config.rooms, &p, &id.0)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(room))
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
            &state.writes,
            &state.config.rooms,
            &p,
            &id.0,
            bytes,
        )
        .await
        .map_err(ApiError::from)?;
        Ok(Json(room))
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
        service::delete(&state.db, &state.writes, &p, &id.0)
            .await
            .map_err(ApiError::from)?;
        Ok(DeletedResponse::NoContent)
    }
}
