//! The settings both services read under the same names (docs/spec/operations.md), defined once and
//! flattened into each service's `Settings`.

use clap::Args;
use clap::builder::BoolishValueParser;

use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Args)]
pub struct CommonSettings {
    /// The `aud` tokens are issued for and checked against.
    #[arg(long, env = "TOKEN_AUDIENCE", default_value = "rooms-api")]
    pub token_audience: String,
    /// `false` answers 404 on every /external-api/ path.
    #[arg(long, env = "EXTERNAL_API_ENABLED", default_value = "true",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub external_api_enabled: bool,
    /// text or json
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Database connections each server opens at startup and keeps open (up to the pool's
    /// size: 16 on PostgreSQL, 4 on SQLite), so load after idle finds them ready. The whole
    /// pool by default: after a minute idle, the first 5 s at 32 connections had a p99 of
    /// 1,020 ms with 1 kept, 468 ms with 8, 19 ms with 16 (steady state: 18 ms) while the
    /// pool opened the rest one handshake at a time.
    #[arg(long, env = "DATABASE_MIN_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub database_min_connections: u32,
    /// Memory for signature-verified tokens (~1 KB each): a hit skips a signature check.
    #[arg(long, env = "VERIFIED_TOKEN_CACHE_MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub verified_token_cache_mib: u64,
    /// Comma-separated proxy addresses/CIDRs whose `X-Forwarded-For` is believed, and whose
    /// connections are not held to one source's share of `HTTP_MAX_CONNECTIONS`.
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    #[command(flatten)]
    pub timeouts: crate::timeouts::TimeoutSettings,
    #[command(flatten)]
    pub traces: crate::traces::TraceSettings,
}

impl CommonSettings {
    /// `TRUSTED_PROXIES`, parsed (the error names what is not an address).
    pub fn trusted_proxies(&self) -> Result<crate::source::TrustedProxies, String> {
        match &self.trusted_proxies {
            Some(list) => crate::source::TrustedProxies::parse(list),
            None => Ok(Default::default()),
        }
    }
}
