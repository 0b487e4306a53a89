//! `/admin/v1/users`: the `auth-server user …` commands over HTTP.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use shared::Email;
use uuid::Uuid;

use super::{AdminKey, AdminTag, authenticate};
use crate::domain::paging::PageRequest;
use crate::domain::summary::UserSummary;
use crate::domain::users::{self, UserRef};
use crate::error::problem::{AdminError, FieldError};
use crate::model::User;
use crate::state::AppState;

#[derive(Object)]
#[oai(rename = "User")]
pub struct UserOut {
    pub id: Uuid,
    pub email: String,
    /// The user's id in the operator's own system; absent for a provisional user.
    #[oai(skip_serializing_if_is_none)]
    pub external_sub: Option<String>,
    pub is_active: bool,
    /// The application whose token request created this provisional user, if one did.
    #[oai(skip_serializing_if_is_none)]
    pub created_by_client_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The domain's summary, field for field (the CLI's `--json` prints the same).
impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        let s = UserSummary::from(u);
        Self {
            id: s.id,
            email: s.email,
            external_sub: s.external_sub,
            is_active: s.is_active,
            created_by_client_id: s.created_by_client_id,
            created_at: s.created_at,
        }
    }
}

#[derive(Object)]
pub struct UserPage {
    pub items: Vec<UserOut>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct UserCreate {
    pub email: String,
    /// The user's id in your own system. Given for an e-mail whose provisional user exists,
    /// it is attached to that user.
    pub external_sub: Option<String>,
}

#[derive(Object)]
pub struct UserUpdate {
    /// false deactivates (the user's tokens die); true activates (earlier tokens stay dead).
    pub is_active: bool,
}

#[derive(ApiResponse)]
pub enum Created {
    #[oai(status = 201)]
    Created(Json<UserOut>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted: its tokens die, its e-mail and sub are forgotten.
    #[oai(status = 204)]
    NoContent,
}

fn email(field: &str, raw: &str, status_422: bool) -> Result<Email, AdminError> {
    Email::parse_trimmed(raw).map_err(|e| {
        let message = format!("invalid e-mail: {e}");
        if status_422 {
            AdminError::field(field, message)
        } else {
            AdminError::bad_request(
                message.clone(),
                vec![FieldError {
                    field: field.into(),
                    message,
                }],
            )
        }
    })
}

pub struct UsersApi;

#[OpenApi(prefix_path = "/admin/v1/users", tag = "AdminTag::Users")]
impl UsersApi {
    /// Create a user (or attach `external_sub` to the provisional user with this e-mail).
    #[oai(path = "/", method = "post", operation_id = "createUser")]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        body: Json<UserCreate>,
    ) -> Result<Created, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        let email = email("email", &body.0.email, true)?;
        let user = users::create(
            &state.db,
            &actor,
            &email,
            body.0.external_sub,
            state.clock.now(),
        )
        .await?;
        Ok(Created::Created(Json(UserOut::from(&user))))
    }

    /// Users, oldest first, a page at a time; `email` finds the one user with that e-mail
    /// (compared in its normalised form).
    #[oai(path = "/", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        email: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> Result<Json<UserPage>, AdminError> {
        authenticate(&state, &key, req).await?;
        let page = PageRequest::parse(cursor.0.as_deref(), limit.0)?;
        let email = email
            .0
            .as_deref()
            .map(|e| self::email("email", e, false))
            .transpose()?;
        let page = users::page(&state.db, email.as_ref(), page).await?;
        let page = page.map(|u| UserOut::from(&u));
        Ok(Json(UserPage {
            items: page.items,
            next_cursor: page.next,
        }))
    }

    /// One user.
    #[oai(path = "/:id", method = "get", operation_id = "getUser")]
    async fn show(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        id: Path<Uuid>,
    ) -> Result<Json<UserOut>, AdminError> {
        authenticate(&state, &key, req).await?;
        Ok(Json(UserOut::from(&users::find(&state.db, id.0).await?)))
    }

    /// Activate or deactivate a user.
    #[oai(path = "/:id", method = "patch", operation_id = "updateUser")]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        id: Path<Uuid>,
        body: Json<UserUpdate>,
    ) -> Result<Json<UserOut>, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        let user = users::set_active(
            &state.db,
            &actor,
            UserRef::Id(id.0),
            body.0.is_active,
            state.clock.now(),
        )
        .await?;
        Ok(Json(UserOut::from(&user)))
    }

    /// Delete a user.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteUser")]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        id: Path<Uuid>,
    ) -> Result<Deleted, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        users::delete(&state.db, &actor, UserRef::Id(id.0), state.clock.now()).await?;
        Ok(Deleted::NoContent)
    }
}
