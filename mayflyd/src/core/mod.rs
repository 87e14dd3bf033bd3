//! The scheduler core: sans-IO.
//!
//! This module owns every scheduling rule and every piece of job state, and
//! nothing else: no tokio, no files, no clock. Time comes in as `now`,
//! decisions go out as [`Event`]s (durable changes, written to the WAL before
//! they take effect for a client) and [`Action`]s (effects for the driver to
//! carry out), and [`Core::next_deadline`] says when the driver must call
//! [`Core::on_timer`] again. Recovery is the same [`Core::apply`] over the
//! replayed log, so live and recovered state cannot drift apart.
//!
//! The calling convention is *decide, log, apply*: a `decide_*` method looks at
//! the state and returns the events a request causes (or refuses it); the
//! driver appends them to the WAL and then calls [`Core::apply`] on each.
//! `apply` never fails on an event `decide_*` produced; on an inconsistent
//! event from a damaged log it returns an error rather than panicking.
//!
//! Invariants (checked by the property tests in `tests.rs`):
//! - at most `concurrency` jobs run at once, and at most a queue's limit in
//!   that queue;
//! - a job starts only when no job of a strictly better priority (lower
//!   number; ties broken by id, i.e. FIFO) is queued in a queue that could
//!   start it;
//! - a job reaches exactly one terminal state and never leaves it.
//!
//! Costs: submit, start and exit are `O(log n)` in the number of jobs held;
//! picking the next job is `O(queues · log n)`. Nothing on the submit path
//! scans all jobs.

mod event;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use mayfly_protocol::{
    CancelOutcome, JobId, JobInfo, JobSpec, JobState, MAX_USER_PRIORITY, MIN_USER_PRIORITY,
    QueueInfo, SchedulerInfo, StateCounts, SystemTaskInfo, Timestamp,
};

pub use self::event::{Action, Event, ExitOutcome, Signal, StopReason};
pub use self::snapshot::{CoreSnapshot, JobSnapshot};

/// Settings of the core. The defaults are what `mayflyd` uses without flags,
/// except `concurrency`, which the daemon sets to the number of CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// The global limit on running jobs (at least 1).
    pub concurrency: u32,
    /// How long a cancelled job gets between SIGTERM and SIGKILL.
    pub kill_grace_ms: u64,
    /// The driver's time slice, reported in `dump-state`.
    pub quantum_ms: u64,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            concurrency: 1,
            kill_grace_ms: 5_000,
            quantum_ms: 10,
        }
    }
}

/// Why the core refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The request itself is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The daemon is shutting down and takes no new jobs.
    #[error("the daemon is shutting down and accepts no new jobs; resubmit once it is back")]
    ShuttingDown,
    /// A named job does not exist.
    #[error("no job {0}; `mayflyctl status` lists the jobs")]
    NotFound(JobId),
    /// An event does not fit the state (only from a damaged or foreign log).
    #[error("event does not fit the state: {0}")]
    Inconsistent(String),
}

/// One job as the core holds it.
#[derive(Debug, Clone)]
struct Job {
    /// What the client submitted.
    spec: JobSpec,
    /// Current state.
    state: JobState,
    /// Times started.
    attempts: u32,
    /// Exit code of the last attempt.
    exit_code: Option<i32>,
    /// Signal that killed the last attempt.
    signal: Option<i32>,
    /// When accepted.
    submitted_at: Timestamp,
    /// When the last attempt started.
    started_at: Option<Timestamp>,
    /// When it reached its terminal state.
    finished_at: Option<Timestamp>,
    /// Latest progress text.
    progress: Option<String>,
    /// Why it ended as it did, when the exit status does not say.
    reason: Option<String>,
    /// The running attempt's pid (= process group id). Not durable.
    pid: Option<u32>,
    /// Set while a running job has been asked to stop.
    stop: Option<StopReason>,
}

/// One queue.
#[derive(Debug, Clone, Default)]
struct Queue {
    /// Its own limit; `None` means only the global one applies.
    concurrency: Option<u32>,
    /// A paused queue starts nothing.
    paused: bool,
    /// Jobs of this queue running now.
    running: u32,
    /// Queued jobs in start order: `(priority, id)`; ids grow with
    /// submission, so ties are FIFO.
    ready: BTreeSet<(u8, JobId)>,
    /// Jobs of this queue by state.
    counts: StateCounts,
}

impl Queue {
    /// True when the queue may start one more job (global limit aside).
    fn has_room(&self) -> bool {
        !self.paused && self.concurrency.is_none_or(|limit| self.running < limit)
    }
}

/// A system task's entry in the registry (for `dump-state`).
#[derive(Debug, Clone)]
struct SystemTask {
    /// Its name.
    name: String,
    /// `running`, `exited` or `failed`.
    state: &'static str,
    /// When it started.
    started_at: Timestamp,
}

/// Monotonic counters since the state began (they survive restarts because
/// they are derived from replayed events).
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    /// Jobs accepted.
    submitted: u64,
    /// Attempts started.
    started: u64,
    /// Jobs that reached a terminal state.
    finished: u64,
}

/// The scheduler core. See the module documentation.
#[derive(Debug)]
pub struct Core {
    /// Settings.
    config: CoreConfig,
    /// Every job, by id (ordered, so listings come out in submission order).
    jobs: BTreeMap<JobId, Job>,
    /// Every queue, by name. `default` always exists.
    queues: BTreeMap<String, Queue>,
    /// The id the next submitted job gets.
    next_id: u64,
    /// Jobs running now, over all queues.
    running: u32,
    /// When to SIGKILL jobs that were asked to stop.
    kill_at: BTreeSet<(Timestamp, JobId)>,
    /// Effects waiting for the driver.
    actions: VecDeque<Action>,
    /// Set once a graceful shutdown began: nothing new starts.
    shutting_down: bool,
    /// Counters for `dump-state`.
    counters: Counters,
    /// System tasks by name.
    system: HashMap<String, SystemTask>,
}

impl Core {
    /// An empty core with the given settings and the `default` queue.
    pub fn new(config: CoreConfig) -> Self {
        let mut queues = BTreeMap::new();
        queues.insert(mayfly_protocol::DEFAULT_QUEUE.to_string(), Queue::default());
        Self {
            config: CoreConfig {
                concurrency: config.concurrency.max(1),
                ..config
            },
            jobs: BTreeMap::new(),
            queues,
            next_id: 1,
            running: 0,
            kill_at: BTreeSet::new(),
            actions: VecDeque::new(),
            shutting_down: false,
            counters: Counters::default(),
            system: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    // ---------------------------------------------------------------- decide

    /// Validates a submit and returns its event (which assigns the next id).
    pub fn decide_submit(&self, now: Timestamp, spec: JobSpec) -> Result<Event, CoreError> {
        if self.shutting_down {
            return Err(CoreError::ShuttingDown);
        }
        if !(MIN_USER_PRIORITY..=MAX_USER_PRIORITY).contains(&spec.priority) {
            return Err(CoreError::BadRequest(format!(
                "priority {} is out of range: user jobs take {MIN_USER_PRIORITY}-{MAX_USER_PRIORITY} (lower runs first; 0 is reserved for system tasks)",
                spec.priority
            )));
        }
        match &spec.command {
            mayfly_protocol::Command::Argv(argv) if argv.is_empty() || argv[0].is_empty() => {
                return Err(CoreError::BadRequest(
                    "empty command: give the program to run after `--`".into(),
                ));
            }
            mayfly_protocol::Command::Shell(s) if s.trim().is_empty() => {
                return Err(CoreError::BadRequest(
                    "empty shell command: give the command string after `--`".into(),
                ));
            }
            _ => {}
        }
        if spec.queue.is_empty()
            || spec.queue.len() > 64
            || spec.queue.chars().any(char::is_control)
        {
            return Err(CoreError::BadRequest(format!(
                "invalid queue name {:?}: use 1-64 printable characters",
                spec.queue
            )));
        }
        if !spec.cwd.starts_with('/') {
            return Err(CoreError::BadRequest(format!(
                "working directory {:?} is not absolute",
                spec.cwd
            )));
        }
        Ok(Event::Submitted {
            id: JobId(self.next_id),
            at: now,
            spec,
        })
    }

    /// Decides what cancelling `id` means: the outcome to report and the
    /// event to log, if any.
    pub fn decide_cancel(&self, now: Timestamp, id: JobId) -> (CancelOutcome, Option<Event>) {
        let Some(job) = self.jobs.get(&id) else {
            return (CancelOutcome::NotFound, None);
        };
        match job.state {
            JobState::Waiting | JobState::Queued => (
                CancelOutcome::Cancelled,
                Some(Event::Cancelled { id, at: now }),
            ),
            JobState::Running if job.stop.is_some() => (CancelOutcome::Signalled, None),
            JobState::Running => (
                CancelOutcome::Signalled,
                Some(Event::StopRequested {
                    id,
                    at: now,
                    reason: StopReason::Cancel,
                    grace_ms: self.config.kill_grace_ms,
                }),
            ),
            state => (CancelOutcome::AlreadyEnded(state), None),
        }
    }

    /// Begins a graceful shutdown: from now on nothing new starts and
    /// submits are refused. Returns the events that stop every running job,
    /// SIGKILL following after `grace_ms`.
    pub fn begin_shutdown(&mut self, now: Timestamp, grace_ms: u64) -> Vec<Event> {
        self.shutting_down = true;
        self.jobs
            .iter()
            .filter(|(_, job)| {
                job.state == JobState::Running && job.stop != Some(StopReason::Shutdown)
            })
            .map(|(&id, _)| Event::StopRequested {
                id,
                at: now,
                reason: StopReason::Shutdown,
                grace_ms,
            })
            .collect()
    }

    /// The next job to start, as a `Started` event, or `None` when nothing
    /// can start (no free slot, nothing queued, or shutting down).
    ///
    /// Picks the best `(priority, id)` among the queues that have room, so a
    /// full or paused queue never blocks the others.
    pub fn next_start(&self, now: Timestamp) -> Option<Event> {
        if self.shutting_down || self.running >= self.config.concurrency {
            return None;
        }
        self.queues
            .values()
            .filter(|q| q.has_room())
            .filter_map(|q| q.ready.first())
            .min()
            .map(|&(_, id)| Event::Started { id, at: now })
    }

    /// Events that close the books after a replay: every job the log still
    /// shows running was interrupted by the crash or stop.
    pub fn recovery_events(&self, now: Timestamp) -> Vec<Event> {
        self.jobs
            .iter()
            .filter(|(_, job)| job.state == JobState::Running)
            .map(|(&id, _)| Event::Interrupted { id, at: now })
            .collect()
    }

    // ----------------------------------------------------------------- apply

    /// Applies one event to the state, queueing any actions it implies.
    pub fn apply(&mut self, event: &Event) -> Result<(), CoreError> {
        match event {
            Event::Submitted { id, at, spec } => {
                if id.0 < self.next_id {
                    return Err(CoreError::Inconsistent(format!("job {id} submitted twice")));
                }
                self.next_id = id.0 + 1;
                self.counters.submitted += 1;
                let queue = self.queues.entry(spec.queue.clone()).or_default();
                queue.ready.insert((spec.priority, *id));
                queue.counts.queued += 1;
                self.jobs.insert(
                    *id,
                    Job {
                        spec: spec.clone(),
                        state: JobState::Queued,
                        attempts: 0,
                        exit_code: None,
                        signal: None,
                        submitted_at: *at,
                        started_at: None,
                        finished_at: None,
                        progress: None,
                        reason: None,
                        pid: None,
                        stop: None,
                    },
                );
            }
            Event::Cancelled { id, at } => {
                let job = self.job_in(*id, &[JobState::Waiting, JobState::Queued])?;
                let key = (job.spec.priority, *id);
                let queue_name = job.spec.queue.clone();
                if let Some(q) = self.queues.get_mut(&queue_name) {
                    q.ready.remove(&key);
                }
                self.finish(
                    *id,
                    JobState::Cancelled,
                    *at,
                    Some("cancelled before it started".into()),
                );
            }
            Event::StopRequested {
                id,
                at,
                reason,
                grace_ms,
            } => {
                let job = self.job_in_mut(*id, &[JobState::Running])?;
                job.stop = Some(*reason);
                self.kill_at.insert((at.plus_millis(*grace_ms), *id));
                self.actions.push_back(Action::Signal {
                    id: *id,
                    signal: Signal::Term,
                });
            }
            Event::Started { id, at } => {
                let job = self.job_in_mut(*id, &[JobState::Queued])?;
                job.attempts += 1;
                job.started_at = Some(*at);
                job.exit_code = None;
                job.signal = None;
                let attempt = job.attempts;
                let key = (job.spec.priority, *id);
                let queue_name = job.spec.queue.clone();
                self.set_state(*id, JobState::Running);
                if let Some(q) = self.queues.get_mut(&queue_name) {
                    q.ready.remove(&key);
                    q.running += 1;
                }
                self.running += 1;
                self.counters.started += 1;
                self.actions.push_back(Action::Spawn { id: *id, attempt });
            }
            Event::Exited { id, at, outcome } => {
                let job = self.job_in_mut(*id, &[JobState::Running])?;
                let stop = job.stop.take();
                if let (Some(_), Some(pgid)) = (stop, job.pid.take()) {
                    self.actions.push_back(Action::SweepGroup { pgid });
                }
                let job = self.job_in_mut(*id, &[JobState::Running])?;
                let (state, reason) = match outcome {
                    ExitOutcome::Code(code) => {
                        job.exit_code = Some(*code);
                        let state = if *code == 0 {
                            JobState::Succeeded
                        } else {
                            JobState::Failed
                        };
                        (state, None)
                    }
                    ExitOutcome::Signal(sig) => {
                        job.signal = Some(*sig);
                        (JobState::Failed, None)
                    }
                    ExitOutcome::SpawnFailed(msg) => {
                        (JobState::Failed, Some(format!("could not start: {msg}")))
                    }
                };
                let (state, reason) = match stop {
                    Some(StopReason::Cancel) => (
                        JobState::Cancelled,
                        Some("cancelled while running".to_string()),
                    ),
                    Some(StopReason::Shutdown) => (
                        JobState::Interrupted,
                        Some("the daemon shut down while it ran".to_string()),
                    ),
                    None => (state, reason),
                };
                self.leave_running(*id);
                self.finish(*id, state, *at, reason);
            }
            Event::Interrupted { id, at } => {
                self.job_in(*id, &[JobState::Running])?;
                self.leave_running(*id);
                self.finish(
                    *id,
                    JobState::Interrupted,
                    *at,
                    Some("the daemon stopped or crashed while it ran".into()),
                );
            }
            Event::QueueConfigured { name, concurrency } => {
                self.queues.entry(name.clone()).or_default().concurrency = *concurrency;
            }
        }
        Ok(())
    }

    /// Bookkeeping when a job stops running: frees its slots and its timers.
    fn leave_running(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.pid = None;
        if let Some(q) = self.queues.get_mut(&job.spec.queue) {
            q.running = q.running.saturating_sub(1);
        }
        self.running = self.running.saturating_sub(1);
        self.kill_at.retain(|&(_, j)| j != id);
    }

    /// Moves a job into a terminal state.
    fn finish(&mut self, id: JobId, state: JobState, at: Timestamp, reason: Option<String>) {
        self.set_state(id, state);
        if let Some(job) = self.jobs.get_mut(&id) {
            job.finished_at = Some(at);
            if reason.is_some() {
                job.reason = reason;
            }
        }
        self.counters.finished += 1;
    }

    /// Changes a job's state, keeping its queue's counts right.
    fn set_state(&mut self, id: JobId, state: JobState) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut job.state, state);
        if let Some(q) = self.queues.get_mut(&job.spec.queue) {
            let c = q.counts.get_mut(old);
            *c = c.saturating_sub(1);
            *q.counts.get_mut(state) += 1;
        }
    }

    /// The job `id`, which must be in one of `states`.
    fn job_in(&self, id: JobId, states: &[JobState]) -> Result<&Job, CoreError> {
        match self.jobs.get(&id) {
            Some(job) if states.contains(&job.state) => Ok(job),
            Some(job) => Err(CoreError::Inconsistent(format!(
                "job {id} is {}, expected one of {states:?}",
                job.state
            ))),
            None => Err(CoreError::Inconsistent(format!("job {id} does not exist"))),
        }
    }

    /// Mutable [`Core::job_in`].
    fn job_in_mut(&mut self, id: JobId, states: &[JobState]) -> Result<&mut Job, CoreError> {
        self.job_in(id, states)?;
        self.jobs
            .get_mut(&id)
            .ok_or_else(|| CoreError::Inconsistent(format!("job {id} does not exist")))
    }

    // ------------------------------------------------------------ time, actions

    /// Fires the timers due at `now` (SIGKILL for jobs whose grace ran out).
    pub fn on_timer(&mut self, now: Timestamp) {
        while let Some(&(at, id)) = self.kill_at.first() {
            if at > now {
                break;
            }
            self.kill_at.pop_first();
            self.actions.push_back(Action::Signal {
                id,
                signal: Signal::Kill,
            });
        }
    }

    /// When [`Core::on_timer`] must next be called, if ever.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.kill_at.first().map(|&(at, _)| at)
    }

    /// The next effect for the driver to carry out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Records the pid of a job's running attempt (so signals can reach it).
    pub fn note_pid(&mut self, id: JobId, pid: u32) {
        if let Some(job) = self
            .jobs
            .get_mut(&id)
            .filter(|j| j.state == JobState::Running)
        {
            job.pid = Some(pid);
        }
    }

    /// The pid (= process group id) of a running job.
    pub fn pid(&self, id: JobId) -> Option<u32> {
        self.jobs.get(&id).and_then(|j| j.pid)
    }

    /// The spec a job was submitted with.
    pub fn spec(&self, id: JobId) -> Option<&JobSpec> {
        self.jobs.get(&id).map(|j| &j.spec)
    }

    // ---------------------------------------------------------- system tasks

    /// Registers a system task (priority 0) as running.
    pub fn system_started(&mut self, name: &str, now: Timestamp) {
        self.system.insert(
            name.to_string(),
            SystemTask {
                name: name.to_string(),
                state: "running",
                started_at: now,
            },
        );
    }

    /// Marks a system task as ended, cleanly or not.
    pub fn system_exited(&mut self, name: &str, ok: bool) {
        if let Some(task) = self.system.get_mut(name) {
            task.state = if ok { "exited" } else { "failed" };
        }
    }

    /// Takes over what is not durable from `old`, the core this one replaces
    /// after a rebuild from disk: system tasks, the shutdown flag, and the
    /// pids of jobs that run in both.
    pub fn adopt_runtime_state(&mut self, old: &Core) {
        self.system = old.system.clone();
        self.shutting_down = old.shutting_down;
        for (id, job) in &mut self.jobs {
            if job.state == JobState::Running {
                job.pid = old.pid(*id);
            }
        }
    }

    // --------------------------------------------------------------- queries

    /// True once a graceful shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// How many jobs run now.
    pub fn running_count(&self) -> u32 {
        self.running
    }

    /// How many jobs the core holds, in any state.
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// The state of job `id`.
    pub fn state_of(&self, id: JobId) -> Option<JobState> {
        self.jobs.get(&id).map(|j| j.state)
    }

    /// What clients see of job `id`.
    pub fn job_info(&self, id: JobId) -> Option<JobInfo> {
        self.jobs.get(&id).map(|job| JobInfo {
            id,
            state: job.state,
            command: job.spec.command.clone(),
            cwd: job.spec.cwd.clone(),
            queue: job.spec.queue.clone(),
            priority: job.spec.priority,
            labels: job.spec.labels.clone(),
            exit_code: job.exit_code,
            signal: job.signal,
            attempts: job.attempts,
            submitted_at: job.submitted_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            progress: job.progress.clone(),
            reason: job.reason.clone(),
            pid: job.pid,
        })
    }

    /// Every job id, in submission order.
    pub fn job_ids(&self) -> impl Iterator<Item = JobId> + '_ {
        self.jobs.keys().copied()
    }

    /// Every queue as `dump-state` shows it.
    pub fn queue_infos(&self) -> Vec<QueueInfo> {
        self.queues
            .iter()
            .map(|(name, q)| QueueInfo {
                name: name.clone(),
                concurrency: q.concurrency,
                paused: q.paused,
                counts: q.counts,
            })
            .collect()
    }

    /// The scheduler's settings and counters.
    pub fn scheduler_info(&self) -> SchedulerInfo {
        SchedulerInfo {
            concurrency: self.config.concurrency,
            quantum_ms: self.config.quantum_ms,
            next_job_id: self.next_id,
            jobs_submitted: self.counters.submitted,
            jobs_started: self.counters.started,
            jobs_finished: self.counters.finished,
            shutting_down: self.shutting_down,
        }
    }

    /// Every system task, by name.
    pub fn system_infos(&self) -> Vec<SystemTaskInfo> {
        let mut tasks: Vec<_> = self
            .system
            .values()
            .map(|t| SystemTaskInfo {
                name: t.name.clone(),
                priority: 0,
                state: t.state.to_string(),
                started_at: t.started_at,
            })
            .collect();
        tasks.sort_by(|a, b| a.name.cmp(&b.name));
        tasks
    }
}
