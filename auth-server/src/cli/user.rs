//! `auth-server user …`: the people applications act for, over `domain::users`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Serialize;
use shared::Email;
use uuid::Uuid;

use super::{print_json, refused};
use crate::config::Config;
use crate::domain::users::{self, UserError};
use crate::startup;
use crate::store::users::User;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (or attach --sub to an existing provisional user with this e-mail).
    Create {
        /// The user's e-mail (its normalised form is unique).
        #[arg(long)]
        email: String,
        /// The user's id in your own system, if any.
        #[arg(long)]
        sub: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every user.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Let a user be acted for again (earlier tokens stay dead).
    Activate { email: String },
    /// Refuse tokens for a user and kill those already issued.
    Deactivate { email: String },
}

#[derive(Serialize)]
struct UserView {
    id: Uuid,
    email: String,
    external_sub: Option<String>,
    is_active: bool,
    created_by_client_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            external_sub: u.external_sub.clone(),
            is_active: u.is_active,
            created_by_client_id: u.created_by_client_id.clone(),
            created_at: u.created_at,
        }
    }
}

/// Domain refusals are one line for the operator; database failures keep their cause.
fn cli_error(e: UserError) -> anyhow::Error {
    match e {
        UserError::Store(e) => e.into(),
        UserError::SubTaken => refused("another user already has this --sub"),
        refusal => refused(refusal.to_string()),
    }
}

fn parse_email(s: &str) -> anyhow::Result<Email> {
    Email::parse_trimmed(s).map_err(|e| refused(format!("invalid e-mail {s:?}: {e}")))
}

pub async fn run(cmd: UserCommand, config: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let db = startup::open_database(&config.database_url, 1).await?;
    match cmd {
        UserCommand::Create { email, sub, json } => {
            let email = parse_email(&email)?;
            let user = users::create(&db, &email, sub, now)
                .await
                .map_err(cli_error)?;
            let view = UserView::from(&user);
            if json {
                return print_json(&view);
            }
            println!(
                "user {} <{}> sub={} active={}",
                view.id,
                view.email,
                view.external_sub.as_deref().unwrap_or("(provisional)"),
                view.is_active
            );
            Ok(())
        }
        UserCommand::List { json } => {
            let all = users::list(&db).await.map_err(cli_error)?;
            let views: Vec<UserView> = all.iter().map(UserView::from).collect();
            if json {
                return print_json(&views);
            }
            println!("{:<36}  {:<6}  {:<32}  SUB", "ID", "ACTIVE", "EMAIL");
            for v in views {
                println!(
                    "{:<36}  {:<6}  {:<32}  {}",
                    v.id,
                    v.is_active,
                    v.email,
                    v.external_sub.as_deref().unwrap_or("(provisional)")
                );
            }
            Ok(())
        }
        UserCommand::Activate { email } => set_active(&db, &email, true, now).await,
        UserCommand::Deactivate { email } => set_active(&db, &email, false, now).await,
    }
}

async fn set_active(
    db: &crate::store::Db,
    email: &str,
    active: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let email = parse_email(email)?;
    users::set_active_by_email(db, &email, active, now)
        .await
        .map_err(cli_error)?;
    println!(
        "user {} {}",
        email.normalized(),
        if active { "activated" } else { "deactivated" }
    );
    Ok(())
}
