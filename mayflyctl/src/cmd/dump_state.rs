//! `dump-state`: the daemon's tasks, queues and scheduler as one pretty JSON
//! object (always JSON: it exists for tools and bug reports).

use std::io::Write;

use mayfly_protocol::{Request, Response};

use super::emit_line;
use crate::client::{Connection, Target, daemon_error, read_jobs, unexpected};
use crate::error::{CtlError, EXIT_OK};
use crate::plan::Action;
use crate::render::dump_state_json;

/// Nothing to validate.
pub fn plan() -> Action {
    Action::DumpState
}

/// Reads the `State` header, then the `Jobs` chunks up to `End`, then prints.
pub fn execute(target: &Target, out: &mut dyn Write) -> Result<u8, CtlError> {
    let mut conn = Connection::open(target, &Request::DumpState)?;
    let header = match conn.recv()? {
        Response::State(header) => header,
        Response::Error(e) => return Err(daemon_error("dump-state", e)),
        other => return Err(unexpected("dump-state", &other)),
    };
    let jobs = read_jobs(&mut conn, "dump-state")?;
    emit_line(out, &format!("{:#}", dump_state_json(&header, &jobs)))?;
    Ok(EXIT_OK)
}
