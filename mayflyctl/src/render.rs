//! Output: the JSON shapes of DESIGN.md §3 and the human-readable text.
//!
//! Everything here is a pure function of protocol data (and, for ages, a
//! `now` passed in), so the stable JSON contract is unit-tested without a
//! daemon. JSON field names are the contract: fields may be added, never
//! renamed. Times are RFC 3339 with milliseconds, in UTC, or `null`.

use std::fmt::Write as _;

pub use mayfly_protocol::json::{dump_state_json, job_json, rfc3339};
use mayfly_protocol::{CancelOutcome, JobId, JobInfo, Timestamp};
use serde_json::{Value, json};

/// The usual name of a signal number, as in `SIGTERM`; `SIG<n>` otherwise.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return format!("SIG{signal}"),
    };
    name.to_string()
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
    let secs = now.millis_since(then) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
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

/// Shortens `text` to at most `max` characters, marking the cut with `…`.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = text.chars().take(keep).collect();
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

/// The `status` table, one line per job, columns aligned. With a `width`
/// (stdout is a terminal) the COMMAND column is cut to fit; without one
/// (a pipe) nothing is cut. Control characters in commands are shown
/// escaped so one job cannot garble the table.
pub fn status_table(jobs: &[JobInfo], now: Timestamp, width: Option<usize>) -> String {
    const HEADERS: [&str; 8] = [
        "ID", "STATE", "QUEUE", "PRI", "EXIT", "ATTEMPTS", "AGE", "COMMAND",
    ];
    let rows: Vec<[String; 8]> = jobs
        .iter()
        .map(|job| {
            [
                job.id.to_string(),
                job.state.to_string(),
                escape_controls(&job.queue),
                job.priority.to_string(),
                exit_cell(job),
                job.attempts.to_string(),
                age(now, job.submitted_at),
                escape_controls(&job.command.to_string()),
            ]
        })
        .collect();

    // Widths of all columns but the last, which is never padded.
    let mut widths = [0usize; 7];
    for (i, w) in widths.iter_mut().enumerate() {
        *w = std::iter::once(HEADERS[i].len())
            .chain(rows.iter().map(|r| r[i].chars().count()))
            .max()
            .unwrap_or(0);
    }
    let used: usize = widths.iter().map(|w| w + 2).sum();
    let command_width = width.map(|w| w.saturating_sub(used).max(MIN_COMMAND_WIDTH));

    let mut out = String::new();
    let header = HEADERS.map(str::to_string);
    for row in std::iter::once(&header).chain(rows.iter()) {
        let mut line = String::new();
        for (i, w) in widths.iter().enumerate() {
            let _ = write!(line, "{:<w$}  ", row[i], w = *w);
        }
        match command_width {
            Some(max) => line.push_str(&truncate(&row[7], max)),
            None => line.push_str(&row[7]),
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use mayfly_protocol::{
        Command, JobState, QueueInfo, SchedulerInfo, StateCounts, StateHeader, SystemTaskInfo,
        Timestamp,
    };

    use super::*;

    /// A finished, failed job with every field set.
    pub(crate) fn info(id: u64, state: JobState) -> JobInfo {
        JobInfo {
            id: JobId(id),
            state,
            command: Command::Argv(vec!["make".into(), "test".into()]),
            cwd: "/src".into(),
            queue: "default".into(),
            priority: 50,
            labels: vec![("team".into(), "ops".into())],
            exit_code: None,
            signal: None,
            attempts: 1,
            submitted_at: Timestamp(1_700_000_000_000),
            started_at: Some(Timestamp(1_700_000_000_250)),
            finished_at: None,
            progress: None,
            reason: None,
            pid: None,
            after: vec![],
            not_before: None,
            timeout_ms: None,
            retries: 0,
            retry_at: None,
            history: vec![],
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
                "pid": null,
                "after": [],
                "not_before": null,
                "timeout_ms": null,
                "retries": 0,
                "retry_at": null,
                "history": [],
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
    /// The table is aligned, and cut to the terminal only when there is one.
    fn table_layout() {
        let mut a = info(1, JobState::Succeeded);
        a.exit_code = Some(0);
        let mut b = info(12, JobState::Failed);
        b.signal = Some(9);
        b.command = Command::Shell("x".repeat(200));
        let now = Timestamp(1_700_000_065_000);
        let table = status_table(&[a, b], now, None);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "ID  STATE      QUEUE    PRI  EXIT     ATTEMPTS  AGE  COMMAND"
        );
        assert_eq!(
            lines[1],
            "1   succeeded  default  50   0        1         1m   make test"
        );
        assert!(lines[2].starts_with("12  failed     default  50   SIGKILL  1         1m   xxx"));
        assert!(lines[2].ends_with(&"x".repeat(200)));

        let narrow = status_table(&[info(1, JobState::Queued)], now, Some(70));
        for line in narrow.lines() {
            assert!(line.chars().count() <= 70, "{line:?}");
        }
        let mut long = info(1, JobState::Queued);
        long.command = Command::Shell("y".repeat(200));
        let cut = status_table(&[long], now, Some(80));
        let row = cut.lines().nth(1).expect("a row");
        assert_eq!(row.chars().count(), 80);
        assert!(row.ends_with("y…"));
    }

    #[test]
    /// Control characters in a command cannot break the table.
    fn table_escapes_control_characters() {
        let mut job = info(1, JobState::Queued);
        job.command = Command::Shell("echo a\nrm -rf /\r\u{1b}[2J".into());
        let table = status_table(&[job], Timestamp(0), None);
        assert_eq!(table.lines().count(), 2);
        assert!(table.contains("echo a\\nrm -rf /\\r\\u{1b}[2J"), "{table}");
        // Quotes are not control characters: shown as is.
        let mut job = info(2, JobState::Queued);
        job.command = Command::Argv(vec!["sh".into(), "-c".into(), "kill -9 $$".into()]);
        let table = status_table(&[job], Timestamp(0), None);
        assert!(table.ends_with("sh -c 'kill -9 $$'\n"), "{table}");
    }
}
