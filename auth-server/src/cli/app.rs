//! `auth-server app …`: applications (OAuth clients), over `domain::applications`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use shared::{Allowlist, ClientId, DomainPattern, Scope, ScopeSet};
use uuid::Uuid;

use super::{join_or, print_json, refused};
use crate::config::Config;
use crate::domain::applications::{self, AppError, Changes};
use crate::startup;
use crate::store::applications::Application;

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application; prints its client_id and secret (the secret only this once).
    Create {
        /// A name for operators (1 to 255 characters).
        #[arg(long)]
        name: String,
        /// A scope to grant (repeatable): rooms:create rooms:list rooms:retrieve rooms:update
        /// rooms:delete tokens:introspect tokens:revocations.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An allowed e-mail domain (repeatable): example.com or *.example.com.
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every application (never a secret or its hash).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one application.
    Show {
        client_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change an application; removing a scope or a domain, or deactivating, kills its earlier tokens.
    Update {
        client_id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A scope to grant (repeatable).
        #[arg(long = "add-scope")]
        add_scopes: Vec<String>,
        /// A scope to take away (repeatable).
        #[arg(long = "remove-scope")]
        remove_scopes: Vec<String>,
        /// An e-mail domain to allow (repeatable).
        #[arg(long = "add-domain")]
        add_domains: Vec<String>,
        /// An e-mail domain to stop allowing (repeatable).
        #[arg(long = "remove-domain")]
        remove_domains: Vec<String>,
        /// Let the application get tokens again (earlier tokens stay dead).
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        /// Refuse the application's credentials and kill its tokens.
        #[arg(long)]
        deactivate: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret; the old one stops working at once (and its tokens, unless --keep-tokens).
    RotateSecret {
        client_id: String,
        /// Leave the tokens issued with the old secret alive.
        #[arg(long)]
        keep_tokens: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete an application: its credentials and every token it issued stop working.
    Delete { client_id: String },
}

#[derive(Serialize)]
struct AppView {
    id: Uuid,
    name: String,
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    scopes: Vec<String>,
    domains: Vec<String>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl AppView {
    fn new(app: &Application, secret: Option<&SecretString>) -> Self {
        Self {
            id: app.id,
            name: app.name.clone(),
            client_id: app.client_id.to_string(),
            client_secret: secret.map(|s| s.expose_secret().to_owned()),
            scopes: app.scopes.iter().map(|s| s.to_string()).collect(),
            domains: app.domains.iter().map(|d| d.to_string()).collect(),
            is_active: app.is_active,
            created_at: app.created_at,
            updated_at: app.updated_at,
        }
    }

    fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            return print_json(self);
        }
        println!("name:          {}", self.name);
        println!("client_id:     {}", self.client_id);
        if let Some(secret) = &self.client_secret {
            println!("client_secret: {secret}");
            println!("               (shown only now: store it in your secret manager)");
        }
        println!("id:            {}", self.id);
        println!("active:        {}", self.is_active);
        println!(
            "scopes:        {}",
            join_or(&self.scopes, "(none: this application can do nothing yet)")
        );
        println!(
            "domains:       {}",
            join_or(&self.domains, "(none: any e-mail domain is admitted)")
        );
        Ok(())
    }
}

/// Domain refusals are one line for the operator; database failures keep their cause.
fn cli_error(e: AppError) -> anyhow::Error {
    match e {
        AppError::Store(e) => e.into(),
        AppError::Mint(e) => e,
        refusal => refused(refusal.to_string()),
    }
}

fn parse_scopes(items: &[String]) -> anyhow::Result<Vec<Scope>> {
    items
        .iter()
        .flat_map(|s| s.split_ascii_whitespace())
        .map(|s| s.parse::<Scope>().map_err(|e| refused(e.to_string())))
        .collect()
}

fn parse_domains(items: &[String]) -> anyhow::Result<Vec<DomainPattern>> {
    items
        .iter()
        .map(|d| DomainPattern::parse(d).map_err(|e| refused(format!("invalid domain {d:?}: {e}"))))
        .collect()
}

fn parse_client_id(s: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(s.trim()).map_err(|e| refused(e.to_string()))
}

fn warn_if_open(app: &Application) {
    if !app.domains.is_explicit() {
        eprintln!(
            "warning: application {} has no e-mail domains: it may act for users of any domain",
            app.client_id
        );
    }
}

pub async fn run(cmd: AppCommand, config: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let db = startup::open_database(&config.database_url, 1).await?;
    match cmd {
        AppCommand::Create {
            name,
            scopes,
            domains,
            json,
        } => {
            let scopes: ScopeSet = parse_scopes(&scopes)?.into_iter().collect();
            let domains = Allowlist::new(parse_domains(&domains)?);
            let (app, secret) = applications::create(&db, &name, scopes, domains, now)
                .await
                .map_err(cli_error)?;
            warn_if_open(&app);
            AppView::new(&app, Some(&secret)).print(json)
        }
        AppCommand::List { json } => {
            let apps = applications::list(&db).await.map_err(cli_error)?;
            let views: Vec<AppView> = apps.iter().map(|a| AppView::new(a, None)).collect();
            if json {
                return print_json(&views);
            }
            println!(
                "{:<40}  {:<6}  {:<24}  SCOPES / DOMAINS",
                "CLIENT_ID", "ACTIVE", "NAME"
            );
            for v in views {
                println!(
                    "{:<40}  {:<6}  {:<24}  {} / {}",
                    v.client_id,
                    v.is_active,
                    v.name,
                    join_or(&v.scopes, "-"),
                    join_or(&v.domains, "any")
                );
            }
            Ok(())
        }
        AppCommand::Show { client_id, json } => {
            let app = applications::find(&db, &parse_client_id(&client_id)?)
                .await
                .map_err(cli_error)?;
            AppView::new(&app, None).print(json)
        }
        AppCommand::Update {
            client_id,
            name,
            add_scopes,
            remove_scopes,
            add_domains,
            remove_domains,
            activate,
            deactivate,
            json,
        } => {
            let client_id = parse_client_id(&client_id)?;
            let changes = Changes {
                name,
                add_scopes: parse_scopes(&add_scopes)?,
                remove_scopes: parse_scopes(&remove_scopes)?,
                add_domains: parse_domains(&add_domains)?,
                remove_domains: parse_domains(&remove_domains)?,
                active: match (activate, deactivate) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
            };
            let app = applications::update(&db, &client_id, changes, now)
                .await
                .map_err(cli_error)?;
            warn_if_open(&app);
            AppView::new(&app, None).print(json)
        }
        AppCommand::RotateSecret {
            client_id,
            keep_tokens,
            json,
        } => {
            let client_id = parse_client_id(&client_id)?;
            let (app, secret) = applications::rotate_secret(&db, &client_id, keep_tokens, now)
                .await
                .map_err(cli_error)?;
            AppView::new(&app, Some(&secret)).print(json)
        }
        AppCommand::Delete { client_id } => {
            let app = applications::delete(&db, &parse_client_id(&client_id)?, now)
                .await
                .map_err(cli_error)?;
            println!("deleted application {}", app.client_id);
            Ok(())
        }
    }
}
