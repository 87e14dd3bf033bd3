//! `shutdown`: ask the daemon to begin a graceful shutdown.

use mayfly_protocol::{Request, Response, ShutdownRequest};

use crate::cli::ShutdownArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_duration_ms};

/// The optional grace period, in milliseconds.
pub fn plan(args: &ShutdownArgs) -> Result<Action, UsageError> {
    let timeout_ms = args
        .timeout
        .as_deref()
        .map(|t| parse_duration_ms("--timeout", t))
        .transpose()?;
    Ok(Action::Shutdown(ShutdownRequest { timeout_ms }))
}

/// Sends the request. Success prints nothing: the exit status says it.
pub fn execute(target: &Target, request: ShutdownRequest) -> Result<u8, CtlError> {
    let mut conn = Connection::open(target, &Request::Shutdown(request))?;
    match conn.recv()? {
        Response::ShuttingDown => Ok(EXIT_OK),
        Response::Error(e) => Err(daemon_error("shutdown", e)),
        other => Err(unexpected("shutdown", &other)),
    }
}
