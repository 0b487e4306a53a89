//! `/admin/v1/admin-keys`: list and revoke this API's keys. Creating one stays on the CLI.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::{AdminKey, AdminTag, authenticate};
use crate::domain::admin_keys;
use crate::domain::summary::AdminKeySummary;
use crate::error::problem::AdminError;
use crate::model::AdminKey as Row;
use crate::state::AppState;

#[derive(Object)]
#[oai(rename = "AdminKey")]
pub struct AdminKeyOut {
    pub id: Uuid,
    /// The actor its changes are recorded under.
    pub name: String,
    /// The public part of the key (`adm_<key_id>_…`).
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The domain's summary, field for field (the CLI's `--json` prints the same).
impl From<&Row> for AdminKeyOut {
    fn from(k: &Row) -> Self {
        let s = AdminKeySummary::from(k);
        Self {
            id: s.id,
            name: s.name,
            key_id: s.key_id,
            created_at: s.created_at,
            revoked_at: s.revoked_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum Revoked {
    /// Revoked: its next call is refused.
    #[oai(status = 204)]
    NoContent,
}

pub struct AdminKeysApi;

#[OpenApi(prefix_path = "/admin/v1/admin-keys", tag = "AdminTag::AdminKeys")]
impl AdminKeysApi {
    /// Every admin key (never the key itself).
    #[oai(path = "/", method = "get", operation_id = "listAdminKeys")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
    ) -> Result<Json<Vec<AdminKeyOut>>, AdminError> {
        authenticate(&state, &key, req).await?;
        let keys = admin_keys::list(&state.db).await?;
        Ok(Json(keys.iter().map(AdminKeyOut::from).collect()))
    }

    /// Revoke an admin key (a key may revoke itself).
    #[oai(path = "/:id", method = "delete", operation_id = "revokeAdminKey")]
    async fn revoke(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        id: Path<Uuid>,
    ) -> Result<Revoked, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        admin_keys::revoke(&state.db, &actor, id.0, state.clock.now()).await?;
        Ok(Revoked::NoContent)
    }
}
