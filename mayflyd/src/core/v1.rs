//! Format 1 of what the daemon writes, frozen: read only, so that a state
//! dir written by an older build still loads.
//!
//! Format 1 is the write-ahead log's records and snapshots before a job's
//! spec had [`mayfly_protocol::SpecExt`] settings: its [`JobSpec`] has no
//! `ext`, and its snapshots carry a copy of every job's environment (see
//! `snapshot.rs`). The types here encode exactly as those builds wrote
//! them; [`From`] turns each into today's. Nothing writes them.

use std::collections::HashMap;
use std::sync::Arc;

use mayfly_protocol::{Command, Dependency, JobId, Timestamp};
use serde::{Deserialize, Serialize};

use super::{ExitOutcome, StopReason};

/// Format 1 of [`mayfly_protocol::JobSpec`]: the same fields, without `ext`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct JobSpec {
    /// What to run.
    pub command: Command,
    /// The working directory.
    pub cwd: String,
    /// The environment.
    pub env: Vec<(String, String)>,
    /// The queue.
    pub queue: String,
    /// Lower runs first.
    pub priority: u8,
    /// Labels, in the order given.
    pub labels: Vec<(String, String)>,
    /// Prerequisites.
    pub after: Vec<Dependency>,
    /// Not before this time.
    pub not_before: Option<Timestamp>,
    /// The timeout of an attempt.
    pub timeout_ms: Option<u64>,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// The wait before the first retry.
    pub retry_delay_ms: u64,
}

impl From<JobSpec> for mayfly_protocol::JobSpec {
    fn from(old: JobSpec) -> Self {
        mayfly_protocol::JobSpec {
            command: old.command,
            cwd: old.cwd,
            env: old.env,
            queue: old.queue,
            priority: old.priority,
            labels: old.labels,
            after: old.after,
            not_before: old.not_before,
            timeout_ms: old.timeout_ms,
            retries: old.retries,
            retry_delay_ms: old.retry_delay_ms,
            ext: Vec::new(),
        }
    }
}

/// Format 1 of [`super::Event`]: every variant format 1 had, in the same
/// order, with a format 1 spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// See [`super::Event::Submitted`].
    Submitted {
        /// The id.
        id: JobId,
        /// When.
        at: Timestamp,
        /// The spec, format 1.
        spec: JobSpec,
    },
    /// See [`super::Event::Cancelled`].
    Cancelled {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// See [`super::Event::StopRequested`].
    StopRequested {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
        /// Why.
        reason: StopReason,
        /// SIGTERM to SIGKILL.
        grace_ms: u64,
    },
    /// See [`super::Event::Started`].
    Started {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// See [`super::Event::Exited`].
    Exited {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
        /// How.
        outcome: ExitOutcome,
    },
    /// See [`super::Event::Interrupted`].
    Interrupted {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// See [`super::Event::QueueConfigured`].
    QueueConfigured {
        /// The queue.
        name: String,
        /// Its limit.
        concurrency: Option<u32>,
    },
    /// See [`super::Event::TimeReached`].
    TimeReached {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// See [`super::Event::QueuePaused`].
    QueuePaused {
        /// The queue.
        name: String,
        /// Paused or resumed.
        paused: bool,
        /// Also its running jobs.
        signal_running: bool,
    },
    /// See [`super::Event::QueueRemoved`].
    QueueRemoved {
        /// The queue.
        name: String,
    },
    /// See [`super::Event::Removed`].
    Removed {
        /// The jobs.
        ids: Vec<JobId>,
    },
    /// See [`super::Event::Edited`].
    Edited {
        /// The job.
        id: JobId,
        /// Its priority.
        priority: u8,
        /// Its queue.
        queue: String,
        /// Its labels.
        labels: Vec<(String, String)>,
    },
    /// See [`super::Event::Progress`].
    Progress {
        /// The job.
        id: JobId,
        /// The text.
        text: String,
    },
    /// See [`super::Event::Spawned`].
    Spawned {
        /// The job.
        id: JobId,
        /// The leader's pid.
        pid: u32,
        /// Its start time in ticks.
        start_ticks: u64,
    },
    /// See [`super::Event::IdsReserved`].
    IdsReserved {
        /// The lowest free id.
        next_id: u64,
    },
}

impl From<Event> for super::Event {
    fn from(old: Event) -> Self {
        use super::Event as E;
        match old {
            Event::Submitted { id, at, spec } => E::Submitted {
                id,
                at,
                spec: spec.into(),
            },
            Event::Cancelled { id, at } => E::Cancelled { id, at },
            Event::StopRequested {
                id,
                at,
                reason,
                grace_ms,
            } => E::StopRequested {
                id,
                at,
                reason,
                grace_ms,
            },
            Event::Started { id, at } => E::Started { id, at },
            Event::Exited { id, at, outcome } => E::Exited { id, at, outcome },
            Event::Interrupted { id, at } => E::Interrupted { id, at },
            Event::QueueConfigured { name, concurrency } => {
                E::QueueConfigured { name, concurrency }
            }
            Event::TimeReached { id, at } => E::TimeReached { id, at },
            Event::QueuePaused {
                name,
                paused,
                signal_running,
            } => E::QueuePaused {
                name,
                paused,
                signal_running,
            },
            Event::QueueRemoved { name } => E::QueueRemoved { name },
            Event::Removed { ids } => E::Removed { ids },
            Event::Edited {
                id,
                priority,
                queue,
                labels,
            } => E::Edited {
                id,
                priority,
                queue,
                labels,
            },
            Event::Progress { id, text } => E::Progress { id, text },
            Event::Spawned {
                id,
                pid,
                start_ticks,
            } => E::Spawned {
                id,
                pid,
                start_ticks,
            },
            Event::IdsReserved { next_id } => E::IdsReserved { next_id },
        }
    }
}

/// Format 1 of [`super::snapshot::CoreSnapshot`]: the same, without the tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct CoreSnapshot {
    /// The id the next job gets.
    pub next_id: u64,
    /// Jobs accepted.
    pub submitted: u64,
    /// Attempts started.
    pub started: u64,
    /// Jobs finished.
    pub finished: u64,
    /// Every queue: name, limit, paused.
    pub queues: Vec<(String, Option<u32>, bool)>,
    /// Every job, in id order.
    pub jobs: Vec<JobSnapshot>,
}

/// Format 1 of [`super::snapshot::JobSnapshot`]: its spec is a whole [`JobSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct JobSnapshot {
    /// Its id.
    pub id: JobId,
    /// What it runs, every field its own copy.
    pub spec: JobSpec,
    /// Its state.
    pub state: mayfly_protocol::JobState,
    /// Times started.
    pub attempts: u32,
    /// Last exit code.
    pub exit_code: Option<i32>,
    /// Last killing signal.
    pub signal: Option<i32>,
    /// When accepted.
    pub submitted_at: mayfly_protocol::Timestamp,
    /// When last started.
    pub started_at: Option<mayfly_protocol::Timestamp>,
    /// When it ended.
    pub finished_at: Option<mayfly_protocol::Timestamp>,
    /// Latest progress text.
    pub progress: Option<String>,
    /// Why it ended as it did.
    pub reason: Option<String>,
    /// A pending stop request.
    pub stop: Option<StopReason>,
    /// Its prerequisites: `(id, any_outcome)`.
    pub deps: Vec<(JobId, bool)>,
    /// Whether its not-before time had passed.
    pub time_ok: bool,
    /// When its next attempt may start.
    pub retry_at: Option<mayfly_protocol::Timestamp>,
    /// Its finished attempts.
    pub history: Vec<mayfly_protocol::Attempt>,
    /// The running attempt's process: `(pid, start ticks)`.
    pub process: Option<(u32, u64)>,
}

/// Builds the tables of format 2 from format 1's copies, by value.
#[derive(Debug, Default)]
struct ByValue {
    /// Working directories and queue names seen, with their index.
    strs: HashMap<Arc<str>, u32>,
    /// Environments seen, with their index.
    envs: HashMap<Arc<[(String, String)]>, u32>,
}

impl ByValue {
    /// The index of `value`, added if new.
    fn index<T: ?Sized + Eq + std::hash::Hash>(
        map: &mut HashMap<Arc<T>, u32>,
        value: Arc<T>,
    ) -> u32 {
        let next = u32::try_from(map.len()).unwrap_or(u32::MAX);
        *map.entry(value).or_insert(next)
    }

    /// The entries of `map` in index order.
    fn table<T: ?Sized>(map: HashMap<Arc<T>, u32>) -> Vec<Arc<T>> {
        let mut entries: Vec<(u32, Arc<T>)> = map.into_iter().map(|(v, i)| (i, v)).collect();
        entries.sort_unstable_by_key(|(i, _)| *i);
        entries.into_iter().map(|(_, v)| v).collect()
    }
}

impl From<CoreSnapshot> for super::snapshot::CoreSnapshot {
    fn from(old: CoreSnapshot) -> Self {
        let mut tables = ByValue::default();
        let jobs = old
            .jobs
            .into_iter()
            .map(|j| {
                let JobSpec {
                    command,
                    cwd,
                    env,
                    queue,
                    priority,
                    labels,
                    after,
                    not_before,
                    timeout_ms,
                    retries,
                    retry_delay_ms,
                } = j.spec;
                let spec = super::snapshot::SpecSnapshot {
                    command,
                    cwd: ByValue::index(&mut tables.strs, Arc::from(cwd)),
                    env: ByValue::index(&mut tables.envs, Arc::from(env)),
                    queue: ByValue::index(&mut tables.strs, Arc::from(queue)),
                    priority,
                    labels,
                    after,
                    not_before,
                    timeout_ms,
                    retries,
                    retry_delay_ms,
                    ext: Vec::new(),
                };
                super::snapshot::JobSnapshot {
                    id: j.id,
                    spec,
                    state: j.state,
                    attempts: j.attempts,
                    exit_code: j.exit_code,
                    signal: j.signal,
                    submitted_at: j.submitted_at,
                    started_at: j.started_at,
                    finished_at: j.finished_at,
                    progress: j.progress,
                    reason: j.reason,
                    stop: j.stop,
                    deps: j.deps,
                    time_ok: j.time_ok,
                    retry_at: j.retry_at,
                    history: j.history,
                    process: j.process,
                    remote: None,
                }
            })
            .collect();
        super::snapshot::CoreSnapshot {
            next_id: old.next_id,
            submitted: old.submitted,
            started: old.started,
            finished: old.finished,
            queues: old
                .queues
                .into_iter()
                .map(
                    |(name, concurrency, paused)| super::snapshot::QueueSnapshot {
                        name,
                        concurrency,
                        paused,
                        executor: mayfly_protocol::ExecutorSpec::Local,
                    },
                )
                .collect(),
            strs: ByValue::table(tables.strs),
            envs: ByValue::table(tables.envs),
            jobs,
            job_ext: Vec::new(),
        }
    }
}
