//! `dia-infer`: generate speech with Dia, or encode/decode audio with DAC.

mod cli;
mod codec_cmd;
mod convert;
mod files;
mod jobs;
mod progress;
mod sink;
mod speak;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // A panic inside a backend is still reported as one line, without a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!(
            "error: internal error: {}",
            message.lines().next().unwrap_or("")
        );
    }));
    let cli = Cli::parse();
    // Warnings (such as dropped text) show even with --quiet, which only hides progress.
    tracing_subscriber::fmt()
        .with_env_filter(
            // The audio decoders' own logs repeat what our error says.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,symphonia=off".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
    let result = std::panic::catch_unwind(|| {
        let job = || match cli.command {
            Some(Command::Encode(args)) => codec_cmd::encode(&args),
            Some(Command::Decode(args)) => codec_cmd::decode(&args),
            Some(Command::Convert(args)) => convert::run(&args),
            None => speak::run(&cli.generate),
        };
        // The main thread joins the CPU backends' pool: no third thread competes for the cores.
        match rayon::ThreadPoolBuilder::new().build() {
            Ok(pool) => pool.install(job),
            Err(_) => job(),
        }
    });
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}
