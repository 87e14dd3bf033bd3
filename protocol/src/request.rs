//! Requests a client sends after the handshake: one enum, one struct per
//! command, so the daemon dispatches with exactly one `match`.

use serde::{Deserialize, Serialize};

use crate::job::{JobId, JobSpec, JobState, LogStream};

/// A request. Variants are only ever appended (bincode numbers them by
/// position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Queue a job. Answered with [`crate::Response::Submitted`] once durable.
    Submit(SubmitRequest),
    /// Report jobs. Streaming: [`crate::Response::Jobs`] frames, then `End`.
    Status(StatusRequest),
    /// Cancel jobs. Answered with [`crate::Response::Cancelled`].
    Cancel(CancelRequest),
    /// Block until jobs end. Streaming: one [`crate::Response::JobEnded`] per
    /// job as it ends, then `End`.
    Wait(WaitRequest),
    /// Read a job's output. Streaming: [`crate::Response::LogChunk`] frames,
    /// then `End`.
    Logs(LogsRequest),
    /// Snapshot everything. Streaming: one [`crate::Response::State`], then
    /// [`crate::Response::Jobs`] frames, then `End`.
    DumpState,
    /// Begin a graceful shutdown. Answered with [`crate::Response::ShuttingDown`].
    Shutdown(ShutdownRequest),
    /// Read the activity log. Streaming: the recent [`crate::Response::Event`]s,
    /// then with `follow` new ones as they happen (with
    /// [`crate::Response::EventsMissed`] when the reader fell behind), then `End`.
    Events(EventsRequest),
    /// Queue several jobs in one durable step. Answered with
    /// [`crate::Response::SubmittedBatch`].
    SubmitBatch(SubmitBatchRequest),
    /// Create a queue, or change its limit. Answered with [`crate::Response::Queues`].
    QueueSet(QueueSetRequest),
    /// Remove an empty queue. Answered with [`crate::Response::Queues`].
    QueueRemove(QueueRemoveRequest),
    /// List the queues. Answered with [`crate::Response::Queues`].
    QueueList,
    /// Pause or resume queues. Answered with [`crate::Response::Queues`].
    Pause(PauseRequest),
    /// Queue a copy of each finished job. Answered with [`crate::Response::Restarted`].
    Restart(RestartRequest),
    /// Forget finished jobs and their output. Answered with [`crate::Response::Cleaned`].
    Clean(CleanRequest),
    /// Change a job that has not started. Answered with [`crate::Response::Jobs`].
    Edit(EditRequest),
    /// Set a running job's progress text. Answered with [`crate::Response::Ok`].
    Progress(ProgressRequest),
}

impl Request {
    /// True for requests answered by a series of frames ending in
    /// [`crate::Response::End`].
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Request::Status(_)
                | Request::Wait(_)
                | Request::Logs(_)
                | Request::DumpState
                | Request::Events(_)
        )
    }

    /// A short, stable name for the request's kind (for logs and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Submit(_) => "submit",
            Request::Status(_) => "status",
            Request::Cancel(_) => "cancel",
            Request::Wait(_) => "wait",
            Request::Logs(_) => "logs",
            Request::DumpState => "dump_state",
            Request::Shutdown(_) => "shutdown",
            Request::Events(_) => "events",
            Request::SubmitBatch(_) => "submit_batch",
            Request::QueueSet(_) => "queue_set",
            Request::QueueRemove(_) => "queue_remove",
            Request::QueueList => "queue_list",
            Request::Pause(_) => "pause",
            Request::Restart(_) => "restart",
            Request::Clean(_) => "clean",
            Request::Edit(_) => "edit",
            Request::Progress(_) => "progress",
        }
    }
}

/// Queue one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRequest {
    /// The job to queue.
    pub spec: JobSpec,
}

/// Report the given jobs, or every job when `ids` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRequest {
    /// The jobs to report; empty means all.
    pub ids: Vec<JobId>,
}

/// Cancel queued or running jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// The jobs to cancel.
    pub ids: Vec<JobId>,
}

/// Wait until every listed job has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRequest {
    /// The jobs to wait for.
    pub ids: Vec<JobId>,
}

/// Read one of a job's output files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    /// The job.
    pub id: JobId,
    /// Which file.
    pub stream: LogStream,
    /// Keep streaming new output until the job ends.
    pub follow: bool,
}

/// Begin a graceful shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownRequest {
    /// How long running jobs get after SIGTERM before SIGKILL; `None` uses the
    /// daemon's `--shutdown-timeout`.
    pub timeout_ms: Option<u64>,
}

/// Queue several jobs at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitBatchRequest {
    /// The jobs, in order; a dependency may name an earlier line as
    /// [`crate::DepRef::BatchLine`].
    pub specs: Vec<JobSpec>,
}

/// Create a queue or change its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSetRequest {
    /// The queue.
    pub name: String,
    /// Its new limit (`Some(None)`: only the global limit applies); `None`
    /// leaves it as it is (no limit of its own for a new queue).
    pub concurrency: Option<Option<u32>>,
    /// `true` for `queue add` (refused if it exists), `false` for `queue set`
    /// (refused if it does not).
    pub create: bool,
    /// What runs its jobs from now on; `None` leaves it as it is (`local`
    /// for a new queue).
    pub executor: Option<crate::ExecutorSpec>,
}

/// Remove a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRemoveRequest {
    /// The queue; refused while it holds unfinished jobs.
    pub name: String,
}

/// Pause or resume queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRequest {
    /// The queues; empty means every queue.
    pub queues: Vec<String>,
    /// `true` pauses, `false` resumes.
    pub paused: bool,
    /// Also SIGSTOP (on pause) or SIGCONT (on resume) the running jobs.
    pub running: bool,
}

/// Queue copies of finished jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRequest {
    /// The jobs to copy.
    pub ids: Vec<JobId>,
}

/// Forget finished jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanRequest {
    /// Only jobs in these (terminal) states; empty means every terminal state.
    pub states: Vec<JobState>,
    /// Only jobs that finished at least this long ago.
    pub older_than_ms: Option<u64>,
}

/// Change a job that has not started yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditRequest {
    /// The job.
    pub id: JobId,
    /// A new priority.
    pub priority: Option<u8>,
    /// A new queue.
    pub queue: Option<String>,
    /// New labels (replacing the old ones).
    pub labels: Option<Vec<(String, String)>>,
}

/// Report progress from inside a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRequest {
    /// The job (a job knows its id from `MAYFLY_JOB_ID`).
    pub id: JobId,
    /// One line of text, shown by `status`.
    pub text: String,
}

/// Read the activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsRequest {
    /// After the recent events, keep streaming new ones until the daemon stops.
    pub follow: bool,
}

impl From<EventsRequest> for Request {
    fn from(r: EventsRequest) -> Self {
        Request::Events(r)
    }
}

impl From<SubmitRequest> for Request {
    fn from(r: SubmitRequest) -> Self {
        Request::Submit(r)
    }
}

impl From<StatusRequest> for Request {
    fn from(r: StatusRequest) -> Self {
        Request::Status(r)
    }
}

impl From<CancelRequest> for Request {
    fn from(r: CancelRequest) -> Self {
        Request::Cancel(r)
    }
}

impl From<WaitRequest> for Request {
    fn from(r: WaitRequest) -> Self {
        Request::Wait(r)
    }
}

impl From<LogsRequest> for Request {
    fn from(r: LogsRequest) -> Self {
        Request::Logs(r)
    }
}

impl From<ShutdownRequest> for Request {
    fn from(r: ShutdownRequest) -> Self {
        Request::Shutdown(r)
    }
}
