//! Events and actions: what the core decides, and what it asks the outside
//! world to do.
//!
//! An [`Event`] is a change of durable state. The driver writes each event to
//! the write-ahead log before it is acknowledged, and recovery replays the log
//! through the same [`super::Core::apply`] that live traffic uses — so an event
//! must carry everything `apply` needs, and `apply` must depend on nothing but
//! the event and the current state (no clock, no I/O).
//!
//! An [`Action`] is an effect on the world (spawn a process, send a signal).
//! Actions are not logged: after a restart, running jobs are interrupted, not
//! re-signalled.

use mayfly_protocol::{JobId, JobSpec, Timestamp};
use serde::{Deserialize, Serialize};

/// A durable change of state. Variants are only ever appended (the log is
/// bincode, which numbers variants by position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum Event {
    /// A client queued a job; it got the next id.
    Submitted {
        /// The id the job was given.
        id: JobId,
        /// When the daemon accepted it.
        at: Timestamp,
        /// What to run and where.
        spec: JobSpec,
    },
    /// A job that had not started was cancelled.
    Cancelled {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// A running job was asked to stop: its group gets SIGTERM now and
    /// SIGKILL after `grace_ms`; when it exits it ends in the state `reason` says.
    StopRequested {
        /// The job.
        id: JobId,
        /// When the stop was requested.
        at: Timestamp,
        /// Why, which decides the terminal state.
        reason: StopReason,
        /// How long SIGTERM gets before SIGKILL.
        grace_ms: u64,
    },
    /// A job was given a slot and its process is being started.
    Started {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// A started job's process ended (or could not be started).
    Exited {
        /// The job.
        id: JobId,
        /// When the exit was observed.
        at: Timestamp,
        /// How it ended.
        outcome: ExitOutcome,
    },
    /// A job was running when the daemon stopped or crashed; written at
    /// recovery for every job the log still shows running.
    Interrupted {
        /// The job.
        id: JobId,
        /// When recovery noticed.
        at: Timestamp,
    },
    /// A queue was created or its concurrency limit changed.
    QueueConfigured {
        /// The queue.
        name: String,
        /// Its new limit; `None` leaves only the global limit.
        concurrency: Option<u32>,
    },
    /// A waiting job's time came: its not-before time, or the end of its
    /// retry backoff.
    TimeReached {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// A queue was paused or resumed.
    QueuePaused {
        /// The queue.
        name: String,
        /// Paused (true) or resumed (false).
        paused: bool,
        /// Also SIGSTOP / SIGCONT its running jobs.
        signal_running: bool,
    },
    /// An empty queue was removed.
    QueueRemoved {
        /// The queue.
        name: String,
    },
    /// Finished jobs were forgotten (`clean`).
    Removed {
        /// The jobs.
        ids: Vec<JobId>,
    },
    /// A job that had not started was changed (`edit`).
    Edited {
        /// The job.
        id: JobId,
        /// Its new priority.
        priority: u8,
        /// Its new queue.
        queue: String,
        /// Its new labels.
        labels: Vec<(String, String)>,
    },
    /// A job reported progress.
    Progress {
        /// The job.
        id: JobId,
        /// The text.
        text: String,
    },
    /// A started job's process exists: its pid (also its process group) and
    /// the kernel's start time for it, so that after a crash the next daemon
    /// can stop exactly that process group and no other.
    Spawned {
        /// The job.
        id: JobId,
        /// The leader's pid.
        pid: u32,
        /// The leader's start time in clock ticks since boot (`/proc/PID/stat`).
        start_ticks: u64,
    },
    /// Ids below `next_id` are taken even though the log does not show them
    /// (after `--repair-wal` cut records whose jobs left output files).
    IdsReserved {
        /// The lowest id still free.
        next_id: u64,
    },
    /// A started job's process could not be started for a reason of the
    /// daemon's that should pass (it ran out of file descriptors): the job
    /// waits until `retry_at` and starts again. The start does not count as
    /// an attempt.
    StartDeferred {
        /// The job.
        id: JobId,
        /// When the start failed.
        at: Timestamp,
        /// When it may start again.
        retry_at: Timestamp,
        /// What went wrong, shown as the job's reason meanwhile.
        reason: String,
    },
    /// A queue's jobs run on another executor from now on.
    QueueExecutor {
        /// The queue.
        name: String,
        /// What runs its jobs.
        executor: mayfly_protocol::ExecutorSpec,
    },
    /// A started job's attempt runs elsewhere under this id (a Slurm job id,
    /// a remote task id). Logged before the job counts as started there, so
    /// that after a crash the attempt is found again, never started twice.
    Attached {
        /// The job.
        id: JobId,
        /// What its executor calls the attempt.
        remote_id: String,
    },
    /// What a running attempt used, as its executor measured it when it
    /// ended. Logged just before its `Exited`, in the same group.
    Usage {
        /// The job.
        id: JobId,
        /// The figures.
        usage: mayfly_protocol::Usage,
    },
    /// A job that just ended is owed its finish callback (`--on-finish`).
    /// Logged in the same group as the end, so a crash after the end is
    /// durable cannot lose the callback: it runs after the restart.
    CallbackDue {
        /// The job.
        id: JobId,
    },
    /// The finish callback of `id` ran, whatever its result: it is not run
    /// again. A no-op for a job that is gone.
    CallbackDone {
        /// The job.
        id: JobId,
    },
    /// A running preemptible job is frozen (SIGSTOP to its process group)
    /// and gives up its slot, for the more urgent job `by`.
    Frozen {
        /// The job frozen.
        id: JobId,
        /// When.
        at: Timestamp,
        /// The job it makes room for.
        by: JobId,
    },
    /// A frozen job runs again (SIGCONT) and takes a slot back.
    Thawed {
        /// The job.
        id: JobId,
        /// When.
        at: Timestamp,
    },
}

/// The record format events are written in: the version byte of each WAL
/// record (see [`crate::wal::RECORD_FORMATS`]). Format 1 is read through
/// [`super::v1::Event`].
pub const EVENT_FORMAT: u8 = 2;

impl Event {
    /// Decodes a WAL record's payload of `format` (its version byte).
    pub fn decode(format: u8, payload: &[u8]) -> Result<Event, String> {
        match format {
            EVENT_FORMAT => mayfly_protocol::decode_payload(payload).map_err(|e| e.to_string()),
            1 => mayfly_protocol::decode_payload::<super::v1::Event>(payload)
                .map(Event::from)
                .map_err(|e| e.to_string()),
            other => Err(format!("record format {other} is not one this build reads")),
        }
    }

    /// The job this event is about, if it is about one.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Event::Submitted { id, .. }
            | Event::Cancelled { id, .. }
            | Event::StopRequested { id, .. }
            | Event::Started { id, .. }
            | Event::Exited { id, .. }
            | Event::Interrupted { id, .. }
            | Event::TimeReached { id, .. }
            | Event::Edited { id, .. }
            | Event::Progress { id, .. }
            | Event::Spawned { id, .. }
            | Event::StartDeferred { id, .. }
            | Event::Attached { id, .. }
            | Event::Usage { id, .. }
            | Event::CallbackDue { id }
            | Event::CallbackDone { id }
            | Event::Frozen { id, .. }
            | Event::Thawed { id, .. } => Some(*id),
            Event::QueueConfigured { .. }
            | Event::QueuePaused { .. }
            | Event::QueueRemoved { .. }
            | Event::QueueExecutor { .. }
            | Event::Removed { .. }
            | Event::IdsReserved { .. } => None,
        }
    }
}

/// Why a running job is being stopped; decides the state it ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum StopReason {
    /// A user cancelled it: it ends `cancelled`.
    Cancel,
    /// The daemon is shutting down: it ends `interrupted`.
    Shutdown,
    /// It ran past its timeout: it ends `timed_out` (or is retried).
    Timeout,
}

/// How a job's process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum ExitOutcome {
    /// It exited with this status code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// It could not be started at all (bad cwd, command not found, …).
    SpawnFailed(String),
    /// Its executor's side ended it in a way an exit status cannot tell: a
    /// cluster stopped it at its time limit (`timed_out`), someone cancelled
    /// it there (`cancelled`), a node failed (`failed`), or the cluster
    /// forgot it (`interrupted`). Any other `state` counts as `failed`.
    Ended {
        /// The state it ends in (or is retried from, for `failed`,
        /// `timed_out` and `interrupted`).
        state: mayfly_protocol::JobState,
        /// Its exit code, if the other side knows one.
        exit_code: Option<i32>,
        /// The signal that ended it, if the other side knows one.
        signal: Option<i32>,
        /// What happened, in the other side's words, for the job's reason.
        reason: String,
    },
}

/// Which signal an [`Action::Signal`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ask politely.
    Term,
    /// Insist.
    Kill,
    /// Freeze (a paused queue with `--running`).
    Stop,
    /// Thaw.
    Cont,
}

/// An effect the driver must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start this job's process (its `attempt`-th start).
    Spawn {
        /// The job.
        id: JobId,
        /// Which attempt this is, from 1.
        attempt: u32,
    },
    /// Signal this job's process group.
    Signal {
        /// The job.
        id: JobId,
        /// The signal.
        signal: Signal,
    },
    /// Delete a forgotten job's output files.
    RemoveOutput {
        /// The job.
        id: JobId,
    },
    /// SIGKILL what is left of a process group whose leader has exited after
    /// it was asked to stop, so no grandchild outlives a cancelled job.
    SweepGroup {
        /// The process group id (the leader's old pid).
        pgid: u32,
    },
}
