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

pub struct KeysApi;

#[OpenApi(tag = "crate::api::health::Tag::OAuth")]
impl KeysApi {
    /// Public signing keys (empty in HS256 mode).
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: Data<&Arc<AppState>>) -> JwksResponse {
        let ttl = TimeDelta::seconds(state.config.token_ttl_seconds);
        let body = state.keys.snapshot().jwks(state.clock.now(), ttl);
        JwksResponse::Ok(Json(body), "public, max-age=300".to_owned())
    }
}
