//! `auth-server keys …`: signing keys, over `domain::signing`.

use std::sync::Arc;

use clap::Subcommand;
use shared::Clock;

use super::{print_json, refused};
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::domain::key_lifecycle;
use crate::domain::signing::{self, KeyRing};
use crate::startup;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List every key with its state (pending, active, superseded, retired).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a key: published now, signing after 300 s (or at the next refresh with --now).
    Rotate {
        /// Sign with the new key from the servers' next key refresh, not after 300 s.
        #[arg(long)]
        now: bool,
    },
    /// Emergency: take a key out of the JWKS and have every verifier refuse its tokens (a
    /// stolen private key). Not the key that signs now: `rotate --now` first.
    Retire { kid: String },
}

pub async fn run(cmd: KeysCommand, config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let now = clock.now();
    match cmd {
        KeysCommand::List { json } => {
            let db = startup::open_database(&config.database_url, 1).await?;
            let infos = signing::list(&db, now).await?;
            if json {
                return print_json(&infos);
            }
            if infos.is_empty() {
                println!(
                    "no signing keys yet (the server creates one at start; HS256 uses TOKEN_HS256_SECRET)"
                );
            }
            println!(
                "{:<24}  {:<6}  {:<10}  {:<25}  {:<25}  SUPERSEDED_AT",
                "KID", "ALG", "STATE", "CREATED_AT", "ACTIVATES_AT"
            );
            for k in infos {
                println!(
                    "{:<24}  {:<6}  {:<10}  {:<25}  {:<25}  {}",
                    k.kid,
                    k.alg,
                    k.state.to_string(),
                    k.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    k.activates_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    k.superseded_at.map_or("-".to_owned(), |t| t
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                );
            }
            Ok(())
        }
        KeysCommand::Rotate { now: immediately } => {
            if !config.signing_alg.is_asymmetric() {
                return Err(refused(
                    "TOKEN_SIGNING_ALG=HS256: rotate TOKEN_HS256_SECRET instead",
                ));
            }
            let db = startup::open_database(&config.database_url, 1).await?;
            let kek = startup::resolve_kek(&config, &db).await?;
            let ring = KeyRing::load(&db, config.signing_alg, None, kek, now).await?;
            let kid = key_lifecycle::rotate(&db, &ring, &Actor::Cli, immediately, now).await?;
            if immediately {
                println!(
                    "new key {kid} ({}) published; it signs from the servers' next key refresh",
                    config.signing_alg
                );
            } else {
                println!(
                    "new key {kid} ({}) published; it signs from {}",
                    config.signing_alg,
                    (now + signing::PUBLISH_AHEAD)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
            Ok(())
        }
        KeysCommand::Retire { kid } => {
            let db = startup::open_database(&config.database_url, 1).await?;
            match key_lifecycle::retire(&db, &Actor::Cli, &kid, now).await {
                Ok(()) => {
                    println!(
                        "key {kid} retired: verifiers refuse its tokens from their next feed poll; the servers drop it from the JWKS at their next key refresh"
                    );
                    Ok(())
                }
                Err(signing::RetireError::Store(e)) => Err(e.into()),
                Err(e) => Err(refused(e.to_string())),
            }
        }
    }
}
