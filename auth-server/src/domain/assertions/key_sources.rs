//! Where an application's public keys come from: fetched from its `jwks_uri` (cached, refetched
//! for an unknown `kid` at most every 10 s, a failed URI left alone as long) or registered
//! inline (parsed once per application while the stored text hashes the same).

use std::sync::Arc;
use std::time::Duration;

use crate::domain::client_keys::{self, KeySet};

/// How long a fetched JWKS is used before it is fetched again.
const JWKS_CACHE_TTL: Duration = Duration::from_secs(300);
/// At most one fetch of a `jwks_uri` this often for an unknown `kid`, or after a failure.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// JWKS fetched from applications' `jwks_uri`, cached per URI.
pub struct RemoteKeys {
    allowed: Arc<crate::domain::reach::AllowedNetworks>,
    http: reqwest::Client,
    cache: moka::future::Cache<String, Arc<KeySet>>,
    /// URIs fetched again for an unknown `kid` in the last `REFETCH_INTERVAL`.
    refetched: moka::sync::Cache<String, ()>,
    /// URIs whose fetch failed in the last `REFETCH_INTERVAL`.
    failed: moka::sync::Cache<String, ()>,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("cached", &self.cache.entry_count())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("fetched less than {REFETCH_INTERVAL:?} ago and failed")]
    Recent,
    #[error("request failed: {0}")]
    Http(String),
    #[error("answered {0}")]
    Status(u16),
    #[error("larger than {} bytes", client_keys::MAX_JWKS_BYTES)]
    TooLarge,
    #[error("not a usable JWKS: {0}")]
    Keys(#[from] client_keys::KeysError),
    #[error(transparent)]
    Unreachable(#[from] crate::domain::reach::Unreachable),
    #[error("not a URL")]
    Url,
}

impl RemoteKeys {
    /// Fetches reach public addresses and `allowed` only (`reach.rs`).
    pub fn new(allowed: crate::domain::reach::AllowedNetworks) -> Result<Self, reqwest::Error> {
        let allowed = Arc::new(allowed);
        Ok(Self {
            allowed: Arc::clone(&allowed),
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(Duration::from_secs(2))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(crate::domain::reach::GuardedResolver { allowed })
                .user_agent(concat!("auth-server/", env!("CARGO_PKG_VERSION")))
                .build()?,
            cache: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(JWKS_CACHE_TTL)
                .build(),
            refetched: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REFETCH_INTERVAL)
                .build(),
            failed: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REFETCH_INTERVAL)
                .build(),
        })
    }

    /// The keys at `uri`: cached, or fetched (one fetch at a time per URI; a URI that failed
    /// is not fetched again for `REFETCH_INTERVAL`).
    pub async fn get(&self, uri: &str) -> Result<Arc<KeySet>, Arc<FetchError>> {
        if let Some(set) = self.cache.get(uri).await {
            return Ok(set);
        }
        self.cache
            .try_get_with(uri.to_owned(), self.fetch(uri, true))
            .await
    }

    /// Fetches `uri` again because an assertion named a `kid` it lacked: at most once per
    /// `REFETCH_INTERVAL`, so a stream of made-up `kid`s can't turn into a stream of fetches.
    pub async fn refetch(&self, uri: &str) -> Option<Arc<KeySet>> {
        let entry = self.refetched.entry(uri.to_owned()).or_insert(());
        if !entry.is_fresh() {
            return None;
        }
        self.cache.invalidate(uri).await;
        self.cache
            .try_get_with(uri.to_owned(), self.fetch(uri, false))
            .await
            .ok()
    }

    async fn fetch(&self, uri: &str, gated: bool) -> Result<Arc<KeySet>, FetchError> {
        if gated && self.failed.contains_key(uri) {
            return Err(FetchError::Recent);
        }
        let result = self.fetch_now(uri).await;
        if let Err(e) = &result {
            self.failed.insert(uri.to_owned(), ());
            tracing::warn!(jwks_uri = uri, error = %e, "could not fetch an application's JWKS");
        }
        result
    }

    async fn fetch_now(&self, uri: &str) -> Result<Arc<KeySet>, FetchError> {
        let http = |e: reqwest::Error| {
            FetchError::Http(if e.is_timeout() {
                "timed out".into()
            } else {
                e.to_string()
            })
        };
        let url = reqwest::Url::parse(uri).map_err(|_| FetchError::Url)?;
        crate::domain::reach::check_literal_host(&url, &self.allowed)?;
        let mut resp = self.http.get(url).send().await.map_err(http)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > client_keys::MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > client_keys::MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body)
            .map_err(|_| FetchError::Keys(client_keys::KeysError::NotJwks))?;
        Ok(Arc::new(client_keys::parse_key_set(&text)?))
    }
}

/// Inline JWKS parsed into verifiers, per client_id. Parsing builds an OpenSSL key per JWK,
/// which cost as much as the signature check itself; an entry is used only while the stored
/// text still hashes the same, so a key change is picked up by the next assertion.
pub struct InlineKeys {
    cache: moka::sync::Cache<String, (u64, Arc<KeySet>)>,
}

impl std::fmt::Debug for InlineKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineKeys")
    }
}

impl Default for InlineKeys {
    fn default() -> Self {
        Self {
            // ~2 KB a key set: a few MiB at most, kept while in use.
            cache: moka::sync::Cache::builder()
                .max_capacity(2_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }
}

impl InlineKeys {
    /// `client_id`'s key set parsed from `text`, the JWKS stored for it.
    pub fn get(&self, client_id: &str, text: &str) -> Result<Arc<KeySet>, client_keys::KeysError> {
        let digest = {
            let mut h = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(text, &mut h);
            std::hash::Hasher::finish(&h)
        };
        if let Some((seen, set)) = self.cache.get(client_id)
            && seen == digest
        {
            return Ok(set);
        }
        let set = Arc::new(client_keys::parse_key_set(text)?);
        self.cache
            .insert(client_id.to_owned(), (digest, Arc::clone(&set)));
        Ok(set)
    }
}
