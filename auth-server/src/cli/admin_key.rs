//! `auth-server admin-key …`: the admin API's bearer keys, over `domain::admin_keys`. Creating
//! a key is CLI-only: whoever can run commands on the server's host is already its operator.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use secrecy::ExposeSecret;
use serde::Serialize;
use uuid::Uuid;

use super::{print_json, refused};
use crate::config::Config;
use crate::domain::admin_keys::{self, AdminKeyError};
use crate::domain::audit::Actor;
use crate::domain::summary::AdminKeySummary;
use crate::model::AdminKey;
use crate::startup;

#[derive(Debug, Subcommand)]
pub enum AdminKeyCommand {
    /// Create a key; prints it once (the server keeps only its digest).
    Create {
        /// Who holds it, as the audit trail will name its changes: 1 to 64 of A-Z a-z 0-9 . - _
        #[arg(long)]
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every key (never the key itself).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id: its next call is refused.
    Revoke { id: String },
}

/// The domain's summary (the same JSON the admin API answers) and, right after `create`, the
/// key itself.
#[derive(Serialize)]
struct KeyView {
    #[serde(flatten)]
    summary: AdminKeySummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl KeyView {
    fn new(k: &AdminKey, key: Option<String>) -> Self {
        Self {
            summary: AdminKeySummary::from(k),
            key,
        }
    }
}

fn cli_error(e: AdminKeyError) -> anyhow::Error {
    match e {
        AdminKeyError::Store(e) => e.into(),
        AdminKeyError::Mint(e) => e.into(),
        refusal => refused(refusal.to_string()),
    }
}

pub async fn run(cmd: AdminKeyCommand, config: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let db = startup::open_database(&config.database_url, 1).await?;
    match cmd {
        AdminKeyCommand::Create { name, json } => {
            let (key, secret) = admin_keys::create(&db, &Actor::Cli, &name, now)
                .await
                .map_err(cli_error)?;
            let view = KeyView::new(&key, Some(secret.expose_secret().to_owned()));
            if json {
                return print_json(&view);
            }
            println!("id:   {}", view.summary.id);
            println!("name: {}", view.summary.name);
            println!("key:  {}", secret.expose_secret());
            println!(
                "      (shown only now: send it as `Authorization: Bearer <key>` to the admin listener)"
            );
            Ok(())
        }
        AdminKeyCommand::List { json } => {
            let keys = admin_keys::list(&db).await.map_err(cli_error)?;
            let views: Vec<KeyView> = keys.iter().map(|k| KeyView::new(k, None)).collect();
            if json {
                return print_json(&views);
            }
            println!("{:<36}  {:<20}  {:<16}  REVOKED_AT", "ID", "NAME", "KEY_ID");
            for v in views {
                println!(
                    "{:<36}  {:<20}  {:<16}  {}",
                    v.summary.id,
                    v.summary.name,
                    v.summary.key_id,
                    v.summary.revoked_at.map_or("-".to_owned(), |t| t
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                );
            }
            Ok(())
        }
        AdminKeyCommand::Revoke { id } => {
            let id = Uuid::parse_str(id.trim()).map_err(|_| {
                refused(format!(
                    "{id:?} is not an admin key id (see admin-key list)"
                ))
            })?;
            let key = admin_keys::revoke(&db, &Actor::Cli, id, now)
                .await
                .map_err(cli_error)?;
            println!("admin key {} ({}) revoked", key.id, key.name);
            Ok(())
        }
    }
}
