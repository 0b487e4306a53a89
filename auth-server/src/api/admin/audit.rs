//! `/admin/v1/audit-events`: the audit trail, oldest first, a page at a time.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{AdminKey, AdminTag, authenticate};
use crate::domain::audit::{self, Resource};
use crate::domain::paging::PageRequest;
use crate::error::problem::{AdminError, FieldError};
use crate::model::AuditEvent;
use crate::state::AppState;

#[derive(Object)]
#[oai(rename = "AuditEvent")]
pub struct AuditEventOut {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// The admin key's name, or `cli`.
    pub actor: String,
    /// create, update, rotate_secret, delete, activate, deactivate, attach_sub, rotate,
    /// retire, revoke.
    pub action: String,
    /// application, user, signing_key or admin_key.
    pub resource: String,
    /// The client_id, user id, kid or admin key id.
    pub resource_id: String,
    /// `{field: {"before": …, "after": …}}` for the fields that changed; never a secret.
    pub changes: serde_json::Value,
}

impl From<AuditEvent> for AuditEventOut {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            resource: e.resource,
            resource_id: e.resource_id,
            changes: serde_json::from_str(&e.changes).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Object)]
pub struct AuditEventPage {
    pub items: Vec<AuditEventOut>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

pub struct AuditApi;

#[OpenApi(prefix_path = "/admin/v1/audit-events", tag = "AdminTag::Audit")]
impl AuditApi {
    /// Administrative changes, oldest first; filter by `resource` (and `resource_id`) and by
    /// `since` (RFC 3339).
    #[oai(path = "/", method = "get", operation_id = "listAuditEvents")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        resource: Query<Option<String>>,
        resource_id: Query<Option<String>>,
        since: Query<Option<DateTime<Utc>>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> Result<Json<AuditEventPage>, AdminError> {
        authenticate(&state, &key, req).await?;
        let page = PageRequest::parse(cursor.0.as_deref(), limit.0)?;
        let resource = match resource.0.as_deref() {
            None => None,
            Some(r) => Some(Resource::parse(r).ok_or_else(|| {
                let message = "must be one of application, user, signing_key, admin_key".to_owned();
                AdminError::bad_request(
                    format!("resource {message}"),
                    vec![FieldError {
                        field: "resource".into(),
                        message,
                    }],
                )
            })?),
        };
        let query = audit::Query {
            resource,
            resource_id: resource_id.0,
            since: since.0,
        };
        let page = audit::list(&state.db, query, page).await?;
        let page = page.map(AuditEventOut::from);
        Ok(Json(AuditEventPage {
            items: page.items,
            next_cursor: page.next,
        }))
    }
}
