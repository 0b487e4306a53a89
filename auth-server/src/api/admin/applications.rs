//! `/admin/v1/applications`: the `auth-server app …` commands over HTTP.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;
use shared::{Allowlist, ClientId, ScopeSet};
use uuid::Uuid;

use super::{AdminKey, AdminTag, authenticate};
use crate::domain::applications::{self, Changes, NewApp, Rotation};
use crate::domain::input::FieldCheck;
use crate::domain::paging::PageRequest;
use crate::domain::summary::ApplicationSummary;
use crate::error::problem::AdminError;
use crate::model::Application;
use crate::state::AppState;

/// A secret that works now.
#[derive(Object)]
pub struct SecretInfo {
    /// `current`, or `previous` during a rotation's grace.
    pub which: String,
    /// When it stops working; absent for the current secret.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Object)]
#[oai(rename = "Application")]
pub struct ApplicationOut {
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Admitted e-mail domains; empty admits any.
    pub domains: Vec<String>,
    pub is_active: bool,
    /// The application's own token lifetime, if set.
    #[oai(skip_serializing_if_is_none)]
    pub token_ttl_seconds: Option<u32>,
    /// The lifetime its tokens get: its own, or the server's `TOKEN_TTL_SECONDS`.
    pub effective_token_ttl_seconds: u32,
    /// `client_secret` (Basic or post) or `private_key_jwt`.
    pub token_endpoint_auth_method: String,
    /// The secrets that work now; empty for an application without one.
    pub secrets: Vec<SecretInfo>,
    /// Its public keys, if registered inline.
    #[oai(skip_serializing_if_is_none)]
    pub jwks: Option<serde_json::Value>,
    /// Where its public keys are fetched from, if registered so.
    #[oai(skip_serializing_if_is_none)]
    pub jwks_uri: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// When it last obtained a token (to the minute).
    #[oai(skip_serializing_if_is_none)]
    pub last_token_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only in the answers to create and rotate-secret: store it now, it is never shown again.
    #[oai(skip_serializing_if_is_none)]
    pub client_secret: Option<String>,
}

impl ApplicationOut {
    fn new(app: &Application, secret: Option<&SecretString>, state: &AppState) -> Self {
        let max = u32::try_from(state.config.token_ttl_seconds).unwrap_or(u32::MAX);
        ApplicationSummary::new(app, secret, state.clock.now(), max).into()
    }
}

/// The domain's summary, field for field (the CLI's `--json` prints the same).
impl From<ApplicationSummary> for ApplicationOut {
    fn from(s: ApplicationSummary) -> Self {
        Self {
            id: s.id,
            client_id: s.client_id,
            name: s.name,
            scopes: s.scopes,
            domains: s.domains,
            is_active: s.is_active,
            token_ttl_seconds: s.token_ttl_seconds,
            effective_token_ttl_seconds: s.effective_token_ttl_seconds,
            token_endpoint_auth_method: s.token_endpoint_auth_method.to_owned(),
            secrets: s
                .secrets
                .into_iter()
                .map(|x| SecretInfo {
                    which: x.which.to_owned(),
                    expires_at: x.expires_at,
                })
                .collect(),
            jwks: s.jwks,
            jwks_uri: s.jwks_uri,
            dpop_bound_access_tokens: s.dpop_bound_access_tokens,
            last_token_at: s.last_token_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
            client_secret: s.client_secret,
        }
    }
}

#[derive(Object)]
pub struct ApplicationPage {
    pub items: Vec<ApplicationOut>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct ApplicationCreate {
    /// 1 to 255 characters.
    pub name: String,
    /// rooms:create rooms:list rooms:retrieve rooms:update rooms:delete rooms:grant-access
    /// tokens:introspect tokens:revocations users:resolve
    #[oai(default)]
    pub scopes: Vec<String>,
    /// example.com or *.example.com; none admits any e-mail domain.
    #[oai(default)]
    pub domains: Vec<String>,
    /// At most the server's `TOKEN_TTL_SECONDS`; absent: that.
    pub token_ttl_seconds: Option<u32>,
    /// Public keys (a JWKS: EdDSA, ES256, RS256 or PS256), for private_key_jwt and the
    /// JWT-bearer grant.
    pub jwks: Option<serde_json::Value>,
    /// Or where to fetch them (https; http only for a loopback host).
    pub jwks_uri: Option<String>,
    /// `client_secret` or `private_key_jwt`; absent: `private_key_jwt` with `no_secret`,
    /// `client_secret` otherwise.
    pub token_endpoint_auth_method: Option<String>,
    /// Register no secret at all (needs keys).
    pub no_secret: Option<bool>,
    /// Every token request must carry a DPoP proof, so every token is bound to the client's
    /// key (RFC 9449 §5.2). Default false.
    pub dpop_bound_access_tokens: Option<bool>,
}

/// Only the fields sent change. `scopes` and `domains` replace the whole list.
#[derive(Object)]
pub struct ApplicationUpdate {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub domains: Option<Vec<String>>,
    /// false deactivates (its tokens die); true activates (earlier tokens stay dead).
    pub is_active: Option<bool>,
    /// A number sets the application's own lifetime; `null` goes back to the server's.
    pub token_ttl_seconds: MaybeUndefined<u32>,
    /// Replaces the keys with this JWKS; `null` removes them.
    pub jwks: MaybeUndefined<serde_json::Value>,
    /// Replaces the keys with those at this URL; `null` removes them.
    pub jwks_uri: MaybeUndefined<String>,
    /// `client_secret` or `private_key_jwt` (switching kills earlier tokens).
    pub token_endpoint_auth_method: Option<String>,
    /// true: every token request must carry a DPoP proof from now on (earlier tokens die);
    /// false: bearer tokens again.
    pub dpop_bound_access_tokens: Option<bool>,
}

#[derive(Object)]
pub struct RotateSecret {
    /// Keep the old secret valid this many seconds (at most 30 days); absent or 0: it stops now.
    pub grace_seconds: Option<u32>,
    /// Kill tokens issued before the rotation. Default: true without a grace, false with one.
    pub revoke_tokens: Option<bool>,
}

#[derive(ApiResponse)]
pub enum Created {
    /// Created; `client_secret` is shown this once.
    #[oai(status = 201)]
    Created(Json<ApplicationOut>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted: its credentials and every token it issued stop working.
    #[oai(status = 204)]
    NoContent,
}

/// A client_id that can't be one names no application: 404, like an unknown one.
fn client_id(raw: &str) -> Result<ClientId, AdminError> {
    ClientId::parse(raw)
        .map_err(|_| AdminError::not_found(format!("no application with client_id {raw}")))
}

fn max_ttl(state: &AppState) -> u32 {
    u32::try_from(state.config.token_ttl_seconds).unwrap_or(u32::MAX)
}

pub struct ApplicationsApi;

#[OpenApi(prefix_path = "/admin/v1/applications", tag = "AdminTag::Applications")]
impl ApplicationsApi {
    /// Register an application; the answer carries its secret, this once.
    #[oai(path = "/", method = "post", operation_id = "createApplication")]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        body: Json<ApplicationCreate>,
    ) -> Result<Created, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        let Json(body) = body;
        let mut check = FieldCheck::default();
        let scopes: ScopeSet = check.scopes("scopes", &body.scopes).into_iter().collect();
        let domains = Allowlist::new(check.domains("domains", &body.domains));
        let method = check.auth_method(
            "token_endpoint_auth_method",
            body.token_endpoint_auth_method.as_deref(),
        );
        let keys = check.keys(body.jwks.map(|j| j.to_string()), body.jwks_uri);
        check.finish()?;
        let new = NewApp {
            name: body.name,
            scopes,
            domains,
            token_ttl_seconds: body.token_ttl_seconds,
            keys,
            auth_method: method,
            no_secret: body.no_secret.unwrap_or(false),
            dpop_bound_access_tokens: body.dpop_bound_access_tokens.unwrap_or(false),
        };
        let (app, secret) =
            applications::create(&state.db, &actor, new, max_ttl(&state), state.clock.now())
                .await?;
        Ok(Created::Created(Json(ApplicationOut::new(
            &app,
            secret.as_ref(),
            &state,
        ))))
    }

    /// Applications, oldest first, a page at a time; `name` keeps those whose name contains
    /// it (case-insensitive).
    #[oai(path = "/", method = "get", operation_id = "listApplications")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        name: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> Result<Json<ApplicationPage>, AdminError> {
        authenticate(&state, &key, req).await?;
        let page = PageRequest::parse(cursor.0.as_deref(), limit.0)?;
        let page = applications::page(&state.db, name.0.as_deref(), page).await?;
        let page = page.map(|a| ApplicationOut::new(&a, None, &state));
        Ok(Json(ApplicationPage {
            items: page.items,
            next_cursor: page.next,
        }))
    }

    /// One application.
    #[oai(path = "/:client_id", method = "get", operation_id = "getApplication")]
    async fn show(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        client_id: Path<String>,
    ) -> Result<Json<ApplicationOut>, AdminError> {
        authenticate(&state, &key, req).await?;
        let app = applications::find(&state.db, &self::client_id(&client_id.0)?).await?;
        Ok(Json(ApplicationOut::new(&app, None, &state)))
    }

    /// Change an application. Removing a scope or a domain, or deactivating, kills the tokens
    /// it issued before.
    #[oai(
        path = "/:client_id",
        method = "patch",
        operation_id = "updateApplication"
    )]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        client_id: Path<String>,
        body: Json<ApplicationUpdate>,
    ) -> Result<Json<ApplicationOut>, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        let Json(body) = body;
        let mut check = FieldCheck::default();
        let scopes = body
            .scopes
            .as_ref()
            .map(|s| check.scopes("scopes", s).into_iter().collect());
        let domains = body.domains.as_ref().map(|d| check.domains("domains", d));
        let method = check.auth_method(
            "token_endpoint_auth_method",
            body.token_endpoint_auth_method.as_deref(),
        );
        let new_keys = match (body.jwks, body.jwks_uri) {
            (MaybeUndefined::Undefined, MaybeUndefined::Undefined) => None,
            (MaybeUndefined::Null, MaybeUndefined::Null | MaybeUndefined::Undefined)
            | (MaybeUndefined::Undefined, MaybeUndefined::Null) => Some(None),
            (jwks, uri) => Some(check.keys(jwks.take().map(|j| j.to_string()), uri.take())),
        };
        check.finish()?;
        let changes = Changes {
            name: body.name,
            scopes,
            domains,
            active: body.is_active,
            token_ttl_seconds: match body.token_ttl_seconds {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(t) => Some(Some(t)),
            },
            keys: new_keys,
            auth_method: method,
            dpop_bound_access_tokens: body.dpop_bound_access_tokens,
            ..Changes::default()
        };
        let app = applications::update(
            &state.db,
            &actor,
            &self::client_id(&client_id.0)?,
            changes,
            max_ttl(&state),
            state.clock.now(),
        )
        .await?;
        Ok(Json(ApplicationOut::new(&app, None, &state)))
    }

    /// Issue a new secret (shown this once). With `grace_seconds` the old one keeps working
    /// until the grace ends: deploy the new one meanwhile.
    #[oai(
        path = "/:client_id/rotate-secret",
        method = "post",
        operation_id = "rotateApplicationSecret"
    )]
    async fn rotate_secret(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        client_id: Path<String>,
        body: Json<RotateSecret>,
    ) -> Result<Json<ApplicationOut>, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        let rotation = Rotation {
            grace: body
                .0
                .grace_seconds
                .map(|s| TimeDelta::seconds(i64::from(s))),
            revoke_tokens: body.0.revoke_tokens,
        };
        let (app, secret) = applications::rotate_secret(
            &state.db,
            &actor,
            &self::client_id(&client_id.0)?,
            rotation,
            state.clock.now(),
        )
        .await?;
        Ok(Json(ApplicationOut::new(&app, Some(&secret), &state)))
    }

    /// Delete an application.
    #[oai(
        path = "/:client_id",
        method = "delete",
        operation_id = "deleteApplication"
    )]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        key: AdminKey,
        client_id: Path<String>,
    ) -> Result<Deleted, AdminError> {
        let actor = authenticate(&state, &key, req).await?;
        applications::delete(
            &state.db,
            &actor,
            &self::client_id(&client_id.0)?,
            state.clock.now(),
        )
        .await?;
        Ok(Deleted::NoContent)
    }
}
