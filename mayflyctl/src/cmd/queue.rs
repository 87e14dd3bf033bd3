//! `queue add|set|rm|list`: create, change, remove and list queues.
//!
//! Every queue request is answered with the full list of queues after the
//! change; `list` prints it as a table, the others print nothing (their exit
//! status tells), and with `--json` all of them print it as an array.

use std::io::Write;

use mayfly_protocol::{QueueInfo, QueueRemoveRequest, QueueSetRequest, Request, Response};
use serde_json::Value;

use super::emit_line;
use crate::cli::{QueueAddArgs, QueueNameArgs, QueueSetArgs};
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::context::ClientContext;
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::Action;
use crate::render::{queue_json, queue_table};

/// A limit of 0 is refused: it would never run anything.
fn limit(concurrency: Option<u32>) -> Result<Option<u32>, UsageError> {
    match concurrency {
        Some(0) => Err(UsageError::ZeroConcurrency),
        other => Ok(other),
    }
}

/// `queue add NAME [--concurrency N]`.
pub fn plan_add(args: &QueueAddArgs) -> Result<Action, UsageError> {
    Ok(Action::QueueSet(QueueSetRequest {
        name: args.name.clone(),
        concurrency: limit(args.concurrency)?,
        create: true,
    }))
}

/// `queue set NAME (--concurrency N | --unlimited)`; clap requires one.
pub fn plan_set(args: &QueueSetArgs) -> Result<Action, UsageError> {
    let concurrency = if args.unlimited {
        None
    } else {
        limit(args.concurrency)?
    };
    Ok(Action::QueueSet(QueueSetRequest {
        name: args.name.clone(),
        concurrency,
        create: false,
    }))
}

/// `queue rm NAME`.
pub fn plan_remove(args: &QueueNameArgs) -> Action {
    Action::QueueRemove(QueueRemoveRequest {
        name: args.name.clone(),
    })
}

/// `queue list`.
pub fn plan_list() -> Action {
    Action::QueueList
}

/// Sends one queue request and reads the list of queues it is answered with.
pub fn request_queues(
    target: &Target,
    request: Request,
    what: &'static str,
) -> Result<Vec<QueueInfo>, CtlError> {
    let mut conn = Connection::open(target, &request)?;
    match conn.recv()? {
        Response::Queues(queues) => Ok(queues),
        Response::Error(e) => Err(daemon_error(what, e)),
        other => Err(unexpected(what, &other)),
    }
}

/// Prints the queues as a JSON array.
pub fn print_json(queues: &[QueueInfo], out: &mut dyn Write) -> Result<(), CtlError> {
    let array = Value::Array(queues.iter().map(queue_json).collect());
    emit_line(out, &format!("{array:#}"))
}

/// Runs a queue request; `table` prints the answer as a table (`list`).
pub fn execute(
    target: &Target,
    request: Request,
    what: &'static str,
    table: bool,
    json: bool,
    ctx: &ClientContext,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let queues = request_queues(target, request, what)?;
    if json {
        print_json(&queues, out)?;
    } else if table {
        out.write_all(queue_table(&queues, ctx.color).as_bytes())
            .map_err(CtlError::Output)?;
    }
    Ok(EXIT_OK)
}
