//! `/healthz` (the process answers) and `/readyz` (the database answers).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{OpenApi, Tags};
use server_kit::health::{ReadyResponse, Status, database_answers};

use crate::state::AppState;

#[derive(Tags)]
pub enum Tag {
    /// OAuth2 endpoints.
    OAuth,
    /// Liveness and readiness.
    Health,
}

pub struct HealthApi;

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// Liveness: the process is up.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Status> {
        Status::json("ok")
    }

    /// Readiness: the database answers.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        if database_answers(&state.db).await {
            ReadyResponse::Ready(Status::json("ready"))
        } else {
            ReadyResponse::NotReady(Status::json("database unavailable"))
        }
    }
}
