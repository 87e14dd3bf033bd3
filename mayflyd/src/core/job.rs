//! How the core holds one job, compactly: a daemon may hold hundreds of
//! thousands of queued jobs, and what one costs is what a user pays per job.
//!
//! Three habits keep a queued job small:
//! - **Sharing**: the working directory, the environment and the queue name
//!   are usually the same for many jobs (one shell session submits them all).
//!   The [`Interner`] keeps one copy of each distinct value and jobs hold an
//!   [`Arc`] to it. An environment is the largest part of a spec (a desktop
//!   session's is several KiB), so this is most of the saving.
//! - **Boxing what is rare**: spec fields that most jobs leave at their
//!   defaults ([`Options`]) and everything about attempts ([`Run`]) live in
//!   boxes that a plain queued job does not allocate. Readers see the
//!   defaults through [`Job::options`] and [`Job::run`].
//! - **One copy of the dependencies**: a job keeps its prerequisites only as
//!   resolved `(id, any_outcome)` pairs; the spec's `after` list is rebuilt
//!   from them when a spec is needed (snapshots, restarts, spawning).
//!
//! The core keeps each [`Job`] in its own box (see `Core::jobs`): a
//! `BTreeMap` filled in id order leaves its nodes about half full, and half
//! empty slots of pointers cost far less than half empty slots of jobs.

use std::collections::HashSet;
use std::sync::Arc;

use mayfly_protocol::{
    Attempt, Command, DEFAULT_RETRIES, DEFAULT_RETRY_DELAY_MS, DepRef, Dependency, JobId,
    JobInfoRef, JobSpec, JobState, SpecExt, Timestamp, Usage,
};

use super::StopReason;
use super::snapshot::SpecSnapshot;

/// An environment shared by every job submitted with it.
pub(super) type Env = Arc<[(String, String)]>;

/// One job as the core holds it.
#[derive(Debug, Clone)]
pub(super) struct Job {
    /// What it runs.
    pub(super) command: Command,
    /// Where it runs (shared).
    pub(super) cwd: Arc<str>,
    /// The environment it runs with (shared).
    pub(super) env: Env,
    /// Its queue's name (shared).
    pub(super) queue: Arc<str>,
    /// When accepted.
    pub(super) submitted_at: Timestamp,
    /// The spec fields a job seldom sets; `None` while they are all default.
    pub(super) options: Option<Box<Options>>,
    /// Everything about its attempts; `None` until there is something.
    pub(super) run: Option<Box<Run>>,
    /// Times started.
    pub(super) attempts: u32,
    /// How many prerequisites have not ended yet.
    pub(super) pending_deps: u32,
    /// Lower runs first.
    pub(super) priority: u8,
    /// Current state.
    pub(super) state: JobState,
    /// False until its not-before time has passed.
    pub(super) time_ok: bool,
}

/// The spec fields most jobs leave at their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Options {
    /// Free-form labels, in the order given.
    pub(super) labels: Vec<(String, String)>,
    /// Its prerequisites: `(id, any_outcome)`.
    pub(super) deps: Vec<(JobId, bool)>,
    /// Do not start before this time.
    pub(super) not_before: Option<Timestamp>,
    /// Stop a running attempt after this long.
    pub(super) timeout_ms: Option<u64>,
    /// Retries after a failed attempt.
    pub(super) retries: u32,
    /// The wait before the first retry.
    pub(super) retry_delay_ms: u64,
    /// The settings it seldom has.
    pub(super) ext: Vec<SpecExt>,
}

impl Options {
    /// What a job that sets none of these has.
    const DEFAULT: Options = Options {
        labels: Vec::new(),
        deps: Vec::new(),
        not_before: None,
        timeout_ms: None,
        retries: DEFAULT_RETRIES,
        retry_delay_ms: DEFAULT_RETRY_DELAY_MS,
        ext: Vec::new(),
    };

    /// True when nothing differs from the defaults (no box needed).
    fn is_default(&self) -> bool {
        *self == Self::DEFAULT
    }
}

/// What [`Job::options`] shows for a job without an options box.
static DEFAULT_OPTIONS: Options = Options::DEFAULT;

/// Everything about a job's attempts: empty while it has never started and
/// nothing was said about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Run {
    /// Exit code of the last attempt.
    pub(super) exit_code: Option<i32>,
    /// Signal that killed the last attempt.
    pub(super) signal: Option<i32>,
    /// When the last attempt started.
    pub(super) started_at: Option<Timestamp>,
    /// When it reached its terminal state.
    pub(super) finished_at: Option<Timestamp>,
    /// Latest progress text.
    pub(super) progress: Option<String>,
    /// Why it ended as it did, when the exit status does not say.
    pub(super) reason: Option<String>,

    /// Set while a running job has been asked to stop.
    pub(super) stop: Option<StopReason>,
    /// While it waits to be retried: when the next attempt may start.
    pub(super) retry_at: Option<Timestamp>,
    /// When the running attempt times out.
    pub(super) timeout_at: Option<Timestamp>,
    /// Finished attempts.
    pub(super) history: Vec<Attempt>,
    /// The running attempt's process as logged: `(pid, start ticks)`, so
    /// signals reach it and recovery can stop what a crash left running.
    pub(super) process: Option<(u32, u64)>,
    /// What the queue's executor calls the running attempt elsewhere, as
    /// logged, so recovery re-attaches it.
    pub(super) remote: Option<String>,
    /// What the last attempt used, once it ended (if its executor could
    /// tell).
    pub(super) usage: Option<Usage>,
    /// Since when the running attempt is frozen (SIGSTOP) because a more
    /// urgent job took its slot; it holds no slot meanwhile.
    pub(super) frozen_at: Option<Timestamp>,
}

impl Run {
    /// What a job that never started has.
    const EMPTY: Run = Run {
        exit_code: None,
        signal: None,
        started_at: None,
        finished_at: None,
        progress: None,
        reason: None,
        stop: None,
        retry_at: None,
        timeout_at: None,
        history: Vec::new(),
        process: None,
        remote: None,
        usage: None,
        frozen_at: None,
    };
}

/// What [`Job::run`] shows for a job without a run box.
static EMPTY_RUN: Run = Run::EMPTY;

impl Job {
    /// A new job from `spec` (whose dependencies are already resolved into
    /// `deps`), in state `waiting`, its shared strings taken from `interner`.
    pub(super) fn new(
        spec: &JobSpec,
        deps: Vec<(JobId, bool)>,
        submitted_at: Timestamp,
        interner: &mut Interner,
    ) -> Self {
        let options = Options {
            labels: spec.labels.clone(),
            deps,
            not_before: spec.not_before,
            timeout_ms: spec.timeout_ms,
            retries: spec.retries,
            retry_delay_ms: spec.retry_delay_ms,
            ext: spec.ext.clone(),
        };
        Job::assemble(
            spec.command.clone(),
            interner.str(&spec.cwd),
            interner.env(&spec.env),
            interner.str(&spec.queue),
            spec.priority,
            options,
            submitted_at,
        )
    }

    /// A job from a snapshot's spec, in state `waiting` (the caller sets
    /// the rest), with the shared values the snapshot's tables gave (already
    /// interned).
    pub(super) fn from_snapshot(
        spec: SpecSnapshot,
        cwd: Arc<str>,
        env: Env,
        queue: Arc<str>,
        deps: Vec<(JobId, bool)>,
        submitted_at: Timestamp,
    ) -> Self {
        let options = Options {
            labels: spec.labels,
            deps,
            not_before: spec.not_before,
            timeout_ms: spec.timeout_ms,
            retries: spec.retries,
            retry_delay_ms: spec.retry_delay_ms,
            ext: spec.ext,
        };
        Job::assemble(
            spec.command,
            cwd,
            env,
            queue,
            spec.priority,
            options,
            submitted_at,
        )
    }

    /// A waiting job of these parts (the common end of [`Job::new`] and
    /// [`Job::from_snapshot`]).
    fn assemble(
        command: Command,
        cwd: Arc<str>,
        env: Env,
        queue: Arc<str>,
        priority: u8,
        options: Options,
        submitted_at: Timestamp,
    ) -> Self {
        let time_ok = options.not_before.is_none_or(|t| t <= submitted_at);
        Job {
            command,
            cwd,
            env,
            queue,
            submitted_at,
            options: (!options.is_default()).then(|| Box::new(options)),
            run: None,
            attempts: 0,
            pending_deps: 0,
            priority,
            state: JobState::Waiting,
            time_ok,
        }
    }

    /// Its seldom-set spec fields (the defaults when it set none).
    pub(super) fn options(&self) -> &Options {
        self.options.as_deref().unwrap_or(&DEFAULT_OPTIONS)
    }

    /// Its seldom-set spec fields, for a change.
    pub(super) fn options_mut(&mut self) -> &mut Options {
        self.options
            .get_or_insert_with(|| Box::new(Options::DEFAULT))
    }

    /// Drops the options box again if a change left every field default.
    pub(super) fn compact_options(&mut self) {
        if self.options.as_deref().is_some_and(Options::is_default) {
            self.options = None;
        }
    }

    /// Its attempts so far (empty when it never started).
    pub(super) fn run(&self) -> &Run {
        self.run.as_deref().unwrap_or(&EMPTY_RUN)
    }

    /// Its attempts, for a change (allocated on first use).
    pub(super) fn run_mut(&mut self) -> &mut Run {
        self.run.get_or_insert_with(Box::default)
    }

    /// Its prerequisites: `(id, any_outcome)`.
    pub(super) fn deps(&self) -> &[(JobId, bool)] {
        &self.options().deps
    }

    /// When a waiting job's clock next matters (its not-before time or the
    /// end of its backoff), if it is waiting on the clock.
    pub(super) fn wake_time(&self) -> Option<Timestamp> {
        if self.state != JobState::Waiting {
            return None;
        }
        self.run().retry_at.or(if self.time_ok {
            None
        } else {
            self.options().not_before
        })
    }

    /// The spec it was submitted with (as edited since), with its
    /// dependencies as resolved job ids.
    pub(super) fn spec(&self) -> JobSpec {
        let options = self.options();
        JobSpec {
            command: self.command.clone(),
            cwd: self.cwd.to_string(),
            env: self.env.to_vec(),
            queue: self.queue.to_string(),
            priority: self.priority,
            labels: options.labels.clone(),
            after: dependencies(&options.deps),
            not_before: options.not_before,
            timeout_ms: options.timeout_ms,
            retries: options.retries,
            retry_delay_ms: options.retry_delay_ms,
            ext: options.ext.clone(),
        }
    }

    /// Its spec for a snapshot: like [`Job::spec`], but with its shared
    /// values as the indexes the snapshot's tables gave them.
    pub(super) fn spec_snapshot(&self, cwd: u32, env: u32, queue: u32) -> SpecSnapshot {
        let options = self.options();
        SpecSnapshot {
            command: self.command.clone(),
            cwd,
            env,
            queue,
            priority: self.priority,
            labels: options.labels.clone(),
            after: dependencies(&options.deps),
            not_before: options.not_before,
            timeout_ms: options.timeout_ms,
            retries: options.retries,
            retry_delay_ms: options.retry_delay_ms,
            ext: options.ext.clone(),
        }
    }

    /// What clients see of it, borrowed (no copy of its strings).
    pub(super) fn view(&self, id: JobId) -> JobInfoRef<'_> {
        let options = self.options();
        let run = self.run();
        JobInfoRef {
            id,
            state: self.state,
            command: &self.command,
            cwd: &self.cwd,
            queue: &self.queue,
            priority: self.priority,
            labels: &options.labels,
            exit_code: run.exit_code,
            signal: run.signal,
            attempts: self.attempts,
            submitted_at: self.submitted_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            progress: run.progress.as_deref(),
            reason: run.reason.as_deref(),
            pid: run.process.map(|(pid, _)| pid),
            after: &options.deps,
            not_before: options.not_before,
            timeout_ms: options.timeout_ms,
            retries: options.retries,
            retry_at: run.retry_at,
            history: &run.history,
            remote_id: run.remote.as_deref(),
            usage: run.usage,
            preempted: run.frozen_at.is_some(),
        }
    }
}

/// Resolved prerequisites as a spec's `after` list.
fn dependencies(deps: &[(JobId, bool)]) -> Vec<Dependency> {
    deps.iter()
        .map(|&(id, any_outcome)| Dependency {
            on: DepRef::Job(id),
            any_outcome,
        })
        .collect()
}

/// One copy of each distinct working directory, queue name and environment
/// that jobs hold.
///
/// Values stay while any job holds them; [`Interner::purge`] drops the rest
/// (the core calls it when jobs are forgotten).
#[derive(Debug, Default)]
pub(super) struct Interner {
    /// Working directories and queue names.
    strs: HashSet<Arc<str>>,
    /// Environments.
    envs: HashSet<Env>,
}

impl Interner {
    /// The shared copy of `s`.
    pub(super) fn str(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strs.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.strs.insert(shared.clone());
        shared
    }

    /// The shared copy of `env`.
    pub(super) fn env(&mut self, env: &[(String, String)]) -> Env {
        if let Some(shared) = self.envs.get(env) {
            return shared.clone();
        }
        let shared: Env = Arc::from(env);
        self.envs.insert(shared.clone());
        shared
    }

    /// Forgets the values no job holds any more.
    pub(super) fn purge(&mut self) {
        self.strs.retain(|s| Arc::strong_count(s) > 1);
        self.envs.retain(|e| Arc::strong_count(e) > 1);
    }

    /// How many distinct values it holds: `(strings, environments)`.
    #[cfg(test)]
    pub(super) fn len(&self) -> (usize, usize) {
        (self.strs.len(), self.envs.len())
    }
}
