//! The activity log (PAL): typed events about the scheduler, its system
//! tasks and every job transition, as `mayflyctl events` receives them.
//!
//! Each event carries the fields that explain it (reason, timeout, exit
//! status, durations, …), so a reader never has to correlate log lines.

use serde::{Deserialize, Serialize};

use crate::job::{JobId, JobState, Timestamp};

/// One entry of the activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ActivityRecord {
    /// Position in the daemon's activity log since it started (from 1), so
    /// a reader can tell whether it missed any.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub event: Activity,
}

/// What happened. Variants are only ever appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Activity {
    /// The scheduler is up and serving, its state recovered.
    SchedulerBoot {
        /// The daemon's release.
        version: String,
        /// The global limit on running jobs.
        concurrency: u32,
        /// Jobs recovered from the write-ahead log.
        recovered_jobs: u64,
        /// Log records replayed.
        replayed_records: u64,
        /// How long recovery took.
        replay_ms: u64,
        /// Jobs that were running when the daemon last stopped, now interrupted.
        interrupted_jobs: u64,
    },
    /// A graceful shutdown began.
    ShutdownBegin {
        /// What asked for it (a signal, a client).
        reason: String,
        /// How long running jobs get after SIGTERM before SIGKILL.
        timeout_ms: u64,
        /// Jobs running at that moment.
        running_jobs: u32,
    },
    /// The shutdown finished: every job stopped, the log flushed.
    ShutdownComplete {
        /// How long the daemon ran.
        uptime_ms: u64,
    },
    /// A system task (priority 0) started.
    SystemTaskStart {
        /// Its name.
        name: String,
        /// Always 0.
        priority: u8,
    },
    /// A system task returned.
    SystemTaskExit {
        /// Its name.
        name: String,
        /// False when it returned an error.
        ok: bool,
        /// The error, if any.
        error: Option<String>,
    },
    /// A job was accepted.
    JobSubmitted {
        /// The job.
        id: JobId,
        /// Its queue.
        queue: String,
        /// Its priority.
        priority: u8,
        /// Its command as one line.
        command: String,
    },
    /// A job's process started.
    JobStarted {
        /// The job.
        id: JobId,
        /// Its queue.
        queue: String,
        /// Which attempt, from 1.
        attempt: u32,
        /// Its pid (and process group).
        pid: u32,
        /// How long it waited since it was submitted.
        waited_ms: u64,
    },
    /// A running job was asked to stop (SIGTERM sent).
    JobStopRequested {
        /// The job.
        id: JobId,
        /// Why: `cancel` or `shutdown`.
        reason: String,
        /// How long until SIGKILL.
        grace_ms: u64,
    },
    /// A job reached its terminal state.
    JobFinished {
        /// The job.
        id: JobId,
        /// Its queue.
        queue: String,
        /// The terminal state.
        state: JobState,
        /// Its exit code, if it exited.
        exit_code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// How long its last attempt ran, if it ran.
        ran_ms: Option<u64>,
        /// Why it ended so, when the exit status does not say.
        reason: Option<String>,
        /// What its last attempt used, when its executor could tell.
        usage: Option<crate::Usage>,
    },
    /// A job waits: for its prerequisites or its not-before time.
    JobWaiting {
        /// The job.
        id: JobId,
    },
    /// A job is ready to run and waits only for a free slot.
    JobQueued {
        /// The job.
        id: JobId,
    },
    /// A failed attempt will be retried.
    JobRetrying {
        /// The job.
        id: JobId,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// When the next attempt may start (`None`: as soon as a slot is free).
        retry_at: Option<Timestamp>,
        /// The failed attempt's exit code.
        exit_code: Option<i32>,
        /// The signal that killed the failed attempt.
        signal: Option<i32>,
    },
    /// A running preemptible job was frozen (SIGSTOP) to give its slot to
    /// a more urgent job.
    JobFrozen {
        /// The job frozen.
        id: JobId,
        /// The job it made room for.
        by: JobId,
    },
    /// A frozen job runs again (SIGCONT).
    JobThawed {
        /// The job.
        id: JobId,
    },
    /// A finished job's finish callback (`--on-finish`) ran. Its result
    /// never changes the job's.
    CallbackFinished {
        /// The job.
        id: JobId,
        /// `ok`, `failed` (it exited non-zero, was killed, or could not
        /// start) or `timed_out`.
        result: String,
        /// The callback's exit code, if it exited.
        exit_code: Option<i32>,
        /// How long it ran.
        ran_ms: u64,
        /// What went wrong, when something did: why it could not start,
        /// or the end of what it wrote to stderr.
        error: Option<String>,
    },
}

impl Activity {
    /// The event's PascalCase name, as `events --json` prints it.
    pub fn name(&self) -> &'static str {
        match self {
            Activity::SchedulerBoot { .. } => "SchedulerBoot",
            Activity::ShutdownBegin { .. } => "ShutdownBegin",
            Activity::ShutdownComplete { .. } => "ShutdownComplete",
            Activity::SystemTaskStart { .. } => "SystemTaskStart",
            Activity::SystemTaskExit { .. } => "SystemTaskExit",
            Activity::JobSubmitted { .. } => "JobSubmitted",
            Activity::JobStarted { .. } => "JobStarted",
            Activity::JobStopRequested { .. } => "JobStopRequested",
            Activity::JobFinished { .. } => "JobFinished",
            Activity::JobWaiting { .. } => "JobWaiting",
            Activity::JobQueued { .. } => "JobQueued",
            Activity::JobRetrying { .. } => "JobRetrying",
            Activity::CallbackFinished { .. } => "CallbackFinished",
            Activity::JobFrozen { .. } => "JobFrozen",
            Activity::JobThawed { .. } => "JobThawed",
        }
    }
}
