//! `pause` and `resume`: stop or restart the starting of jobs from queues,
//! and with `--running` freeze (SIGSTOP) or thaw (SIGCONT) the running ones.
//! Prints nothing on success (`--json`: the queues after the change).

use mayfly_protocol::PauseRequest;

use crate::cli::PauseArgs;
use crate::error::UsageError;
use crate::plan::Action;

/// The queues (empty with `--all`: every queue); naming none without
/// `--all` is a usage error, so a bare `pause` never stops everything by
/// accident.
pub fn plan(args: &PauseArgs, paused: bool) -> Result<Action, UsageError> {
    if args.queues.is_empty() && !args.all {
        return Err(UsageError::NoQueues(if paused {
            "pause"
        } else {
            "resume"
        }));
    }
    Ok(Action::Pause(PauseRequest {
        queues: args.queues.clone(),
        paused,
        running: args.running,
    }))
}
