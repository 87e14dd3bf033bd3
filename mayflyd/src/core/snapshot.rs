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
//! the driver goes on), so the copy must be cheap in memory as well: the
//! working directories, queue names and environments that jobs share are
//! tables in the snapshot, each value once, shared with the core, and a
//! job's [`SpecSnapshot`] names its entries by index.
//!
//! # Formats
//!
//! The snapshot file's header names the payload's format (see
//! [`crate::wal::SNAPSHOT_FORMATS`]):
//!
//! - **3** (written now): format 2, then [`CoreSnapshot::job_ext`]: the
//!   facts about jobs that format 2 has no field for ([`JobExt`]), as
//!   `(job id, facts)` pairs for the jobs that have any. New kinds of facts
//!   are new variants of [`JobExt`], so they need no new format.
//! - **2** (read only): bincode of [`CoreSnapshot`] without `job_ext`, with
//!   the tables. On disk as in memory, a value shared by many jobs is there
//!   once: 200,000 jobs with one 2 KiB environment make a snapshot of a few
//!   MB, and restoring it allocates each environment once.
//! - **1** (read only): bincode of [`super::v1::CoreSnapshot`], where each job
//!   carries its own copy of its environment, working directory and queue.
//!   With many jobs sharing a large environment such a snapshot was
//!   hundreds of times the size of format 2, and decoding it left the
//!   restarted daemon at many times the live one's memory
//!   (`bench/RESULTS.md`). A daemon that finds one converts it on load; its
//!   next snapshot is format 3.

use std::collections::HashMap;
use std::sync::Arc;

use mayfly_protocol::{Attempt, Command, Dependency, JobId, JobSpec, JobState, SpecExt, Timestamp};
use serde::{Deserialize, Serialize};

use super::job::{Job, Run};
use super::{Core, CoreConfig, CoreError, Counters, Queue, StopReason};

/// The payload format [`CoreSnapshot::encode`] writes.
pub const SNAPSHOT_FORMAT: u8 = 3;

/// The serialized form of a [`Core`]'s durable state (see the module
/// documentation: its fields but `job_ext` are format 2, `job_ext` follows
/// them in format 3). A change of its encoding is a new format.
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
    /// Every queue's settings.
    pub queues: Vec<QueueSnapshot>,
    /// The working directories and queue names jobs hold, each once; a
    /// [`SpecSnapshot`] names its entries by index.
    pub strs: Vec<Arc<str>>,
    /// The environments jobs hold, each once.
    pub envs: Vec<Arc<[(String, String)]>>,
    /// Every job, in id order.
    pub jobs: Vec<JobSnapshot>,
    /// The facts format 2 has no field for, by job (only jobs that have
    /// any), in id order. Not part of format 2's encoding: [`Self::encode`]
    /// writes it after the rest.
    #[serde(skip)]
    pub job_ext: Vec<(JobId, Vec<JobExt>)>,
}

/// A fact about a job that format 2 of the snapshot has no field for.
/// Variants are only ever appended: bincode numbers them by position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum JobExt {
    /// What its last attempt used.
    Usage(mayfly_protocol::Usage),
    /// Its finish callback is owed (see [`super::Event::CallbackDue`]).
    CallbackDue,
    /// It is frozen for a more urgent job, since then (see
    /// [`super::Event::Frozen`]).
    Frozen(Timestamp),
}

/// One queue's settings in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct QueueSnapshot {
    /// Its name.
    pub name: String,
    /// Its own limit.
    pub concurrency: Option<u32>,
    /// Whether it is paused.
    pub paused: bool,
    /// What runs its jobs.
    pub executor: mayfly_protocol::ExecutorSpec,
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
    /// What its executor calls the running attempt elsewhere.
    pub remote: Option<String>,
}

/// A job's spec in a snapshot: [`JobSpec`]'s fields, with the values jobs
/// share given as indexes into the snapshot's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct SpecSnapshot {
    /// What to run.
    pub command: Command,
    /// The working directory: an index into [`CoreSnapshot::strs`].
    pub cwd: u32,
    /// The environment: an index into [`CoreSnapshot::envs`].
    pub env: u32,
    /// The queue: an index into [`CoreSnapshot::strs`].
    pub queue: u32,
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
    /// The settings it seldom has.
    pub ext: Vec<SpecExt>,
}

impl CoreSnapshot {
    /// The payload of a snapshot file in [`SNAPSHOT_FORMAT`].
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        // The struct's own encoding skips `job_ext` (format 2); the pair
        // writes it after.
        mayfly_protocol::encode_blob(&(self, &self.job_ext)).map_err(|e| e.to_string())
    }

    /// Decodes a snapshot file's payload of `format` (as its header says).
    pub fn decode(format: u8, payload: &[u8]) -> Result<CoreSnapshot, String> {
        match format {
            SNAPSHOT_FORMAT => {
                mayfly_protocol::decode_blob::<(CoreSnapshot, Vec<(JobId, Vec<JobExt>)>)>(payload)
                    .map(|(snapshot, job_ext)| CoreSnapshot {
                        job_ext,
                        ..snapshot
                    })
                    .map_err(|e| e.to_string())
            }
            2 => mayfly_protocol::decode_blob(payload).map_err(|e| e.to_string()),
            1 => mayfly_protocol::decode_blob::<super::v1::CoreSnapshot>(payload)
                .map(CoreSnapshot::from)
                .map_err(|e| e.to_string()),
            other => Err(format!(
                "snapshot format {other} is not one this build reads"
            )),
        }
    }

    /// Table entry `index` of `table`, or why the snapshot is inconsistent.
    fn entry<T: ?Sized>(table: &[Arc<T>], index: u32, what: &str) -> Result<Arc<T>, CoreError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| table.get(i))
            .cloned()
            .ok_or_else(|| {
                CoreError::Inconsistent(format!("snapshot names {what} {index} of {}", table.len()))
            })
    }

    /// A job's spec as the protocol's [`JobSpec`], its shared values looked
    /// up in the tables.
    pub fn spec_of(&self, spec: &SpecSnapshot) -> Result<JobSpec, CoreError> {
        Ok(JobSpec {
            command: spec.command.clone(),
            cwd: Self::entry(&self.strs, spec.cwd, "directory")?.to_string(),
            env: Self::entry(&self.envs, spec.env, "environment")?.to_vec(),
            queue: Self::entry(&self.strs, spec.queue, "queue")?.to_string(),
            priority: spec.priority,
            labels: spec.labels.clone(),
            after: spec.after.clone(),
            not_before: spec.not_before,
            timeout_ms: spec.timeout_ms,
            retries: spec.retries,
            retry_delay_ms: spec.retry_delay_ms,
            ext: spec.ext.clone(),
        })
    }
}

/// Builds a snapshot's tables: each distinct shared value once, found by
/// the address of the core's shared copy (the interner keeps one copy per
/// value, so equal values share an address).
#[derive(Debug, Default)]
struct Tables {
    /// Working directories and queue names, in first-use order.
    strs: Vec<Arc<str>>,
    /// Where each of `strs` is, by address.
    str_index: HashMap<usize, u32>,
    /// Environments, in first-use order.
    envs: Vec<Arc<[(String, String)]>>,
    /// Where each of `envs` is, by address.
    env_index: HashMap<usize, u32>,
}

impl Tables {
    /// The index of `value` in `table`, added if new.
    fn index<T: ?Sized>(
        table: &mut Vec<Arc<T>>,
        index: &mut HashMap<usize, u32>,
        value: &Arc<T>,
    ) -> u32 {
        let address = Arc::as_ptr(value).cast::<u8>() as usize;
        *index.entry(address).or_insert_with(|| {
            table.push(value.clone());
            u32::try_from(table.len() - 1).unwrap_or(u32::MAX)
        })
    }

    /// The index of a working directory or queue name.
    fn str(&mut self, value: &Arc<str>) -> u32 {
        Self::index(&mut self.strs, &mut self.str_index, value)
    }

    /// The index of an environment.
    fn env(&mut self, value: &Arc<[(String, String)]>) -> u32 {
        Self::index(&mut self.envs, &mut self.env_index, value)
    }
}

impl Core {
    /// The durable state as a snapshot.
    pub fn snapshot(&self) -> CoreSnapshot {
        let mut tables = Tables::default();
        let job_ext = self
            .jobs
            .iter()
            .filter_map(|(&id, j)| {
                let mut ext: Vec<JobExt> = j.run().usage.map(JobExt::Usage).into_iter().collect();
                if self.callbacks_due.contains(&id) {
                    ext.push(JobExt::CallbackDue);
                }
                if let Some(since) = j.run().frozen_at {
                    ext.push(JobExt::Frozen(since));
                }
                (!ext.is_empty()).then_some((id, ext))
            })
            .collect();
        let jobs = self
            .jobs
            .iter()
            .map(|(&id, j)| {
                let run = j.run();
                JobSnapshot {
                    id,
                    spec: j.spec_snapshot(
                        tables.str(&j.cwd),
                        tables.env(&j.env),
                        tables.str(&j.queue),
                    ),
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
                    remote: run.remote.clone(),
                }
            })
            .collect();
        CoreSnapshot {
            next_id: self.next_id,
            submitted: self.counters.submitted,
            started: self.counters.started,
            finished: self.counters.finished,
            queues: self
                .queues
                .iter()
                .map(|(name, q)| QueueSnapshot {
                    name: name.clone(),
                    concurrency: q.concurrency,
                    paused: q.paused,
                    executor: q.executor.clone(),
                })
                .collect(),
            strs: tables.strs,
            envs: tables.envs,
            jobs,
            job_ext,
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
        for queue in snapshot.queues {
            let q = core.queues.entry(queue.name).or_default();
            q.concurrency = queue.concurrency;
            q.paused = queue.paused;
            q.executor = queue.executor;
        }
        // Each shared value is interned once, then handed to its jobs.
        let strs: Vec<Arc<str>> = snapshot.strs.iter().map(|s| core.interner.str(s)).collect();
        let envs: Vec<Arc<[(String, String)]>> =
            snapshot.envs.iter().map(|e| core.interner.env(e)).collect();
        drop(snapshot.strs);
        drop(snapshot.envs);
        for js in snapshot.jobs {
            let queue = CoreSnapshot::entry(&strs, js.spec.queue, "queue")?;
            let cwd = CoreSnapshot::entry(&strs, js.spec.cwd, "directory")?;
            let env = CoreSnapshot::entry(&envs, js.spec.env, "environment")?;
            if js.id.0 >= core.next_id || core.jobs.contains_key(&js.id) {
                return Err(CoreError::Inconsistent(format!(
                    "snapshot job {} is duplicated or beyond the next id {}",
                    js.id, core.next_id
                )));
            }
            let q: &mut Queue = core.queue_mut(&queue);
            *q.counts.get_mut(js.state) += 1;
            match js.state {
                JobState::Queued => {
                    q.ready.insert((js.spec.priority, js.id));
                }
                JobState::Running => {
                    q.running += 1;
                    let local = q.executor.is_local();
                    core.running += 1;
                    if local {
                        core.running_local += 1;
                    }
                }
                _ => {}
            }
            let mut job = Job::from_snapshot(js.spec, cwd, env, queue, js.deps, js.submitted_at);
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
                stop: js.stop,
                retry_at: js.retry_at,
                timeout_at: None,
                history: js.history,
                process: js.process,
                remote: js.remote,
                usage: None,
                frozen_at: None,
            };
            if run != Run::default() {
                job.run = Some(Box::new(run));
            }
            core.jobs.insert(js.id, Box::new(job));
        }
        for (id, facts) in snapshot.job_ext {
            let Some(job) = core.jobs.get_mut(&id) else {
                return Err(CoreError::Inconsistent(format!(
                    "snapshot has facts about job {id}, which it does not hold"
                )));
            };
            for fact in facts {
                match fact {
                    JobExt::Usage(usage) => job.run_mut().usage = Some(usage),
                    JobExt::CallbackDue => {
                        core.callbacks_due.insert(id);
                    }
                    JobExt::Frozen(since) => job.run_mut().frozen_at = Some(since),
                }
            }
        }
        core.rebuild_preemption();
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
