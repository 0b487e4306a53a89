//! The command line: `serve` (default), `migrate`, `openapi`, and the management commands of
//! docs/spec/operations.md, which talk to the database directly and so work while servers run.
//! A thin front: each verb parses its arguments, calls one domain function (which holds the
//! rule), and prints the result. One file per noun: `app.rs`, `user.rs`, `keys.rs`.

mod admin_key;
mod app;
mod keys;
mod user;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde::Serialize;
use shared::{Clock, SystemClock};

pub use admin_key::AdminKeyCommand;
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
    /// Manage the admin API's keys.
    #[command(subcommand)]
    AdminKey(AdminKeyCommand),
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
    if is_server
        && let Err(e) = server_kit::telemetry::init(config.log_format, config.traces.as_ref())
    {
        eprintln!("error: {}: {e}", e.setting());
        return ExitCode::from(2);
    }
    let outcome = dispatch(cli.command, config).await;
    if is_server {
        server_kit::traces::shutdown();
    }
    match outcome {
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
        Some(Command::App(cmd)) => {
            let url = existing_database(&config)?;
            crate::domain::settled(app::run(cmd, &config, clock.now())).await?;
            opened(&url)
        }
        Some(Command::User(cmd)) => {
            let url = existing_database(&config)?;
            crate::domain::settled(user::run(cmd, &config, clock.now())).await?;
            opened(&url)
        }
        Some(Command::Keys(cmd)) => {
            let url = existing_database(&config)?;
            keys::run(cmd, config, clock).await?;
            opened(&url)
        }
        Some(Command::AdminKey(cmd)) => {
            let url = existing_database(&config)?;
            admin_key::run(cmd, &config, clock.now()).await?;
            opened(&url)
        }
    }
}

/// A command works on a database a server or `migrate` made, never a new one: run from
/// another folder, the default relative `data/auth.sqlite` would otherwise be created there
/// empty, and applications registered where no server looks. Returns how to name it.
fn existing_database(config: &Config) -> anyhow::Result<String> {
    let url = &config.database_url;
    if let Some(path) = server_kit::db::sqlite_path(url) {
        let file = std::path::Path::new(path);
        let shown = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        if !file.exists() {
            return Err(refused(format!(
                "no database at {}: start the server or run `auth-server migrate` there first, \
                 or set AUTH_DATABASE_URL to the server's database",
                shown.display()
            )));
        }
        return Ok(format!("sqlite://{}", shown.display()));
    }
    if url.starts_with("sqlite") {
        // In memory: nothing to look for, nothing to name but the URL.
        return Ok(url.clone());
    }
    // PostgreSQL: the host and database, never the credentials.
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    Ok(format!(
        "{scheme}://{}",
        rest.split('?').next().unwrap_or(rest)
    ))
}

/// After a command succeeded, which database it worked on (stderr: stdout stays the answer).
fn opened(url: &str) -> anyhow::Result<()> {
    eprintln!("auth-server: database {url}");
    Ok(())
}

/// A duration as operators write it: `3600`, `3600s`, `90m`, `24h`, `7d`.
pub(crate) fn parse_duration(s: &str) -> Result<chrono::TimeDelta, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 3600, 90m, 24h, 7d)"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    };
    seconds
        .and_then(chrono::TimeDelta::try_seconds)
        .ok_or_else(|| format!("{s:?} is not a duration (e.g. 3600, 90m, 24h, 7d)"))
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

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_in_operator_units() {
        assert_eq!(parse_duration("3600").unwrap().num_seconds(), 3600);
        assert_eq!(parse_duration("90m").unwrap().num_seconds(), 5400);
        assert_eq!(parse_duration("24h").unwrap().num_seconds(), 86_400);
        assert_eq!(parse_duration("7d").unwrap().num_seconds(), 604_800);
        for bad in ["", "h", "1w", "-5", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
