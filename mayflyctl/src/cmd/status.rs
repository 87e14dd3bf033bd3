//! `status`: report jobs as an aligned table or as a JSON array of job objects.

use std::io::Write;
use std::path::Path;

use mayfly_protocol::{Request, StatusRequest};
use serde_json::Value;

use super::emit_line;
use crate::cli::StatusArgs;
use crate::client::{Connection, read_jobs};
use crate::context::ClientContext;
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_ids};
use crate::render::{job_json, status_table};

/// The ids to report; none means every job.
pub fn plan(args: &StatusArgs) -> Result<Action, UsageError> {
    Ok(Action::Status(StatusRequest {
        ids: parse_ids(&args.ids)?,
    }))
}

/// Reads the whole `Jobs` stream (the table needs every row to align), then prints.
pub fn execute(
    socket: &Path,
    request: StatusRequest,
    json: bool,
    ctx: &ClientContext,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut conn = Connection::open(socket, &Request::Status(request))?;
    let jobs = read_jobs(&mut conn, "status")?;
    if json {
        let array = Value::Array(jobs.iter().map(job_json).collect());
        emit_line(out, &format!("{array:#}"))?;
    } else {
        out.write_all(status_table(&jobs, ctx.now, ctx.term_width).as_bytes())
            .map_err(CtlError::Output)?;
    }
    Ok(EXIT_OK)
}
