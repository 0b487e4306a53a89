//! Settings (docs/spec/operations.md) of the rooms API, read once into `Config`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use secrecy::{ExposeSecret, SecretSlice};
use server_kit::telemetry::LogFormat;

use crate::rooms::model::AccessLevel;
use crate::rooms::settings::RoomSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationMode {
    /// Verify locally with the auth-server's published keys.
    Jwks,
    /// Verify locally with the shared HS256 secret.
    Hs256,
    /// Ask an RFC 7662 introspection endpoint (cached).
    Introspection,
}

impl VerificationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationMode::Jwks => "jwks",
            VerificationMode::Hs256 => "hs256",
            VerificationMode::Introspection => "introspection",
        }
    }
}

impl FromStr for VerificationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jwks" => Ok(Self::Jwks),
            "hs256" => Ok(Self::Hs256),
            "introspection" => Ok(Self::Introspection),
            other => Err(format!(
                "expected jwks, hs256 or introspection, got {other:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub common: server_kit::settings::CommonSettings,
    #[arg(long, env = "ROOMS_LISTEN", default_value = "127.0.0.1:8082")]
    pub rooms_listen: SocketAddr,
    /// Address of the Prometheus `/metrics` listener (keep it private).
    #[arg(long, env = "ROOMS_METRICS_LISTEN", default_value = "127.0.0.1:9082")]
    pub rooms_metrics_listen: SocketAddr,
    #[arg(
        long,
        env = "ROOMS_DATABASE_URL",
        default_value = "sqlite://data/rooms.sqlite?mode=rwc",
        global = true
    )]
    pub rooms_database_url: String,
    /// Must equal the auth-server's AUTH_ISSUER.
    #[arg(long, env = "TOKEN_ISSUER", default_value = "http://127.0.0.1:8081")]
    pub token_issuer: String,
    /// At most `shared::claims::MAX_LEEWAY_SECONDS` (300), which revocation retention follows.
    #[arg(long, env = "TOKEN_LEEWAY_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=shared::claims::MAX_LEEWAY_SECONDS as i64))]
    pub token_leeway_seconds: u32,
    /// jwks (default), hs256 or introspection.
    #[arg(long, env = "TOKEN_VERIFICATION", default_value = "jwks")]
    pub token_verification: VerificationMode,
    #[arg(long, env = "AUTH_SERVER_URL", default_value = "http://127.0.0.1:8081")]
    pub auth_server_url: String,
    /// Default: AUTH_SERVER_URL + /.well-known/jwks.json
    #[arg(long, env = "JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Default: AUTH_SERVER_URL + /oauth/introspect
    #[arg(long, env = "INTROSPECTION_URL")]
    pub introspection_url: Option<String>,
    /// The rooms API's own application (with tokens:introspect); the secret comes from
    /// INTROSPECTION_CLIENT_SECRET or INTROSPECTION_CLIENT_SECRET_FILE.
    #[arg(long, env = "INTROSPECTION_CLIENT_ID")]
    pub introspection_client_id: Option<String>,
    #[arg(long, env = "INTROSPECTION_CACHE_SECONDS", default_value_t = 30)]
    pub introspection_cache_seconds: u32,
    #[arg(
        long,
        env = "INTROSPECTION_NEGATIVE_CACHE_SECONDS",
        default_value_t = 5
    )]
    pub introspection_negative_cache_seconds: u32,
    #[arg(long, env = "INTROSPECTION_CACHE_SIZE", default_value_t = 100_000)]
    pub introspection_cache_size: u64,
    /// Strip `<prefix>:` from introspected scopes (e.g. `meet` for `meet:rooms:list`).
    #[arg(long, env = "SCOPE_PREFIX")]
    pub scope_prefix: Option<String>,
    /// An application with tokens:revocations; the secret comes from REVOCATION_CLIENT_SECRET
    /// or REVOCATION_CLIENT_SECRET_FILE.
    #[arg(long, env = "REVOCATION_CLIENT_ID")]
    pub revocation_client_id: Option<String>,
    /// An application with users:resolve, for sharing rooms by e-mail; the secret comes from
    /// USERS_CLIENT_SECRET or USERS_CLIENT_SECRET_FILE. Unset: the revocation feed's
    /// credentials, else introspection's.
    #[arg(long, env = "USERS_CLIENT_ID")]
    pub users_client_id: Option<String>,
    #[arg(long, env = "REVOCATION_POLL_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub revocation_poll_seconds: u64,
    /// Entries per page of the revocation feed (the auth-server's ceiling is 5000).
    #[arg(long, env = "REVOCATION_PAGE_SIZE", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub revocation_page_size: u32,
    /// Base of `Location`, `next` and `previous` (default: http:// + ROOMS_LISTEN).
    #[arg(long, env = "ROOMS_PUBLIC_URL")]
    pub rooms_public_url: Option<String>,
    /// When set, rooms carry `url` = ROOMS_BASE_URL/slug.
    #[arg(long, env = "ROOMS_BASE_URL")]
    pub rooms_base_url: Option<String>,
    #[arg(long, env = "DEFAULT_ACCESS_LEVEL", default_value = "trusted")]
    pub default_access_level: AccessLevel,
    #[arg(long, env = "ALLOW_PUBLIC_ACCESS", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_public_access: bool,
    #[arg(long, env = "TELEPHONY_ENABLED", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub telephony_enabled: bool,
    #[arg(long, env = "TELEPHONY_PHONE_NUMBER")]
    pub telephony_phone_number: Option<String>,
    #[arg(long, env = "TELEPHONY_DEFAULT_COUNTRY", default_value = "US")]
    pub telephony_default_country: String,
    #[arg(long, env = "TELEPHONY_PIN_LENGTH", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(6..=20))]
    pub telephony_pin_length: u8,
}

#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

fn err(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

/// Credentials of the rooms API's own application at the auth-server.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: secrecy::SecretString,
}

#[derive(Debug, Clone)]
pub struct IntrospectionConfig {
    pub url: String,
    pub credentials: ClientCredentials,
    pub positive_ttl: chrono::TimeDelta,
    pub negative_ttl: chrono::TimeDelta,
    pub cache_size: u64,
    pub scope_prefix: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RevocationConfig {
    pub url: String,
    pub credentials: ClientCredentials,
    pub poll: Duration,
    /// `?limit=` of each feed request; `None` takes the auth-server's default.
    pub page_size: Option<u32>,
}

/// Where the rooms API resolves an application's user by e-mail (`directory.rs`).
#[derive(Debug, Clone)]
pub struct UsersConfig {
    pub url: String,
    pub credentials: ClientCredentials,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub database_url: String,
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: i64,
    pub verification: VerificationMode,
    pub jwks_url: String,
    pub hs256_secret: Option<SecretSlice<u8>>,
    pub introspection: Option<IntrospectionConfig>,
    /// The revocation feed, when credentials are set (local modes only).
    pub revocation: Option<RevocationConfig>,
    /// User resolution at the auth-server, when credentials are set (sharing rooms by e-mail
    /// answers 503 without it).
    pub users: Option<UsersConfig>,
    pub external_api_enabled: bool,
    /// `ROOMS_PUBLIC_URL` when set: the base of the URL a DPoP proof's `htu` must name (unset:
    /// the `Host` the request was sent to).
    pub dpop_base_url: Option<String>,
    pub rooms: RoomSettings,
    /// How often the JWKS is re-fetched even without an unknown `kid`.
    pub jwks_refresh: Duration,
    pub log_format: LogFormat,
    /// Where traces go (`OTEL_*`); `None`: no traces.
    pub traces: Option<server_kit::traces::Export>,
    pub timeouts: server_kit::timeouts::Timeouts,
    /// Connections the server opens at startup and keeps (`DATABASE_MIN_CONNECTIONS`).
    pub database_min_connections: u32,
    /// The verified-token cache's budget in bytes (`VERIFIED_TOKEN_CACHE_MIB`).
    pub verified_token_cache_bytes: u64,
}

fn http_url(setting: &'static str, value: &str) -> Result<String, ConfigError> {
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        return Err(err(setting, "must be an http(s) URL"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        Self::from_settings_with_env(s, &|k| std::env::var(k).ok())
    }

    pub fn from_settings_with_env(
        s: &Settings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let hs256_secret = shared_secret(env)?;
        if s.token_verification == VerificationMode::Hs256 {
            match &hs256_secret {
                None => {
                    return Err(err(
                        "TOKEN_HS256_SECRET",
                        "required with TOKEN_VERIFICATION=hs256",
                    ));
                }
                Some(k) if k.expose_secret().len() < 32 => {
                    return Err(err("TOKEN_HS256_SECRET", "must be at least 32 bytes"));
                }
                Some(_) => {}
            }
        }
        let auth_server_url = http_url("AUTH_SERVER_URL", &s.auth_server_url)?;
        let jwks_url = match &s.jwks_url {
            Some(u) => http_url("JWKS_URL", u)?,
            None => format!("{auth_server_url}/.well-known/jwks.json"),
        };
        let introspection = if s.token_verification == VerificationMode::Introspection {
            let client_id = s.introspection_client_id.clone().ok_or_else(|| {
                err(
                    "INTROSPECTION_CLIENT_ID",
                    "required with TOKEN_VERIFICATION=introspection",
                )
            })?;
            let secret = secret_string("INTROSPECTION_CLIENT_SECRET", env)?.ok_or_else(|| {
                err(
                    "INTROSPECTION_CLIENT_SECRET",
                    "required with TOKEN_VERIFICATION=introspection",
                )
            })?;
            let url = match &s.introspection_url {
                Some(u) => http_url("INTROSPECTION_URL", u)?,
                None => format!("{auth_server_url}/oauth/introspect"),
            };
            Some(IntrospectionConfig {
                url,
                credentials: ClientCredentials { client_id, secret },
                positive_ttl: chrono::TimeDelta::seconds(i64::from(s.introspection_cache_seconds)),
                negative_ttl: chrono::TimeDelta::seconds(i64::from(
                    s.introspection_negative_cache_seconds,
                )),
                cache_size: s.introspection_cache_size,
                scope_prefix: s.scope_prefix.clone().filter(|p| !p.is_empty()),
            })
        } else {
            None
        };
        let revocation = match (
            &s.revocation_client_id,
            secret_string("REVOCATION_CLIENT_SECRET", env)?,
        ) {
            (Some(client_id), Some(secret))
                if s.token_verification != VerificationMode::Introspection =>
            {
                Some(RevocationConfig {
                    url: format!("{auth_server_url}/oauth/revocations"),
                    credentials: ClientCredentials {
                        client_id: client_id.clone(),
                        secret,
                    },
                    poll: Duration::from_secs(s.revocation_poll_seconds),
                    page_size: Some(s.revocation_page_size),
                })
            }
            (Some(_), None) => {
                return Err(err(
                    "REVOCATION_CLIENT_SECRET",
                    "required when REVOCATION_CLIENT_ID is set",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "REVOCATION_CLIENT_ID",
                    "required when REVOCATION_CLIENT_SECRET is set",
                ));
            }
            _ => None,
        };
        let users_secret = secret_string("USERS_CLIENT_SECRET", env)?;
        let users_credentials = match (&s.users_client_id, users_secret) {
            (Some(client_id), Some(secret)) => Some(ClientCredentials {
                client_id: client_id.clone(),
                secret,
            }),
            (Some(_), None) => {
                return Err(err(
                    "USERS_CLIENT_SECRET",
                    "required when USERS_CLIENT_ID is set",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "USERS_CLIENT_ID",
                    "required when USERS_CLIENT_SECRET is set",
                ));
            }
            (None, None) => revocation
                .as_ref()
                .map(|r| r.credentials.clone())
                .or_else(|| introspection.as_ref().map(|i| i.credentials.clone())),
        };
        let users = users_credentials.map(|credentials| UsersConfig {
            url: format!("{auth_server_url}{}", shared::users::RESOLVE_USER_PATH),
            credentials,
        });
        let trusted_proxies = s
            .common
            .trusted_proxies()
            .map_err(|m| err("TRUSTED_PROXIES", m))?;
        let public_url = match &s.rooms_public_url {
            Some(u) => http_url("ROOMS_PUBLIC_URL", u)?,
            None => format!("http://{}", s.rooms_listen),
        };
        let base_url = s
            .rooms_base_url
            .as_deref()
            .map(|u| http_url("ROOMS_BASE_URL", u))
            .transpose()?;
        if s.token_issuer.is_empty() {
            return Err(err("TOKEN_ISSUER", "must not be empty"));
        }
        // The URL carries the database password: compose passes it as a secret file.
        let database_url = match server_kit::secrets::secret_from_env("ROOMS_DATABASE_URL", &|k| {
            if k == "ROOMS_DATABASE_URL" {
                None
            } else {
                env(k)
            }
        })
        .map_err(|m| err("ROOMS_DATABASE_URL", m))?
        {
            Some(url) => String::from_utf8(url.expose_secret().to_vec())
                .map_err(|_| err("ROOMS_DATABASE_URL", "must be UTF-8"))?,
            None => s.rooms_database_url.clone(),
        };
        Ok(Self {
            listen: s.rooms_listen,
            metrics_listen: s.rooms_metrics_listen,
            database_url,
            issuer: s.token_issuer.clone(),
            audience: s.common.token_audience.clone(),
            leeway_seconds: i64::from(s.token_leeway_seconds),
            verification: s.token_verification,
            jwks_url,
            hs256_secret,
            introspection,
            revocation,
            users,
            external_api_enabled: s.common.external_api_enabled,
            dpop_base_url: s.rooms_public_url.as_ref().map(|_| public_url.clone()),
            rooms: RoomSettings {
                public_url,
                base_url,
                default_access_level: s.default_access_level,
                allow_public_access: s.allow_public_access,
                telephony_enabled: s.telephony_enabled,
                telephony_phone_number: s.telephony_phone_number.clone(),
                telephony_default_country: s.telephony_default_country.clone(),
                pin_length: usize::from(s.telephony_pin_length),
            },
            jwks_refresh: Duration::from_secs(300),
            log_format: s.common.log_format,
            traces: s
                .common
                .traces
                .resolve(env!("CARGO_PKG_NAME"))
                .map_err(|e| err(e.setting(), e.to_string()))?,
            timeouts: server_kit::timeouts::Timeouts::new(&s.common.timeouts, trusted_proxies),
            database_min_connections: s.common.database_min_connections,
            verified_token_cache_bytes: s.common.verified_token_cache_mib << 20,
        })
    }
}

fn shared_secret(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SecretSlice<u8>>, ConfigError> {
    server_kit::secrets::secret_from_env("TOKEN_HS256_SECRET", env)
        .map_err(|m| err("TOKEN_HS256_SECRET", m))
}

fn secret_string(
    name: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<secrecy::SecretString>, ConfigError> {
    match server_kit::secrets::secret_from_env(name, env).map_err(|m| err(name, m))? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes.expose_secret().to_vec())
            .map(|s| Some(secrecy::SecretString::from(s)))
            .map_err(|_| err(name, "must be UTF-8")),
    }
}
