//! `GET /.well-known/jwks.json`.

use std::sync::Arc;

use chrono::TimeDelta;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use crate::state::AppState;

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// RFC 7517 JWK Set: pending, active and recently superseded public keys.
    #[oai(status = 200)]
    Ok(
        Json<serde_json::Value>,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// How long a JWKS request waits for the key table before serving the loaded set.
const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

pub struct KeysApi;

#[OpenApi(tag = "crate::api::health::Tag::OAuth")]
impl KeysApi {
    /// Public signing keys (empty in HS256 mode).
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: Data<&Arc<AppState>>) -> JwksResponse {
        // Fresh from the table (publish-before-sign across replicas, signing.rs); if the
        // database is slow or down, the loaded set is served: reading keys must go on.
        let fresh = state.keys.publish_current(&state.db, state.clock.now());
        match tokio::time::timeout(PUBLISH_WAIT, fresh).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "JWKS served from the loaded key set"),
            Err(_) => tracing::warn!("JWKS served from the loaded key set: key table slow"),
        }
        let ttl = TimeDelta::seconds(state.config.token_ttl_seconds);
        let body = state.keys.snapshot().jwks(state.clock.now(), ttl);
        JwksResponse::Ok(Json(body), "public, max-age=300".to_owned())
    }
}
