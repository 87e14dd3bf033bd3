//! Between the `.proto`'s messages and the protocol crate's types, both
//! ways, and from service errors to status codes.
//!
//! What a gRPC client sends is checked here only as far as the protobuf
//! encoding leaves room for mistakes the Unix-socket protocol cannot make
//! (a command given both ways, a priority past 255, a dependency naming
//! nothing); everything else is checked by the core, with the same
//! message `mayflyctl` prints.

use std::collections::BTreeMap;
use std::time::Duration;

use mayfly_protocol::{
    ActivityRecord, Argv, Attempt, CancelOutcome, Command, DepRef, Dependency, ErrorKind,
    ExecutorSpec, JobId, JobInfoRef, JobSpec, JobState, LogStream, QueueInfo, SchedulerInfo,
    StateCounts, StateHeader, SystemTaskInfo, Timestamp,
};
use tonic::{Code, Status};

use super::proto;
use crate::service::ServiceError;

/// The status of a failed operation: its kind as a code, its text as it
/// is (the line `mayflyctl` prints).
pub fn status(error: ServiceError) -> Status {
    let code = match error.kind {
        ErrorKind::BadRequest | ErrorKind::Protocol => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::ShuttingDown => Code::Unavailable,
        ErrorKind::Limit => Code::ResourceExhausted,
        // A state that forbids the request now, a full (or failing) disk
        // under the state dir included: nothing was changed, and retrying
        // helps only once someone has fixed the state ("free disk space and
        // retry"), which is what FAILED_PRECONDITION tells a client.
        ErrorKind::Conflict | ErrorKind::Storage => Code::FailedPrecondition,
        ErrorKind::Internal => Code::Internal,
    };
    Status::new(code, error.message)
}

/// A refused request: the argument `field` is wrong, `why` says how.
fn invalid(why: impl Into<String>) -> Status {
    Status::invalid_argument(why)
}

/// A duration from the `.proto`, refusing negative ones.
fn duration(d: &prost_types::Duration, field: &str) -> Result<Duration, Status> {
    Duration::try_from(*d).map_err(|_| invalid(format!("{field} must not be negative")))
}

/// A duration from the `.proto` in whole milliseconds.
fn millis(d: &prost_types::Duration, field: &str) -> Result<u64, Status> {
    Ok(u64::try_from(duration(d, field)?.as_millis()).unwrap_or(u64::MAX))
}

/// A point in time from the `.proto`, refusing times before 1970.
fn timestamp(t: &prost_types::Timestamp, field: &str) -> Result<Timestamp, Status> {
    let ms = i128::from(t.seconds) * 1000 + i128::from(t.nanos) / 1_000_000;
    u64::try_from(ms)
        .map(Timestamp)
        .map_err(|_| invalid(format!("{field} is before 1970")))
}

/// A point in time for the `.proto`.
pub fn to_timestamp(t: Timestamp) -> prost_types::Timestamp {
    let secs = t.0 / 1000;
    prost_types::Timestamp {
        seconds: i64::try_from(secs).unwrap_or(i64::MAX),
        // Below 1000 ms, so below 1e9 ns.
        nanos: i32::try_from((t.0 % 1000) * 1_000_000).unwrap_or(0),
    }
}

/// A duration in milliseconds for the `.proto`.
fn to_duration(ms: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}

/// A job id from the `.proto` (0 names no job; the core says so).
pub fn job_id(id: u64) -> JobId {
    JobId(id)
}

/// Job ids from the `.proto`.
pub fn job_ids(ids: &[u64]) -> Vec<JobId> {
    ids.iter().copied().map(JobId).collect()
}

/// The protocol's state for the `.proto`'s.
pub fn state(s: JobState) -> proto::JobState {
    match s {
        JobState::Waiting => proto::JobState::Waiting,
        JobState::Queued => proto::JobState::Queued,
        JobState::Running => proto::JobState::Running,
        JobState::Succeeded => proto::JobState::Succeeded,
        JobState::Failed => proto::JobState::Failed,
        JobState::Cancelled => proto::JobState::Cancelled,
        JobState::TimedOut => proto::JobState::TimedOut,
        JobState::Skipped => proto::JobState::Skipped,
        JobState::Interrupted => proto::JobState::Interrupted,
    }
}

/// The `.proto`'s state (an enum value on the wire) as the protocol's.
pub fn from_state(value: i32) -> Result<JobState, Status> {
    let s = proto::JobState::try_from(value).unwrap_or(proto::JobState::Unspecified);
    Ok(match s {
        proto::JobState::Waiting => JobState::Waiting,
        proto::JobState::Queued => JobState::Queued,
        proto::JobState::Running => JobState::Running,
        proto::JobState::Succeeded => JobState::Succeeded,
        proto::JobState::Failed => JobState::Failed,
        proto::JobState::Cancelled => JobState::Cancelled,
        proto::JobState::TimedOut => JobState::TimedOut,
        proto::JobState::Skipped => JobState::Skipped,
        proto::JobState::Interrupted => JobState::Interrupted,
        proto::JobState::Unspecified => {
            return Err(invalid(format!(
                "{value} is not a job state; use one of JOB_STATE_WAITING .. JOB_STATE_INTERRUPTED"
            )));
        }
    })
}

/// The `.proto`'s log stream as the protocol's.
pub fn log_stream(value: i32) -> Result<LogStream, Status> {
    match proto::LogStream::try_from(value) {
        Ok(proto::LogStream::Stdout) => Ok(LogStream::Stdout),
        Ok(proto::LogStream::Stderr) => Ok(LogStream::Stderr),
        Err(_) => Err(invalid(format!(
            "{value} is not a log stream; use LOG_STREAM_STDOUT or LOG_STREAM_STDERR"
        ))),
    }
}

/// One dependency from the `.proto`.
fn dependency(dep: &proto::Dependency) -> Result<Dependency, Status> {
    let on = match (dep.id, dep.batch_line) {
        (0, 0) => {
            return Err(invalid(
                "a dependency names no job: set its id (or batch_line within a SubmitBatch)",
            ));
        }
        (0, line) => DepRef::BatchLine(line),
        (id, 0) => DepRef::Job(JobId(id)),
        (_, _) => {
            return Err(invalid(
                "a dependency sets both id and batch_line; set one of them",
            ));
        }
    };
    Ok(Dependency {
        on,
        any_outcome: dep.any_outcome,
    })
}

/// A job spec from the `.proto`, with the defaults of `mayflyctl submit`
/// for what is left out (queue `default`, priority 50, a retry delay of
/// 1s). `now` is the time a `delay` counts from.
pub fn spec(spec: proto::JobSpec, now: Timestamp) -> Result<JobSpec, Status> {
    let command = match (spec.argv.is_empty(), spec.shell.is_empty()) {
        // Never empty in this arm; the conversion checks it all the same.
        (false, true) => {
            Command::Argv(Argv::try_from(spec.argv).map_err(|e| invalid(e.to_string()))?)
        }
        (true, false) => Command::Shell(spec.shell),
        (true, true) => {
            return Err(invalid(
                "no command given; set argv (run directly) or shell (run with sh -c)",
            ));
        }
        (false, false) => {
            return Err(invalid("both argv and shell are set; set one of them"));
        }
    };
    if spec.cwd.is_empty() {
        return Err(invalid(
            "no working directory given; set cwd to the absolute path of an existing directory",
        ));
    }
    let priority = match spec.priority {
        0 => mayfly_protocol::DEFAULT_PRIORITY,
        p => u8::try_from(p).map_err(|_| {
            invalid(format!(
                "priority {p} is out of range: use 1 (runs first) to 99 (runs last); \
                 0 is reserved for system tasks"
            ))
        })?,
    };
    let not_before = match (&spec.delay, &spec.at) {
        (Some(_), Some(_)) => return Err(invalid("both delay and at are set; set one of them")),
        (Some(delay), None) => Some(now.plus_millis(millis(delay, "delay")?)),
        (None, Some(at)) => Some(timestamp(at, "at")?),
        (None, None) => None,
    };
    let after = spec
        .after
        .iter()
        .map(dependency)
        .collect::<Result<_, _>>()?;
    let mut out = JobSpec {
        command,
        cwd: spec.cwd,
        env: spec.env.into_iter().collect(),
        queue: if spec.queue.is_empty() {
            mayfly_protocol::DEFAULT_QUEUE.to_string()
        } else {
            spec.queue
        },
        priority,
        labels: spec.labels.into_iter().collect(),
        after,
        not_before,
        timeout_ms: spec
            .timeout
            .as_ref()
            .map(|t| millis(t, "timeout"))
            .transpose()?,
        retries: spec.retries,
        retry_delay_ms: match &spec.retry_delay {
            Some(d) => millis(d, "retry_delay")?,
            None => mayfly_protocol::DEFAULT_RETRY_DELAY_MS,
        },
        ext: Vec::new(),
    };
    out.set_max_output(spec.max_output);
    out.set_on_finish(spec.on_finish);
    out.set_preemptible(spec.preemptible);
    Ok(out)
}

/// A job for the `.proto`, straight from the daemon's borrowed record.
pub fn job(job: &JobInfoRef<'_>) -> proto::Job {
    let (argv, shell) = match job.command {
        Command::Argv(argv) => (argv.to_vec(), String::new()),
        Command::Shell(s) => (Vec::new(), s.clone()),
    };
    proto::Job {
        id: job.id.0,
        state: state(job.state).into(),
        argv,
        shell,
        cwd: job.cwd.to_owned(),
        queue: job.queue.to_owned(),
        priority: u32::from(job.priority),
        labels: labels(job.labels),
        exit_code: job.exit_code,
        signal: job.signal,
        attempts: job.attempts,
        submitted_at: Some(to_timestamp(job.submitted_at)),
        started_at: job.started_at.map(to_timestamp),
        finished_at: job.finished_at.map(to_timestamp),
        progress: job.progress.map(str::to_owned),
        reason: job.reason.map(str::to_owned),
        pid: job.pid,
        after: job
            .after
            .iter()
            .map(|(id, any_outcome)| proto::Dependency {
                id: id.0,
                any_outcome: *any_outcome,
                batch_line: 0,
            })
            .collect(),
        not_before: job.not_before.map(to_timestamp),
        timeout: job.timeout_ms.map(to_duration),
        retries: job.retries,
        retry_at: job.retry_at.map(to_timestamp),
        history: job.history.iter().map(attempt).collect(),
        remote_id: job.remote_id.map(str::to_owned),
        usage: job.usage.map(|u| proto::Usage {
            cpu_user_ms: u.cpu_user_ms,
            cpu_sys_ms: u.cpu_sys_ms,
            max_rss_kib: u.max_rss_kib,
        }),
        preempted: job.preempted,
    }
}

/// Labels as a map: a key given twice keeps its last value, as
/// `mayflyctl status --label` reads them.
fn labels(labels: &[(String, String)]) -> BTreeMap<String, String> {
    labels.iter().cloned().collect()
}

/// One finished attempt for the `.proto`.
fn attempt(a: &Attempt) -> proto::Attempt {
    proto::Attempt {
        started_at: Some(to_timestamp(a.started_at)),
        finished_at: Some(to_timestamp(a.finished_at)),
        exit_code: a.exit_code,
        signal: a.signal,
    }
}

/// What a cancel did to one job, for the `.proto`.
pub fn cancel_result(id: JobId, outcome: &CancelOutcome) -> proto::CancelResult {
    let (outcome, ended) = match outcome {
        CancelOutcome::Cancelled => (proto::CancelOutcome::Cancelled, None),
        CancelOutcome::Signalled => (proto::CancelOutcome::Signalled, None),
        CancelOutcome::AlreadyEnded(s) => (proto::CancelOutcome::AlreadyEnded, Some(*s)),
        CancelOutcome::NotFound => (proto::CancelOutcome::NotFound, None),
    };
    proto::CancelResult {
        id: id.0,
        outcome: outcome.into(),
        state: ended.map_or(proto::JobState::Unspecified, state).into(),
    }
}

/// A queue's executor for the `.proto`.
fn executor(e: &ExecutorSpec) -> proto::Executor {
    let kind = match e {
        ExecutorSpec::Local => proto::executor::Kind::Local(proto::LocalExecutor {}),
        ExecutorSpec::Slurm { partition, args } => {
            proto::executor::Kind::Slurm(proto::SlurmExecutor {
                partition: partition.clone(),
                args: args.clone(),
            })
        }
        ExecutorSpec::A2a { url, token_file } => proto::executor::Kind::A2a(proto::A2aExecutor {
            url: url.clone(),
            token_file: token_file.clone(),
        }),
    };
    proto::Executor { kind: Some(kind) }
}

/// A queue's executor from the `.proto` (`None`: none given).
pub fn from_executor(e: Option<proto::Executor>) -> Option<ExecutorSpec> {
    Some(match e?.kind? {
        proto::executor::Kind::Local(_) => ExecutorSpec::Local,
        proto::executor::Kind::Slurm(s) => ExecutorSpec::Slurm {
            partition: s.partition,
            args: s.args,
        },
        proto::executor::Kind::A2a(a) => ExecutorSpec::A2a {
            url: a.url,
            token_file: a.token_file,
        },
    })
}

/// Counts by state for the `.proto`.
fn counts(c: &StateCounts) -> proto::StateCounts {
    proto::StateCounts {
        waiting: c.waiting,
        queued: c.queued,
        running: c.running,
        succeeded: c.succeeded,
        failed: c.failed,
        cancelled: c.cancelled,
        timed_out: c.timed_out,
        skipped: c.skipped,
        interrupted: c.interrupted,
    }
}

/// Every queue, for the `.proto`.
pub fn queues(queues: Vec<QueueInfo>) -> proto::QueuesReply {
    proto::QueuesReply {
        queues: queues.iter().map(queue).collect(),
    }
}

/// One queue for the `.proto`.
fn queue(q: &QueueInfo) -> proto::Queue {
    proto::Queue {
        name: q.name.clone(),
        concurrency: q.concurrency,
        paused: q.paused,
        counts: Some(counts(&q.counts)),
        executor: Some(executor(&q.executor)),
    }
}

/// The scheduler's counters for the `.proto`.
fn scheduler(s: &SchedulerInfo) -> proto::Scheduler {
    proto::Scheduler {
        concurrency: s.concurrency,
        quantum: Some(to_duration(s.quantum_ms)),
        next_job_id: s.next_job_id,
        jobs_submitted: s.jobs_submitted,
        jobs_started: s.jobs_started,
        jobs_finished: s.jobs_finished,
        shutting_down: s.shutting_down,
    }
}

/// A system task for the `.proto`.
fn system_task(t: &SystemTaskInfo) -> proto::SystemTask {
    proto::SystemTask {
        name: t.name.clone(),
        priority: u32::from(t.priority),
        state: t.state.clone(),
        started_at: Some(to_timestamp(t.started_at)),
    }
}

/// The head of a dump for the `.proto`.
pub fn header(h: &StateHeader) -> proto::StateHeader {
    proto::StateHeader {
        scheduler: Some(scheduler(&h.scheduler)),
        queues: h.queues.iter().map(queue).collect(),
        system_tasks: h.system_tasks.iter().map(system_task).collect(),
    }
}

/// One activity-log entry for the `.proto`: its name and time, and the
/// whole of it as `mayflyctl events --json` prints it.
pub fn event(record: &ActivityRecord) -> proto::Event {
    proto::Event {
        seq: record.seq,
        at: Some(to_timestamp(record.at)),
        event: record.event.name().to_string(),
        json: mayfly_protocol::json::activity_json_string(record),
    }
}

/// A grace period from the `.proto`.
pub fn grace(d: Option<prost_types::Duration>, field: &str) -> Result<Option<Duration>, Status> {
    d.as_ref().map(|d| duration(d, field)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec with a command and a working directory, the rest left out.
    fn minimal() -> proto::JobSpec {
        proto::JobSpec {
            argv: vec!["true".into()],
            cwd: "/".into(),
            ..Default::default()
        }
    }

    #[test]
    fn what_is_left_out_takes_the_submit_defaults() {
        let s = spec(minimal(), Timestamp(1000)).unwrap();
        assert_eq!(s.command, Command::Argv(Argv::new("true", [])));
        assert_eq!(s.queue, "default");
        assert_eq!(s.priority, mayfly_protocol::DEFAULT_PRIORITY);
        assert_eq!(s.retry_delay_ms, mayfly_protocol::DEFAULT_RETRY_DELAY_MS);
        assert_eq!(s.not_before, None);
        assert_eq!(s.max_output(), None);
        assert_eq!(s.on_finish(), None);
        assert!(!s.preemptible());
    }

    #[test]
    fn submit_options_carried_by_extensions_arrive() {
        let p = proto::JobSpec {
            max_output: Some(4096),
            on_finish: Some("notify-send done".into()),
            preemptible: true,
            ..minimal()
        };
        let s = spec(p, Timestamp(1000)).unwrap();
        assert_eq!(s.max_output(), Some(4096));
        assert_eq!(s.on_finish(), Some("notify-send done"));
        assert!(s.preemptible());
    }

    #[test]
    fn delays_and_times_become_a_not_before_time() {
        let mut p = minimal();
        p.delay = Some(prost_types::Duration {
            seconds: 2,
            nanos: 500_000_000,
        });
        assert_eq!(
            spec(p.clone(), Timestamp(1000)).unwrap().not_before,
            Some(Timestamp(3500))
        );
        p.at = Some(to_timestamp(Timestamp(9000)));
        let err = spec(p.clone(), Timestamp(1000)).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        p.delay = None;
        assert_eq!(
            spec(p, Timestamp(1000)).unwrap().not_before,
            Some(Timestamp(9000))
        );
    }

    #[test]
    fn mistakes_only_protobuf_allows_are_refused_with_the_fix() {
        let mut p = minimal();
        p.shell = "true".into();
        assert!(
            spec(p, Timestamp(0))
                .unwrap_err()
                .message()
                .contains("set one of them")
        );
        let mut p = minimal();
        p.argv.clear();
        assert!(
            spec(p, Timestamp(0))
                .unwrap_err()
                .message()
                .contains("no command given")
        );
        let mut p = minimal();
        p.priority = 300;
        assert!(
            spec(p, Timestamp(0))
                .unwrap_err()
                .message()
                .contains("out of range")
        );
        let mut p = minimal();
        p.cwd.clear();
        assert!(
            spec(p, Timestamp(0))
                .unwrap_err()
                .message()
                .contains("set cwd")
        );
        let mut p = minimal();
        p.after.push(proto::Dependency::default());
        assert!(
            spec(p, Timestamp(0))
                .unwrap_err()
                .message()
                .contains("names no job")
        );
        let mut p = minimal();
        p.timeout = Some(prost_types::Duration {
            seconds: -1,
            nanos: 0,
        });
        assert!(
            spec(p, Timestamp(0))
                .unwrap_err()
                .message()
                .contains("negative")
        );
    }

    #[test]
    fn every_error_kind_has_its_code_and_keeps_its_text() {
        let cases = [
            (ErrorKind::BadRequest, Code::InvalidArgument),
            (ErrorKind::NotFound, Code::NotFound),
            (ErrorKind::ShuttingDown, Code::Unavailable),
            (ErrorKind::Limit, Code::ResourceExhausted),
            (ErrorKind::Conflict, Code::FailedPrecondition),
            (ErrorKind::Storage, Code::FailedPrecondition),
            (ErrorKind::Internal, Code::Internal),
            (ErrorKind::Protocol, Code::InvalidArgument),
        ];
        for (kind, code) in cases {
            let s = status(ServiceError::new(kind, "what failed; what to do"));
            assert_eq!(s.code(), code, "{kind:?}");
            assert_eq!(s.message(), "what failed; what to do");
        }
    }

    #[test]
    fn states_go_both_ways_and_unspecified_is_refused() {
        for s in JobState::ALL {
            assert_eq!(from_state(state(s).into()).unwrap(), s);
        }
        assert!(from_state(0).is_err());
        assert!(from_state(42).is_err());
    }

    #[test]
    fn times_keep_their_milliseconds() {
        let t = Timestamp(1_700_000_123_456);
        assert_eq!(timestamp(&to_timestamp(t), "t").unwrap(), t);
        assert_eq!(millis(&to_duration(1500), "d").unwrap(), 1500);
    }
}
