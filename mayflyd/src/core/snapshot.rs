//! A snapshot of the core's durable state, so that recovery replays only the
//! log written after it instead of the daemon's whole history.
//!
//! A snapshot holds exactly what replaying the log would rebuild: jobs (with
//! their specs and outcomes), queue settings, the next id and the counters.
//! Derived structures (ready sets, per-queue counts, running totals) are
//! recomputed on restore, so they cannot disagree with the jobs. Non-durable
//! things (pids, pending actions, system tasks) are not in it.
//!
//! Taking a snapshot copies the state (the journal thread encodes it while
//! the driver goes on), so the copy must be cheap in memory as well: a job's
//! spec is copied as a [`SpecSnapshot`], which shares the core's working
//! directories, queue names and environments instead of copying each job's.

use std::sync::Arc;

use mayfly_protocol::{Attempt, Command, Dependency, JobId, JobSpec, JobState, Timestamp};
use serde::{Deserialize, Serialize};

use super::job::{Job, Run};
use super::{Core, CoreConfig, CoreError, Counters, Queue, StopReason};

/// The serialized form of a [`Core`]'s durable state. Fields are only ever
/// appended; the WAL's format version guards incompatible changes.
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

/// One job in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct JobSnapshot {
    /// Its id.
    pub id: JobId,
    /// What it runs.
    pub spec: SpecSnapshot,
    /// Its state.
    pub state: JobState,
    /// Times started.
    pub attempts: u32,
    /// Last exit code.
    pub exit_code: Option<i32>,
    /// Last killing signal.
    pub signal: Option<i32>,
    /// When accepted.
    pub submitted_at: Timestamp,
    /// When last started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Latest progress text.
    pub progress: Option<String>,
    /// Why it ended as it did.
    pub reason: Option<String>,
    /// A pending stop request, if it was running and asked to stop.
    pub stop: Option<StopReason>,
    /// Its prerequisites: `(id, any_outcome)`.
    pub deps: Vec<(JobId, bool)>,
    /// Whether its not-before time had passed.
    pub time_ok: bool,
    /// When its next attempt may start, while it waits to be retried.
    pub retry_at: Option<Timestamp>,
    /// Its finished attempts.
    pub history: Vec<Attempt>,
    /// The running attempt's process: `(pid, start ticks)`.
    pub process: Option<(u32, u64)>,
}

/// A job's spec in a snapshot: [`JobSpec`]'s fields, in [`JobSpec`]'s order
/// and with types that encode like [`JobSpec`]'s (an `Arc<T>` encodes as its
/// `T`), so the bytes on disk are those of a [`JobSpec`]; but the strings the
/// core shares between jobs are shared here too, so a snapshot of 100,000
/// jobs does not hold 100,000 copies of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct SpecSnapshot {
    /// What to run.
    pub command: Command,
    /// The working directory.
    pub cwd: Arc<str>,
    /// The environment.
    pub env: Arc<[(String, String)]>,
    /// The queue.
    pub queue: Arc<str>,
    /// Lower runs first.
    pub priority: u8,
    /// Labels, in the order given.
    pub labels: Vec<(String, String)>,
    /// Prerequisites (always resolved to job ids).
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

impl SpecSnapshot {
    /// The spec as the protocol's [`JobSpec`].
    pub fn to_spec(&self) -> JobSpec {
        JobSpec {
            command: self.command.clone(),
            cwd: self.cwd.to_string(),
            env: self.env.to_vec(),
            queue: self.queue.to_string(),
            priority: self.priority,
            labels: self.labels.clone(),
            after: self.after.clone(),
            not_before: self.not_before,
            timeout_ms: self.timeout_ms,
            retries: self.retries,
            retry_delay_ms: self.retry_delay_ms,
        }
    }
}

impl Core {
    /// The durable state as a snapshot.
    pub fn snapshot(&self) -> CoreSnapshot {
        CoreSnapshot {
            next_id: self.next_id,
            submitted: self.counters.submitted,
            started: self.counters.started,
            finished: self.counters.finished,
            queues: self
                .queues
                .iter()
                .map(|(name, q)| (name.clone(), q.concurrency, q.paused))
                .collect(),
            jobs: self
                .jobs
                .iter()
                .map(|(&id, j)| {
                    let run = j.run();
                    JobSnapshot {
                        id,
                        spec: j.spec_snapshot(),
                        state: j.state,
                        attempts: j.attempts,
                        exit_code: run.exit_code,
                        signal: run.signal,
                        submitted_at: j.submitted_at,
                        started_at: run.started_at,
                        finished_at: run.finished_at,
                        progress: run.progress.clone(),
                        reason: run.reason.clone(),
                        stop: run.stop,
                        deps: j.deps().to_vec(),
                        time_ok: j.time_ok,
                        retry_at: run.retry_at,
                        history: run.history.clone(),
                        process: run.process,
                    }
                })
                .collect(),
        }
    }

    /// A core holding the state of `snapshot`, with `config`'s settings.
    pub fn from_snapshot(config: CoreConfig, snapshot: CoreSnapshot) -> Result<Self, CoreError> {
        let mut core = Core::new(config);
        core.next_id = snapshot.next_id;
        core.counters = Counters {
            submitted: snapshot.submitted,
            started: snapshot.started,
            finished: snapshot.finished,
        };
        for (name, concurrency, paused) in snapshot.queues {
            let q = core.queues.entry(name).or_default();
            q.concurrency = concurrency;
            q.paused = paused;
        }
        for js in snapshot.jobs {
            if js.id.0 >= core.next_id || core.jobs.contains_key(&js.id) {
                return Err(CoreError::Inconsistent(format!(
                    "snapshot job {} is duplicated or beyond the next id {}",
                    js.id, core.next_id
                )));
            }
            let q: &mut Queue = core.queue_mut(&js.spec.queue);
            *q.counts.get_mut(js.state) += 1;
            match js.state {
                JobState::Queued => {
                    q.ready.insert((js.spec.priority, js.id));
                }
                JobState::Running => {
                    q.running += 1;
                    core.running += 1;
                }
                _ => {}
            }
            let mut job = Job::from_snapshot(js.spec, js.deps, js.submitted_at, &mut core.interner);
            job.state = js.state;
            job.attempts = js.attempts;
            job.time_ok = js.time_ok;
            let run = Run {
                exit_code: js.exit_code,
                signal: js.signal,
                started_at: js.started_at,
                finished_at: js.finished_at,
                progress: js.progress,
                reason: js.reason,
                pid: None,
                stop: js.stop,
                retry_at: js.retry_at,
                timeout_at: None,
                history: js.history,
                process: js.process,
            };
            if run != Run::default() {
                job.run = Some(Box::new(run));
            }
            core.jobs.insert(js.id, Box::new(job));
        }
        // Rebuild what is derived from the jobs: who waits for whom, and the
        // clocks of waiting jobs.
        let waiting: Vec<JobId> = core
            .jobs
            .iter()
            .filter(|(_, j)| j.state == JobState::Waiting)
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            let deps = core
                .jobs
                .get(&id)
                .map(|j| j.deps().to_vec())
                .unwrap_or_default();
            let mut pending = 0;
            for (dep, _) in deps {
                if core.jobs.get(&dep).is_some_and(|d| !d.state.is_terminal()) {
                    pending += 1;
                    core.dependents.entry(dep).or_default().push(id);
                }
            }
            if let Some(job) = core.jobs.get_mut(&id) {
                job.pending_deps = pending;
                if let Some(t) = job.wake_time() {
                    core.wake_at.insert((t, id));
                }
            }
        }
        Ok(core)
    }
}
