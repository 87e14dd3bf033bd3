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
mod job;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use mayfly_protocol::{
    Attempt, CancelOutcome, DepRef, JobId, JobInfo, JobInfoRef, JobSpec, JobState,
    MAX_USER_PRIORITY, MIN_USER_PRIORITY, QueueInfo, SchedulerInfo, StateCounts, SystemTaskInfo,
    Timestamp,
};

/// The longest wait between two attempts of a retried job: the backoff
/// doubles from `--retry-delay` up to this.
pub const RETRY_DELAY_CAP_MS: u64 = 3_600_000;

pub use self::event::{Action, Event, ExitOutcome, Signal, StopReason};
use self::job::{Interner, Job};
pub use self::snapshot::{CoreSnapshot, JobSnapshot, SNAPSHOT_FORMAT, SpecSnapshot, v1};

/// The core's view of the daemon's settings, built by
/// [`crate::settings::Settings::core_config`].
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
    /// The daemon's defaults, read from [`crate::settings::Settings`], where
    /// each is written once (`concurrency` is the number of CPUs).
    fn default() -> Self {
        crate::settings::Settings::default().core_config()
    }
}

/// Checks a queue name: 1–64 printable characters.
fn validate_queue_name(name: &str) -> Result<(), CoreError> {
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(CoreError::BadRequest(format!(
            "invalid queue name {}: use 1-64 printable characters",
            excerpt(name)
        )));
    }
    Ok(())
}

/// How much of a client's text an error message or a log line quotes.
const EXCERPT_CHARS: usize = 64;

/// `text` quoted for an error message or a log line: whole if short, else
/// its start and its length, so a 10 MB name never makes a 10 MB message.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// `text` cut to at most `max_chars` characters, the cut marked with the
/// whole text's length: what the activity log shows of a command, so a
/// 10 MB command line never makes a 10 MB log line.
pub fn shorten(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => {
            std::borrow::Cow::Owned(format!("{}… ({} bytes)", &text[..cut], text.len()))
        }
    }
}

/// Checks label keys: non-empty and printable (a newline in a key would
/// break every table and every `key=value` listing).
fn validate_labels(labels: &[(String, String)]) -> Result<(), CoreError> {
    for (key, _) in labels {
        if key.is_empty() || key.chars().any(char::is_control) {
            return Err(CoreError::BadRequest(format!(
                "label key {} is not valid: use printable characters, at least one",
                excerpt(key)
            )));
        }
    }
    Ok(())
}

/// Refuses a list of job ids that names a job more than once: `restart 1 1`
/// would make two copies, and a status request repeating one id a million
/// times would answer with a million copies of the job.
pub fn refuse_duplicates(ids: &[JobId]) -> Result<(), CoreError> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    match ids.iter().find(|id| !seen.insert(**id)) {
        Some(id) => Err(CoreError::BadRequest(format!(
            "job {id} is named more than once; name each job once"
        ))),
        None => Ok(()),
    }
}

/// Why a job ended `timed_out`, for its `reason`.
fn timed_out_reason(timeout_ms: Option<u64>) -> String {
    let ms = timeout_ms.unwrap_or_default();
    format!(
        "ran past its {} timeout",
        humantime::format_duration(std::time::Duration::from_millis(ms))
    )
}

/// The refusal of a priority outside the user range.
fn priority_error(priority: u8) -> CoreError {
    CoreError::BadRequest(format!(
        "priority {priority} is out of range: user jobs take {MIN_USER_PRIORITY}-{MAX_USER_PRIORITY} (lower runs first; 0 is reserved for system tasks)"
    ))
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
    /// Boxed: filled in id order, the map's nodes stay about half full, and
    /// an empty slot should cost a pointer, not a job (see `job.rs`).
    jobs: BTreeMap<JobId, Box<Job>>,
    /// The one copy of each working directory, queue name and environment
    /// that jobs share.
    interner: Interner,
    /// Every queue, by name. `default` always exists.
    queues: BTreeMap<String, Queue>,
    /// The id the next submitted job gets.
    next_id: u64,
    /// Jobs running now, over all queues.
    running: u32,
    /// When to SIGKILL jobs that were asked to stop.
    kill_at: BTreeSet<(Timestamp, JobId)>,
    /// When waiting jobs' time comes (not-before, retry backoff).
    wake_at: BTreeSet<(Timestamp, JobId)>,
    /// When running attempts time out.
    timeout_at: BTreeSet<(Timestamp, JobId)>,
    /// For each unfinished job, the unfinished jobs that wait for it.
    dependents: HashMap<JobId, Vec<JobId>>,
    /// Effects waiting for the driver.
    actions: VecDeque<Action>,
    /// State changes since the driver last looked: `(job, new state)`, in
    /// order, including those one event causes in other jobs (a dependency
    /// ending queues or skips its dependents).
    transitions: Vec<(JobId, JobState)>,
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
            interner: Interner::default(),
            queues,
            next_id: 1,
            running: 0,
            kill_at: BTreeSet::new(),
            wake_at: BTreeSet::new(),
            timeout_at: BTreeSet::new(),
            dependents: HashMap::new(),
            actions: VecDeque::new(),
            transitions: Vec::new(),
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
        let mut events = self.decide_batch(now, vec![spec])?;
        events
            .pop()
            .ok_or_else(|| CoreError::BadRequest("nothing to submit".into()))
    }

    /// Validates a batch submit and returns one `Submitted` event per job,
    /// with consecutive ids. A dependency on `BatchLine(k)` names the job on
    /// line `k` (from 1) of the batch, which must come before it.
    pub fn decide_batch(
        &self,
        now: Timestamp,
        specs: Vec<JobSpec>,
    ) -> Result<Vec<Event>, CoreError> {
        if self.shutting_down {
            return Err(CoreError::ShuttingDown);
        }
        if specs.is_empty() {
            return Err(CoreError::BadRequest(
                "the batch is empty: give at least one command".into(),
            ));
        }
        let first = self.next_id;
        let count = specs.len();
        let mut events = Vec::with_capacity(count);
        for (index, mut spec) in specs.into_iter().enumerate() {
            let line = index + 1;
            let at_line = |msg: String| CoreError::BadRequest(format!("line {line}: {msg}"));
            let batch = count > 1;
            self.validate_spec(&spec).map_err(|e| match e {
                CoreError::BadRequest(m) if batch => at_line(m),
                other => other,
            })?;
            for dep in &mut spec.after {
                let id = match dep.on {
                    DepRef::Job(id) => {
                        if !self.jobs.contains_key(&id)
                            && !(first..first + index as u64).contains(&id.0)
                        {
                            let msg = format!(
                                "no job {id} to wait for; `mayflyctl status` lists the jobs"
                            );
                            return Err(if batch {
                                at_line(msg)
                            } else {
                                CoreError::BadRequest(msg)
                            });
                        }
                        id
                    }
                    DepRef::BatchLine(k) if k >= 1 && (k as usize) < line => {
                        JobId(first + u64::from(k) - 1)
                    }
                    DepRef::BatchLine(k) => {
                        return Err(at_line(format!(
                            "line {k} is not an earlier line of this batch; a job can only wait for jobs before it (no cycles)"
                        )));
                    }
                };
                dep.on = DepRef::Job(id);
            }
            events.push(Event::Submitted {
                id: JobId(first + index as u64),
                at: now,
                spec,
            });
        }
        Ok(events)
    }

    /// Checks the fields of one spec.
    fn validate_spec(&self, spec: &JobSpec) -> Result<(), CoreError> {
        if !(MIN_USER_PRIORITY..=MAX_USER_PRIORITY).contains(&spec.priority) {
            return Err(priority_error(spec.priority));
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
        match &spec.command {
            mayfly_protocol::Command::Argv(argv) => {
                if let Some(n) = argv.iter().position(|word| word.contains('\0')) {
                    return Err(CoreError::BadRequest(format!(
                        "word {} of the command contains a NUL byte, which no program can be given",
                        n + 1
                    )));
                }
            }
            mayfly_protocol::Command::Shell(line) if line.contains('\0') => {
                return Err(CoreError::BadRequest(
                    "the shell command contains a NUL byte, which sh cannot be given".into(),
                ));
            }
            mayfly_protocol::Command::Shell(_) => {}
        }
        validate_queue_name(&spec.queue)?;
        if !spec.cwd.starts_with('/') || spec.cwd.contains('\0') {
            return Err(CoreError::BadRequest(format!(
                "working directory {} is not an absolute path",
                excerpt(&spec.cwd)
            )));
        }
        for (key, value) in &spec.env {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(CoreError::BadRequest(format!(
                    "environment variable name {} is not valid: it must be non-empty, without '=' or NUL",
                    excerpt(key)
                )));
            }
            if value.contains('\0') {
                return Err(CoreError::BadRequest(format!(
                    "environment variable {} has a NUL byte in its value, which no program can be given",
                    excerpt(key)
                )));
            }
        }
        validate_labels(&spec.labels)?;
        if spec.timeout_ms == Some(0) {
            return Err(CoreError::BadRequest(
                "a timeout of 0 would stop the job at once; give a positive duration".into(),
            ));
        }
        Ok(())
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
            JobState::Running if job.run().stop.is_some() => (CancelOutcome::Signalled, None),
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

    /// Decides `queue add` (`create`) or `queue set`.
    pub fn decide_queue_set(
        &self,
        name: &str,
        concurrency: Option<u32>,
        create: bool,
    ) -> Result<Event, CoreError> {
        validate_queue_name(name)?;
        if concurrency == Some(0) {
            return Err(CoreError::BadRequest(
                "a concurrency of 0 would never run anything; pause the queue instead".into(),
            ));
        }
        match (create, self.queues.contains_key(name)) {
            (true, true) => Err(CoreError::BadRequest(format!(
                "queue {name:?} already exists; change its limit with `mayflyctl queue set {name} --concurrency N`"
            ))),
            (false, false) => Err(CoreError::BadRequest(format!(
                "no queue {name:?}; create it with `mayflyctl queue add {name}`"
            ))),
            _ => Ok(Event::QueueConfigured {
                name: name.to_string(),
                concurrency,
            }),
        }
    }

    /// Decides `queue rm`: only an existing queue other than `default` that
    /// holds no unfinished job.
    pub fn decide_queue_remove(&self, name: &str) -> Result<Event, CoreError> {
        if name == mayfly_protocol::DEFAULT_QUEUE {
            return Err(CoreError::BadRequest(
                "the default queue always exists and cannot be removed".into(),
            ));
        }
        let Some(q) = self.queues.get(name) else {
            return Err(CoreError::BadRequest(format!(
                "no queue {}; `mayflyctl queue list` shows them",
                excerpt(name)
            )));
        };
        let unfinished = q.counts.waiting + q.counts.queued + q.counts.running;
        if unfinished > 0 {
            return Err(CoreError::BadRequest(format!(
                "queue {name:?} still holds {unfinished} unfinished jobs; cancel them or wait for them first"
            )));
        }
        Ok(Event::QueueRemoved {
            name: name.to_string(),
        })
    }

    /// Decides `pause`/`resume` of `queues` (all when empty).
    pub fn decide_pause(
        &self,
        queues: &[String],
        paused: bool,
        running: bool,
    ) -> Result<Vec<Event>, CoreError> {
        if let Some(missing) = queues.iter().find(|q| !self.queues.contains_key(*q)) {
            return Err(CoreError::BadRequest(format!(
                "no queue {}; `mayflyctl queue list` shows them",
                excerpt(missing)
            )));
        }
        let names: Vec<String> = if queues.is_empty() {
            self.queues.keys().cloned().collect()
        } else {
            queues.to_vec()
        };
        Ok(names
            .into_iter()
            .map(|name| Event::QueuePaused {
                name,
                paused,
                signal_running: running,
            })
            .collect())
    }

    /// Decides `restart`: each listed job must have finished; its copy gets
    /// a new id (and no dependencies or delay: those were about the original).
    pub fn decide_restart(&self, now: Timestamp, ids: &[JobId]) -> Result<Vec<Event>, CoreError> {
        refuse_duplicates(ids)?;
        let mut specs = Vec::with_capacity(ids.len());
        for id in ids {
            let job = self.jobs.get(id).ok_or(CoreError::NotFound(*id))?;
            if !job.state.is_terminal() {
                return Err(CoreError::BadRequest(format!(
                    "job {id} is {}; only finished jobs can be restarted (cancel it first)",
                    job.state
                )));
            }
            let mut spec = job.spec();
            spec.after.clear();
            spec.not_before = None;
            specs.push(spec);
        }
        self.decide_batch(now, specs)
    }

    /// Decides `clean`: the finished jobs in `states` (all terminal states
    /// when empty) that finished at least `older_than_ms` ago.
    pub fn decide_clean(
        &self,
        now: Timestamp,
        states: &[JobState],
        older_than_ms: Option<u64>,
    ) -> Result<Option<Event>, CoreError> {
        if let Some(bad) = states.iter().find(|s| !s.is_terminal()) {
            return Err(CoreError::BadRequest(format!(
                "{bad} jobs have not finished; clean takes finished states (succeeded, failed, cancelled, timed_out, skipped, interrupted)"
            )));
        }
        let ids: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.state.is_terminal())
            .filter(|(_, j)| states.is_empty() || states.contains(&j.state))
            .filter(|(_, j)| {
                older_than_ms.is_none_or(|age| {
                    j.run()
                        .finished_at
                        .is_some_and(|t| now.millis_since(t) >= age)
                })
            })
            .map(|(id, _)| *id)
            .collect();
        Ok((!ids.is_empty()).then_some(Event::Removed { ids }))
    }

    /// Decides `edit` of a job that has not started.
    pub fn decide_edit(
        &self,
        id: JobId,
        priority: Option<u8>,
        queue: Option<String>,
        labels: Option<Vec<(String, String)>>,
    ) -> Result<Event, CoreError> {
        let job = self.jobs.get(&id).ok_or(CoreError::NotFound(id))?;
        if !matches!(job.state, JobState::Waiting | JobState::Queued) {
            return Err(CoreError::BadRequest(format!(
                "job {id} is {}; only jobs that have not started can be edited",
                job.state
            )));
        }
        let priority = priority.unwrap_or(job.priority);
        let queue = queue.unwrap_or_else(|| job.queue.to_string());
        if !(MIN_USER_PRIORITY..=MAX_USER_PRIORITY).contains(&priority) {
            return Err(priority_error(priority));
        }
        validate_queue_name(&queue)?;
        if let Some(labels) = &labels {
            validate_labels(labels)?;
        }
        Ok(Event::Edited {
            id,
            priority,
            queue,
            labels: labels.unwrap_or_else(|| job.options().labels.clone()),
        })
    }

    /// Decides a progress report from a job.
    pub fn decide_progress(&self, id: JobId, text: String) -> Result<Event, CoreError> {
        let job = self.jobs.get(&id).ok_or(CoreError::NotFound(id))?;
        if job.state.is_terminal() {
            return Err(CoreError::BadRequest(format!(
                "job {id} has already ended ({})",
                job.state
            )));
        }
        let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        Ok(Event::Progress { id, text })
    }

    /// Begins a graceful shutdown: from now on nothing new starts and
    /// submits are refused. Returns the events that stop every running job,
    /// SIGKILL following after `grace_ms`.
    pub fn begin_shutdown(&mut self, now: Timestamp, grace_ms: u64) -> Vec<Event> {
        self.shutting_down = true;
        self.jobs
            .iter()
            .filter(|(_, job)| {
                job.state == JobState::Running && job.run().stop != Some(StopReason::Shutdown)
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

    /// Up to `n` queued jobs, in the order they would start if every queue
    /// had room (paused queues left out, nothing while shutting down): the
    /// jobs worth getting ready ahead of their start. A guess, not a
    /// promise: limits, new submits and cancels may change the order.
    pub fn upcoming(&self, n: usize) -> Vec<JobId> {
        if self.shutting_down {
            return Vec::new();
        }
        let mut next: Vec<(u8, JobId)> = self
            .queues
            .values()
            .filter(|q| !q.paused)
            .flat_map(|q| q.ready.iter().take(n).copied())
            .collect();
        next.sort_unstable();
        next.truncate(n);
        next.into_iter().map(|(_, id)| id).collect()
    }

    /// The processes the log says are running, `(job, pid, start ticks)`:
    /// after a crash, what the previous daemon left behind.
    pub fn logged_processes(&self) -> Vec<(JobId, u32, u64)> {
        self.jobs
            .iter()
            .filter(|(_, j)| j.state == JobState::Running)
            .filter_map(|(id, j)| j.run().process.map(|(pid, start)| (*id, pid, start)))
            .collect()
    }

    /// The event that keeps ids below `seen + 1` from being handed out, if
    /// the log does not already.
    pub fn reserve_ids_through(&self, seen: u64) -> Option<Event> {
        (seen >= self.next_id).then_some(Event::IdsReserved { next_id: seen + 1 })
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
            Event::Submitted { id, at, spec } => self.apply_submitted(*id, *at, spec)?,
            Event::Cancelled { id, at } => {
                self.job_in(*id, &[JobState::Waiting, JobState::Queued])?;
                self.leave_waiting(*id);
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
                let run = self.job_in_mut(*id, &[JobState::Running])?.run_mut();
                run.stop = Some(*reason);
                if let Some(t) = run.timeout_at.take() {
                    self.timeout_at.remove(&(t, *id));
                }
                self.kill_at.insert((at.plus_millis(*grace_ms), *id));
                self.actions.push_back(Action::Signal {
                    id: *id,
                    signal: Signal::Term,
                });
                // A job frozen by `pause --running` would sit on SIGTERM
                // until the grace ran out: thaw it so it can act on it.
                self.actions.push_back(Action::Signal {
                    id: *id,
                    signal: Signal::Cont,
                });
            }
            Event::Started { id, at } => {
                let job = self.job_in_mut(*id, &[JobState::Queued])?;
                job.attempts += 1;
                let attempt = job.attempts;
                let key = (job.priority, *id);
                let queue_name = job.queue.clone();
                let timeout_at = job.options().timeout_ms.map(|ms| at.plus_millis(ms));
                let run = job.run_mut();
                run.started_at = Some(*at);
                run.exit_code = None;
                run.signal = None;
                run.stop = None;
                run.timeout_at = timeout_at;
                if let Some(t) = timeout_at {
                    self.timeout_at.insert((t, *id));
                }
                self.set_state(*id, JobState::Running);
                if let Some(q) = self.queues.get_mut(&*queue_name) {
                    q.ready.remove(&key);
                    q.running += 1;
                }
                self.running += 1;
                self.counters.started += 1;
                self.actions.push_back(Action::Spawn { id: *id, attempt });
            }
            Event::Exited { id, at, outcome } => self.apply_exited(*id, *at, outcome)?,
            Event::Interrupted { id, at } => self.apply_interrupted(*id, *at)?,
            Event::QueueConfigured { name, concurrency } => {
                self.queues.entry(name.clone()).or_default().concurrency = *concurrency;
            }
            Event::TimeReached { id, .. } => {
                let job = self.job_in_mut(*id, &[JobState::Waiting])?;
                let wake = job.wake_time();
                if job.run.as_mut().and_then(|r| r.retry_at.take()).is_none() {
                    job.time_ok = true;
                }
                if let Some(t) = wake {
                    self.wake_at.remove(&(t, *id));
                }
                self.maybe_release(*id);
            }
            Event::QueuePaused {
                name,
                paused,
                signal_running,
            } => {
                let queue = self.queues.entry(name.clone()).or_default();
                queue.paused = *paused;
                if *signal_running {
                    let signal = if *paused { Signal::Stop } else { Signal::Cont };
                    let running: Vec<JobId> = self
                        .jobs
                        .iter()
                        .filter(|(_, j)| j.state == JobState::Running && *j.queue == **name)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in running {
                        self.actions.push_back(Action::Signal { id, signal });
                    }
                }
            }
            Event::QueueRemoved { name } => {
                if name == mayfly_protocol::DEFAULT_QUEUE {
                    return Err(CoreError::Inconsistent(
                        "the default queue cannot be removed".into(),
                    ));
                }
                self.queues.remove(name);
            }
            Event::Removed { ids } => {
                for id in ids {
                    let Some(job) = self.jobs.get(id) else {
                        continue;
                    };
                    if !job.state.is_terminal() {
                        return Err(CoreError::Inconsistent(format!(
                            "job {id} is {} and cannot be removed",
                            job.state
                        )));
                    }
                    if let Some(job) = self.jobs.remove(id)
                        && let Some(q) = self.queues.get_mut(&*job.queue)
                    {
                        let c = q.counts.get_mut(job.state);
                        *c = c.saturating_sub(1);
                    }
                    self.actions.push_back(Action::RemoveOutput { id: *id });
                }
                // Directories and environments only forgotten jobs used.
                self.interner.purge();
            }
            Event::Edited {
                id,
                priority,
                queue,
                labels,
            } => {
                let job = self.job_in(*id, &[JobState::Waiting, JobState::Queued])?;
                let state = job.state;
                let old_key = (job.priority, *id);
                let old_queue = job.queue.clone();
                if let Some(q) = self.queues.get_mut(&*old_queue) {
                    q.ready.remove(&old_key);
                    let c = q.counts.get_mut(state);
                    *c = c.saturating_sub(1);
                }
                let q = self.queue_mut(queue);
                *q.counts.get_mut(state) += 1;
                if state == JobState::Queued {
                    q.ready.insert((*priority, *id));
                }
                let queue = self.interner.str(queue);
                if let Some(job) = self.jobs.get_mut(id) {
                    job.priority = *priority;
                    job.queue = queue;
                    job.options_mut().labels.clone_from(labels);
                    job.compact_options();
                }
            }
            Event::Progress { id, text } => {
                if let Some(job) = self.jobs.get_mut(id) {
                    job.run_mut().progress = Some(text.clone());
                }
            }
            Event::Spawned {
                id,
                pid,
                start_ticks,
            } => {
                if let Some(job) = self
                    .jobs
                    .get_mut(id)
                    .filter(|j| j.state == JobState::Running)
                {
                    let run = job.run_mut();
                    run.pid = Some(*pid);
                    run.process = Some((*pid, *start_ticks));
                }
            }
            Event::IdsReserved { next_id } => {
                self.next_id = self.next_id.max(*next_id);
            }
        }
        Ok(())
    }

    /// Applies `Submitted`: the job waits, queues, or (a prerequisite has
    /// already failed) is skipped at once.
    fn apply_submitted(
        &mut self,
        id: JobId,
        at: Timestamp,
        spec: &JobSpec,
    ) -> Result<(), CoreError> {
        if id.0 < self.next_id {
            return Err(CoreError::Inconsistent(format!("job {id} submitted twice")));
        }
        self.next_id = id.0 + 1;
        self.counters.submitted += 1;
        let mut deps = Vec::with_capacity(spec.after.len());
        for dep in &spec.after {
            match dep.on {
                DepRef::Job(dep_id) => deps.push((dep_id, dep.any_outcome)),
                DepRef::BatchLine(_) => {
                    return Err(CoreError::Inconsistent(format!(
                        "job {id} names an unresolved batch line"
                    )));
                }
            }
        }
        let mut pending = 0u32;
        let mut doomed = None;
        for &(dep_id, any) in &deps {
            match self.jobs.get(&dep_id).map(|j| j.state) {
                Some(s) if !s.is_terminal() => {
                    pending += 1;
                    self.dependents.entry(dep_id).or_default().push(id);
                }
                Some(s) if !any && s != JobState::Succeeded => doomed = Some((dep_id, s)),
                // Finished as required, or forgotten by `clean` after it ended.
                _ => {}
            }
        }
        let mut job = Job::new(spec, deps, at, &mut self.interner);
        job.pending_deps = pending;
        let time_ok = job.time_ok;
        self.queue_mut(&spec.queue).counts.waiting += 1;
        // A new job's first state is told once: if it queues (or is
        // skipped) at once, it was never seen waiting, and only that
        // transition is reported (see the end of this function).
        let first_transition = self.transitions.len();
        self.transitions.push((id, JobState::Waiting));
        self.jobs.insert(id, Box::new(job));
        if let Some((dep_id, state)) = doomed {
            self.leave_waiting(id);
            self.finish(
                id,
                JobState::Skipped,
                at,
                Some(format!("job {dep_id} it depends on ended {state}")),
            );
        } else {
            if !time_ok && let Some(t) = spec.not_before {
                self.wake_at.insert((t, id));
            }
            self.maybe_release(id);
        }
        if self
            .jobs
            .get(&id)
            .is_some_and(|j| j.state != JobState::Waiting)
        {
            self.transitions.remove(first_transition);
        }
        Ok(())
    }

    /// Applies `Interrupted`: the daemon stopped or crashed while the job
    /// ran. A stop that was asked for and logged before the crash still
    /// decides the outcome — an acknowledged cancel ends the job
    /// `cancelled` and is never undone by a retry, a timeout ends it
    /// `timed_out` (retried like any timeout) — so a crash cannot make the
    /// daemon forget what it told a client. Otherwise the attempt counts as
    /// failed by the crash: retried at once if it has retries left, else
    /// `interrupted`.
    fn apply_interrupted(&mut self, id: JobId, at: Timestamp) -> Result<(), CoreError> {
        let job = self.job_in_mut(id, &[JobState::Running])?;
        let timeout_ms = job.options().timeout_ms;
        let stop = job.run_mut().stop.take();
        self.end_attempt(id, at);
        self.leave_running(id);
        match stop {
            Some(StopReason::Cancel) => self.finish(
                id,
                JobState::Cancelled,
                at,
                Some("cancelled while running (the daemon stopped before the job exited)".into()),
            ),
            Some(StopReason::Timeout) => {
                let reason = timed_out_reason(timeout_ms);
                if self.retry(id, at, self.backoff_ms(id)) {
                    if let Some(job) = self.jobs.get_mut(&id) {
                        job.run_mut().reason = Some(reason);
                    }
                } else {
                    self.finish(id, JobState::TimedOut, at, Some(reason));
                }
            }
            Some(StopReason::Shutdown) | None => {
                if !self.retry(id, at, 0) {
                    self.finish(
                        id,
                        JobState::Interrupted,
                        at,
                        Some("the daemon stopped or crashed while it ran".into()),
                    );
                }
            }
        }
        Ok(())
    }

    /// Applies `Exited`: the attempt ends; the job is retried or finishes.
    fn apply_exited(
        &mut self,
        id: JobId,
        at: Timestamp,
        outcome: &ExitOutcome,
    ) -> Result<(), CoreError> {
        let job = self.job_in_mut(id, &[JobState::Running])?;
        let timeout_ms = job.options().timeout_ms;
        let run = job.run_mut();
        let stop = run.stop.take();
        if let (Some(_), Some(pgid)) = (stop, run.pid) {
            self.actions.push_back(Action::SweepGroup { pgid });
        }
        let run = self.job_in_mut(id, &[JobState::Running])?.run_mut();
        let (state, reason) = match outcome {
            ExitOutcome::Code(code) => {
                run.exit_code = Some(*code);
                let state = if *code == 0 {
                    JobState::Succeeded
                } else {
                    JobState::Failed
                };
                (state, None)
            }
            ExitOutcome::Signal(sig) => {
                run.signal = Some(*sig);
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
            Some(StopReason::Timeout) => (JobState::TimedOut, Some(timed_out_reason(timeout_ms))),
            None => (state, reason),
        };
        self.end_attempt(id, at);
        self.leave_running(id);
        let retryable = matches!(state, JobState::Failed | JobState::TimedOut);
        if retryable && self.retry(id, at, self.backoff_ms(id)) {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.run_mut().reason = reason;
            }
            return Ok(());
        }
        self.finish(id, state, at, reason);
        Ok(())
    }

    /// The backoff before the next attempt of `id`: the retry delay,
    /// doubled for each attempt after the first, capped.
    fn backoff_ms(&self, id: JobId) -> u64 {
        let Some(job) = self.jobs.get(&id) else {
            return 0;
        };
        let doublings = job.attempts.saturating_sub(1).min(40);
        job.options()
            .retry_delay_ms
            .saturating_mul(1u64 << doublings)
            .min(RETRY_DELAY_CAP_MS)
    }

    /// Puts a job whose attempt just ended back to waiting, if it has
    /// retries left; `delay_ms` 0 queues it at once. Returns whether it did.
    fn retry(&mut self, id: JobId, at: Timestamp, delay_ms: u64) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        if job.attempts > job.options().retries || self.shutting_down {
            return false;
        }
        let wake = (delay_ms > 0).then(|| at.plus_millis(delay_ms));
        job.run_mut().retry_at = wake;
        self.set_state(id, JobState::Waiting);
        if let Some(t) = wake {
            self.wake_at.insert((t, id));
        }
        self.maybe_release(id);
        true
    }

    /// Records the end of a job's running attempt in its history.
    fn end_attempt(&mut self, id: JobId, at: Timestamp) {
        if let Some(job) = self.jobs.get_mut(&id) {
            let run = job.run_mut();
            run.history.push(Attempt {
                started_at: run.started_at.unwrap_or(at),
                finished_at: at,
                exit_code: run.exit_code,
                signal: run.signal,
            });
        }
    }

    /// Queues a waiting job whose prerequisites and time have all come.
    fn maybe_release(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if job.state != JobState::Waiting
            || job.pending_deps > 0
            || !job.time_ok
            || job.run().retry_at.is_some()
        {
            return;
        }
        let key = (job.priority, id);
        let queue = job.queue.clone();
        self.set_state(id, JobState::Queued);
        self.queue_mut(&queue).ready.insert(key);
    }

    /// Takes a job that has not started out of the ready set and the timers.
    fn leave_waiting(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let key = (job.priority, id);
        if let Some(t) = job.wake_time() {
            self.wake_at.remove(&(t, id));
        }
        if let Some(q) = self.queues.get_mut(&*job.queue) {
            q.ready.remove(&key);
        }
    }

    /// Bookkeeping when a job stops running: frees its slots and its timers.
    fn leave_running(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if let Some(run) = job.run.as_mut() {
            run.pid = None;
            run.process = None;
            if let Some(t) = run.timeout_at.take() {
                self.timeout_at.remove(&(t, id));
            }
        }
        if let Some(q) = self.queues.get_mut(&*job.queue) {
            q.running = q.running.saturating_sub(1);
        }
        self.running = self.running.saturating_sub(1);
        self.kill_at.retain(|&(_, j)| j != id);
    }

    /// Moves a job into a terminal state, and settles the jobs that wait for
    /// it: they may now queue, or (it did not succeed) be skipped in turn.
    fn finish(&mut self, id: JobId, state: JobState, at: Timestamp, reason: Option<String>) {
        let mut work = vec![(id, state, reason)];
        while let Some((id, state, reason)) = work.pop() {
            self.set_state(id, state);
            if let Some(job) = self.jobs.get_mut(&id) {
                let run = job.run_mut();
                run.finished_at = Some(at);
                run.retry_at = None;
                if reason.is_some() {
                    run.reason = reason;
                }
            }
            self.counters.finished += 1;
            for dependent in self.dependents.remove(&id).unwrap_or_default() {
                let Some(job) = self.jobs.get_mut(&dependent) else {
                    continue;
                };
                if job.state.is_terminal() {
                    continue;
                }
                job.pending_deps = job.pending_deps.saturating_sub(1);
                let any = job.deps().iter().any(|&(d, any)| d == id && any);
                if !any && state != JobState::Succeeded {
                    self.leave_waiting(dependent);
                    work.push((
                        dependent,
                        JobState::Skipped,
                        Some(format!("job {id} it depends on ended {state}")),
                    ));
                } else {
                    self.maybe_release(dependent);
                }
            }
        }
    }

    /// The queue `name`, created (with default settings) if it does not
    /// exist: a job may name a queue nobody configured.
    fn queue_mut(&mut self, name: &str) -> &mut Queue {
        self.queues.entry(name.to_owned()).or_default()
    }

    /// Changes a job's state, keeping its queue's counts right.
    fn set_state(&mut self, id: JobId, state: JobState) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut job.state, state);
        self.transitions.push((id, state));
        if let Some(q) = self.queues.get_mut(&*job.queue) {
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
            .map(|job| &mut **job)
            .ok_or_else(|| CoreError::Inconsistent(format!("job {id} does not exist")))
    }

    // ------------------------------------------------------------ time, actions

    /// The durable changes that time alone causes at `now`: waiting jobs
    /// whose time came, running jobs past their timeout. The driver logs and
    /// applies them like any other event (applying removes their timers).
    pub fn due_events(&self, now: Timestamp) -> Vec<Event> {
        let woken = self
            .wake_at
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .map(|&(_, id)| Event::TimeReached { id, at: now });
        let timed_out = self
            .timeout_at
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .filter(|&&(_, id)| self.jobs.get(&id).is_some_and(|j| j.run().stop.is_none()))
            .map(|&(_, id)| Event::StopRequested {
                id,
                at: now,
                reason: StopReason::Timeout,
                grace_ms: self.config.kill_grace_ms,
            });
        woken.chain(timed_out).collect()
    }

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
        [&self.kill_at, &self.wake_at, &self.timeout_at]
            .into_iter()
            .filter_map(|set| set.first().map(|&(at, _)| at))
            .min()
    }

    /// The state changes since the last call, in order.
    pub fn take_transitions(&mut self) -> Vec<(JobId, JobState)> {
        std::mem::take(&mut self.transitions)
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
            job.run_mut().pid = Some(pid);
        }
    }

    /// The pid (= process group id) of a running job.
    pub fn pid(&self, id: JobId) -> Option<u32> {
        self.jobs.get(&id).and_then(|j| j.run().pid)
    }

    /// The spec a job was submitted with (as edited since; its
    /// dependencies as job ids). A copy: the core keeps jobs in a compact
    /// form of their own.
    pub fn spec(&self, id: JobId) -> Option<JobSpec> {
        self.jobs.get(&id).map(|j| j.spec())
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
            if job.state == JobState::Running
                && let Some(pid) = old.pid(*id)
            {
                job.run_mut().pid = Some(pid);
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
        self.job_view(id).map(|view| view.to_info())
    }

    /// What clients see of job `id`, borrowed: listings encode this
    /// straight into frames, without copying the job.
    pub fn job_view(&self, id: JobId) -> Option<JobInfoRef<'_>> {
        self.jobs.get(&id).map(|job| job.view(id))
    }

    /// What clients see of every job, borrowed, in submission order.
    pub fn job_views(&self) -> impl Iterator<Item = JobInfoRef<'_>> + '_ {
        self.jobs.iter().map(|(&id, job)| job.view(id))
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
