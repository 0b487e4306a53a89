//! Settings (operations.md) of the rooms API, read once into `Config`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use secrecy::{ExposeSecret, SecretSlice};
use shared::server::telemetry::LogFormat;

use crate::rooms::model::AccessLevel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationMode {
    /// Verify locally with the auth-server's published keys.
    Jwks,
    /// Verify locally with the shared HS256 secret.
    Hs256,
}

impl VerificationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationMode::Jwks => "jwks",
            VerificationMode::Hs256 => "hs256",
        }
    }
}

impl FromStr for VerificationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jwks" => Ok(Self::Jwks),
            "hs256" => Ok(Self::Hs256),
            other => Err(format!("expected jwks or hs256, got {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[arg(
        long,
        env = "ROOMS_LISTEN",
        default_value = "127.0.0.1:8082",
        global = true
    )]
    pub rooms_listen: SocketAddr,
    #[arg(
        long,
        env = "ROOMS_DATABASE_URL",
        default_value = "sqlite://data/rooms.sqlite?mode=rwc",
        global = true
    )]
    pub rooms_database_url: String,
    /// Must equal the auth-server's AUTH_ISSUER.
    #[arg(
        long,
        env = "TOKEN_ISSUER",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub token_issuer: String,
    #[arg(
        long,
        env = "TOKEN_AUDIENCE",
        default_value = "rooms-api",
        global = true
    )]
    pub token_audience: String,
    #[arg(long, env = "TOKEN_LEEWAY_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=300), global = true)]
    pub token_leeway_seconds: u32,
    /// jwks (default) or hs256.
    #[arg(
        long,
        env = "TOKEN_VERIFICATION",
        default_value = "jwks",
        global = true
    )]
    pub token_verification: VerificationMode,
    #[arg(
        long,
        env = "AUTH_SERVER_URL",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub auth_server_url: String,
    /// Default: AUTH_SERVER_URL + /.well-known/jwks.json
    #[arg(long, env = "JWKS_URL", global = true)]
    pub jwks_url: Option<String>,
    #[arg(long, env = "EXTERNAL_API_ENABLED", default_value = "true",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub external_api_enabled: bool,
    /// Base of `Location`, `next` and `previous` (default: http:// + ROOMS_LISTEN).
    #[arg(long, env = "ROOMS_PUBLIC_URL", global = true)]
    pub rooms_public_url: Option<String>,
    /// When set, rooms carry `url` = ROOMS_BASE_URL/slug.
    #[arg(long, env = "ROOMS_BASE_URL", global = true)]
    pub rooms_base_url: Option<String>,
    #[arg(
        long,
        env = "DEFAULT_ACCESS_LEVEL",
        default_value = "trusted",
        global = true
    )]
    pub default_access_level: AccessLevel,
    #[arg(long, env = "ALLOW_PUBLIC_ACCESS", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub allow_public_access: bool,
    #[arg(long, env = "TELEPHONY_ENABLED", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub telephony_enabled: bool,
    #[arg(long, env = "TELEPHONY_PHONE_NUMBER", global = true)]
    pub telephony_phone_number: Option<String>,
    #[arg(
        long,
        env = "TELEPHONY_DEFAULT_COUNTRY",
        default_value = "US",
        global = true
    )]
    pub telephony_default_country: String,
    #[arg(long, env = "TELEPHONY_PIN_LENGTH", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(6..=20), global = true)]
    pub telephony_pin_length: u8,
    #[arg(long, env = "LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,
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

/// Room-shaping settings, handed to the rooms service.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    pub public_url: String,
    pub base_url: Option<String>,
    pub default_access_level: AccessLevel,
    pub allow_public_access: bool,
    pub telephony_enabled: bool,
    pub telephony_phone_number: Option<String>,
    pub telephony_default_country: String,
    pub pin_length: usize,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: i64,
    pub verification: VerificationMode,
    pub jwks_url: String,
    pub hs256_secret: Option<SecretSlice<u8>>,
    pub external_api_enabled: bool,
    pub rooms: RoomSettings,
    /// How often the JWKS is re-fetched even without an unknown `kid`.
    pub jwks_refresh: Duration,
    pub log_format: LogFormat,
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
        Ok(Self {
            listen: s.rooms_listen,
            database_url: s.rooms_database_url.clone(),
            issuer: s.token_issuer.clone(),
            audience: s.token_audience.clone(),
            leeway_seconds: i64::from(s.token_leeway_seconds),
            verification: s.token_verification,
            jwks_url,
            hs256_secret,
            external_api_enabled: s.external_api_enabled,
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
            log_format: s.log_format,
        })
    }
}

fn shared_secret(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SecretSlice<u8>>, ConfigError> {
    shared::server::secrets::secret_from_env("TOKEN_HS256_SECRET", env)
        .map_err(|m| err("TOKEN_HS256_SECRET", m))
}
