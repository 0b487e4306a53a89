//! The rooms API's metrics, on the shared registry of `server_kit::metrics`.

use std::sync::Arc;

use prometheus::IntCounterVec;
use server_kit::metrics::{HttpMetrics, counter};

pub const ROUTES: &[&str] = &[
    "/external-api/v1.0/rooms",
    "/external-api/v1.0/rooms/{id}",
    "/external-api/v1.0/rooms/{id}/grant-access",
    "/external-api/v1.0/rooms/{id}/accesses/{email}",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
];

#[derive(Debug)]
pub struct RoomsMetrics {
    pub http: Arc<HttpMetrics>,
    /// Refused bearer requests, by reason (`missing_token`, `invalid_token`, …).
    pub auth_failures: IntCounterVec,
    /// Introspection cache lookups: `hit` or `miss`.
    pub introspection_cache: IntCounterVec,
    /// Verified-token cache lookups (local modes): `hit` or `miss`.
    pub token_cache: IntCounterVec,
    /// Room cache lookups (`rooms/cache.rs`): `hit`, `miss`, or `off`.
    pub room_cache: IntCounterVec,
}

impl RoomsMetrics {
    pub fn new() -> prometheus::Result<Self> {
        let http = HttpMetrics::new(ROUTES.to_vec())?;
        let r = &http.registry;
        Ok(Self {
            auth_failures: counter(
                r,
                "rooms_authentication_failures_total",
                "Refused bearer requests",
                &["reason"],
            )?,
            introspection_cache: counter(
                r,
                "rooms_introspection_cache_total",
                "Introspection cache lookups",
                &["result"],
            )?,
            token_cache: counter(
                r,
                "rooms_verified_token_cache_total",
                "Verified-token cache lookups",
                &["result"],
            )?,
            room_cache: counter(
                r,
                "rooms_room_cache_total",
                "Room cache lookups",
                &["result"],
            )?,
            http: Arc::new(http),
        })
    }
}
