//! `submit`: queue a job with the caller's context; print its id; with
//! `--wait`, wait for it on the same connection and exit with its code.

use std::io::Write;
use std::path::{Path, PathBuf};

use mayfly_protocol::{
    Command, DEFAULT_PRIORITY, JobSpec, MAX_USER_PRIORITY, MIN_USER_PRIORITY, Request, Response,
    SubmitRequest, WaitRequest,
};
use serde_json::json;

use super::{emit_line, flush};
use crate::cli::SubmitArgs;
use crate::client::{Connection, daemon_error, unexpected};
use crate::context::ClientContext;
use crate::error::{CtlError, UsageError};
use crate::plan::{Action, parse_key_value, upsert, utf8};

/// Builds the job spec from the arguments and the caller's context.
pub fn plan(args: &SubmitArgs, ctx: &ClientContext) -> Result<Action, UsageError> {
    let words = args
        .command
        .iter()
        .map(|w| utf8(w, "an argument of the command"))
        .collect::<Result<Vec<_>, _>>()?;
    let command = if args.shell {
        let script = words.join(" ");
        if script.trim().is_empty() {
            return Err(UsageError::NoCommand);
        }
        Command::Shell(script)
    } else {
        match words.first() {
            Some(program) if !program.is_empty() => Command::Argv(words),
            _ => return Err(UsageError::NoCommand),
        }
    };

    let priority = match args.priority {
        None => DEFAULT_PRIORITY,
        Some(p) => u8::try_from(p)
            .ok()
            .filter(|p| (MIN_USER_PRIORITY..=MAX_USER_PRIORITY).contains(p))
            .ok_or(UsageError::PriorityOutOfRange(p))?,
    };

    if args.queue.is_empty() {
        return Err(UsageError::EmptyQueue);
    }

    let cwd = resolve_cwd(args.cwd.as_deref(), &ctx.cwd)?;
    let cwd = utf8(
        cwd.as_os_str(),
        format!("the working directory {}", cwd.display()),
    )?;

    let mut env = ctx.env.clone();
    for text in &args.env {
        let (key, value) = parse_key_value("--env", text)?;
        upsert(&mut env, key, value);
    }
    let mut labels = Vec::new();
    for text in &args.label {
        let (key, value) = parse_key_value("--label", text)?;
        upsert(&mut labels, key, value);
    }

    Ok(Action::Submit {
        request: SubmitRequest {
            spec: JobSpec {
                command,
                cwd,
                env,
                queue: args.queue.clone(),
                priority,
                labels,
                after: Vec::new(),
                not_before: None,
                timeout_ms: None,
                retries: 0,
                retry_delay_ms: 1_000,
            },
        },
        wait: args.wait,
    })
}

/// The job's directory: `--cwd` made absolute against the caller's
/// directory, or the caller's directory. `.` components are dropped; `..`
/// is kept (resolving it lexically would be wrong across symlinks).
fn resolve_cwd(
    flag: Option<&Path>,
    caller: &Result<PathBuf, String>,
) -> Result<PathBuf, UsageError> {
    let base = || caller.clone().map_err(UsageError::NoCwd);
    let path = match flag {
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        Some(dir) => base()?.join(dir),
        None => base()?,
    };
    Ok(path.components().collect())
}

/// Submits; prints the id (flushed, so it is visible while `--wait` blocks);
/// with `wait`, then waits and returns the job's exit code.
pub fn execute(
    socket: &Path,
    request: SubmitRequest,
    wait: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut conn = Connection::open(socket, &Request::Submit(request))?;
    let id = match conn.recv()? {
        Response::Submitted { id } => id,
        Response::Error(e) => return Err(daemon_error("submit", e)),
        other => return Err(unexpected("submit", &other)),
    };
    if json {
        emit_line(out, &json!({ "id": id.0 }).to_string())?;
    } else {
        emit_line(out, &id.to_string())?;
    }
    flush(out)?;
    if !wait {
        return Ok(crate::error::EXIT_OK);
    }
    conn.send(&Request::Wait(WaitRequest { ids: vec![id] }))?;
    let ended = super::wait::read_wait_stream(&mut conn, |_| Ok(()))?;
    super::wait::exit_code_for(&[id], &ended)
}
