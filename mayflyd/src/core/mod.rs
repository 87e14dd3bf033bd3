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
//!   that queue (a job frozen for a more urgent one, see `preempt.rs`, does
//!   not count: it holds no slot);
//! - a job starts only when no job of a strictly better priority (lower
//!   number; ties broken by id, i.e. FIFO) is queued in a queue that could
//!   start it;
//! - a job reaches exactly one terminal state and never leaves it.
//!
//! Costs: submit, start and exit are `O(log n)` in the number of jobs held;
//! picking the next job is `O(queues · log n)`. Nothing on the submit path
//! scans all jobs.
//!
//! The files: `validate.rs` checks what clients send; `decide.rs` turns
//! requests into events; `apply.rs` applies events, one method per kind;
//! `view.rs` shows the state; `job.rs` is how one job is held (compactly);
//! `preempt.rs` freezes preemptible jobs for more urgent ones;
//! `snapshot.rs` and `v1.rs` are the durable forms (this one and the
//! frozen older one); `event.rs` defines events and actions. This file
//! holds the types, the timers and the system-task registry.

mod apply;
mod decide;
mod event;
mod job;
mod preempt;
mod snapshot;
#[cfg(test)]
mod tests;
pub mod v1;
mod validate;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use mayfly_protocol::{ExecutorSpec, JobId, JobSpec, JobState, StateCounts, Timestamp};

/// The longest wait between two attempts of a retried job: the backoff
/// doubles from `--retry-delay` up to this.
pub const RETRY_DELAY_CAP_MS: u64 = 3_600_000;

pub use self::event::{Action, EVENT_FORMAT, Event, ExitOutcome, Signal, StopReason};
use self::job::{Interner, Job};
pub use self::snapshot::{CoreSnapshot, JobExt, JobSnapshot, SNAPSHOT_FORMAT, SpecSnapshot};
pub use self::validate::{excerpt, refuse_duplicates, shorten};

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
    /// The most jobs held at once, in any state (`--max-jobs`).
    pub max_jobs: usize,
    /// The most bytes one job's command and environment may take
    /// (`--max-job-bytes`).
    pub max_job_bytes: u64,
}

impl Default for CoreConfig {
    /// The daemon's defaults, read from [`crate::settings::Settings`], where
    /// each is written once (`concurrency` is the number of CPUs).
    fn default() -> Self {
        crate::settings::Settings::default().core_config()
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
    /// The request is well formed, but what it names is not in a state
    /// that allows it now.
    #[error("{0}")]
    Conflict(String),
    /// A named job does not exist.
    #[error("no job {0}; `mayflyctl status` lists the jobs")]
    NotFound(JobId),
    /// A limit of the daemon's would be passed; the text names it and what
    /// to do.
    #[error("{0}")]
    Limit(String),
    /// An event does not fit the state (only from a damaged or foreign log).
    #[error("event does not fit the state: {0}")]
    Inconsistent(String),
}

/// One queue.
#[derive(Debug, Clone, Default)]
struct Queue {
    /// What runs its jobs.
    executor: ExecutorSpec,
    /// Its own limit; `None` means only the global one applies (to a local
    /// queue; a remote queue's jobs are bounded by this alone).
    concurrency: Option<u32>,
    /// A paused queue starts nothing.
    paused: bool,
    /// Jobs of this queue running now, frozen ones included.
    running: u32,
    /// Of those, the ones frozen for a more urgent job: they hold no slot.
    frozen: u32,
    /// Queued jobs in start order: `(priority, id)`; ids grow with
    /// submission, so ties are FIFO.
    ready: BTreeSet<(u8, JobId)>,
    /// Jobs of this queue by state.
    counts: StateCounts,
}

impl Queue {
    /// True when the queue may start one more job (global limit aside).
    fn has_room(&self) -> bool {
        !self.paused
            && self
                .concurrency
                .is_none_or(|limit| self.running.saturating_sub(self.frozen) < limit)
    }
}

/// A job the log shows running, with what the daemon knows of where it runs
/// (see [`Core::running_attempts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningAttempt {
    /// The job.
    pub id: JobId,
    /// Which attempt it is, from 1.
    pub attempt: u32,
    /// Its queue's executor.
    pub executor: ExecutorSpec,
    /// Its process as logged, `(pid, start ticks)`, for a local job.
    pub process: Option<(u32, u64)>,
    /// What its executor calls it elsewhere, for a remote job.
    pub remote_id: Option<String>,
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
    /// Jobs of local queues running now: what the global limit bounds (the
    /// others run elsewhere).
    running_local: u32,
    /// Jobs frozen for a more urgent one, `(priority, id)`: they hold no
    /// slot, and the most urgent is thawed first. Only local jobs freeze.
    frozen: BTreeSet<(u8, JobId)>,
    /// Running local jobs that may be frozen (`--preemptible`, not frozen):
    /// the candidates, so a start need not scan every job.
    preemptible: BTreeSet<JobId>,
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
    /// Finished jobs whose finish callback has not run yet.
    callbacks_due: BTreeSet<JobId>,
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
            running_local: 0,
            frozen: BTreeSet::new(),
            preemptible: BTreeSet::new(),
            kill_at: BTreeSet::new(),
            wake_at: BTreeSet::new(),
            timeout_at: BTreeSet::new(),
            dependents: HashMap::new(),
            actions: VecDeque::new(),
            transitions: Vec::new(),
            shutting_down: false,
            counters: Counters::default(),
            system: HashMap::new(),
            callbacks_due: BTreeSet::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CoreConfig {
        &self.config
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
    /// after a rebuild from disk: system tasks and the shutdown flag.
    pub fn adopt_runtime_state(&mut self, old: &Core) {
        self.system = old.system.clone();
        self.shutting_down = old.shutting_down;
    }

    /// What runs the jobs of `queue` (`local` for a queue that does not
    /// exist).
    pub fn executor_of(&self, queue: &str) -> ExecutorSpec {
        self.queues
            .get(queue)
            .map(|q| q.executor.clone())
            .unwrap_or_default()
    }
}
