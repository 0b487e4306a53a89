//! The auth-server's metrics, on the shared registry of `server_kit::metrics`.

use std::sync::Arc;

use prometheus::IntCounterVec;
use server_kit::metrics::{HttpMetrics, counter};

pub const ROUTES: &[&str] = &[
    "/oauth/token",
    "/external-api/v1.0/application/token",
    "/oauth/introspect",
    "/oauth/revoke",
    "/oauth/revocations",
    "/oauth/resolve-user",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    // The admin listener's.
    "/admin/v1/applications",
    "/admin/v1/applications/{client_id}",
    "/admin/v1/applications/{client_id}/rotate-secret",
    "/admin/v1/users",
    "/admin/v1/users/{id}",
    "/admin/v1/signing-keys",
    "/admin/v1/signing-keys/rotate",
    "/admin/v1/signing-keys/{kid}/retire",
    "/admin/v1/admin-keys",
    "/admin/v1/admin-keys/{id}",
    "/admin/v1/audit-events",
];

#[derive(Debug, Clone)]
pub struct AuthMetrics {
    pub http: Arc<HttpMetrics>,
    /// Access tokens issued, by client_id.
    pub tokens_issued: IntCounterVec,
    /// Failed client authentications, by reason.
    pub auth_failures: IntCounterVec,
    /// Verified-secret cache lookups: `hit` (no argon2), `refused` (refused within
    /// `REFUSED_TTL`: no argon2) or `miss`.
    pub secret_cache: IntCounterVec,
    /// argon2 verifications run, by lane (`normal`, `reserved`): shared ones count once.
    pub argon2_verifications: IntCounterVec,
    /// Row cache lookups (`store/row_cache.rs`): `hit`, `miss`, `off`.
    pub row_cache: IntCounterVec,
}

impl AuthMetrics {
    pub fn new() -> prometheus::Result<Self> {
        let http = HttpMetrics::new(ROUTES.to_vec())?;
        let r = &http.registry;
        Ok(Self {
            tokens_issued: counter(
                r,
                "auth_tokens_issued_total",
                "Access tokens issued",
                &["client_id"],
            )?,
            auth_failures: counter(
                r,
                "auth_client_authentication_failures_total",
                "Refused client authentications",
                &["reason"],
            )?,
            secret_cache: counter(
                r,
                "auth_secret_cache_total",
                "Verified-secret cache lookups",
                &["result"],
            )?,
            argon2_verifications: counter(
                r,
                "auth_argon2_verifications_total",
                "argon2 secret verifications run",
                &["lane"],
            )?,
            row_cache: counter(
                r,
                "auth_row_cache_total",
                "Row cache lookups of the token and introspection paths",
                &["result"],
            )?,
            http: Arc::new(http),
        })
    }

    pub fn failure(&self, reason: &str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }
}
