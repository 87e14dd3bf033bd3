//! `cancel`: cancel jobs, report what happened to each, exit 1 if any id
//! does not exist.

use std::io::Write;

use mayfly_protocol::{CancelOutcome, CancelRequest, Request, Response};
use serde_json::Value;

use super::emit_line;
use crate::cli::IdsArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_ids};
use crate::render::{cancel_json, cancel_line};

/// The jobs to cancel.
pub fn plan(args: &IdsArgs) -> Result<Action, UsageError> {
    Ok(Action::Cancel(CancelRequest {
        ids: parse_ids(&args.ids)?,
    }))
}

/// Sends the cancel and prints one line (or one JSON array) of outcomes.
pub fn execute(
    target: &Target,
    request: CancelRequest,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut conn = Connection::open(target, &Request::Cancel(request))?;
    let outcomes = match conn.recv()? {
        Response::Cancelled(outcomes) => outcomes,
        Response::Error(e) => return Err(daemon_error("cancel", e)),
        other => return Err(unexpected("cancel", &other)),
    };
    if json {
        let array = Value::Array(outcomes.iter().map(|(id, o)| cancel_json(*id, o)).collect());
        emit_line(out, &format!("{array:#}"))?;
    } else {
        for (id, outcome) in &outcomes {
            emit_line(out, &cancel_line(*id, outcome))?;
        }
    }
    let missing: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| *o == CancelOutcome::NotFound)
        .map(|(id, _)| *id)
        .collect();
    if missing.is_empty() {
        Ok(EXIT_OK)
    } else {
        Err(CtlError::JobsNotFound(missing))
    }
}
