//! `progress`: a job reports a line of progress text, shown by `status`.
//! Meant to be run by the job itself, which finds its id in
//! `MAYFLY_JOB_ID` and the socket in `MAYFLY_SOCKET`. Prints nothing.

use mayfly_protocol::{ProgressRequest, Request, Response};

use crate::cli::ProgressArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::context::ClientContext;
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_id};

/// The job (`--id`, else `MAYFLY_JOB_ID`) and the text (words joined by spaces).
pub fn plan(args: &ProgressArgs, ctx: &ClientContext) -> Result<Action, UsageError> {
    let id = match (&args.id, &ctx.job_id_env) {
        (Some(id), _) => parse_id(id)?,
        (None, Some(env)) => {
            parse_id(env.trim()).map_err(|_| UsageError::BadJobIdEnv(env.clone()))?
        }
        (None, None) => return Err(UsageError::NoJobId),
    };
    Ok(Action::Progress(ProgressRequest {
        id,
        text: args.text.join(" "),
    }))
}

/// Sends the report.
pub fn execute(target: &Target, request: ProgressRequest) -> Result<u8, CtlError> {
    let mut conn = Connection::open(target, &Request::Progress(request))?;
    match conn.recv()? {
        Response::Ok => Ok(EXIT_OK),
        Response::Error(e) => Err(daemon_error("progress", e)),
        other => Err(unexpected("progress", &other)),
    }
}
