use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    rooms_api::cli::run(rooms_api::cli::Cli::parse()).await
}
