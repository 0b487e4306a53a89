//! The command line: `serve` (default), `migrate`, `openapi`, and the management commands of
//! docs/spec/operations.md, which talk to the database directly and so work while servers run.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use shared::claims::next_not_before;
use shared::{ClientId, Clock, DomainPattern, Email, Scope, ScopeSet, SystemClock};
use uuid::Uuid;

use crate::config::{Config, Settings};
use crate::domain::allowlist::Allowlist;
use crate::domain::signing::{self, KeyRing};
use crate::domain::{client_secret, registration};
use crate::startup::{self, Application};
use crate::store::{applications, applications::Application as App, keys as key_store, users};

#[derive(Debug, Parser)]
#[command(
    name = "auth-server",
    version,
    about = "OAuth2 authorization server for the rooms API"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI spec (YAML).
    Openapi,
    /// Manage applications (OAuth clients).
    #[command(subcommand)]
    App(AppCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application; prints its client_id and secret (the secret only this once).
    Create {
        #[arg(long)]
        name: String,
        /// A scope to grant (repeatable): rooms:create rooms:list rooms:retrieve rooms:update
        /// rooms:delete tokens:introspect tokens:revocations.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An allowed e-mail domain (repeatable): example.com or *.example.com.
        #[arg(long = "domain")]
        domains: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    Update {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "add-scope")]
        add_scopes: Vec<String>,
        #[arg(long = "remove-scope")]
        remove_scopes: Vec<String>,
        #[arg(long = "add-domain")]
        add_domains: Vec<String>,
        #[arg(long = "remove-domain")]
        remove_domains: Vec<String>,
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        #[arg(long)]
        deactivate: bool,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret; the old one stops working at once (and its tokens, unless --keep-tokens).
    RotateSecret {
        client_id: String,
        #[arg(long)]
        keep_tokens: bool,
        #[arg(long)]
        json: bool,
    },
    Delete {
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (or attach --sub to an existing provisional user with this e-mail).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        sub: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Activate {
        email: String,
    },
    Deactivate {
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a key: published now, signing after 300 s (or at the next refresh with --now).
    Rotate {
        #[arg(long)]
        now: bool,
    },
    /// Emergency: take a key out of the JWKS and have every verifier refuse its tokens (a
    /// stolen private key). Not the key that signs now: `rotate --now` first.
    Retire { kid: String },
}

/// A refused operation: one line on stderr, exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

fn refused(msg: impl Into<String>) -> anyhow::Error {
    Refused(msg.into()).into()
}

pub async fn run(cli: Cli) -> ExitCode {
    let config = match Config::from_settings(&cli.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let is_server = matches!(cli.command, None | Some(Command::Serve));
    if is_server {
        shared::server::telemetry::init(config.log_format);
    }
    match dispatch(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<Refused>().is_some() {
                eprintln!("error: {e}");
            } else if is_server {
                tracing::error!(error = format!("{e:#}"), "auth-server failed");
                eprintln!("error: {e:#}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Option<Command>, config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        None | Some(Command::Serve) => Application::build(config).await?.run().await,
        Some(Command::Migrate) => {
            startup::open_database(&config.database_url).await?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Openapi) => {
            print!("{}", crate::api::service(&config.issuer).spec_yaml());
            Ok(())
        }
        Some(Command::App(cmd)) => app_command(cmd, &config, clock.now()).await,
        Some(Command::User(cmd)) => user_command(cmd, &config, clock.now()).await,
        Some(Command::Keys(cmd)) => keys_command(cmd, config, clock).await,
    }
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
    fn new(app: &App, secret: Option<&SecretString>) -> Self {
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

    fn print_text(&self) {
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
    }
}

fn join_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(" ")
    }
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
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

fn warn_if_open(app: &App) {
    if !app.domains.is_explicit() {
        eprintln!(
            "warning: application {} has no e-mail domains: it may act for users of any domain",
            app.client_id
        );
    }
}

async fn find_app(db: &sea_orm::DatabaseConnection, id: &ClientId) -> anyhow::Result<App> {
    applications::find_by_client_id(db, id)
        .await?
        .ok_or_else(|| refused(format!("no application with client_id {id}")))
}

fn validate_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(refused("name must be 1 to 255 characters"));
    }
    Ok(name.to_owned())
}

async fn app_command(cmd: AppCommand, config: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let db = startup::open_database(&config.database_url).await?;
    match cmd {
        AppCommand::Create {
            name,
            scopes,
            domains,
            json,
        } => {
            let name = validate_name(&name)?;
            let scopes: ScopeSet = parse_scopes(&scopes)?.into_iter().collect();
            let domains = Allowlist::new(parse_domains(&domains)?);
            let (app, secret) = registration::register(&db, name, scopes, domains, now).await?;
            warn_if_open(&app);
            let view = AppView::new(&app, Some(&secret));
            if json {
                print_json(&view)
            } else {
                view.print_text();
                Ok(())
            }
        }
        AppCommand::List { json } => {
            let apps = applications::list(&db).await?;
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
            let app = find_app(&db, &parse_client_id(&client_id)?).await?;
            let view = AppView::new(&app, None);
            if json {
                print_json(&view)
            } else {
                view.print_text();
                Ok(())
            }
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
            let mut app = find_app(&db, &parse_client_id(&client_id)?).await?;
            let add_scopes = parse_scopes(&add_scopes)?;
            let remove_scopes = parse_scopes(&remove_scopes)?;
            let add_domains = parse_domains(&add_domains)?;
            let remove_domains = parse_domains(&remove_domains)?;
            if let Some(name) = name {
                app.name = validate_name(&name)?;
            }
            let before = app.scopes;
            for s in add_scopes {
                app.scopes.insert(s);
            }
            for s in remove_scopes {
                app.scopes.remove(s);
            }
            for d in add_domains {
                app.domains.insert(d);
            }
            for d in &remove_domains {
                if !app.domains.remove(d) {
                    return Err(refused(format!("application has no domain {d}")));
                }
            }
            let lost_scope = !app.scopes.is_superset(before);
            if deactivate {
                app.is_active = false;
            }
            if activate {
                app.is_active = true;
            }
            // Losing a scope or a domain, or being deactivated, invalidates every earlier token
            // (a token for a user of a removed domain must not outlive the removal).
            if lost_scope || !remove_domains.is_empty() || deactivate {
                app.tokens_not_before = Some(next_not_before(now));
            }
            app.updated_at = now;
            applications::save(&db, &app).await?;
            warn_if_open(&app);
            let view = AppView::new(&app, None);
            if json {
                print_json(&view)
            } else {
                view.print_text();
                Ok(())
            }
        }
        AppCommand::RotateSecret {
            client_id,
            keep_tokens,
            json,
        } => {
            let mut app = find_app(&db, &parse_client_id(&client_id)?).await?;
            let secret = client_secret::generate()?;
            app.secret_hash = client_secret::hash(&secret)?;
            if !keep_tokens {
                app.tokens_not_before = Some(next_not_before(now));
            }
            app.updated_at = now;
            applications::save(&db, &app).await?;
            let view = AppView::new(&app, Some(&secret));
            if json {
                print_json(&view)
            } else {
                view.print_text();
                Ok(())
            }
        }
        AppCommand::Delete { client_id } => {
            let app = find_app(&db, &parse_client_id(&client_id)?).await?;
            applications::delete(&db, app.id, now).await?;
            println!("deleted application {}", app.client_id);
            Ok(())
        }
    }
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

impl From<&users::User> for UserView {
    fn from(u: &users::User) -> Self {
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

fn parse_email(s: &str) -> anyhow::Result<Email> {
    Email::parse_trimmed(s).map_err(|e| refused(format!("invalid e-mail {s:?}: {e}")))
}

async fn user_command(cmd: UserCommand, config: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let db = startup::open_database(&config.database_url).await?;
    match cmd {
        UserCommand::Create { email, sub, json } => {
            let email = parse_email(&email)?;
            let sub = sub.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
            let (mut user, created) = users::insert_if_absent(&db, &email, sub.clone(), None, now)
                .await
                .map_err(|e| match &e {
                    crate::store::StoreError::Db(d)
                        if matches!(
                            d.sql_err(),
                            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                        ) =>
                    {
                        refused("another user already has this --sub")
                    }
                    _ => e.into(),
                })?;
            if !created {
                match (&user.external_sub, &sub) {
                    (None, Some(s)) => {
                        users::attach_external_sub(&db, user.id, s).await?;
                        user.external_sub = Some(s.clone());
                    }
                    _ => {
                        return Err(refused(format!(
                            "a user with e-mail {} already exists",
                            email.normalized()
                        )));
                    }
                }
            }
            let view = UserView::from(&user);
            if json {
                print_json(&view)
            } else {
                println!(
                    "user {} <{}> sub={} active={}",
                    view.id,
                    view.email,
                    view.external_sub.as_deref().unwrap_or("(provisional)"),
                    view.is_active
                );
                Ok(())
            }
        }
        UserCommand::List { json } => {
            let all = users::list(&db).await?;
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
        UserCommand::Activate { email } => set_user_active(&db, &email, true, now).await,
        UserCommand::Deactivate { email } => set_user_active(&db, &email, false, now).await,
    }
}

async fn set_user_active(
    db: &sea_orm::DatabaseConnection,
    email: &str,
    active: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let email = parse_email(email)?;
    let user = users::find_by_email(db, &email)
        .await?
        .ok_or_else(|| refused(format!("no user with e-mail {}", email.normalized())))?;
    users::set_active(db, user.id, active, now).await?;
    println!(
        "user {} {}",
        email.normalized(),
        if active { "activated" } else { "deactivated" }
    );
    Ok(())
}

async fn keys_command(
    cmd: KeysCommand,
    config: Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let now = clock.now();
    match cmd {
        KeysCommand::List { json } => {
            let db = startup::open_database(&config.database_url).await?;
            let infos = signing::describe(&key_store::all(&db).await?, now);
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
            let db = startup::open_database(&config.database_url).await?;
            let kek = startup::resolve_kek(&config, &db).await?;
            let ring = KeyRing::load(&db, config.signing_alg, None, kek, now).await?;
            let kid = ring.rotate(&db, now, immediately).await?;
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
            let db = startup::open_database(&config.database_url).await?;
            match signing::retire(&db, &kid, now).await {
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
