//! `/admin/v1/signing-keys`: the `auth-server keys …` commands over HTTP.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{AdminKey, AdminTag, authenticate};
use crate::domain::key_lifecycle;
use crate::domain::signing::{self, KeyInfo};
use crate::error::problem::AdminError;
use crate::state::AppState;

#[derive(Object)]
#[oai(rename = "SigningKey")]
pub struct SigningKeyOut {
    pub kid: String,
    pub alg: String,
    /// pending, active, superseded or retired.
    pub state: String,
    pub created_at: DateTime<Utc>,
    /// When it signs (or signed) from.
    pub activates_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub superseded_at: Option<DateTime<Utc>>,
}

impl From<KeyInfo> for SigningKeyOut {
    fn from(k: KeyInfo) -> Self {
        Self {
            kid: k.kid,
            alg: k.alg,
            state: serde_json::to_value(k.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            created_at: k.created_at,
            activates_at: k.activates_at,
            superseded_at: k.superseded_at,
        }
    }
}

#[derive(Object)]
pub struct RotateKey {
    /// Sign with the new key at once on this replica, and on the others from their next key
    /// refresh; false: published now, signing after 300 s.
    #[oai(default)]
    pub now: bool,
}

#[derive(ApiResponse)]
pub enum Rotated {
    /// The new key.
    #[oai(status = 201)]
    Created(Json<SigningKeyOut>),
}

pub struct SigningKeysApi;

#[OpenApi(prefix_path = "/admin/v1/signing-keys", tag = "AdminTag::SigningKeys")]
impl SigningKeysApi {
    /// Every key with its state.
    #[oai(path = "/", method = "get", operation_id = "listSigningKeys")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
    ) -> Result<Json<Vec<SigningKeyOut>>, AdminError> {
        authenticate(&state, &key, req).await?;
        let keys = signing::list(&state.db, state.clock.now()).await?;
        Ok(Json(keys.into_iter().map(SigningKeyOut::from).collect()))
    }

    /// Add a key: published at once, signing after 300 s, or at once with `now`. 409 with
    /// HS256 (rotate TOKEN_HS256_SECRET instead).
    #[oai(path = "/rotate", method = "post", operation_id = "rotateSigningKey")]
    async fn rotate(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        body: Json<RotateKey>,
    ) -> Result<Rotated, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        let now = state.clock.now();
        let kid = key_lifecycle::rotate(&state.db, &state.keys, &actor, body.0.now, now).await?;
        // This replica publishes it now; the others at their next refresh.
        if let Err(e) = state.keys.refresh(&state.db, now).await {
            tracing::warn!(error = %e, "key refresh after rotation failed");
        }
        let info = signing::list(&state.db, now)
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| AdminError::not_found(format!("no key {kid}")))?;
        Ok(Rotated::Created(Json(info.into())))
    }

    /// Emergency: take a key out of the JWKS and have every verifier refuse its tokens. 409
    /// for the key that signs now (rotate with `now` first) or one already retired.
    #[oai(
        path = "/:kid/retire",
        method = "post",
        operation_id = "retireSigningKey"
    )]
    async fn retire(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        kid: Path<String>,
    ) -> Result<Json<SigningKeyOut>, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        let now = state.clock.now();
        key_lifecycle::retire(&state.db, &actor, &kid.0, now).await?;
        let info = signing::list(&state.db, now)
            .await?
            .into_iter()
            .find(|k| k.kid == kid.0)
            .ok_or_else(|| AdminError::not_found(format!("no key {}", kid.0)))?;
        Ok(Json(info.into()))
    }
}
