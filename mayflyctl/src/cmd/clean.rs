//! `clean`: forget finished jobs (and delete their log files), printing how
//! many were removed (`--json`: `{"count", "ids"}`).

use std::io::Write;

use mayfly_protocol::{CleanRequest, Request, Response};
use serde_json::json;

use super::emit_line;
use crate::cli::CleanArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_duration_ms, parse_state};

/// The states (finished ones only) and the minimum age.
pub fn plan(args: &CleanArgs) -> Result<Action, UsageError> {
    let mut states = Vec::new();
    for text in &args.state {
        let state = parse_state(text)?;
        if !state.is_terminal() {
            return Err(UsageError::NotFinishedState(state.to_string()));
        }
        if !states.contains(&state) {
            states.push(state);
        }
    }
    Ok(Action::Clean(CleanRequest {
        states,
        older_than_ms: args
            .older_than
            .as_deref()
            .map(|t| parse_duration_ms("--older-than", t))
            .transpose()?,
    }))
}

/// Sends the clean and prints the count.
pub fn execute(
    target: &Target,
    request: CleanRequest,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut conn = Connection::open(target, &Request::Clean(request))?;
    let ids = match conn.recv()? {
        Response::Cleaned { ids } => ids,
        Response::Error(e) => return Err(daemon_error("clean", e)),
        other => return Err(unexpected("clean", &other)),
    };
    if json {
        let ids: Vec<u64> = ids.iter().map(|id| id.0).collect();
        emit_line(out, &json!({"count": ids.len(), "ids": ids}).to_string())?;
    } else {
        let noun = if ids.len() == 1 { "job" } else { "jobs" };
        emit_line(out, &format!("removed {} {noun}", ids.len()))?;
    }
    Ok(EXIT_OK)
}
