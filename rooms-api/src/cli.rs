//! `rooms-api [serve]`, `migrate`, `openapi`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Settings};
use crate::startup::{self, Application};

#[derive(Debug, Parser)]
#[command(
    name = "rooms-api",
    version,
    about = "Meeting rooms for delegated access tokens"
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
}

pub async fn run(cli: Cli) -> ExitCode {
    let config = match Config::from_settings(&cli.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        None | Some(Command::Serve) => {
            if let Err(e) = server_kit::telemetry::init(config.log_format, config.traces.as_ref()) {
                eprintln!("error: {}: {e}", e.setting());
                return ExitCode::from(2);
            }
            let outcome = match Application::build(config).await {
                Ok(app) => app.run().await,
                Err(e) => Err(e),
            };
            server_kit::traces::shutdown();
            outcome
        }
        Some(Command::Migrate) => startup::open_database(&config.database_url, 1)
            .await
            .map(|_| {
                println!("migrations applied");
            }),
        Some(Command::Openapi) => {
            print!(
                "{}",
                crate::api::service(&config.rooms.public_url).spec_yaml()
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
