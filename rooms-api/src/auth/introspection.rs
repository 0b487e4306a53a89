//! `introspection` mode (docs/spec/rooms-api.md §1): ask an RFC 7662 endpoint — ours or any other
//! (a Keycloak realm) — and cache the answer by a hash of the token. Anything but a well-formed
//! answer is a 503, never a pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::Value;
use shared::Clock;
use shared::basic_auth::encode_basic;
use shared::claims::ScopeClaim;
use shared::token::TokenRejection;

use super::AuthFailure;
use crate::config::IntrospectionConfig;
use crate::principal::Principal;

#[derive(Debug, Clone)]
enum Answer {
    Active(Principal),
    Inactive,
}

#[derive(Debug, Clone)]
struct Cached {
    answer: Answer,
    until: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Introspector {
    config: IntrospectionConfig,
    issuer: String,
    audience: String,
    http: reqwest::Client,
    cache: moka::future::Cache<[u8; 32], Cached>,
    clock: Arc<dyn Clock>,
    calls: AtomicU64,
    cache_lookups: prometheus::IntCounterVec,
}

/// Why an answer could not be used: the caller gets 503.
#[derive(Debug, Clone, thiserror::Error)]
#[error("introspection unavailable")]
pub struct Unavailable;

impl Introspector {
    pub fn new(
        config: IntrospectionConfig,
        issuer: String,
        audience: String,
        clock: Arc<dyn Clock>,
        cache_lookups: prometheus::IntCounterVec,
    ) -> anyhow::Result<Self> {
        let max_ttl = config
            .positive_ttl
            .max(config.negative_ttl)
            .num_seconds()
            .max(1);
        let cache = moka::future::Cache::builder()
            .max_capacity(config.cache_size)
            .time_to_live(Duration::from_secs(u64::try_from(max_ttl).unwrap_or(30)))
            .build();
        Ok(Self {
            config,
            issuer,
            audience,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            cache,
            clock,
            calls: AtomicU64::new(0),
            cache_lookups,
        })
    }

    /// How many introspection calls were made (observability and tests).
    pub fn call_count(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub async fn authenticate(
        &self,
        token: &str,
        mode: &'static str,
    ) -> Result<Principal, AuthFailure> {
        let key = server_kit::digest::sha256(token.as_bytes());
        let now = self.clock.now();
        if let Some(hit) = self.cache.get(&key).await {
            if hit.until > now {
                self.cache_lookups.with_label_values(&["hit"]).inc();
                return into_result(hit.answer);
            }
            self.cache.invalidate(&key).await;
        }
        self.cache_lookups.with_label_values(&["miss"]).inc();
        // Concurrent misses for one token share a single call.
        let cached = self
            .cache
            .try_get_with(key, async { self.call(token, mode).await })
            .await
            .map_err(|_| AuthFailure::Unavailable)?;
        into_result(cached.answer)
    }

    async fn call(&self, token: &str, mode: &'static str) -> Result<Cached, Unavailable> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let creds = &self.config.credentials;
        let request = self
            .http
            .post(&self.config.url)
            .header(
                "authorization",
                encode_basic(&creds.client_id, creds.secret.expose_secret()),
            )
            .header("accept", "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        let response = server_kit::traces::send(server_kit::client_span!("introspection"), request)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "introspection endpoint unreachable");
                Unavailable
            })?;
        if response.status() != reqwest::StatusCode::OK {
            tracing::warn!(
                status = response.status().as_u16(),
                "introspection endpoint refused"
            );
            return Err(Unavailable);
        }
        let body: Value = response.json().await.map_err(|_| Unavailable)?;
        let now = self.clock.now();
        self.interpret(&body, now, mode)
    }

    fn interpret(
        &self,
        body: &Value,
        now: DateTime<Utc>,
        mode: &'static str,
    ) -> Result<Cached, Unavailable> {
        let active = body
            .get("active")
            .and_then(Value::as_bool)
            .ok_or(Unavailable)?;
        let inactive = Cached {
            answer: Answer::Inactive,
            until: now + self.config.negative_ttl,
        };
        if !active {
            return Ok(inactive);
        }
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (Some(sub), Some(client_id)) = (text("sub"), text("client_id")) else {
            return Ok(inactive);
        };
        if let Some(aud) = body.get("aud") {
            let ok = match aud {
                Value::String(a) => *a == self.audience,
                Value::Array(list) => list
                    .iter()
                    .any(|a| a.as_str() == Some(self.audience.as_str())),
                _ => false,
            };
            if !ok {
                return Ok(inactive);
            }
        }
        if body.get("iss").is_some() && text("iss") != Some(self.issuer.as_str()) {
            return Ok(inactive);
        }
        let mut until = now + self.config.positive_ttl;
        if let Some(exp) = body.get("exp").and_then(Value::as_i64) {
            let Some(exp) = DateTime::from_timestamp(exp, 0) else {
                return Ok(inactive);
            };
            if exp <= now {
                return Ok(inactive);
            }
            until = until.min(exp);
        }
        let scopes = body
            .get("scope")
            .and_then(|s| serde_json::from_value::<ScopeClaim>(s.clone()).ok())
            .map(|c| c.scopes(self.config.scope_prefix.as_deref()).token_scopes())
            .unwrap_or_default();
        Ok(Cached {
            answer: Answer::Active(Principal {
                user_id: sub.to_owned(),
                client_id: client_id.to_owned(),
                scopes,
                mode,
                jkt: body
                    .get("cnf")
                    .and_then(|c| c.get("jkt"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            until,
        })
    }
}

fn into_result(answer: Answer) -> Result<Principal, AuthFailure> {
    match answer {
        Answer::Active(p) => Ok(p),
        Answer::Inactive => Err(AuthFailure::Invalid(TokenRejection::Inactive)),
    }
}
