//! Settings (docs/spec/operations.md): every one an environment variable and the same-named flag, read
//! once into `Config`. Secrets come only from the environment or a `_FILE`, never from a flag.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use secrecy::{ExposeSecret, SecretSlice};
use server_kit::telemetry::LogFormat;
use shared::SigningAlg;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub common: server_kit::settings::CommonSettings,
    /// Address of the Prometheus `/metrics` listener (keep it private).
    #[arg(long, env = "AUTH_METRICS_LISTEN", default_value = "127.0.0.1:9081")]
    pub auth_metrics_listen: SocketAddr,
    /// Address the HTTP API listens on.
    #[arg(long, env = "AUTH_LISTEN", default_value = "127.0.0.1:8081")]
    pub auth_listen: SocketAddr,
    /// Address of the admin API (keep it private, like the metrics one); empty turns it off.
    #[arg(long, env = "AUTH_ADMIN_LISTEN", default_value = "127.0.0.1:9091")]
    pub auth_admin_listen: String,
    /// sqlite://path?mode=rwc or postgres://user@host/db
    #[arg(
        long,
        env = "AUTH_DATABASE_URL",
        default_value = "sqlite://data/auth.sqlite?mode=rwc",
        global = true
    )]
    pub auth_database_url: String,
    /// The `iss` of every token and the base of the metadata URLs (no trailing slash).
    #[arg(long, env = "AUTH_ISSUER", default_value = "http://127.0.0.1:8081")]
    pub auth_issuer: String,
    #[arg(long, env = "TOKEN_TTL_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u32).range(60..=86_400))]
    pub token_ttl_seconds: u32,
    /// EdDSA, ES256, RS256 or HS256 (HS256 needs TOKEN_HS256_SECRET).
    #[arg(long, env = "TOKEN_SIGNING_ALG", default_value = "EdDSA")]
    pub token_signing_alg: SigningAlg,
    /// Create a provisional user for an unknown e-mail (only for applications with domains).
    #[arg(long, env = "ALLOW_USER_CREATION", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_user_creation: bool,
    #[arg(long, env = "KEY_REFRESH_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub key_refresh_seconds: u64,
    /// Failed client authentications allowed per (client_id, source) per window; ten times
    /// that per client_id from all sources.
    #[arg(long, env = "AUTH_FAILURE_LIMIT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failure_limit: u32,
    #[arg(long, env = "AUTH_FAILURE_WINDOW_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_failure_window_seconds: u64,
    /// A verified secret stays in memory (as an HMAC) until unused for this long.
    #[arg(long, env = "AUTH_SECRET_CACHE_IDLE_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_secret_cache_idle_seconds: u64,
    /// At most this many argon2 verifications at once (default: number of cores).
    #[arg(long, env = "ARGON2_MAX_CONCURRENT")]
    pub argon2_max_concurrent: Option<usize>,
    /// How long after its `iat` an assertion (private_key_jwt, the JWT-bearer grant) is
    /// accepted, whatever its `exp`; without `iat`, how far ahead its `exp` may be. What the
    /// replay table keeps each `jti` for.
    #[arg(long, env = "CLIENT_ASSERTION_MAX_AGE_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(10..=3600))]
    pub client_assertion_max_age_seconds: u32,
    /// DPoP proofs at the token endpoint must carry a server nonce (RFC 9449 §8), given out
    /// in the `DPoP-Nonce` header of every token response.
    #[arg(long, env = "DPOP_NONCE", default_value_t = false, action = clap::ArgAction::Set)]
    pub dpop_nonce: bool,
    /// What an assertion's `aud` may be: `issuer-or-token-endpoint` (what libraries sign), or
    /// `issuer` alone (draft-ietf-oauth-rfc7523bis's strict rule).
    #[arg(
        long,
        env = "CLIENT_ASSERTION_AUDIENCE",
        default_value = "issuer-or-token-endpoint"
    )]
    pub client_assertion_audience: crate::domain::assertions::AudienceRule,
    /// Comma-separated networks a `jwks_uri` may reach although they are not public (loopback,
    /// private ranges): an identity provider inside your network, a local test.
    #[arg(long, env = "JWKS_URI_ALLOWED_NETWORKS")]
    pub jwks_uri_allowed_networks: Option<String>,
}

/// A configuration problem, named by its setting, that stops the process.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self {
            setting,
            message: message.into(),
        }
    }
}

/// Everything the server needs, typed and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    /// `None`: no admin API (`AUTH_ADMIN_LISTEN` set to empty).
    pub admin_listen: Option<SocketAddr>,
    pub database_url: String,
    pub issuer: String,
    pub audience: String,
    pub token_ttl_seconds: i64,
    pub signing_alg: SigningAlg,
    pub hs256_secret: Option<SecretSlice<u8>>,
    /// Base64 of 32 bytes, decoded; `None` means "derive per the database kind" (keys.rs).
    pub key_encryption_key: Option<SecretSlice<u8>>,
    pub allow_user_creation: bool,
    pub external_api_enabled: bool,
    pub key_refresh: Duration,
    pub argon2_max_concurrent: usize,
    pub failure_limit: u32,
    pub failure_window: Duration,
    pub secret_cache_idle: Duration,
    pub trusted_proxies: crate::domain::source::TrustedProxies,
    pub log_format: LogFormat,
    /// Where traces go (`OTEL_*`); `None`: no traces.
    pub traces: Option<server_kit::traces::Export>,
    pub timeouts: server_kit::timeouts::Timeouts,
    /// Connections the server opens at startup and keeps (`DATABASE_MIN_CONNECTIONS`).
    pub database_min_connections: u32,
    /// The verified-token cache's budget in bytes (`VERIFIED_TOKEN_CACHE_MIB`).
    pub verified_token_cache_bytes: u64,
    /// `CLIENT_ASSERTION_MAX_AGE_SECONDS`.
    pub client_assertion_max_age_seconds: i64,
    /// `CLIENT_ASSERTION_AUDIENCE`.
    pub client_assertion_audience: crate::domain::assertions::AudienceRule,
    /// `DPOP_NONCE`.
    pub dpop_nonce: bool,
    /// `JWKS_URI_ALLOWED_NETWORKS`: non-public networks a `jwks_uri` fetch may reach.
    pub jwks_uri_allowed_networks: crate::domain::reach::AllowedNetworks,
}

fn secret_from_env(
    name: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SecretSlice<u8>>, ConfigError> {
    server_kit::secrets::secret_from_env(name, env).map_err(|m| ConfigError::new(name, m))
}

impl Config {
    /// The documented defaults on `database_url`, listening on a free port, with a fresh
    /// key-encryption key: for embedding the server (tests spawn it this way).
    pub fn with_defaults(database_url: String) -> Result<Self, ConfigError> {
        let mut kek = vec![0u8; 32];
        server_kit::random::fill(&mut kek)
            .map_err(|e| ConfigError::new("AUTH_KEY_ENCRYPTION_KEY", e.to_string()))?;
        Ok(Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            database_url,
            issuer: "http://127.0.0.1:8081".into(),
            audience: "rooms-api".into(),
            token_ttl_seconds: 3600,
            signing_alg: SigningAlg::EdDSA,
            hs256_secret: None,
            key_encryption_key: Some(SecretSlice::from(kek)),
            allow_user_creation: false,
            external_api_enabled: true,
            key_refresh: Duration::from_secs(30),
            argon2_max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            failure_limit: 10,
            failure_window: Duration::from_secs(60),
            secret_cache_idle: crate::domain::secret_cache::DEFAULT_IDLE,
            trusted_proxies: Default::default(),
            log_format: LogFormat::Text,
            traces: None,
            timeouts: Default::default(),
            // Tests spawn many servers at once on one PostgreSQL: one connection each.
            database_min_connections: 1,
            verified_token_cache_bytes: 16 << 20,
            client_assertion_max_age_seconds: 300,
            client_assertion_audience: Default::default(),
            dpop_nonce: false,
            jwks_uri_allowed_networks: Default::default(),
        })
    }

    /// Builds the typed config from the parsed settings and the process environment.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Self::from_settings_with_env(settings, &|k| std::env::var(k).ok())
    }

    pub fn from_settings_with_env(
        s: &Settings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if s.auth_issuer.ends_with('/') {
            return Err(ConfigError::new("AUTH_ISSUER", "must not end with '/'"));
        }
        if !(s.auth_issuer.starts_with("http://") || s.auth_issuer.starts_with("https://")) {
            return Err(ConfigError::new("AUTH_ISSUER", "must be an http(s) URL"));
        }
        if s.common.token_audience.is_empty() {
            return Err(ConfigError::new("TOKEN_AUDIENCE", "must not be empty"));
        }
        let hs256_secret = secret_from_env("TOKEN_HS256_SECRET", env)?;
        if s.token_signing_alg == SigningAlg::HS256 {
            match &hs256_secret {
                None => {
                    return Err(ConfigError::new(
                        "TOKEN_HS256_SECRET",
                        "required with TOKEN_SIGNING_ALG=HS256 (generate one with `openssl rand -base64 48`)",
                    ));
                }
                Some(secret) if secret.expose_secret().len() < 32 => {
                    return Err(ConfigError::new(
                        "TOKEN_HS256_SECRET",
                        "must be at least 32 bytes (generate one with `openssl rand -base64 48`)",
                    ));
                }
                Some(_) => {}
            }
        }
        let key_encryption_key = match secret_from_env("AUTH_KEY_ENCRYPTION_KEY", env)? {
            None => None,
            Some(encoded) => Some(decode_kek(encoded.expose_secret())?),
        };
        let trusted_proxies = s
            .common
            .trusted_proxies()
            .map_err(|m| ConfigError::new("TRUSTED_PROXIES", m))?;
        let argon2_max_concurrent = s
            .argon2_max_concurrent
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        if argon2_max_concurrent == 0 {
            return Err(ConfigError::new(
                "ARGON2_MAX_CONCURRENT",
                "must be at least 1",
            ));
        }
        // The URL carries the database password: compose passes it as a secret file.
        let database_url = match secret_from_env("AUTH_DATABASE_URL", &|k| {
            if k == "AUTH_DATABASE_URL" {
                None
            } else {
                env(k)
            }
        })? {
            Some(url) => String::from_utf8(url.expose_secret().to_vec())
                .map_err(|_| ConfigError::new("AUTH_DATABASE_URL", "must be UTF-8"))?,
            None => s.auth_database_url.clone(),
        };
        let admin_listen = match s.auth_admin_listen.trim() {
            "" => None,
            addr => Some(addr.parse().map_err(|_| {
                ConfigError::new(
                    "AUTH_ADMIN_LISTEN",
                    "must be host:port (e.g. 127.0.0.1:9091), or empty to turn the admin API off",
                )
            })?),
        };
        Ok(Self {
            listen: s.auth_listen,
            metrics_listen: s.auth_metrics_listen,
            admin_listen,
            database_url,
            issuer: s.auth_issuer.clone(),
            audience: s.common.token_audience.clone(),
            token_ttl_seconds: i64::from(s.token_ttl_seconds),
            signing_alg: s.token_signing_alg,
            hs256_secret,
            key_encryption_key,
            allow_user_creation: s.allow_user_creation,
            external_api_enabled: s.common.external_api_enabled,
            key_refresh: Duration::from_secs(s.key_refresh_seconds),
            argon2_max_concurrent,
            failure_limit: s.auth_failure_limit,
            failure_window: Duration::from_secs(s.auth_failure_window_seconds),
            secret_cache_idle: Duration::from_secs(s.auth_secret_cache_idle_seconds),
            trusted_proxies: trusted_proxies.clone(),
            log_format: s.common.log_format,
            traces: s
                .common
                .traces
                .resolve(env!("CARGO_PKG_NAME"))
                .map_err(|e| ConfigError::new(e.setting(), e.to_string()))?,
            timeouts: server_kit::timeouts::Timeouts::new(&s.common.timeouts, trusted_proxies),
            database_min_connections: s.common.database_min_connections,
            verified_token_cache_bytes: s.common.verified_token_cache_mib << 20,
            client_assertion_max_age_seconds: i64::from(s.client_assertion_max_age_seconds),
            client_assertion_audience: s.client_assertion_audience,
            dpop_nonce: s.dpop_nonce,
            jwks_uri_allowed_networks: match &s.jwks_uri_allowed_networks {
                Some(list) => crate::domain::reach::AllowedNetworks::parse(list)
                    .map_err(|m| ConfigError::new("JWKS_URI_ALLOWED_NETWORKS", m))?,
                None => Default::default(),
            },
        })
    }
}

/// `AUTH_KEY_ENCRYPTION_KEY` is base64 of exactly 32 bytes.
pub fn decode_kek(encoded: &[u8]) -> Result<SecretSlice<u8>, ConfigError> {
    use base64::Engine;
    let text = std::str::from_utf8(encoded)
        .map_err(|_| ConfigError::new("AUTH_KEY_ENCRYPTION_KEY", "must be base64 of 32 bytes"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| ConfigError::new("AUTH_KEY_ENCRYPTION_KEY", "must be base64 of 32 bytes"))?;
    if bytes.len() != 32 {
        return Err(ConfigError::new(
            "AUTH_KEY_ENCRYPTION_KEY",
            "must be base64 of exactly 32 bytes",
        ));
    }
    Ok(SecretSlice::from(bytes))
}
