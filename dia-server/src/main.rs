//! `dia-server`: an OpenAI-compatible speech server for Dia on Burn.

mod args;
mod auth;
mod engine;
mod error;
mod format;
mod listen;
mod metrics;
mod request;
mod routes;
mod serve;
mod shared;
mod speech;
mod upload;
mod voices;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::ServeArgs::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,symphonia=off".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match serve::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
