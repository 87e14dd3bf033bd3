//! Responses the daemon sends: one frame per unary request, or a series of
//! frames ending in [`Response::End`] for a streaming one.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::activity::ActivityRecord;
use crate::job::{JobId, JobInfo, JobInfoRef, JobState, QueueInfo, SchedulerInfo, SystemTaskInfo};

/// A response frame. Variants are only ever appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Response {
    /// The job is queued (and durable) under this id.
    Submitted {
        /// The new job's id.
        id: JobId,
    },
    /// A batch of jobs (part of a `Status` or `DumpState` stream).
    Jobs(Vec<JobInfo>),
    /// What happened to each job of a `Cancel`, in request order.
    Cancelled(Vec<(JobId, CancelOutcome)>),
    /// One job of a `Wait` has ended.
    JobEnded(Box<JobInfo>),
    /// A piece of a job's output (part of a `Logs` stream).
    LogChunk(Vec<u8>),
    /// The head of a `DumpState` stream: everything but the jobs.
    State(StateHeader),
    /// The daemon has begun a graceful shutdown.
    ShuttingDown,
    /// The end of a streaming response.
    End,
    /// The request failed; for a streaming request this ends the stream.
    Error(ErrorResponse),
    /// One activity-log entry (part of an `Events` stream).
    Event(ActivityRecord),
    /// The reader fell behind and this many events were dropped for it (part
    /// of an `Events` stream); the daemon never waits for a slow reader.
    EventsMissed {
        /// How many.
        count: u64,
    },
    /// The jobs of a batch are queued (and durable) under these ids, in order.
    SubmittedBatch {
        /// The new ids.
        ids: Vec<JobId>,
    },
    /// Every queue, after the change.
    Queues(Vec<QueueInfo>),
    /// `(old, new)` for each restarted job.
    Restarted(Vec<(JobId, JobId)>),
    /// The jobs that were forgotten.
    Cleaned {
        /// Their ids.
        ids: Vec<JobId>,
    },
    /// Done; nothing to report.
    Ok,
}

/// A [`Response::Jobs`] frame over borrowed jobs ([`JobInfoRef`]).
///
/// It encodes to the very bytes of the `Response::Jobs` it stands for, so the
/// receiver decodes an ordinary [`Response::Jobs`]; the daemon lists its jobs
/// through it without copying each one into a [`JobInfo`] first.
#[derive(Debug, Clone, Copy)]
pub struct JobsRef<'a>(pub &'a [JobInfoRef<'a>]);

impl JobsRef<'_> {
    /// The position of [`Response::Jobs`] in [`Response`] (bincode numbers
    /// variants by position; a wire test pins that the two agree).
    const VARIANT: u32 = 1;
}

impl Serialize for JobsRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_variant("Response", Self::VARIANT, "Jobs", self.0)
    }
}

/// What a cancel did to one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum CancelOutcome {
    /// It had not started; it is now `cancelled`.
    Cancelled,
    /// It was running; its process group got SIGTERM (SIGKILL follows after
    /// the grace period) and it will end `cancelled`.
    Signalled,
    /// It had already ended in this state; nothing was done.
    AlreadyEnded(JobState),
    /// No job has this id.
    NotFound,
}

/// The non-job part of a `DumpState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct StateHeader {
    /// The scheduler's settings and counters.
    pub scheduler: SchedulerInfo,
    /// Every queue.
    pub queues: Vec<QueueInfo>,
    /// Every system task.
    pub system_tasks: Vec<SystemTaskInfo>,
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ErrorResponse {
    /// What class of failure, for the client's exit code and wording.
    pub kind: ErrorKind,
    /// One line: what failed and what to do.
    pub message: String,
}

impl ErrorResponse {
    /// Builds an error response.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Classes of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ErrorKind {
    /// The request is malformed or names something invalid (bad priority, …).
    BadRequest,
    /// A named job does not exist.
    NotFound,
    /// The daemon is shutting down and accepts no new work.
    ShuttingDown,
    /// The daemon could not make the change durable (disk full, I/O error).
    Storage,
    /// The frame could not be decoded or broke the protocol.
    Protocol,
    /// Anything else; the daemon's log has details.
    Internal,
    /// A limit of the daemon's was reached (jobs held, bytes of a job,
    /// connections, …); the message names it and what to do.
    Limit,
    /// The request is well formed, but what it names is not in a state
    /// that allows it now (a job that has started, a queue that still
    /// holds jobs or already exists); the message says what to do first.
    Conflict,
}
