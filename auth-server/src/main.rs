use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = auth_server::cli::Cli::parse();
    auth_server::cli::run(cli).await
}
