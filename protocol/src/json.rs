//! The JSON shapes of DESIGN.md §3 (job objects, `dump-state`, events), for
//! the client's `--json` output and the daemon's `--dump-state`.
//!
//! Pure functions of protocol data. Field names are the contract: fields may
//! be added, never renamed. Times are RFC 3339 with milliseconds, in UTC, or
//! `null`.

use crate::{
    Command, JobInfo, JobState, QueueInfo, SchedulerInfo, StateCounts, StateHeader, SystemTaskInfo,
    Timestamp,
};
use serde_json::{Map, Value, json};

/// The last millisecond `humantime` can format (end of year 9999); later
/// times are clamped to it instead of failing.
const MAX_FORMATTABLE_MS: u64 = 253_402_300_800_000 - 1;

/// A timestamp as RFC 3339 with milliseconds, e.g. `2024-05-01T12:00:00.000Z`.
pub fn rfc3339(ts: Timestamp) -> String {
    let clamped = Timestamp(ts.0.min(MAX_FORMATTABLE_MS));
    humantime::format_rfc3339_millis(clamped.to_system_time()).to_string()
}

/// An optional timestamp as RFC 3339 or `null`.
fn rfc3339_or_null(ts: Option<Timestamp>) -> Value {
    ts.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// `[(k, v)]` as a JSON object; a repeated key keeps its last value.
fn pairs_object(pairs: &[(String, String)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(map)
}

/// A command as the contract shows it: the argv array, or the shell string.
fn command_json(command: &Command) -> Value {
    match command {
        Command::Argv(argv) => json!(argv),
        Command::Shell(s) => json!(s),
    }
}

/// The contract's job object (`status --json`, `wait --json`, `dump-state`).
pub fn job_json(info: &JobInfo) -> Value {
    json!({
        "id": info.id.0,
        "state": info.state.as_str(),
        "queue": info.queue,
        "priority": info.priority,
        "command": command_json(&info.command),
        "cwd": info.cwd,
        "labels": pairs_object(&info.labels),
        "exit_code": info.exit_code,
        "signal": info.signal,
        "attempts": info.attempts,
        "submitted_at": rfc3339(info.submitted_at),
        "started_at": rfc3339_or_null(info.started_at),
        "finished_at": rfc3339_or_null(info.finished_at),
        "progress": info.progress,
        "reason": info.reason,
        "pid": info.pid,
        "after": info.after.iter().map(|(id, any)| json!({"id": id.0, "any_outcome": any})).collect::<Vec<_>>(),
        "not_before": rfc3339_or_null(info.not_before),
        "timeout_ms": info.timeout_ms,
        "retries": info.retries,
        "retry_at": rfc3339_or_null(info.retry_at),
        "history": info.history.iter().map(|a| json!({
            "started_at": rfc3339(a.started_at),
            "finished_at": rfc3339(a.finished_at),
            "exit_code": a.exit_code,
            "signal": a.signal,
        })).collect::<Vec<_>>(),
    })
}

/// Per-state counts as an object keyed by the contract's state names.
fn counts_json(counts: &StateCounts) -> Value {
    let map: Map<String, Value> = JobState::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), json!(counts.get(*s))))
        .collect();
    Value::Object(map)
}

/// One queue of `dump-state`.
fn queue_json(queue: &QueueInfo) -> Value {
    json!({
        "name": queue.name,
        "concurrency": queue.concurrency,
        "paused": queue.paused,
        "counts": counts_json(&queue.counts),
    })
}

/// The scheduler part of `dump-state`.
fn scheduler_json(s: &SchedulerInfo) -> Value {
    json!({
        "concurrency": s.concurrency,
        "quantum_ms": s.quantum_ms,
        "next_job_id": s.next_job_id,
        "jobs_submitted": s.jobs_submitted,
        "jobs_started": s.jobs_started,
        "jobs_finished": s.jobs_finished,
        "shutting_down": s.shutting_down,
    })
}

/// One system task of `dump-state`.
fn system_task_json(task: &SystemTaskInfo) -> Value {
    json!({
        "kind": "system",
        "name": task.name,
        "priority": task.priority,
        "state": task.state,
        "started_at": rfc3339(task.started_at),
    })
}

/// The `dump-state` object: `tasks` (system tasks, then jobs), `queues`, `scheduler`.
pub fn dump_state_json(header: &StateHeader, jobs: &[JobInfo]) -> Value {
    let tasks: Vec<Value> = header
        .system_tasks
        .iter()
        .map(system_task_json)
        .chain(jobs.iter().map(|job| {
            let mut obj = job_json(job);
            if let Value::Object(map) = &mut obj {
                map.insert("kind".into(), json!("job"));
            }
            obj
        }))
        .collect();
    json!({
        "tasks": tasks,
        "queues": header.queues.iter().map(queue_json).collect::<Vec<_>>(),
        "scheduler": scheduler_json(&header.scheduler),
    })
}

/// An activity-log entry as one JSON object: `event` (the PascalCase name),
/// `at`, `seq`, and the event's fields.
pub fn activity_json(record: &crate::ActivityRecord) -> Value {
    use crate::Activity as A;
    let mut fields = match &record.event {
        A::SchedulerBoot {
            version,
            concurrency,
            recovered_jobs,
            replayed_records,
            replay_ms,
            interrupted_jobs,
        } => json!({
            "version": version, "concurrency": concurrency, "recovered_jobs": recovered_jobs,
            "replayed_records": replayed_records, "replay_ms": replay_ms,
            "interrupted_jobs": interrupted_jobs,
        }),
        A::ShutdownBegin {
            reason,
            timeout_ms,
            running_jobs,
        } => json!({"reason": reason, "timeout_ms": timeout_ms, "running_jobs": running_jobs}),
        A::ShutdownComplete { uptime_ms } => json!({"uptime_ms": uptime_ms}),
        A::SystemTaskStart { name, priority } => json!({"name": name, "priority": priority}),
        A::SystemTaskExit { name, ok, error } => json!({"name": name, "ok": ok, "error": error}),
        A::JobSubmitted {
            id,
            queue,
            priority,
            command,
        } => json!({"id": id.0, "queue": queue, "priority": priority, "command": command}),
        A::JobStarted {
            id,
            queue,
            attempt,
            pid,
            waited_ms,
        } => {
            json!({"id": id.0, "queue": queue, "attempt": attempt, "pid": pid, "waited_ms": waited_ms})
        }
        A::JobStopRequested {
            id,
            reason,
            grace_ms,
        } => json!({"id": id.0, "reason": reason, "grace_ms": grace_ms}),
        A::JobFinished {
            id,
            queue,
            state,
            exit_code,
            signal,
            ran_ms,
            reason,
        } => json!({
            "id": id.0, "queue": queue, "state": state.as_str(), "exit_code": exit_code,
            "signal": signal, "ran_ms": ran_ms, "reason": reason,
        }),
        A::JobWaiting { id } | A::JobQueued { id } => json!({"id": id.0}),
        A::JobRetrying {
            id,
            attempt,
            retry_at,
            exit_code,
            signal,
        } => json!({
            "id": id.0, "attempt": attempt, "retry_at": rfc3339_or_null(*retry_at),
            "exit_code": exit_code, "signal": signal,
        }),
    };
    if let Value::Object(map) = &mut fields {
        let mut head = Map::new();
        head.insert("event".into(), json!(record.event.name()));
        head.insert("at".into(), json!(rfc3339(record.at)));
        head.insert("seq".into(), json!(record.seq));
        head.extend(std::mem::take(map));
        return Value::Object(head);
    }
    fields
}
