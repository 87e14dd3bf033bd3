//! `mayflyd`: parses flags, sets up logging, runs the scheduler.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mayflyd::Scheduler;
use mayflyd::config::{Args, LogFormat};
use tracing_subscriber::EnvFilter;

/// Sets up `tracing` to stderr; `RUST_LOG` wins over `-v`/`-q`.
#[tracing::instrument(skip_all)]
fn init_tracing(args: &Args) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("mayflyd={0},{0}", args.log_level())));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Builds the scheduler from the flags and runs it to completion.
#[tracing::instrument(skip_all)]
fn run(args: &Args) -> Result<(), mayflyd::DaemonError> {
    let scheduler = Scheduler::builder().settings(args.settings()).build();
    scheduler.run_blocking()
}

/// Entry point: exit 0 after a graceful shutdown, 1 when the daemon could not run.
fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(&args);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mayflyd: {e}");
            ExitCode::FAILURE
        }
    }
}
