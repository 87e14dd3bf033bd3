//! `mayflyd`: parses flags, reads the config file, sets up logging, runs the
//! scheduler.

use std::io::IsTerminal;
use std::process::ExitCode;

use mayflyd::Scheduler;
use mayflyd::config::{Args, LogFormat};
use mayflyd::config_file::{self, ArgSources, ConfigError, Effective};
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

/// Reads the config file (`--config`'s, else the default one) and merges it
/// with the flags, the environment and the defaults. Also returns where the
/// file was looked for and whether it was found, for `--print-config`.
#[tracing::instrument(skip_all)]
fn effective_settings(
    args: &Args,
    given: &ArgSources,
) -> Result<(Effective, config_file::ConfigPath, bool), ConfigError> {
    let location = config_file::locate(args.config.as_deref());
    let file = config_file::load(&location)?;
    let effective = config_file::merge(args, given, file.as_ref())?;
    Ok((effective, location, file.is_some()))
}

/// Builds the scheduler from the effective settings and runs it to
/// completion.
#[tracing::instrument(skip_all)]
fn run(effective: Effective) -> Result<(), mayflyd::DaemonError> {
    let scheduler = Scheduler::builder().settings(effective.settings).build();
    scheduler.run_blocking()
}

/// Entry point: exit 0 after a graceful shutdown or `--print-config`, 1 when
/// the daemon could not run, 2 for a bad flag or config file.
fn main() -> ExitCode {
    let (args, given) =
        Args::try_parse_with_sources(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let (effective, location, found) = match effective_settings(&args, &given) {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("mayflyd: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.print_config {
        print!(
            "{}",
            config_file::render(&effective.provenance, &location, found)
        );
        return ExitCode::SUCCESS;
    }
    init_tracing(args.log_level(), effective.log_format);
    match run(effective) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mayflyd: {e}");
            ExitCode::FAILURE
        }
    }
}
