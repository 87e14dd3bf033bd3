//! `logs`: copy a job's output to stdout byte for byte.

use std::io::Write;

use mayfly_protocol::{LogStream, LogsRequest, Request, Response};

use super::flush;
use crate::cli::LogsArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_id};

/// Which job, which stream, and whether to follow.
pub fn plan(args: &LogsArgs) -> Result<Action, UsageError> {
    Ok(Action::Logs(LogsRequest {
        id: parse_id(&args.id)?,
        stream: if args.stderr {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        },
        follow: args.follow,
    }))
}

/// Writes each `LogChunk` raw (no decoding: job output need not be text) and
/// flushes it, so `--follow` output appears as it arrives. A closed stdout
/// (`| head`) surfaces as an `Output` broken pipe, which [`crate::run`] turns
/// into a clean exit.
pub fn execute(target: &Target, request: LogsRequest, out: &mut dyn Write) -> Result<u8, CtlError> {
    let follow = request.follow;
    let mut conn = Connection::open(target, &Request::Logs(request))?;
    if follow {
        // New output comes when the job writes it.
        conn.wait_as_long_as_it_takes()?;
    }
    loop {
        match conn.recv()? {
            Response::LogChunk(bytes) => {
                out.write_all(&bytes).map_err(CtlError::Output)?;
                flush(out)?;
            }
            Response::End => return Ok(EXIT_OK),
            Response::Error(e) => return Err(daemon_error("logs", e)),
            other => return Err(unexpected("logs", &other)),
        }
    }
}
