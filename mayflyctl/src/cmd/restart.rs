//! `restart`: queue a fresh copy of finished jobs and print the new ids,
//! one per line, in the order asked (`--json`: `[{"old", "new"}]`).

use std::io::Write;

use mayfly_protocol::{Request, Response, RestartRequest};
use serde_json::{Value, json};

use super::emit_line;
use crate::cli::IdsArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_ids};

/// The jobs to copy.
pub fn plan(args: &IdsArgs) -> Result<Action, UsageError> {
    Ok(Action::Restart(RestartRequest {
        ids: parse_ids(&args.ids)?,
    }))
}

/// Sends the restart and prints the new ids.
pub fn execute(
    target: &Target,
    request: RestartRequest,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut conn = Connection::open(target, &Request::Restart(request))?;
    let pairs = match conn.recv()? {
        Response::Restarted(pairs) => pairs,
        Response::Error(e) => return Err(daemon_error("restart", e)),
        other => return Err(unexpected("restart", &other)),
    };
    if json {
        let array: Vec<Value> = pairs
            .iter()
            .map(|(old, new)| json!({"old": old.0, "new": new.0}))
            .collect();
        emit_line(out, &format!("{:#}", Value::Array(array)))?;
    } else {
        for (_, new) in &pairs {
            emit_line(out, &new.to_string())?;
        }
    }
    Ok(EXIT_OK)
}
