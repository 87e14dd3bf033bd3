//! Output: the JSON shapes of `docs/protocol.md` ("JSON for scripts") and
//! the human-readable text.
//!
//! Everything here is a pure function of protocol data (and, for ages, a
//! `now` passed in), so the stable JSON contract is unit-tested without a
//! daemon. JSON field names are the contract: fields may be added, never
//! renamed. Times are RFC 3339 with milliseconds, in UTC, or `null`.

use std::fmt::Write as _;

pub use mayfly_protocol::json::{
    JobsJsonWriter, dump_state_json, job_json, rfc3339, write_jobs_json,
};
use mayfly_protocol::{CancelOutcome, JobId, JobInfo, JobState, QueueInfo, Timestamp};
use serde_json::{Value, json};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The name of a signal number, as in `SIGTERM`, from `nix`'s table of
/// this platform's signals (the daemon runs on the same machine); `SIG<n>`
/// for a number without a name there, such as a real-time signal.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| format!("SIG{signal}"), |s| s.as_str().to_string())
}

/// What one cancel did, as the text line `7: cancelled`.
pub fn cancel_line(id: JobId, outcome: &CancelOutcome) -> String {
    let what = match outcome {
        CancelOutcome::Cancelled => "cancelled".to_string(),
        CancelOutcome::Signalled => "signalled (SIGTERM sent)".to_string(),
        CancelOutcome::AlreadyEnded(state) => format!("already {state}"),
        CancelOutcome::NotFound => "no such job".to_string(),
    };
    format!("{id}: {what}")
}

/// What one cancel did, as `{"id": 7, "outcome": "already_ended", "state": "succeeded"}`.
/// Outcomes: `cancelled`, `signalled`, `already_ended` (with `state`), `not_found`.
pub fn cancel_json(id: JobId, outcome: &CancelOutcome) -> Value {
    match outcome {
        CancelOutcome::Cancelled => json!({"id": id.0, "outcome": "cancelled"}),
        CancelOutcome::Signalled => json!({"id": id.0, "outcome": "signalled"}),
        CancelOutcome::AlreadyEnded(state) => {
            json!({"id": id.0, "outcome": "already_ended", "state": state.as_str()})
        }
        CancelOutcome::NotFound => json!({"id": id.0, "outcome": "not_found"}),
    }
}

/// How a job ended, as the `wait` line `3 succeeded (exit 0)`.
pub fn ended_line(info: &JobInfo) -> String {
    let mut line = format!("{} {}", info.id, info.state);
    if let Some(signal) = info.signal {
        let _ = write!(line, " (killed by {})", signal_name(signal));
    } else if let Some(code) = info.exit_code {
        let _ = write!(line, " (exit {code})");
    }
    if let Some(reason) = &info.reason {
        let _ = write!(line, ": {reason}");
    }
    line
}

/// A compact age: `12s`, `5m`, `3h`, `2d`.
pub fn age(now: Timestamp, then: Timestamp) -> String {
    span(now.millis_since(then), false)
}

/// A compact span of `ms` milliseconds: `12s`, `5m`, `3h`, `2d`, rounded
/// down, or up with `round_up` (so a start 200 ms away reads `in 1s`).
fn span(ms: u64, round_up: bool) -> String {
    let secs = if round_up {
        ms.div_ceil(1000)
    } else {
        ms / 1000
    };
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A time relative to `now`: `3s ago`, or `in 5m` for a time to come.
pub fn relative(now: Timestamp, then: Timestamp) -> String {
    if then > now {
        format!("in {}", span(then.millis_since(now), true))
    } else {
        format!("{} ago", span(now.millis_since(then), false))
    }
}

/// The WHEN column: for a waiting job, when it may start (its retry or
/// not-before time, if still to come); else when it finished, started or
/// was submitted, whichever is latest in its life.
fn when_cell(job: &JobInfo, now: Timestamp) -> String {
    if job.state == JobState::Waiting
        && let Some(at) = job.retry_at.or(job.not_before).filter(|t| *t > now)
    {
        return relative(now, at);
    }
    let at = match job.state {
        JobState::Waiting | JobState::Queued => job.submitted_at,
        JobState::Running => job.started_at.unwrap_or(job.submitted_at),
        _ => job.finished_at.unwrap_or(job.submitted_at),
    };
    relative(now, at)
}

/// The ATTEMPTS column: attempts started, out of the most allowed when the
/// job may be retried (`2/4`).
fn attempts_cell(job: &JobInfo) -> String {
    if job.retries > 0 {
        format!("{}/{}", job.attempts, job.retries.saturating_add(1))
    } else {
        job.attempts.to_string()
    }
}

/// The EXIT column: the code, the signal name, or `-`.
fn exit_cell(info: &JobInfo) -> String {
    match (info.signal, info.exit_code) {
        (Some(sig), _) => signal_name(sig),
        (None, Some(code)) => code.to_string(),
        (None, None) => "-".to_string(),
    }
}

/// How many terminal columns `text` takes: two for a CJK character or most
/// emoji, none for a combining mark, one for the rest. Tables are aligned
/// and cut by this, not by characters or bytes, so a wide label or command
/// neither shifts the columns after it nor runs past the terminal.
fn columns(text: &str) -> usize {
    text.width()
}

/// Shortens `text` to at most `max` columns, marking the cut with `…` (one
/// column). A wide character that would straddle the edge is left out
/// whole, so the cut text may be a column short.
fn truncate(text: &str, max: usize) -> String {
    if columns(text) <= max {
        return text.to_string();
    }
    let room = max.saturating_sub(1);
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` with control characters written as escapes (`\n`, `\u{1b}`), so a
/// job's command cannot break lines or send terminal sequences; everything
/// else, quotes included, is shown as is.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The narrowest the COMMAND column gets, however narrow the terminal.
const MIN_COMMAND_WIDTH: usize = 12;

/// The narrowest the PROGRESS column gets when the terminal is too narrow
/// for all of it.
const MIN_PROGRESS_WIDTH: usize = 10;

/// How a table is drawn: for a terminal (cut to its width, coloured) or
/// for a pipe (neither).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStyle {
    /// The terminal's width; `None` never cuts.
    pub width: Option<usize>,
    /// Whether to colour (ANSI SGR sequences).
    pub color: bool,
}

/// The ANSI SGR code for a state's colour: green for success, red for
/// failure, yellow for running, cyan for waiting, magenta for interrupted,
/// dim for jobs that never ran to an end of their own.
fn state_sgr(state: JobState) -> Option<&'static str> {
    match state {
        JobState::Succeeded => Some("32"),
        JobState::Failed | JobState::TimedOut => Some("31"),
        JobState::Running => Some("33"),
        JobState::Waiting => Some("36"),
        JobState::Interrupted => Some("35"),
        JobState::Cancelled | JobState::Skipped => Some("2"),
        JobState::Queued => None,
    }
}

/// `text` in SGR `code` when colouring; as is otherwise.
fn paint(text: &str, code: Option<&str>, color: bool) -> String {
    match code {
        Some(code) if color => format!("\x1b[{code}m{text}\x1b[0m"),
        _ => text.to_string(),
    }
}

/// One cell of a table: its text and, when coloured, its SGR code.
type Cell = (String, Option<&'static str>);

/// Lays out rows of cells: every column but the last padded to its widest
/// cell (in terminal columns, see [`width`]; colour codes are added after
/// measuring), two spaces
/// apart, the header bold when colouring, trailing blanks trimmed. The last
/// two columns are cut to `limits` when given.
fn layout(
    header: &[&str],
    rows: &[Vec<Cell>],
    limits: Option<(usize, usize)>,
    color: bool,
) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| columns(h)).collect();
    for row in rows {
        for (w, (text, _)) in widths.iter_mut().zip(row) {
            *w = (*w).max(columns(text));
        }
    }
    if let Some((second_last, _)) = limits {
        widths[n - 2] = widths[n - 2].min(second_last);
    }
    let head: Vec<Cell> = header.iter().map(|h| (h.to_string(), Some("1"))).collect();
    let mut out = String::new();
    for row in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, (text, code)) in row.iter().enumerate() {
            let text = match (limits, i) {
                (Some((second_last, _)), i) if i == n - 2 => truncate(text, second_last),
                (Some((_, last)), i) if i == n - 1 => truncate(text, last),
                _ => text.clone(),
            };
            line.push_str(&paint(&text, *code, color));
            if i + 1 < n {
                let pad = widths[i].saturating_sub(columns(&text)) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `status` table, one line per job, columns aligned: ID, STATE,
/// QUEUE, (REMOTE,) PRI, EXIT, ATTEMPTS, (with `usage`: CPU, MAXRSS,) WHEN,
/// PROGRESS, COMMAND. REMOTE shows when a listed job ran elsewhere (its
/// Slurm job id, say). With a width (stdout is a terminal) PROGRESS and COMMAND are
/// cut to fit; without one (a pipe) nothing is cut. Control characters in
/// commands and progress texts are shown escaped so one job cannot garble
/// the table. A running job frozen for a more urgent one shows as
/// `running (preempted)`.
pub fn status_table(jobs: &[JobInfo], now: Timestamp, style: TableStyle, usage: bool) -> String {
    let remote = jobs.iter().any(|job| job.remote_id.is_some());
    let mut headers = vec!["ID", "STATE", "QUEUE"];
    if remote {
        headers.push("REMOTE");
    }
    headers.extend(["PRI", "EXIT", "ATTEMPTS"]);
    if usage {
        headers.extend(["CPU", "MAXRSS"]);
    }
    headers.extend(["WHEN", "PROGRESS", "COMMAND"]);
    let rows: Vec<Vec<Cell>> = jobs
        .iter()
        .map(|job| {
            let state = if job.preempted {
                format!("{} (preempted)", job.state)
            } else {
                job.state.to_string()
            };
            let mut row = vec![
                (job.id.to_string(), None),
                (state, state_sgr(job.state)),
                (escape_controls(&job.queue), None),
            ];
            if remote {
                row.push((
                    escape_controls(job.remote_id.as_deref().unwrap_or("-")),
                    None,
                ));
            }
            row.extend([
                (job.priority.to_string(), None),
                (exit_cell(job), None),
                (attempts_cell(job), None),
            ]);
            if usage {
                row.push((cpu_cell(job), None));
                row.push((rss_cell(job), None));
            }
            row.extend([
                (when_cell(job, now), None),
                (escape_controls(job.progress.as_deref().unwrap_or("")), None),
                (escape_controls(&job.command.to_string()), None),
            ]);
            row
        })
        .collect();
    let n = headers.len();
    let limits = style.width.map(|width| {
        let fixed: usize = (0..n - 2)
            .map(|i| {
                rows.iter()
                    .map(|r| columns(&r[i].0))
                    .chain([columns(headers[i])])
                    .max()
                    .unwrap_or(0)
                    + 2
            })
            .sum();
        let natural = |i: usize| {
            rows.iter()
                .map(|r| columns(&r[i].0))
                .chain([columns(headers[i])])
                .max()
                .unwrap_or(0)
        };
        let (progress, command) = (natural(n - 2), natural(n - 1));
        let room = width.saturating_sub(fixed);
        if progress + 2 + command <= room {
            (progress, command)
        } else {
            // Cut the progress text first, to a third of the room at most.
            let progress = progress.min((room / 3).max(MIN_PROGRESS_WIDTH));
            let command = room.saturating_sub(progress + 2).max(MIN_COMMAND_WIDTH);
            (progress, command)
        }
    });
    layout(&headers, &rows, limits, style.color)
}

/// The CPU column: user + system time of the last attempt, once it ended
/// (`-` before, or where its executor cannot tell).
fn cpu_cell(job: &JobInfo) -> String {
    job.usage.map_or_else(
        || "-".to_string(),
        |u| {
            let ms = u.cpu_user_ms.saturating_add(u.cpu_sys_ms);
            if ms < 1000 {
                format!("{ms}ms")
            } else {
                format!("{:.1}s", ms as f64 / 1000.0)
            }
        },
    )
}

/// The MAXRSS column: the peak resident memory of the last attempt's
/// largest process, in binary units (`-` when unknown).
fn rss_cell(job: &JobInfo) -> String {
    job.usage.map_or_else(
        || "-".to_string(),
        |u| {
            let kib = u.max_rss_kib as f64;
            if kib < 1024.0 {
                format!("{}K", u.max_rss_kib)
            } else if kib < 1024.0 * 1024.0 {
                format!("{:.1}M", kib / 1024.0)
            } else {
                format!("{:.1}G", kib / (1024.0 * 1024.0))
            }
        },
    )
}

/// Jobs that finished, in any way: the DONE column of `queue list`.
fn done_count(counts: &mayfly_protocol::StateCounts) -> u64 {
    JobState::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| counts.get(*s))
        .sum()
}

/// The `queue list` table: NAME, LIMIT, PAUSED, WAITING, QUEUED, RUNNING,
/// DONE, EXECUTOR.
pub fn queue_table(queues: &[QueueInfo], color: bool) -> String {
    const HEADERS: [&str; 8] = [
        "NAME", "LIMIT", "PAUSED", "WAITING", "QUEUED", "RUNNING", "DONE", "EXECUTOR",
    ];
    let rows: Vec<Vec<Cell>> = queues
        .iter()
        .map(|q| {
            vec![
                (escape_controls(&q.name), None),
                (
                    q.concurrency
                        .map_or_else(|| "unlimited".to_string(), |c| c.to_string()),
                    None,
                ),
                if q.paused {
                    ("yes".to_string(), Some("33"))
                } else {
                    ("no".to_string(), None)
                },
                (q.counts.waiting.to_string(), None),
                (q.counts.queued.to_string(), None),
                (q.counts.running.to_string(), None),
                (done_count(&q.counts).to_string(), None),
                (escape_controls(&q.executor.to_string()), None),
            ]
        })
        .collect();
    layout(&HEADERS, &rows, None, color)
}

/// One queue as JSON: `name`, `concurrency` (null: unlimited), `paused`,
/// `counts` (by state), `executor` — the shape of `dump-state`'s queues.
pub fn queue_json(queue: &QueueInfo) -> Value {
    let counts: serde_json::Map<String, Value> = JobState::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), json!(queue.counts.get(*s))))
        .collect();
    json!({
        "name": queue.name,
        "concurrency": queue.concurrency,
        "paused": queue.paused,
        "counts": counts,
        "executor": mayfly_protocol::json::executor_json(&queue.executor),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use mayfly_protocol::{
        Argv, Command, JobState, QueueInfo, SchedulerInfo, StateCounts, StateHeader,
        SystemTaskInfo, Timestamp,
    };

    use super::*;

    /// A job in `state` that has started, with a label.
    pub(crate) fn info(id: u64, state: JobState) -> JobInfo {
        JobInfo {
            state,
            labels: vec![("team".into(), "ops".into())],
            attempts: 1,
            started_at: Some(Timestamp(1_700_000_000_250)),
            ..JobInfo::submitted(
                JobId(id),
                Command::Argv(
                    vec!["make".into(), "test".into()]
                        .try_into()
                        .expect("a program"),
                ),
                "/src",
                "default",
                50,
                Timestamp(1_700_000_000_000),
            )
        }
    }

    #[test]
    /// The job object has exactly the contract's fields, with the contract's types.
    fn job_object_shape() {
        let mut job = info(7, JobState::TimedOut);
        job.signal = Some(15);
        job.progress = Some("50%".into());
        let v = job_json(&job);
        assert_eq!(
            v,
            json!({
                "id": 7,
                "state": "timed_out",
                "queue": "default",
                "priority": 50,
                "command": ["make", "test"],
                "cwd": "/src",
                "labels": {"team": "ops"},
                "exit_code": null,
                "signal": 15,
                "attempts": 1,
                "submitted_at": "2023-11-14T22:13:20.000Z",
                "started_at": "2023-11-14T22:13:20.250Z",
                "finished_at": null,
                "progress": "50%",
                "reason": null,
                "remote_id": null,
                "pid": null,
                "after": [],
                "not_before": null,
                "timeout_ms": null,
                "retries": 0,
                "retry_at": null,
                "history": [],
                "cpu_user_ms": null,
                "cpu_sys_ms": null,
                "max_rss_kib": null,
                "preempted": false,
            })
        );
        job.command = Command::Shell("echo hi | wc -c".into());
        assert_eq!(job_json(&job)["command"], json!("echo hi | wc -c"));
    }

    #[test]
    /// Times past year 9999 are clamped, not a panic.
    fn far_future_times_do_not_panic() {
        assert_eq!(rfc3339(Timestamp(u64::MAX)), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    /// dump-state: system tasks and jobs in `tasks` with their kinds, queues with counts.
    fn dump_state_shape() {
        let header = StateHeader {
            scheduler: SchedulerInfo {
                concurrency: 4,
                quantum_ms: 10,
                next_job_id: 3,
                jobs_submitted: 2,
                jobs_started: 1,
                jobs_finished: 0,
                shutting_down: false,
            },
            queues: vec![QueueInfo {
                name: "default".into(),
                concurrency: None,
                paused: false,
                counts: StateCounts {
                    queued: 1,
                    running: 1,
                    ..StateCounts::default()
                },
                executor: mayfly_protocol::ExecutorSpec::Local,
            }],
            system_tasks: vec![SystemTaskInfo {
                name: "looptask_wal_flush".into(),
                priority: 0,
                state: "running".into(),
                started_at: Timestamp(0),
            }],
        };
        let v = dump_state_json(&header, &[info(1, JobState::Running)]);
        assert_eq!(v["tasks"][0]["kind"], "system");
        assert_eq!(v["tasks"][0]["name"], "looptask_wal_flush");
        assert_eq!(v["tasks"][0]["priority"], 0);
        assert_eq!(v["tasks"][0]["state"], "running");
        assert_eq!(v["tasks"][1]["kind"], "job");
        assert_eq!(v["tasks"][1]["id"], 1);
        assert_eq!(v["tasks"][1]["state"], "running");
        assert_eq!(v["queues"][0]["concurrency"], Value::Null);
        assert_eq!(v["queues"][0]["counts"]["queued"], 1);
        assert_eq!(v["queues"][0]["counts"]["timed_out"], 0);
        assert_eq!(
            v["queues"][0]["counts"]
                .as_object()
                .map(serde_json::Map::len),
            Some(9)
        );
        assert_eq!(v["scheduler"]["quantum_ms"], 10);
        assert_eq!(v["scheduler"]["shutting_down"], false);
    }

    #[test]
    /// The cancel lines of the contract.
    fn cancel_lines() {
        assert_eq!(
            cancel_line(JobId(1), &CancelOutcome::Cancelled),
            "1: cancelled"
        );
        assert_eq!(
            cancel_line(JobId(2), &CancelOutcome::Signalled),
            "2: signalled (SIGTERM sent)"
        );
        assert_eq!(
            cancel_line(JobId(3), &CancelOutcome::AlreadyEnded(JobState::Succeeded)),
            "3: already succeeded"
        );
        assert_eq!(
            cancel_line(JobId(4), &CancelOutcome::NotFound),
            "4: no such job"
        );
        assert_eq!(
            cancel_json(JobId(3), &CancelOutcome::AlreadyEnded(JobState::Failed)),
            json!({"id": 3, "outcome": "already_ended", "state": "failed"})
        );
    }

    #[test]
    /// Signals are named as the platform names them, numbers without a name
    /// (real-time signals, nonsense) as `SIG<n>`.
    fn signal_names() {
        use nix::sys::signal::Signal;
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(15), "SIGTERM");
        for signal in [
            Signal::SIGHUP,
            Signal::SIGCHLD,
            Signal::SIGWINCH,
            Signal::SIGSYS,
        ] {
            assert_eq!(signal_name(signal as i32), signal.as_str());
        }
        assert_eq!(signal_name(Signal::SIGCHLD as i32), "SIGCHLD");
        assert_eq!(signal_name(0), "SIG0");
        assert_eq!(signal_name(-3), "SIG-3");
        assert_eq!(signal_name(40), "SIG40");
    }

    #[test]
    /// Wait lines name the state and the exit code or signal.
    fn ended_lines() {
        let mut job = info(3, JobState::Succeeded);
        job.exit_code = Some(0);
        assert_eq!(ended_line(&job), "3 succeeded (exit 0)");
        job.state = JobState::Failed;
        job.exit_code = None;
        job.signal = Some(9);
        assert_eq!(ended_line(&job), "3 failed (killed by SIGKILL)");
        let mut job = info(4, JobState::Failed);
        job.reason = Some("could not start: No such file or directory".into());
        assert_eq!(
            ended_line(&job),
            "4 failed: could not start: No such file or directory"
        );
        assert_eq!(ended_line(&info(5, JobState::Cancelled)), "5 cancelled");
    }

    #[test]
    /// Ages pick the largest whole unit.
    fn ages() {
        let t = Timestamp(1_000_000);
        assert_eq!(age(t.plus_millis(5_999), t), "5s");
        assert_eq!(age(t.plus_millis(125_000), t), "2m");
        assert_eq!(age(t.plus_millis(7_200_000), t), "2h");
        assert_eq!(age(t.plus_millis(3 * 86_400_000), t), "3d");
        assert_eq!(age(t, t.plus_millis(10_000)), "0s");
    }

    #[test]
    /// A REMOTE column (the Slurm job id, say) shows only when a listed job
    /// ran elsewhere.
    fn a_remote_column_appears_only_when_a_job_ran_elsewhere() {
        let now = Timestamp(1_700_000_065_000);
        let local = info(1, JobState::Running);
        let mut slurm = info(2, JobState::Running);
        slurm.queue = "hpc".into();
        slurm.remote_id = Some("4711".into());
        let plain = TableStyle::default();
        let without = status_table(std::slice::from_ref(&local), now, plain, false);
        assert!(!without.contains("REMOTE"), "{without}");
        let table = status_table(&[local, slurm], now, plain, false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "ID  STATE    QUEUE    REMOTE  PRI  EXIT  ATTEMPTS  WHEN    PROGRESS  COMMAND"
        );
        assert!(
            lines[1].starts_with("1   running  default  -       50"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("2   running  hpc      4711    50"),
            "{}",
            lines[2]
        );
        let mut remote = info(4, JobState::Queued);
        remote.remote_id = Some("9".into());
        let narrow = status_table(
            &[info(3, JobState::Queued), remote],
            now,
            TableStyle {
                width: Some(80),
                color: false,
            },
            false,
        );
        for line in narrow.lines() {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
    }

    #[test]
    /// The table is aligned, and cut to the terminal only when there is one.
    fn table_layout() {
        let mut a = info(1, JobState::Succeeded);
        a.exit_code = Some(0);
        a.finished_at = Some(Timestamp(1_700_000_005_000));
        let mut b = info(12, JobState::Failed);
        b.signal = Some(9);
        b.command = Command::Shell("x".repeat(200));
        b.finished_at = Some(Timestamp(1_700_000_005_000));
        b.retries = 2;
        b.attempts = 3;
        let now = Timestamp(1_700_000_065_000);
        let plain = TableStyle::default();
        let table = status_table(&[a, b], now, plain, false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "ID  STATE      QUEUE    PRI  EXIT     ATTEMPTS  WHEN    PROGRESS  COMMAND"
        );
        assert_eq!(
            lines[1],
            "1   succeeded  default  50   0        1         1m ago            make test"
        );
        assert!(
            lines[2].starts_with(
                "12  failed     default  50   SIGKILL  3/3       1m ago            xxx"
            ),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with(&"x".repeat(200)));

        let narrow = status_table(
            &[info(1, JobState::Queued)],
            now,
            TableStyle {
                width: Some(80),
                color: false,
            },
            false,
        );
        for line in narrow.lines() {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
        let mut long = info(1, JobState::Queued);
        long.command = Command::Shell("y".repeat(200));
        let cut = status_table(
            &[long],
            now,
            TableStyle {
                width: Some(100),
                color: false,
            },
            false,
        );
        let row = cut.lines().nth(1).expect("a row");
        assert_eq!(row.chars().count(), 100, "{row}");
        assert!(row.ends_with("y…"));
    }

    #[test]
    /// Wide characters (CJK, emoji) take two columns: the columns after a
    /// wide queue name or progress text stay aligned, and a wide command is
    /// cut to the terminal's width in columns, not in characters.
    fn table_aligns_and_cuts_wide_characters() {
        let now = Timestamp(1_700_000_001_000);
        let mut wide = info(1, JobState::Running);
        wide.queue = "默认".into();
        wide.progress = Some("🚀🚀 半分".into());
        wide.command = Command::Shell("echo 你好，世界".into());
        let mut narrow = info(22, JobState::Queued);
        narrow.progress = Some("ok".into());
        let jobs = [wide, narrow];
        // The terminal column at which `needle` starts in `line`.
        let column = |line: &str, needle: &str| {
            let at = line
                .find(needle)
                .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"));
            columns(&line[..at])
        };

        let table = status_table(&jobs, now, TableStyle::default(), false);
        let lines: Vec<&str> = table.lines().collect();
        let pri = column(lines[0], "PRI");
        let command = column(lines[0], "COMMAND");
        assert_eq!(column(lines[1], "50"), pri, "{table}");
        assert_eq!(column(lines[2], "50"), pri, "{table}");
        assert_eq!(column(lines[1], "echo 你好"), command, "{table}");
        assert_eq!(column(lines[2], "make test"), command, "{table}");
        assert_eq!(
            lines[1],
            "1   running  默认     50   -     1         0s ago  🚀🚀 半分  echo 你好，世界"
        );

        let mut long = info(1, JobState::Queued);
        long.command = Command::Shell("长".repeat(100));
        for cols in [100, 101] {
            let cut = status_table(
                std::slice::from_ref(&long),
                now,
                TableStyle {
                    width: Some(cols),
                    color: false,
                },
                false,
            );
            let row = cut.lines().nth(1).expect("a row");
            assert!(row.ends_with("长…"), "{row}");
            // A wide character is never split: one column may stay empty.
            assert!(
                columns(row) == cols || columns(row) == cols - 1,
                "{} columns of {cols}: {row}",
                columns(row)
            );
        }
    }

    #[test]
    /// A long progress text is cut before the command is.
    fn table_cuts_progress_first() {
        let mut job = info(1, JobState::Running);
        job.progress = Some("p".repeat(100));
        let now = Timestamp(1_700_000_001_000);
        let table = status_table(
            &[job],
            now,
            TableStyle {
                width: Some(100),
                color: false,
            },
            false,
        );
        let row = table.lines().nth(1).expect("a row");
        assert!(row.chars().count() <= 100, "{row}");
        assert!(row.contains("p…"), "{row}");
        assert!(row.ends_with("make test"), "{row}");
    }

    #[test]
    /// WHEN says when a waiting job may start, and how long ago anything else happened.
    fn when_column() {
        let now = Timestamp(1_700_000_100_000);
        let mut waiting = info(1, JobState::Waiting);
        waiting.not_before = Some(now.plus_millis(300_000));
        assert_eq!(when_cell(&waiting, now), "in 5m");
        waiting.retry_at = Some(now.plus_millis(1_200));
        assert_eq!(when_cell(&waiting, now), "in 2s");
        waiting.retry_at = None;
        waiting.not_before = Some(Timestamp(0));
        assert_eq!(when_cell(&waiting, now), "1m ago");
        let running = info(2, JobState::Running);
        assert_eq!(when_cell(&running, now), "1m ago");
        let mut done = info(3, JobState::Succeeded);
        done.finished_at = Some(now.plus_millis(0));
        assert_eq!(when_cell(&done, now), "0s ago");
        assert_eq!(relative(now, now.plus_millis(3 * 86_400_000)), "in 3d");
    }

    #[test]
    /// Colour: states and the header get SGR codes, alignment is by visible width.
    fn table_colour() {
        let now = Timestamp(1_700_000_001_000);
        let jobs = [
            info(1, JobState::Succeeded),
            info(2, JobState::Failed),
            info(3, JobState::Running),
            info(4, JobState::Cancelled),
            info(5, JobState::Queued),
        ];
        let table = status_table(
            &jobs,
            now,
            TableStyle {
                width: None,
                color: true,
            },
            false,
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("\x1b[1mID\x1b[0m  "), "{:?}", lines[0]);
        assert!(
            lines[1].contains("\x1b[32msucceeded\x1b[0m  default"),
            "{:?}",
            lines[1]
        );
        assert!(
            lines[2].contains("\x1b[31mfailed\x1b[0m     default"),
            "{:?}",
            lines[2]
        );
        assert!(
            lines[3].contains("\x1b[33mrunning\x1b[0m"),
            "{:?}",
            lines[3]
        );
        assert!(
            lines[4].contains("\x1b[2mcancelled\x1b[0m"),
            "{:?}",
            lines[4]
        );
        assert!(lines[5].contains("  queued     default"), "{:?}", lines[5]);
        let plain = status_table(&jobs, now, TableStyle::default(), false);
        assert!(!plain.contains('\x1b'));
        // Same layout once the codes are removed.
        let stripped = table
            .replace("\x1b[0m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[2m", "")
            .replace("\x1b[31m", "")
            .replace("\x1b[32m", "")
            .replace("\x1b[33m", "");
        assert_eq!(stripped, plain);
    }

    #[test]
    /// The queue table and its JSON.
    fn queue_listing() {
        let queues = [
            QueueInfo {
                name: "default".into(),
                concurrency: None,
                paused: false,
                counts: StateCounts {
                    queued: 2,
                    succeeded: 3,
                    failed: 1,
                    ..StateCounts::default()
                },
                executor: mayfly_protocol::ExecutorSpec::Local,
            },
            QueueInfo {
                name: "gpu".into(),
                concurrency: Some(1),
                paused: true,
                counts: StateCounts {
                    running: 1,
                    waiting: 4,
                    ..StateCounts::default()
                },
                executor: mayfly_protocol::ExecutorSpec::Local,
            },
        ];
        let table = queue_table(&queues, false);
        assert_eq!(
            table,
            "NAME     LIMIT      PAUSED  WAITING  QUEUED  RUNNING  DONE  EXECUTOR\n\
             default  unlimited  no      0        2       0        4     local\n\
             gpu      1          yes     4        0       1        0     local\n"
        );
        let v = queue_json(&queues[1]);
        assert_eq!(v["name"], "gpu");
        assert_eq!(v["concurrency"], 1);
        assert_eq!(v["paused"], true);
        assert_eq!(v["counts"]["waiting"], 4);
        assert_eq!(v["executor"], json!({"kind": "local"}));
        assert_eq!(queue_json(&queues[0])["concurrency"], Value::Null);
    }

    #[test]
    /// `--usage` adds CPU and MAXRSS before WHEN, `-` where unknown; a
    /// frozen job says so in its state; the JSON always has the figures.
    fn usage_columns_and_the_preempted_marker() {
        let mut done = info(1, JobState::Succeeded);
        done.usage = Some(mayfly_protocol::Usage {
            cpu_user_ms: 1_200,
            cpu_sys_ms: 300,
            max_rss_kib: 61_440,
        });
        let mut frozen = info(2, JobState::Running);
        frozen.preempted = true;
        let jobs = [done.clone(), frozen.clone()];
        let table = status_table(&jobs, Timestamp(0), TableStyle::default(), true);
        let lines: Vec<&str> = table.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "ID", "STATE", "QUEUE", "PRI", "EXIT", "ATTEMPTS", "CPU", "MAXRSS", "WHEN",
                "PROGRESS", "COMMAND"
            ]
        );
        assert!(
            lines[1].contains(" 1.5s ") && lines[1].contains(" 60.0M "),
            "{table}"
        );
        assert!(lines[2].contains("running (preempted)"), "{table}");
        let plain = status_table(&jobs, Timestamp(0), TableStyle::default(), false);
        assert!(!plain.contains("CPU") && !plain.contains("1.5s"), "{plain}");
        let v = job_json(&done);
        assert_eq!(v["cpu_user_ms"], 1_200);
        assert_eq!(v["cpu_sys_ms"], 300);
        assert_eq!(v["max_rss_kib"], 61_440);
        assert_eq!(v["preempted"], false);
        let v = job_json(&frozen);
        assert_eq!(v["cpu_user_ms"], Value::Null);
        assert_eq!(v["preempted"], true);
    }

    #[test]
    /// Control characters in a command cannot break the table.
    fn table_escapes_control_characters() {
        let mut job = info(1, JobState::Queued);
        job.command = Command::Shell("echo a\nrm -rf /\r\u{1b}[2J".into());
        job.progress = Some("x\u{1b}[31m".into());
        let table = status_table(&[job], Timestamp(0), TableStyle::default(), false);
        assert_eq!(table.lines().count(), 2);
        assert!(table.contains("echo a\\nrm -rf /\\r\\u{1b}[2J"), "{table}");
        assert!(table.contains("x\\u{1b}[31m"), "{table}");
        // Quotes are not control characters: shown as is.
        let mut job = info(2, JobState::Queued);
        job.command = Command::Argv(
            vec!["sh".into(), "-c".into(), "kill -9 $$".into()]
                .try_into()
                .expect("a program"),
        );
        let table = status_table(&[job], Timestamp(0), TableStyle::default(), false);
        assert!(table.ends_with("sh -c 'kill -9 $$'\n"), "{table}");
    }

    /// The job object as `status --json` built it before it was written
    /// straight to the output: a `Value` tree. The reference the direct
    /// path must match byte for byte.
    fn value_tree_job(info: &JobInfo) -> Value {
        let time = |t: Option<Timestamp>| t.map_or(Value::Null, |t| json!(rfc3339(t)));
        let labels: serde_json::Map<String, Value> = info
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({
            "id": info.id.0,
            "state": info.state.as_str(),
            "queue": info.queue,
            "priority": info.priority,
            "command": match &info.command {
                Command::Argv(argv) => json!(argv),
                Command::Shell(s) => json!(s),
            },
            "cwd": info.cwd,
            "labels": labels,
            "exit_code": info.exit_code,
            "signal": info.signal,
            "attempts": info.attempts,
            "submitted_at": rfc3339(info.submitted_at),
            "started_at": time(info.started_at),
            "finished_at": time(info.finished_at),
            "progress": info.progress,
            "reason": info.reason,
            "remote_id": info.remote_id,
            "pid": info.pid,
            "after": info.after.iter().map(|(id, any)| json!({"id": id.0, "any_outcome": any})).collect::<Vec<_>>(),
            "not_before": time(info.not_before),
            "timeout_ms": info.timeout_ms,
            "retries": info.retries,
            "retry_at": time(info.retry_at),
            "history": info.history.iter().map(|a| json!({
                "started_at": rfc3339(a.started_at),
                "finished_at": rfc3339(a.finished_at),
                "exit_code": a.exit_code,
                "signal": a.signal,
            })).collect::<Vec<_>>(),
            "cpu_user_ms": info.usage.map(|u| u.cpu_user_ms),
            "cpu_sys_ms": info.usage.map(|u| u.cpu_sys_ms),
            "max_rss_kib": info.usage.map(|u| u.max_rss_kib),
            "preempted": info.preempted,
        })
    }

    /// Strings with what JSON must escape (quotes, backslashes, control
    /// characters) and what it must not (non-ASCII, `/`, DEL).
    fn tricky_text() -> impl Strategy<Value = String> {
        "[a-c\"\\\\/\n\t\u{1}\u{1f}\u{7f}é😀 ]{0,6}"
    }

    /// Any job report, with the optional parts present or not.
    fn any_job() -> impl Strategy<Value = JobInfo> {
        let strings = (
            prop_oneof![
                (tricky_text(), prop::collection::vec(tricky_text(), 0..2))
                    .prop_map(|(program, args)| Command::Argv(Argv::new(program, args))),
                tricky_text().prop_map(Command::Shell),
            ],
            tricky_text(),
            tricky_text(),
            // Few distinct keys, so that repeated keys occur.
            prop::collection::vec(("[ab]{1,2}", tricky_text()), 0..4),
            prop::option::of(tricky_text()),
            prop::option::of(tricky_text()),
        );
        let numbers = (
            any::<u64>(),
            prop::sample::select(JobState::ALL.to_vec()),
            any::<u8>(),
            any::<Option<i32>>(),
            any::<Option<i32>>(),
            any::<u32>(),
            any::<Option<u32>>(),
            any::<Option<u64>>(),
        );
        let times = prop::collection::vec(prop::option::of(any::<u64>().prop_map(Timestamp)), 5);
        let lists = (
            prop::collection::vec((any::<u64>().prop_map(JobId), any::<bool>()), 0..3),
            prop::collection::vec(
                (
                    any::<u64>(),
                    any::<u64>(),
                    any::<Option<i32>>(),
                    any::<Option<i32>>(),
                ),
                0..3,
            ),
            prop::option::of((any::<u64>(), any::<u64>(), any::<u64>())),
            any::<bool>(),
        );
        (strings, numbers, times, lists).prop_map(
            |(
                (command, cwd, queue, labels, progress, reason),
                (id, state, priority, exit_code, signal, attempts, pid, timeout_ms),
                t,
                (after, history, usage, preempted),
            )| JobInfo {
                id: JobId(id),
                state,
                command,
                cwd,
                queue,
                priority,
                labels,
                exit_code,
                signal,
                attempts,
                submitted_at: t[0].unwrap_or_default(),
                started_at: t[1],
                finished_at: t[2],
                progress,
                reason,
                pid,
                after,
                not_before: t[3],
                timeout_ms,
                retries: attempts / 2,
                retry_at: t[4],
                history: history
                    .into_iter()
                    .map(|(start, end, exit_code, signal)| mayfly_protocol::Attempt {
                        started_at: Timestamp(start),
                        finished_at: Timestamp(end),
                        exit_code,
                        signal,
                    })
                    .collect(),
                remote_id: None,
                usage: usage.map(
                    |(cpu_user_ms, cpu_sys_ms, max_rss_kib)| mayfly_protocol::Usage {
                        cpu_user_ms,
                        cpu_sys_ms,
                        max_rss_kib,
                    },
                ),
                preempted,
            },
        )
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// `status --json` prints exactly what printing the `Value` tree
        /// with `{:#}` printed before it was written directly; `job_json`
        /// (for `wait --json`, `edit --json`, `dump-state`) is that tree.
        #[test]
        fn status_json_is_byte_for_byte_the_value_tree(jobs in prop::collection::vec(any_job(), 0..4)) {
            let mut out = Vec::new();
            write_jobs_json(&mut out, &jobs).expect("writes to memory");
            let tree = Value::Array(jobs.iter().map(value_tree_job).collect());
            prop_assert_eq!(String::from_utf8(out).expect("UTF-8"), format!("{tree:#}\n"));
            for job in &jobs {
                prop_assert_eq!(job_json(job), value_tree_job(job));
            }
        }
    }

    #[test]
    /// The array is pretty-printed one field a line, keys sorted, and a
    /// repeated label keeps its last value.
    fn status_json_layout() {
        let mut out = Vec::new();
        write_jobs_json(&mut out, &[]).expect("writes to memory");
        assert_eq!(out, b"[]\n");
        let mut job = info(7, JobState::Queued);
        job.labels = vec![
            ("team".into(), "ml".into()),
            ("run".into(), "7".into()),
            ("team".into(), "ops".into()),
        ];
        let mut out = Vec::new();
        write_jobs_json(&mut out, &[job]).expect("writes to memory");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.starts_with("[\n  {\n    \"after\": [],\n    \"attempts\": 1,\n    \"command\": [\n      \"make\",\n      \"test\"\n    ],\n"), "{text}");
        assert!(
            text.contains("\"labels\": {\n      \"run\": \"7\",\n      \"team\": \"ops\"\n    },"),
            "{text}"
        );
        assert!(
            text.ends_with("    \"timeout_ms\": null\n  }\n]\n"),
            "{text}"
        );
    }
}
