//! Executors: what runs a queue's jobs.
//!
//! Each queue names its executor ([`ExecutorSpec`], recorded durably with
//! the queue, shown by `queue list` and `dump-state`). An executor is a
//! plug-in behind the [`Executor`] trait: start an attempt, signal it,
//! report its start and its end, and after a restart re-attach to an
//! attempt the log shows running. `local` ([`local::LocalExecutor`]: a
//! process group on this machine) is the first; one that runs jobs
//! elsewhere (a cluster, a remote agent) is one more file here and one arm
//! in `Executors::build`.
//!
//! Every executor gives a job the same lifecycle and states, and reports on
//! one channel ([`Report`]), in order per attempt: `Started` (or
//! `StartFailed`), then `Exited`. A remote executor reports the id its side
//! knows the attempt by in `Started` ([`Where::Remote`]); the driver logs
//! it, fsynced, before anything else about the attempt, so that after a
//! crash the attempt is re-attached by that id, never started twice. Job
//! output always lands in the job's two files under `STATE_DIR/logs/`
//! ([`log_path`]), whoever runs it.
//!
//! `slurm` ([`slurm::SlurmExecutor`]) hands each attempt to `sbatch` and
//! follows all of its attempts with one `squeue` per tick (see
//! `docs/slurm.md`).
//!
//! `a2a` ([`a2a::A2aExecutor`], feature `a2a`) hands each attempt to a
//! remote A2A agent as a `SendMessage` and follows the task it becomes
//! (see `docs/a2a.md`).

#[cfg(feature = "a2a")]
pub mod a2a;
pub mod local;
mod reap;
pub mod slurm;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mayfly_protocol::{ExecutorSpec, JobId, JobSpec};
use tokio::sync::mpsc;

pub use self::local::{LocalExecutor, kill_leftover_group, log_path, process_start_ticks};
use crate::core::{ExitOutcome, RunningAttempt, Signal};

/// Where a started attempt runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// A process group on this machine.
    Process {
        /// The leader's pid (= the process group id).
        pid: u32,
        /// Its start time in clock ticks since boot (with the pid, what
        /// recovery needs to find exactly this process again), if readable.
        start_ticks: Option<u64>,
    },
    /// Elsewhere, under this id (a Slurm job id, a remote task id).
    Remote {
        /// The id.
        id: String,
    },
}

/// What the driver keeps of a running attempt to signal it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handle {
    /// A local process group.
    Process {
        /// Its id.
        pgid: u32,
    },
    /// A remote attempt.
    Remote {
        /// What the remote side calls it.
        id: String,
    },
}

impl From<&Where> for Handle {
    fn from(at: &Where) -> Self {
        match at {
            Where::Process { pid, .. } => Handle::Process { pgid: *pid },
            Where::Remote { id } => Handle::Remote { id: id.clone() },
        }
    }
}

/// What an executor tells the driver about one attempt of a job: first
/// `Started` or `StartFailed`, then, after `Started`, `Exited`, each only
/// after the one before it.
#[derive(Debug)]
pub enum Report {
    /// The attempt runs.
    Started {
        /// The job.
        id: JobId,
        /// Where.
        at: Where,
    },
    /// The attempt could not be started.
    StartFailed {
        /// The job.
        id: JobId,
        /// Why, in one line naming what was missing.
        reason: String,
        /// True when the cause was the daemon's, not the job's, and likely
        /// to pass (out of file descriptors): the job should start again
        /// later rather than fail.
        transient: bool,
    },
    /// The attempt ended.
    Exited {
        /// The job.
        id: JobId,
        /// How.
        outcome: ExitOutcome,
        /// What it used, when the executor can tell.
        usage: Option<mayfly_protocol::Usage>,
    },
    /// After a restart: an attempt the log shows running, but without the
    /// id its side knows it by (the daemon stopped between handing it over
    /// and logging the id), was found there under this id. It is followed
    /// from now on; its `Exited` comes later.
    Found {
        /// The job.
        id: JobId,
        /// Where it runs.
        at: Where,
    },
}

/// What runs a queue's jobs: see the module documentation.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Starts attempt `attempt` of job `id` and returns at once; what
    /// happens comes back as [`Report`]s.
    fn start(&self, id: JobId, attempt: u32, spec: JobSpec);

    /// Delivers `signal` to a running attempt (a remote executor does what
    /// the signal means there: `Term` and `Kill` cancel, `Stop` and `Cont`
    /// suspend and resume where it can).
    fn signal(&self, id: JobId, handle: &Handle, signal: Signal);

    /// After a restart: follows an attempt the log shows running, reporting
    /// its end as if it had started it. False when it cannot (a local
    /// process does not outlive its daemon's watch): the job is then
    /// interrupted. An attempt without a remote id may be looked for on the
    /// other side, and reported [`Report::Found`] (or ended) later.
    fn reattach(&self, attempt: &RunningAttempt) -> bool {
        let _ = attempt;
        false
    }

    /// Whether `pause --running` can freeze (and later thaw) this
    /// executor's running attempts; the error says why not and what to do.
    fn can_suspend(&self) -> Result<(), String> {
        Ok(())
    }
}

/// An attempt that runs elsewhere, followed again after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reattached {
    /// The job.
    pub id: JobId,
    /// Which attempt.
    pub attempt: u32,
    /// Where its signals go; `None` while its executor looks for it (its
    /// remote id was not logged), until [`Report::Found`].
    pub handle: Option<Handle>,
}

/// What executors other than `local` need of the daemon.
#[derive(Debug, Clone)]
pub struct RemoteContext {
    /// The state dir (where the Slurm executor keeps its batch script).
    pub state_dir: PathBuf,
    /// Where job output files live.
    pub logs_dir: PathBuf,
    /// The daemon's socket, given to jobs as `MAYFLY_SOCKET`.
    pub socket: PathBuf,
    /// How often a Slurm executor asks Slurm about its jobs
    /// (`--slurm-poll-interval`).
    pub slurm_poll: Duration,
    /// How often an a2a executor asks an agent about the jobs it cannot
    /// follow on a stream (`--a2a-poll-interval`).
    pub a2a_poll: Duration,
    /// How long an a2a executor keeps trying an agent it cannot reach
    /// (`--a2a-retry-for`).
    pub a2a_retry_for: Duration,
    /// The daemon's metrics, if it keeps any.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Every executor the daemon runs jobs with: the local one, and one per
/// distinct remote configuration, made when a queue first needs it.
#[derive(Debug)]
pub struct Executors {
    /// Runs the jobs of local queues; also creates and deletes every job's
    /// output files.
    local: Arc<LocalExecutor>,
    /// The others, by their configuration.
    others: HashMap<ExecutorSpec, Arc<dyn Executor>>,
    /// Where every executor reports.
    reports: mpsc::UnboundedSender<Report>,
    /// What the others need of the daemon.
    context: RemoteContext,
}

impl Executors {
    /// The executors, with `local` for local queues; the others are made
    /// with `context` when a queue first needs them, and report on
    /// `reports` too.
    pub fn new(
        local: LocalExecutor,
        reports: mpsc::UnboundedSender<Report>,
        context: RemoteContext,
    ) -> Self {
        Self {
            local: Arc::new(local),
            others: HashMap::new(),
            reports,
            context,
        }
    }

    /// The local executor (output files, leftover process groups).
    pub fn local(&self) -> &LocalExecutor {
        &self.local
    }

    /// Whether a queue may use `spec` on this daemon; the error says why not
    /// and what to do.
    pub fn check(spec: &ExecutorSpec) -> Result<(), String> {
        match spec {
            ExecutorSpec::Local => Ok(()),
            #[cfg(feature = "a2a")]
            ExecutorSpec::A2a { url, token_file } => a2a::check(url, token_file.as_deref()),
            #[cfg(not(feature = "a2a"))]
            ExecutorSpec::A2a { .. } => Err(
                "this mayflyd has no a2a executor (it was built without the a2a feature); \
                 rebuild it with --features a2a, or use --executor local"
                    .to_string(),
            ),
            ExecutorSpec::Slurm { partition, args } => {
                if partition
                    .as_deref()
                    .is_some_and(|p| p.is_empty() || p.contains(char::is_whitespace))
                {
                    return Err("--slurm-partition needs a partition name".into());
                }
                slurm::check_args(args)
            }
        }
    }

    /// The executor for queues configured with `spec`, made on first use.
    pub fn get(&mut self, spec: &ExecutorSpec) -> Result<Arc<dyn Executor>, String> {
        if spec.is_local() {
            return Ok(self.local.clone());
        }
        if let Some(found) = self.others.get(spec) {
            return Ok(found.clone());
        }
        let made = self.build(spec)?;
        self.others.insert(spec.clone(), made.clone());
        Ok(made)
    }

    /// Runs the jobs of queues configured with `spec` with `executor`: a
    /// stand-in that records what it is asked, for the driver's tests.
    #[cfg(test)]
    pub fn insert(&mut self, spec: ExecutorSpec, executor: Arc<dyn Executor>) {
        self.others.insert(spec, executor);
    }

    /// Makes the executor for `spec` (not `local`). Must be called inside
    /// the runtime: a remote executor runs tasks of its own.
    fn build(&self, spec: &ExecutorSpec) -> Result<Arc<dyn Executor>, String> {
        Self::check(spec)?;
        match spec {
            #[cfg(feature = "a2a")]
            ExecutorSpec::A2a { url, token_file } => Ok(Arc::new(a2a::A2aExecutor::new(
                url,
                token_file.as_deref(),
                &self.context,
                self.reports.clone(),
            )?)),
            ExecutorSpec::Slurm { partition, args } => Ok(Arc::new(slurm::SlurmExecutor::new(
                partition.clone(),
                args.clone(),
                &self.context,
                self.reports.clone(),
            )?)),
            other => Err(format!(
                "this mayflyd has no {} executor; use --executor local",
                other.kind()
            )),
        }
    }
}
