//! `queue add|set|rm|list`: create, change, remove and list queues.
//!
//! Every queue request is answered with the full list of queues after the
//! change; `list` prints it as a table, the others print nothing (their exit
//! status tells), and with `--json` all of them print it as an array.

use std::io::Write;

use mayfly_protocol::{
    ExecutorSpec, QueueInfo, QueueRemoveRequest, QueueSetRequest, Request, Response,
};
use serde_json::Value;

use super::emit_line;
use crate::cli::{ExecutorArgs, QueueAddArgs, QueueNameArgs, QueueSetArgs};
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

/// The executor the flags name, if they name one; settings of a kind other
/// than the one named are refused, so a typo never goes unnoticed.
fn executor(args: &ExecutorArgs) -> Result<Option<ExecutorSpec>, UsageError> {
    let kind = args.executor.as_deref();
    let bad =
        |flag: &'static str, kind: &'static str| Err(UsageError::ExecutorSetting { flag, kind });
    if kind != Some("slurm") {
        if args.slurm_partition.is_some() {
            return bad("--slurm-partition", "slurm");
        }
        if !args.slurm_args.is_empty() {
            return bad("--slurm-arg", "slurm");
        }
    }
    if kind != Some("a2a") {
        if args.a2a_url.is_some() {
            return bad("--a2a-url", "a2a");
        }
        if args.a2a_token_file.is_some() {
            return bad("--a2a-token-file", "a2a");
        }
    }
    Ok(match kind {
        None => None,
        Some("local") => Some(ExecutorSpec::Local),
        Some("slurm") => Some(ExecutorSpec::Slurm {
            partition: args.slurm_partition.clone(),
            args: args.slurm_args.clone(),
        }),
        Some("a2a") => {
            let Some(url) = args.a2a_url.clone() else {
                return Err(UsageError::A2aUrlMissing);
            };
            if let Some(file) = &args.a2a_token_file
                && !file.starts_with('/')
            {
                return Err(UsageError::RelativeTokenFile(file.clone()));
            }
            Some(ExecutorSpec::A2a {
                url,
                token_file: args.a2a_token_file.clone(),
            })
        }
        // clap allows only the kinds above.
        Some(_) => None,
    })
}

/// `queue add NAME [--concurrency N] [--executor KIND ...]`.
pub fn plan_add(args: &QueueAddArgs) -> Result<Action, UsageError> {
    Ok(Action::QueueSet(QueueSetRequest {
        name: args.name.clone(),
        concurrency: Some(limit(args.concurrency)?),
        create: true,
        executor: executor(&args.executor)?,
    }))
}

/// `queue set NAME [--concurrency N | --unlimited] [--executor KIND ...]`;
/// clap requires one change.
pub fn plan_set(args: &QueueSetArgs) -> Result<Action, UsageError> {
    let concurrency = if args.unlimited {
        Some(None)
    } else {
        limit(args.concurrency)?.map(Some)
    };
    Ok(Action::QueueSet(QueueSetRequest {
        name: args.name.clone(),
        concurrency,
        create: false,
        executor: executor(&args.executor)?,
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
