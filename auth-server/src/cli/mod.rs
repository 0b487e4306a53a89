//! The command line: `serve` (default), `migrate`, `openapi`, and the management commands of
//! docs/spec/operations.md, which talk to the database directly and so work while servers run.
//! A thin front: each verb parses its arguments, calls one domain function (which holds the
//! rule), and prints the result. One file per noun: `app.rs`, `user.rs`, `keys.rs`.

mod app;
mod keys;
mod user;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde::Serialize;
use shared::{Clock, SystemClock};

pub use app::AppCommand;
pub use keys::KeysCommand;
pub use user::UserCommand;

use crate::config::{Config, Settings};
use crate::startup::{self, Application};

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
    /// Run the server (the default). Its settings (env vars or flags before `serve`) are in `--help`.
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

/// A refused operation: one line on stderr, exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

pub(crate) fn refused(msg: impl Into<String>) -> anyhow::Error {
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
        server_kit::telemetry::init(config.log_format);
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

async fn dispatch(command: Option<Command>, mut config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if !matches!(command, None | Some(Command::Serve)) {
        // A one-off command needs one connection, not the server's warm pool.
        config.database_min_connections = 1;
    }
    match command {
        None | Some(Command::Serve) => Application::build(config).await?.run().await,
        Some(Command::Migrate) => {
            startup::open_database(&config.database_url, 1).await?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Openapi) => {
            print!("{}", crate::api::service(&config.issuer).spec_yaml());
            Ok(())
        }
        Some(Command::App(cmd)) => app::run(cmd, &config, clock.now()).await,
        Some(Command::User(cmd)) => user::run(cmd, &config, clock.now()).await,
        Some(Command::Keys(cmd)) => keys::run(cmd, config, clock).await,
    }
}

pub(crate) fn join_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(" ")
    }
}

pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
