//! The subcommands, one module each.
//!
//! Every module owns both halves of its command: `plan`, the pure conversion
//! of its clap arguments into an [`Action`] (called by [`crate::plan()`]), and
//! `execute`, which opens the connection, sends the request and renders the
//! answer. [`execute`] is the one `match` that dispatches.
//!
//! Conventions: commands write only to the `out` they are given (stdout in
//! the binary) and return the exit code on success; failures are returned as
//! [`CtlError`]s and printed once by `main`. Output that a user may be
//! watching (wait lines, log chunks, the id before `submit --wait` blocks) is
//! flushed as soon as it is written.

use std::io::Write;

use mayfly_protocol::Request;

use crate::client::Target;
use crate::context::ClientContext;
use crate::error::CtlError;
use crate::plan::{Action, Plan};

pub mod cancel;
pub mod clean;
pub mod dump_state;
pub mod edit;
pub mod events;
pub mod logs;
pub mod pause;
pub mod progress;
pub mod queue;
pub mod restart;
pub mod shutdown;
pub mod status;
pub mod submit;
pub mod wait;

/// Runs a plan against the daemon and returns the exit code.
pub fn execute(plan: Plan, ctx: &ClientContext, out: &mut dyn Write) -> Result<u8, CtlError> {
    let Plan {
        socket,
        timeout,
        json,
        action,
    } = plan;
    let target = Target { socket, timeout };
    match action {
        Action::Submit { request, wait } => submit::execute(&target, request, wait, json, out),
        Action::SubmitBatch {
            request,
            lines,
            wait,
        } => submit::execute_batch(&target, request, &lines, wait, json, out),
        Action::Status {
            request,
            filter,
            usage,
        } => status::execute(&target, request, &filter, usage, json, ctx, out),
        Action::Cancel(request) => cancel::execute(&target, request, json, out),
        Action::Wait { request, quiet } => {
            wait::execute(&target, request, quiet, json, ctx.stderr_tty, out)
        }
        Action::Logs(request) => logs::execute(&target, request, out),
        Action::DumpState => dump_state::execute(&target, out),
        Action::Shutdown(request) => shutdown::execute(&target, request),
        Action::Events(request) => events::execute(&target, request, json, out),
        Action::QueueSet(request) => {
            let what = if request.create {
                "queue add"
            } else {
                "queue set"
            };
            let request = Request::QueueSet(request);
            queue::execute(&target, request, what, false, json, ctx, out)
        }
        Action::QueueRemove(request) => {
            let request = Request::QueueRemove(request);
            queue::execute(&target, request, "queue rm", false, json, ctx, out)
        }
        Action::QueueList => queue::execute(
            &target,
            Request::QueueList,
            "queue list",
            true,
            json,
            ctx,
            out,
        ),
        Action::Pause(request) => {
            let what = if request.paused { "pause" } else { "resume" };
            let request = Request::Pause(request);
            queue::execute(&target, request, what, false, json, ctx, out)
        }
        Action::Restart(request) => restart::execute(&target, request, json, out),
        Action::Clean(request) => clean::execute(&target, request, json, out),
        Action::Edit(edit) => edit::execute(&target, &edit, json, ctx, out),
        Action::Progress(request) => progress::execute(&target, request),
    }
}

/// Writes `text` and a newline.
pub(crate) fn emit_line(out: &mut dyn Write, text: &str) -> Result<(), CtlError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(CtlError::Output)
}

/// Flushes `out`, so a watching user sees what was written so far.
pub(crate) fn flush(out: &mut dyn Write) -> Result<(), CtlError> {
    out.flush().map_err(CtlError::Output)
}
