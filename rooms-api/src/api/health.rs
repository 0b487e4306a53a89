//! `/healthz` (the process answers) and `/readyz` (database answers and keys are loaded).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{OpenApi, Tags};
use server_kit::health::{ReadyResponse, Status, database_answers};

use crate::state::AppState;

#[derive(Tags)]
pub enum Tag {
    /// Meeting rooms of the delegated user.
    Rooms,
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

    /// Readiness: the database answers and verification keys are loaded.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        if !database_answers(&state.db).await {
            return ReadyResponse::NotReady(Status::json("database unavailable"));
        }
        if !state.auth.is_ready().await {
            return ReadyResponse::NotReady(Status::json(
                "token verification not ready (keys, introspection or revocation feed)",
            ));
        }
        ReadyResponse::Ready(Status::json("ready"))
    }
}
