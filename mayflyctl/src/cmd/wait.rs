//! `wait`: block until jobs end, report each as it ends, and turn how they
//! ended into the exit code (`docs/protocol.md`, "Exit codes of `mayflyctl`").
//!
//! The exit-code rules live here as pure functions, shared with
//! `submit --wait`: one job exits with its own code (`128+N` for signal N,
//! `1` when it ended without a code); several jobs exit `0` only when every
//! one succeeded.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use mayfly_protocol::{JobId, JobInfo, JobState, Request, Response, WaitRequest};

use super::{emit_line, flush};
use crate::cli::WaitArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::error::{CtlError, EXIT_FAILED, EXIT_OK, UsageError};
use crate::plan::{Action, parse_ids};
use crate::render::{ended_line, job_json};

/// The jobs to wait for.
pub fn plan(args: &WaitArgs) -> Result<Action, UsageError> {
    Ok(Action::Wait {
        request: WaitRequest {
            ids: parse_ids(&args.ids)?,
        },
        quiet: args.quiet,
    })
}

/// Waits, printing a line (or a JSON object) per job as it ends unless
/// `quiet`. With `bar` (stderr is a terminal) a progress bar on stderr
/// counts the jobs done; lines for stdout are written while it is hidden,
/// so the two never mix on one screen.
pub fn execute(
    target: &Target,
    request: WaitRequest,
    quiet: bool,
    json: bool,
    bar: bool,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let ids = request.ids.clone();
    let distinct: BTreeSet<JobId> = ids.iter().copied().collect();
    let mut conn = Connection::open(target, &Request::Wait(request))?;
    // The answers come when the jobs end, however long that takes.
    conn.wait_as_long_as_it_takes()?;
    let bar = bar.then(|| progress_bar(distinct.len()));
    let result = read_wait_stream(&mut conn, |info| {
        let mut write = || -> Result<(), CtlError> {
            if quiet {
                return Ok(());
            }
            if json {
                emit_line(out, &job_json(info).to_string())?;
            } else {
                emit_line(out, &ended_line(info))?;
            }
            flush(out)
        };
        match &bar {
            Some(bar) => {
                bar.suspend(write)?;
                bar.inc(1);
                bar.set_message(format!("(last: {} {})", info.id, info.state));
                Ok(())
            }
            None => write(),
        }
    });
    if let Some(bar) = &bar {
        match &result {
            Ok(_) => bar.finish(),
            Err(_) => bar.abandon(),
        }
    }
    exit_code_for(&ids, &result?)
}

/// The bar of `wait`: `⠋ [00:00:03] ████░░░░ 1/2 jobs done (last: 3 succeeded)`.
fn progress_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(u64::try_from(total).unwrap_or(u64::MAX)),
        ProgressDrawTarget::stderr(),
    );
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} jobs done {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("█▓░");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Reads `JobEnded` frames up to `End`, calling `on_ended` for each as it
/// arrives, and returns them all.
pub fn read_wait_stream(
    conn: &mut Connection,
    mut on_ended: impl FnMut(&JobInfo) -> Result<(), CtlError>,
) -> Result<Vec<JobInfo>, CtlError> {
    let mut ended = Vec::new();
    loop {
        match conn.recv()? {
            Response::JobEnded(info) => {
                on_ended(&info)?;
                ended.push(*info);
            }
            Response::End => return Ok(ended),
            Response::Error(e) => return Err(daemon_error("wait", e)),
            other => return Err(unexpected("wait", &other)),
        }
    }
}

/// The exit code of a finished wait; an error if the daemon ended the stream
/// without reporting every job asked for.
pub fn exit_code_for(ids: &[JobId], ended: &[JobInfo]) -> Result<u8, CtlError> {
    let reported: BTreeSet<JobId> = ended.iter().map(|j| j.id).collect();
    if let Some(missing) = ids.iter().find(|id| !reported.contains(id)) {
        return Err(CtlError::Protocol(format!(
            "the daemon ended the wait without reporting job {missing}"
        )));
    }
    Ok(wait_exit_code(ids, ended))
}

/// The exit code for waiting on `ids`, given how they ended: with one
/// distinct id, that job's own code ([`job_exit_code`]); with several, `0`
/// when all succeeded, else `1`.
pub fn wait_exit_code(ids: &[JobId], ended: &[JobInfo]) -> u8 {
    let distinct: BTreeSet<JobId> = ids.iter().copied().collect();
    if distinct.len() == 1 {
        return ended
            .iter()
            .find(|j| distinct.contains(&j.id))
            .map_or(EXIT_FAILED, job_exit_code);
    }
    let all_succeeded = distinct.iter().all(|id| {
        ended
            .iter()
            .any(|j| j.id == *id && j.state == JobState::Succeeded)
    });
    if all_succeeded { EXIT_OK } else { EXIT_FAILED }
}

/// A job's own exit code as a process would report it: `0` if it succeeded;
/// `128+N` if signal N killed it; its exit code if that is 1–255; `1`
/// otherwise: a job that was cancelled, skipped or interrupted ended on
/// Mayfly's say-so rather than its own (even if our SIGTERM is what killed
/// it), and a code of 0 on a job that did not succeed must not look like
/// success to a script.
pub fn job_exit_code(info: &JobInfo) -> u8 {
    match info.state {
        JobState::Succeeded => return EXIT_OK,
        JobState::Cancelled | JobState::Skipped | JobState::Interrupted => return EXIT_FAILED,
        _ => {}
    }
    if let Some(signal) = info
        .signal
        .and_then(|s| u8::try_from(s).ok())
        .filter(|s| (1..128).contains(s))
    {
        return 128 + signal;
    }
    info.exit_code
        .and_then(|c| u8::try_from(c).ok())
        .filter(|c| *c != 0)
        .unwrap_or(EXIT_FAILED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::info;

    /// A job in `state` with the given exit code and signal.
    fn ended(id: u64, state: JobState, exit_code: Option<i32>, signal: Option<i32>) -> JobInfo {
        JobInfo {
            exit_code,
            signal,
            ..info(id, state)
        }
    }

    #[test]
    /// One job: its own exit code, 128+N for signals, 1 without a code.
    fn single_job_codes() {
        assert_eq!(
            job_exit_code(&ended(1, JobState::Succeeded, Some(0), None)),
            0
        );
        assert_eq!(job_exit_code(&ended(1, JobState::Failed, Some(3), None)), 3);
        assert_eq!(
            job_exit_code(&ended(1, JobState::Failed, Some(255), None)),
            255
        );
        assert_eq!(
            job_exit_code(&ended(1, JobState::Failed, None, Some(9))),
            137
        );
        assert_eq!(
            job_exit_code(&ended(1, JobState::TimedOut, None, Some(15))),
            143
        );
        assert_eq!(job_exit_code(&ended(1, JobState::Cancelled, None, None)), 1);
        // Cancelled while running: our SIGTERM killed it, but it was cancelled.
        assert_eq!(
            job_exit_code(&ended(1, JobState::Cancelled, None, Some(15))),
            1
        );
        assert_eq!(job_exit_code(&ended(1, JobState::Skipped, None, None)), 1);
        assert_eq!(
            job_exit_code(&ended(1, JobState::Interrupted, None, None)),
            1
        );
        // Could not start: failed without a code.
        assert_eq!(job_exit_code(&ended(1, JobState::Failed, None, None)), 1);
    }

    #[test]
    /// Odd reports never look like success and never overflow.
    fn odd_reports() {
        assert_eq!(
            job_exit_code(&ended(1, JobState::TimedOut, Some(0), None)),
            1
        );
        assert_eq!(
            job_exit_code(&ended(1, JobState::Failed, Some(-1), None)),
            1
        );
        assert_eq!(
            job_exit_code(&ended(1, JobState::Failed, Some(256), None)),
            1
        );
        assert_eq!(
            job_exit_code(&ended(1, JobState::Failed, None, Some(200))),
            1
        );
        assert_eq!(job_exit_code(&ended(1, JobState::Failed, None, Some(0))), 1);
        assert_eq!(
            job_exit_code(&ended(1, JobState::Failed, None, Some(127))),
            255
        );
    }

    #[test]
    /// Several ids: 0 only when all succeeded.
    fn several_ids() {
        let ids = [JobId(1), JobId(2)];
        let ok = [
            ended(1, JobState::Succeeded, Some(0), None),
            ended(2, JobState::Succeeded, Some(0), None),
        ];
        assert_eq!(wait_exit_code(&ids, &ok), 0);
        let one_failed = [
            ended(1, JobState::Succeeded, Some(0), None),
            ended(2, JobState::Failed, Some(3), None),
        ];
        assert_eq!(wait_exit_code(&ids, &one_failed), 1);
        // The same id twice is one job: its own code.
        let twice = [JobId(2), JobId(2)];
        assert_eq!(wait_exit_code(&twice, &one_failed[1..]), 3);
    }

    #[test]
    /// A stream that ends without a requested job is an error, not a guess.
    fn missing_report_is_an_error() {
        let err = exit_code_for(
            &[JobId(1), JobId(2)],
            &[ended(1, JobState::Succeeded, Some(0), None)],
        )
        .expect_err("job 2 missing");
        assert!(err.to_string().contains("job 2"), "{err}");
        assert_eq!(err.exit_code(), 1);
    }
}
