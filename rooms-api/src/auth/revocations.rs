//! The revocation feed (docs/spec/auth-server.md §6) as seen by a locally-verifying rooms API: polled
//! every `REVOCATION_POLL_SECONDS`, applied to every request, and failing closed when it has not
//! been reachable for `max(3 × poll, 60 s)`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::ExposeSecret;
use shared::basic_auth::encode_basic;
use shared::feed::Feed;
use shared::{AccessTokenClaims, Clock};

use crate::config::RevocationConfig;

/// More announced kids than this are ignored (the table holds a few keys).
const MAX_ANNOUNCED: usize = 64;

#[derive(Debug, Default)]
struct State {
    revoked: HashMap<String, i64>,
    clients: HashMap<String, i64>,
    users: HashMap<String, i64>,
    cursor: Option<String>,
    last_success: Option<DateTime<Utc>>,
    /// Kids the auth-server announced in its last answer.
    announced: std::collections::HashSet<String>,
    /// Kids of retired keys: their tokens are refused whatever their `exp`.
    retired: std::collections::HashSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("revocation feed unreachable: {0}")]
    Request(#[from] reqwest::Error),
    #[error("revocation feed answered {0}")]
    Status(u16),
}

#[derive(Debug)]
pub struct RevocationFeed {
    config: RevocationConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    polls: AtomicU64,
}

impl RevocationFeed {
    pub fn new(config: RevocationConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Ok(Self {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            clock,
            state: RwLock::new(State::default()),
            polls: AtomicU64::new(0),
        })
    }

    fn staleness_limit(&self) -> TimeDelta {
        let three_polls =
            TimeDelta::from_std(self.config.poll * 3).unwrap_or(TimeDelta::seconds(60));
        three_polls.max(TimeDelta::seconds(60))
    }

    /// Fresh enough to trust: a poll succeeded within `max(3 × poll, 60 s)`.
    pub fn is_fresh(&self) -> bool {
        let now = self.clock.now();
        self.state
            .read()
            .ok()
            .and_then(|s| s.last_success)
            .is_some_and(|t| now - t < self.staleness_limit())
    }

    pub fn poll_count(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// True when `kid` names a retired key: refuse the token.
    pub fn is_retired(&self, kid: &str) -> bool {
        self.state
            .read()
            .map(|s| s.retired.contains(kid))
            .unwrap_or(true)
    }

    /// True when the auth-server's feed named `kid` as one of its keys.
    pub fn announced(&self, kid: &str) -> bool {
        self.state
            .read()
            .map(|s| s.announced.contains(kid))
            .unwrap_or(false)
    }

    /// Refused when revoked, or issued before its client's or user's `not_before`.
    pub fn is_refused(&self, claims: &AccessTokenClaims, user_id: &str) -> bool {
        let Ok(s) = self.state.read() else {
            return true;
        };
        if claims
            .jti
            .as_ref()
            .is_some_and(|j| s.revoked.contains_key(j))
        {
            return true;
        }
        let client_nb = s.clients.get(&claims.client_id).copied();
        let user_nb = s.users.get(user_id).copied();
        [client_nb, user_nb]
            .into_iter()
            .flatten()
            .any(|nb| claims.issued_before(nb))
    }

    /// One poll: a snapshot the first time (or after an unknown cursor), then changes.
    pub async fn poll_once(&self) -> Result<(), FeedError> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let cursor = self.state.read().ok().and_then(|s| s.cursor.clone());
        let creds = &self.config.credentials;
        let url = match &cursor {
            // The cursor is base64url: safe in a query string as is.
            Some(c) => format!("{}?cursor={c}", self.config.url),
            None => self.config.url.clone(),
        };
        let resp = self
            .http
            .get(url)
            .header(
                "authorization",
                encode_basic(&creds.client_id, creds.secret.expose_secret()),
            )
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(FeedError::Status(resp.status().as_u16()));
        }
        let feed: Feed = resp.json().await?;
        let now = self.clock.now();
        if let Ok(mut s) = self.state.write() {
            if feed.complete {
                s.revoked.clear();
                s.clients.clear();
                s.users.clear();
            }
            for r in feed.revoked {
                s.revoked.insert(r.jti, r.exp);
            }
            for c in feed.clients_not_before {
                let e = s.clients.entry(c.client_id).or_insert(c.not_before);
                *e = (*e).max(c.not_before);
            }
            for u in feed.users_not_before {
                let e = s.users.entry(u.user_id).or_insert(u.not_before);
                *e = (*e).max(u.not_before);
            }
            // Revocations of tokens past any leeway no longer matter; before that, a revoked
            // token would be accepted again (claims::REVOCATION_RETENTION_SECONDS).
            let horizon = now.timestamp() - shared::claims::REVOCATION_RETENTION_SECONDS;
            s.revoked.retain(|_, exp| *exp > horizon);
            s.cursor = Some(feed.cursor);
            // Bounded like the key table: a handful of kids.
            s.announced = feed.kids.into_iter().take(MAX_ANNOUNCED).collect();
            // Every answer lists every retired key: replace, never merge.
            s.retired = feed.retired_kids.into_iter().take(MAX_ANNOUNCED).collect();
            s.last_success = Some(now);
        }
        Ok(())
    }

    pub fn spawn(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.poll_once().await {
                    tracing::warn!(error = %e, "revocation feed poll failed");
                }
                tokio::time::sleep(self.config.poll).await;
            }
        });
    }
}
