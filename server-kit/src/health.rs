//! The health answers both services document and serve (`/healthz`, `/readyz`).

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use sea_orm::DatabaseConnection;

/// Readiness of the database: one round trip (`/readyz` of both services).
pub async fn database_answers(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

#[derive(Debug, Object)]
pub struct Status {
    pub status: String,
}

impl Status {
    pub fn json(status: &str) -> Json<Status> {
        Json(Self {
            status: status.to_owned(),
        })
    }
}

#[derive(Debug, ApiResponse)]
pub enum ReadyResponse {
    /// Ready to serve.
    #[oai(status = 200)]
    Ready(Json<Status>),
    /// A dependency is not ready; the status says which.
    #[oai(status = 503)]
    NotReady(Json<Status>),
}
