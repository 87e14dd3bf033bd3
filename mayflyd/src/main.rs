//! `mayflyd`: resolves its settings (flags, environment, config file,
//! defaults), sets up logging, runs the scheduler.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use mayflyd::config::{self, ResolveError, Resolved};
use mayflyd::settings::LogFormat;
use mayflyd::{Scheduler, Settings};
use tracing_subscriber::EnvFilter;

/// The exit status of a bad config file: a usage error, like a bad flag.
const EXIT_USAGE: u8 = 2;

/// Sets up `tracing` to stderr at `level` in `format`; `RUST_LOG` wins over
/// `level`.
#[tracing::instrument]
fn init_tracing(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("mayflyd={level},{level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(mayflyd::logbuf::BatchedStderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The flags, environment, config file and defaults, layered; a bad flag
/// (and `--help`, `--version`) is printed by clap, which exits.
#[tracing::instrument(skip_all)]
fn resolve(argv: &[OsString]) -> Result<Resolved, mayflyd::config_file::ConfigError> {
    match config::resolve(argv) {
        Ok(resolved) => Ok(resolved),
        Err(ResolveError::Flags(e)) => e.exit(),
        Err(ResolveError::File(e)) => Err(e),
    }
}

/// Builds the scheduler from the effective settings and runs it to
/// completion.
#[tracing::instrument(skip_all)]
fn run(settings: Settings) -> Result<(), mayflyd::DaemonError> {
    let scheduler = Scheduler::builder().settings(settings).build();
    scheduler.run_blocking()
}

/// Entry point: exit 0 after a graceful shutdown or `--print-config`, 1 when
/// the daemon could not run, 2 for a bad flag or config file.
fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let Resolved {
        layered,
        location,
        found,
    } = match resolve(&argv) {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("mayflyd: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let args = layered.args;
    if args.print_config {
        print!("{}", config::render(&layered.provenance, &location, found));
        return ExitCode::SUCCESS;
    }
    init_tracing(args.log_level(), args.settings.log_format);
    match run(args.settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mayflyd: {e}");
            ExitCode::FAILURE
        }
    }
}
