//! `/healthz` (the process answers) and `/readyz` (database answers and keys are loaded).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use crate::state::AppState;

#[derive(Tags)]
pub enum Tag {
    /// Meeting rooms of the delegated user.
    Rooms,
    /// Liveness and readiness.
    Health,
}

#[derive(Object)]
pub struct Status {
    pub status: String,
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    #[oai(status = 200)]
    Ready(Json<Status>),
    #[oai(status = 503)]
    NotReady(Json<Status>),
}

pub struct HealthApi;

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// Liveness: the process is up.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Status> {
        Json(Status {
            status: "ok".to_owned(),
        })
    }

    /// Readiness: the database answers and verification keys are loaded.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        if state.db.ping().await.is_err() {
            return ReadyResponse::NotReady(Json(Status {
                status: "database unavailable".to_owned(),
            }));
        }
        if !state.auth.is_ready().await {
            return ReadyResponse::NotReady(Json(Status {
                status: "verification keys not loaded".to_owned(),
            }));
        }
        ReadyResponse::Ready(Json(Status {
            status: "ready".to_owned(),
        }))
    }
}
