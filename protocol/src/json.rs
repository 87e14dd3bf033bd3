//! The JSON shapes of `docs/protocol.md` ("JSON for scripts": job objects,
//! `dump-state`, events), for the client's `--json` output and the daemon's
//! `--dump-state`.
//!
//! Pure functions of protocol data. Field names are the contract: fields may
//! be added, never renamed. Times are RFC 3339 with milliseconds, in UTC, or
//! `null`.

mod pretty;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::io::Write;

use crate::{
    Attempt, Command, JobId, JobInfo, JobState, QueueInfo, SchedulerInfo, StateCounts, StateHeader,
    SystemTaskInfo, Timestamp,
};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::{Map, Value, json};

/// The last millisecond `humantime` can format (end of year 9999); later
/// times are clamped to it instead of failing.
const MAX_FORMATTABLE_MS: u64 = 253_402_300_800_000 - 1;

/// A timestamp as RFC 3339 with milliseconds, e.g. `2024-05-01T12:00:00.000Z`.
pub fn rfc3339(ts: Timestamp) -> String {
    rfc3339_display(ts).to_string()
}

/// [`rfc3339`] without the `String`: formats straight into a writer.
fn rfc3339_display(ts: Timestamp) -> humantime::Rfc3339Timestamp {
    let clamped = Timestamp(ts.0.min(MAX_FORMATTABLE_MS));
    humantime::format_rfc3339_millis(clamped.to_system_time())
}

/// A job object that serializes itself straight into a JSON writer, with
/// its fields in sorted order: the order a [`Value`] object prints them in
/// (its map is sorted), so printing either gives the same bytes.
///
/// [`job_json`] is built from this, so there is one serde definition of the
/// job object. The hand-written [`JobsJsonWriter`] (for the thousands of
/// jobs of `status --json`) must print the same bytes; property tests in
/// `mayflyctl` hold them to it.
#[derive(Debug, Clone, Copy)]
pub struct JobJson<'a>(pub &'a JobInfo);

impl Serialize for JobJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let info = self.0;
        // Keep these in byte order of the names: see the type's documentation.
        let mut obj = serializer.serialize_struct("Job", 27)?;
        obj.serialize_field("after", &AfterJson(&info.after))?;
        obj.serialize_field("attempts", &info.attempts)?;
        obj.serialize_field("command", &CommandJson(&info.command))?;
        obj.serialize_field("cpu_sys_ms", &info.usage.map(|u| u.cpu_sys_ms))?;
        obj.serialize_field("cpu_user_ms", &info.usage.map(|u| u.cpu_user_ms))?;
        obj.serialize_field("cwd", &info.cwd)?;
        obj.serialize_field("exit_code", &info.exit_code)?;
        obj.serialize_field("finished_at", &TimeJson(info.finished_at))?;
        obj.serialize_field("history", &HistoryJson(&info.history))?;
        obj.serialize_field("id", &info.id.0)?;
        obj.serialize_field("labels", &PairsJson(&info.labels))?;
        obj.serialize_field("max_rss_kib", &info.usage.map(|u| u.max_rss_kib))?;
        obj.serialize_field("not_before", &TimeJson(info.not_before))?;
        obj.serialize_field("pid", &info.pid)?;
        obj.serialize_field("preempted", &info.preempted)?;
        obj.serialize_field("priority", &info.priority)?;
        obj.serialize_field("progress", &info.progress)?;
        obj.serialize_field("queue", &info.queue)?;
        obj.serialize_field("reason", &info.reason)?;
        obj.serialize_field("remote_id", &info.remote_id)?;
        obj.serialize_field("retries", &info.retries)?;
        obj.serialize_field("retry_at", &TimeJson(info.retry_at))?;
        obj.serialize_field("signal", &info.signal)?;
        obj.serialize_field("started_at", &TimeJson(info.started_at))?;
        obj.serialize_field("state", info.state.as_str())?;
        obj.serialize_field("submitted_at", &TimeJson(Some(info.submitted_at)))?;
        obj.serialize_field("timeout_ms", &info.timeout_ms)?;
        obj.end()
    }
}

/// An optional timestamp as RFC 3339 or `null`, formatted straight into the
/// writer (no `String` per time).
struct TimeJson(Option<Timestamp>);

impl Serialize for TimeJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(ts) => serializer.collect_str(&rfc3339_display(ts)),
            None => serializer.serialize_none(),
        }
    }
}

/// `[(k, v)]` as a JSON object with sorted keys; a repeated key keeps its
/// last value (as inserting into a JSON map would).
struct PairsJson<'a>(&'a [(String, String)]);

impl Serialize for PairsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pairs = self.0;
        if pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            // Already sorted and unique (the usual zero or one label).
            return serializer.collect_map(pairs.iter().map(|(k, v)| (k, v)));
        }
        let map: BTreeMap<&str, &str> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        serializer.collect_map(map)
    }
}

/// A command as the contract shows it: the argv array, or the shell string.
struct CommandJson<'a>(&'a Command);

impl Serialize for CommandJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Command::Argv(argv) => serializer.collect_seq(argv.iter()),
            Command::Shell(s) => serializer.serialize_str(s),
        }
    }
}

/// A job's prerequisites: `[{"any_outcome": …, "id": …}]`.
struct AfterJson<'a>(&'a [(JobId, bool)]);

impl Serialize for AfterJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|&(id, any)| DepJson(id, any)))
    }
}

/// One prerequisite: its id and whether any outcome will do.
struct DepJson(JobId, bool);

impl Serialize for DepJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut obj = serializer.serialize_struct("Dependency", 2)?;
        obj.serialize_field("any_outcome", &self.1)?;
        obj.serialize_field("id", &self.0.0)?;
        obj.end()
    }
}

/// A job's finished attempts, oldest first.
struct HistoryJson<'a>(&'a [Attempt]);

impl Serialize for HistoryJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(AttemptJson))
    }
}

/// One finished attempt.
struct AttemptJson<'a>(&'a Attempt);

impl Serialize for AttemptJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut obj = serializer.serialize_struct("Attempt", 4)?;
        obj.serialize_field("exit_code", &a.exit_code)?;
        obj.serialize_field("finished_at", &TimeJson(Some(a.finished_at)))?;
        obj.serialize_field("signal", &a.signal)?;
        obj.serialize_field("started_at", &TimeJson(Some(a.started_at)))?;
        obj.end()
    }
}

/// The contract's job object (`status --json`, `wait --json`, `dump-state`),
/// as a [`Value`]. Printing many of them is cheaper through [`write_jobs_json`].
pub fn job_json(info: &JobInfo) -> Value {
    // Cannot fail: every map key is a string and every number fits JSON.
    serde_json::to_value(JobJson(info)).unwrap_or(Value::Null)
}

/// Writes `jobs` as the pretty-printed JSON array of `status --json`,
/// followed by a newline: see [`JobsJsonWriter`].
pub fn write_jobs_json<W, I, J>(out: W, jobs: I) -> std::io::Result<()>
where
    W: Write,
    I: IntoIterator<Item = J>,
    J: Borrow<JobInfo>,
{
    let mut writer = JobsJsonWriter::new(out);
    for job in jobs {
        writer.push(job.borrow())?;
    }
    writer.finish()
}

/// Writes the pretty-printed JSON array of `status --json` one job at a
/// time: the same bytes as printing the [`Value`] array of the jobs'
/// [`job_json`] objects with `{:#}`, several times faster (see
/// `json/pretty.rs`), and without holding the whole output: `out` gets
/// writes of about 64 KiB as jobs are pushed.
///
/// Only [`JobsJsonWriter::finish`] closes the array. A caller whose listing
/// fails part way returns without it, so what reached `out` is not valid
/// JSON and no reader can take a partial listing for a whole one.
#[derive(Debug)]
pub struct JobsJsonWriter<W: Write> {
    /// Where the text goes.
    out: W,
    /// Text not yet handed to `out`.
    buf: Vec<u8>,
    /// No job pushed yet.
    empty: bool,
}

impl<W: Write> JobsJsonWriter<W> {
    /// Output is handed to `out` in pieces of about this size.
    const CHUNK: usize = 1 << 16;

    /// Opens the array.
    pub fn new(out: W) -> Self {
        let mut buf = Vec::with_capacity(Self::CHUNK + 4096);
        pretty::push_jobs_start(&mut buf);
        Self {
            out,
            buf,
            empty: true,
        }
    }

    /// Writes one more job object.
    pub fn push(&mut self, job: &JobInfo) -> std::io::Result<()> {
        pretty::push_job_element(&mut self.buf, job, self.empty);
        self.empty = false;
        if self.buf.len() >= Self::CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Closes the array, ends the line and writes what is left.
    pub fn finish(mut self) -> std::io::Result<()> {
        pretty::push_jobs_end(&mut self.buf, self.empty);
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }
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
        "executor": executor_json(&queue.executor),
    })
}

/// A queue's executor: `{"kind": "local"}`, with the kind's settings.
pub fn executor_json(executor: &crate::ExecutorSpec) -> Value {
    match executor {
        crate::ExecutorSpec::Local => json!({ "kind": "local" }),
        crate::ExecutorSpec::Slurm { partition, args } => {
            json!({ "kind": "slurm", "partition": partition, "args": args })
        }
        crate::ExecutorSpec::A2a { url, token_file } => {
            json!({ "kind": "a2a", "url": url, "token_file": token_file })
        }
    }
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
    // Serializing a map of plain values into a Value cannot fail.
    serde_json::to_value(ActivityJson(record)).unwrap_or(Value::Null)
}

/// [`activity_json`] printed compactly, without building a [`Value`]: the
/// daemon logs one of these per event, several per job.
pub fn activity_json_string(record: &crate::ActivityRecord) -> String {
    // Serializing a map of plain values into a string cannot fail.
    serde_json::to_string(&ActivityJson(record)).unwrap_or_default()
}

/// An activity-log entry that serializes itself as a JSON object with its
/// keys in sorted order, the order a [`Value`] object prints them in, so
/// [`activity_json`] and [`activity_json_string`] print the same bytes.
struct ActivityJson<'a>(&'a crate::ActivityRecord);

/// One value of an activity entry.
enum Field<'a> {
    /// A whole number.
    U(u64),
    /// A signed whole number.
    I(i64),
    /// `true` or `false`.
    B(bool),
    /// A string.
    S(&'a str),
    /// A string made for this entry (a formatted time).
    Owned(String),
    /// `null`.
    Null,
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::U(v) => s.serialize_u64(*v),
            Field::I(v) => s.serialize_i64(*v),
            Field::B(v) => s.serialize_bool(*v),
            Field::S(v) => s.serialize_str(v),
            Field::Owned(v) => s.serialize_str(v),
            Field::Null => s.serialize_unit(),
        }
    }
}

impl Serialize for ActivityJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::Activity as A;
        use Field::{B, Null, Owned, S as Str, U};
        use serde::ser::SerializeMap;
        /// A number or `null`.
        fn opt_i(v: &Option<i32>) -> Field<'static> {
            v.map_or(Field::Null, |v| Field::I(v.into()))
        }
        /// A string or `null`.
        fn opt_s(v: &Option<String>) -> Field<'_> {
            v.as_deref().map_or(Field::Null, Field::S)
        }
        let record = self.0;
        let mut fields: Vec<(&str, Field<'_>)> = vec![
            ("event", Str(record.event.name())),
            ("at", Owned(rfc3339(record.at))),
            ("seq", U(record.seq)),
        ];
        match &record.event {
            A::SchedulerBoot {
                version,
                concurrency,
                recovered_jobs,
                replayed_records,
                replay_ms,
                interrupted_jobs,
            } => fields.extend([
                ("version", Str(version)),
                ("concurrency", U((*concurrency).into())),
                ("recovered_jobs", U(*recovered_jobs)),
                ("replayed_records", U(*replayed_records)),
                ("replay_ms", U(*replay_ms)),
                ("interrupted_jobs", U(*interrupted_jobs)),
            ]),
            A::ShutdownBegin {
                reason,
                timeout_ms,
                running_jobs,
            } => fields.extend([
                ("reason", Str(reason)),
                ("timeout_ms", U(*timeout_ms)),
                ("running_jobs", U((*running_jobs).into())),
            ]),
            A::ShutdownComplete { uptime_ms } => fields.push(("uptime_ms", U(*uptime_ms))),
            A::SystemTaskStart { name, priority } => {
                fields.extend([("name", Str(name)), ("priority", U((*priority).into()))]);
            }
            A::SystemTaskExit { name, ok, error } => {
                fields.extend([("name", Str(name)), ("ok", B(*ok)), ("error", opt_s(error))]);
            }
            A::JobSubmitted {
                id,
                queue,
                priority,
                command,
            } => fields.extend([
                ("id", U(id.0)),
                ("queue", Str(queue)),
                ("priority", U((*priority).into())),
                ("command", Str(command)),
            ]),
            A::JobStarted {
                id,
                queue,
                attempt,
                pid,
                waited_ms,
            } => fields.extend([
                ("id", U(id.0)),
                ("queue", Str(queue)),
                ("attempt", U((*attempt).into())),
                ("pid", U((*pid).into())),
                ("waited_ms", U(*waited_ms)),
            ]),
            A::JobStopRequested {
                id,
                reason,
                grace_ms,
            } => fields.extend([
                ("id", U(id.0)),
                ("reason", Str(reason)),
                ("grace_ms", U(*grace_ms)),
            ]),
            A::JobFinished {
                id,
                queue,
                state,
                exit_code,
                signal,
                ran_ms,
                reason,
                usage,
            } => fields.extend([
                ("id", U(id.0)),
                ("queue", Str(queue)),
                ("state", Str(state.as_str())),
                ("exit_code", opt_i(exit_code)),
                ("signal", opt_i(signal)),
                ("ran_ms", ran_ms.map_or(Null, U)),
                ("reason", opt_s(reason)),
                ("cpu_user_ms", usage.map_or(Null, |u| U(u.cpu_user_ms))),
                ("cpu_sys_ms", usage.map_or(Null, |u| U(u.cpu_sys_ms))),
                ("max_rss_kib", usage.map_or(Null, |u| U(u.max_rss_kib))),
            ]),
            A::JobWaiting { id } | A::JobQueued { id } => fields.push(("id", U(id.0))),
            A::JobRetrying {
                id,
                attempt,
                retry_at,
                exit_code,
                signal,
            } => fields.extend([
                ("id", U(id.0)),
                ("attempt", U((*attempt).into())),
                ("retry_at", retry_at.map_or(Null, |t| Owned(rfc3339(t)))),
                ("exit_code", opt_i(exit_code)),
                ("signal", opt_i(signal)),
            ]),
            A::JobFrozen { id, by } => fields.extend([("id", U(id.0)), ("by", U(by.0))]),
            A::JobThawed { id } => fields.push(("id", U(id.0))),
            A::CallbackFinished {
                id,
                result,
                exit_code,
                ran_ms,
                error,
            } => fields.extend([
                ("id", U(id.0)),
                ("result", Str(result)),
                ("exit_code", opt_i(exit_code)),
                ("ran_ms", U(*ran_ms)),
                ("error", opt_s(error)),
            ]),
        }
        fields.sort_unstable_by_key(|(key, _)| *key);
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (key, value) in &fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod activity_tests {
    use super::*;
    use crate::{Activity, ActivityRecord};

    /// The activity object as `json!` built it before [`ActivityJson`]:
    /// the oracle its bytes are held to.
    fn reference(record: &crate::ActivityRecord) -> Value {
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
            A::SystemTaskExit { name, ok, error } => {
                json!({"name": name, "ok": ok, "error": error})
            }
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
                usage,
            } => json!({
                "id": id.0, "queue": queue, "state": state.as_str(), "exit_code": exit_code,
                "signal": signal, "ran_ms": ran_ms, "reason": reason,
                "cpu_user_ms": usage.map(|u| u.cpu_user_ms),
                "cpu_sys_ms": usage.map(|u| u.cpu_sys_ms),
                "max_rss_kib": usage.map(|u| u.max_rss_kib),
            }),
            A::JobWaiting { id } | A::JobQueued { id } => json!({"id": id.0}),
            A::JobRetrying {
                id,
                attempt,
                retry_at,
                exit_code,
                signal,
            } => json!({
                "id": id.0, "attempt": attempt, "retry_at": retry_at.map_or(Value::Null, |t| Value::String(rfc3339(t))),
                "exit_code": exit_code, "signal": signal,
            }),
            A::JobFrozen { id, by } => json!({"id": id.0, "by": by.0}),
            A::JobThawed { id } => json!({"id": id.0}),
            A::CallbackFinished {
                id,
                result,
                exit_code,
                ran_ms,
                error,
            } => json!({
                "id": id.0, "result": result, "exit_code": exit_code, "ran_ms": ran_ms,
                "error": error,
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

    /// Every kind of event, with strings that need escaping.
    fn every_event() -> Vec<Activity> {
        let tricky = "q\"uo\\te \u{e9}\u{1}\n\t</x>".to_owned();
        vec![
            Activity::SchedulerBoot {
                version: "0.1.0".into(),
                concurrency: 4,
                recovered_jobs: 2,
                replayed_records: u64::MAX,
                replay_ms: 7,
                interrupted_jobs: 0,
            },
            Activity::ShutdownBegin {
                reason: tricky.clone(),
                timeout_ms: 30_000,
                running_jobs: 3,
            },
            Activity::ShutdownComplete { uptime_ms: 1 },
            Activity::SystemTaskStart {
                name: "metrics".into(),
                priority: 255,
            },
            Activity::SystemTaskExit {
                name: tricky.clone(),
                ok: false,
                error: Some(tricky.clone()),
            },
            Activity::SystemTaskExit {
                name: "x".into(),
                ok: true,
                error: None,
            },
            Activity::JobSubmitted {
                id: JobId(9),
                queue: "default".into(),
                priority: 50,
                command: tricky.clone(),
            },
            Activity::JobStarted {
                id: JobId(9),
                queue: tricky.clone(),
                attempt: 2,
                pid: u32::MAX,
                waited_ms: 12,
            },
            Activity::JobStopRequested {
                id: JobId(9),
                reason: "timeout".into(),
                grace_ms: 5_000,
            },
            Activity::JobFinished {
                id: JobId(9),
                queue: "q".into(),
                state: JobState::Failed,
                exit_code: Some(-1),
                signal: None,
                ran_ms: Some(3),
                reason: Some(tricky.clone()),
                usage: Some(crate::Usage {
                    cpu_user_ms: 1_234,
                    cpu_sys_ms: 56,
                    max_rss_kib: u64::MAX,
                }),
            },
            Activity::JobFinished {
                id: JobId(u64::MAX),
                queue: "q".into(),
                state: JobState::Cancelled,
                exit_code: None,
                signal: Some(15),
                ran_ms: None,
                reason: None,
                usage: None,
            },
            Activity::JobWaiting { id: JobId(1) },
            Activity::JobQueued { id: JobId(1) },
            Activity::JobRetrying {
                id: JobId(4),
                attempt: 1,
                retry_at: Some(Timestamp(1_700_000_000_123)),
                exit_code: Some(3),
                signal: None,
            },
            Activity::JobRetrying {
                id: JobId(4),
                attempt: 1,
                retry_at: None,
                exit_code: None,
                signal: Some(9),
            },
            Activity::CallbackFinished {
                id: JobId(4),
                result: "failed".into(),
                exit_code: Some(2),
                ran_ms: 17,
                error: Some(tricky.clone()),
            },
            Activity::JobFrozen {
                id: JobId(3),
                by: JobId(u64::MAX),
            },
            Activity::JobThawed { id: JobId(3) },
            Activity::CallbackFinished {
                id: JobId(5),
                result: "timed_out".into(),
                exit_code: None,
                ran_ms: 60_000,
                error: None,
            },
        ]
    }

    #[test]
    fn activity_objects_print_the_same_bytes_as_the_json_macro_built() {
        for (n, event) in every_event().into_iter().enumerate() {
            let record = ActivityRecord {
                seq: n as u64 + 1,
                at: Timestamp(1_700_000_000_000 + n as u64),
                event,
            };
            let expected = reference(&record);
            assert_eq!(activity_json(&record), expected, "{record:?}");
            assert_eq!(
                activity_json_string(&record),
                expected.to_string(),
                "{record:?}"
            );
        }
    }
}
