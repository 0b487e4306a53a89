//! `auth-server user …`: the people applications act for, over `domain::users`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use shared::Email;
use uuid::Uuid;

use super::{print_json, refused};
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::domain::summary::UserSummary;
use crate::domain::users::{self, UserError, UserRef};
use crate::startup;

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
    /// Show one user, by e-mail or id.
    Show {
        user: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Let a user (e-mail or id) be acted for again (earlier tokens stay dead).
    Activate { user: String },
    /// Refuse tokens for a user (e-mail or id) and kill those already issued.
    Deactivate { user: String },
    /// Delete a user (e-mail or id): its tokens die and its e-mail and sub are forgotten.
    Delete { user: String },
}

/// The CLI prints the domain's summary: the same JSON the admin API answers.
type UserView = UserSummary;

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

/// A user named on the command line: an id if it parses as one, else an e-mail.
fn parse_user(s: &str) -> anyhow::Result<Named> {
    match Uuid::parse_str(s.trim()) {
        Ok(id) => Ok(Named::Id(id)),
        Err(_) => Ok(Named::Email(parse_email(s)?)),
    }
}

enum Named {
    Id(Uuid),
    Email(Email),
}

impl Named {
    fn as_ref(&self) -> UserRef<'_> {
        match self {
            Named::Id(id) => UserRef::Id(*id),
            Named::Email(e) => UserRef::Email(e),
        }
    }
}

pub async fn run(cmd: UserCommand, config: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let db = startup::open_database(&config.database_url, 1).await?;
    match cmd {
        UserCommand::Create { email, sub, json } => {
            let email = parse_email(&email)?;
            let user = users::create(&db, &Actor::Cli, &email, sub, now)
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
        UserCommand::Show { user, json } => {
            let user = match parse_user(&user)? {
                Named::Id(id) => users::find(&db, id).await,
                Named::Email(e) => users::find_by_email(&db, &e).await,
            }
            .map_err(cli_error)?;
            let view = UserView::from(&user);
            if json {
                return print_json(&view);
            }
            println!("id:         {}", view.id);
            println!("email:      {}", view.email);
            println!(
                "sub:        {}",
                view.external_sub.as_deref().unwrap_or("(provisional)")
            );
            println!("active:     {}", view.is_active);
            if let Some(c) = &view.created_by_client_id {
                println!("created by: {c}");
            }
            Ok(())
        }
        UserCommand::Activate { user } => set_active(&db, &user, true, now).await,
        UserCommand::Deactivate { user } => set_active(&db, &user, false, now).await,
        UserCommand::Delete { user } => {
            let named = parse_user(&user)?;
            let gone = users::delete(&db, &Actor::Cli, named.as_ref(), now)
                .await
                .map_err(cli_error)?;
            println!("deleted user {} ({})", gone.id, user.trim());
            Ok(())
        }
    }
}

async fn set_active(
    db: &crate::domain::Db,
    user: &str,
    active: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let named = parse_user(user)?;
    let user = users::set_active(db, &Actor::Cli, named.as_ref(), active, now)
        .await
        .map_err(cli_error)?;
    println!(
        "user {} {}",
        user.email.normalized(),
        if active { "activated" } else { "deactivated" }
    );
    Ok(())
}
