//! `mayflyctl`, the command-line client of the Mayfly job queue, as a
//! library: the binary is a thin `main` around [`run`].
//!
//! A run has three stages, each in its own module:
//!
//! 1. [`cli`]: clap parses the command line into raw arguments ([`Cli`]).
//! 2. [`plan()`]: a pure function turns those arguments and the caller's
//!    [`ClientContext`] (cwd, environment, uid — read once by `main`) into a
//!    validated [`Plan`]: the socket and the exact protocol request.
//! 3. [`cmd`]: the plan's command opens a blocking [`client::Connection`]
//!    (handshake and request in one write), reads the answer and renders it
//!    ([`render`]) to the output it is given.
//!
//! Failures are [`CtlError`]s; [`CtlError::exit_code`] maps them to the exit
//! codes of `docs/protocol.md` ("Exit codes of `mayflyctl`"). Nothing here
//! prints to stderr or exits the
//! process: `main` prints the error once and exits.
//!
//! There is deliberately no async runtime and no config file: scripts run
//! `mayflyctl` thousands of times, so its cost must be process start-up plus
//! one round trip.

use std::io::Write;

pub mod batch;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod context;
pub mod error;
pub mod plan;
pub mod render;

pub use cli::Cli;
pub use context::ClientContext;
pub use error::{CtlError, UsageError};
pub use plan::{Action, Plan, plan};

/// The clap definition of the whole command line, for generating man pages
/// and shell completions from the one source of truth.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs one invocation: plans it, executes it against the daemon, writes
/// results to `out` and flushes it. Returns the exit code on success.
///
/// A broken pipe on `out` (the reader went away, as with `| head`) ends the
/// run cleanly with exit code 0; whatever else went wrong is returned for
/// `main` to print.
pub fn run(cli: &Cli, ctx: &ClientContext, out: &mut dyn Write) -> Result<u8, CtlError> {
    let plan = plan(cli, ctx)?;
    let result = cmd::execute(plan, ctx, out);
    let flushed = out.flush();
    match (result, flushed) {
        (Err(CtlError::Output(e)), _) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(error::EXIT_OK)
        }
        (Err(e), _) => Err(e),
        (Ok(code), Ok(())) => Ok(code),
        (Ok(_), Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(error::EXIT_OK),
        (Ok(_), Err(e)) => Err(CtlError::Output(e)),
    }
}
