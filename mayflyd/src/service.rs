//! The service API: [`Mayfly`], the one typed handle every front door uses.
//!
//! A front door (the Unix-socket protocol in [`crate::session`], gRPC, A2A)
//! turns its wire format into calls on a [`Mayfly`] and its results back
//! into its wire format; none reaches into the driver's messages, so every
//! door offers the same operations with the same meaning, errors and
//! durability. Adding a door is adding a module that holds a `Mayfly`.
//!
//! Conventions:
//! - A method that changes state returns an [`Answer`] in two steps: awaiting
//!   the method queues the request (in the order the door calls it, which is
//!   how pipelined requests keep their order), awaiting the `Answer` gives
//!   the result, once the change is durable. `mayfly.submit(spec).await`
//!   then `.await?`.
//! - Errors are [`ServiceError`]s: a kind (not found, bad request, a limit,
//!   shutting down, …) and one line that says what failed and what to do.
//!   Doors map the kind to their own codes and keep the text.
//! - Streams (a wait, a listing, a job's output, the activity log) are
//!   pulled by the door: nothing is produced faster than it is taken,
//!   except what the driver must never wait for (a wait's few reports).
//! - Reads never enter the commit pipeline: a listing or a job's record is
//!   answered from the driver's state at once, and the queue counts the
//!   metrics need are a view the driver publishes ([`Mayfly::view`]).

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mayfly_protocol::{
    ActivityRecord, CancelOutcome, CleanRequest, EditRequest, ErrorKind, ErrorResponse, JobId,
    JobInfo, JobInfoRef, JobSpec, JobState, LogStream, PauseRequest, QueueInfo, QueueSetRequest,
    SchedulerInfo, StateHeader, SystemTaskInfo,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::InternalMsg;

/// Why an operation failed: a kind, and one line that says what failed and
/// what to do (what every door shows its client).
pub type ServiceError = ErrorResponse;

/// The result of an operation.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// The error of an operation the daemon can no longer answer.
pub fn shutting_down() -> ServiceError {
    ServiceError::new(ErrorKind::ShuttingDown, "the daemon is shutting down")
}

/// Where the driver sends one operation's result.
pub type Respond<T> = oneshot::Sender<ServiceResult<T>>;

/// The result of an operation, on its way: it comes once the change is
/// durable (or refused). If the daemon stops first, it is a
/// [`ErrorKind::ShuttingDown`] error.
#[derive(Debug)]
pub struct Answer<T>(AnswerInner<T>);

/// What an [`Answer`] holds.
#[derive(Debug)]
enum AnswerInner<T> {
    /// The driver will answer here.
    Pending(oneshot::Receiver<ServiceResult<T>>),
    /// Known already (refused before it reached the driver).
    Ready(Option<ServiceResult<T>>),
}

impl<T> Answer<T> {
    /// An answer known at once.
    pub fn ready(result: ServiceResult<T>) -> Self {
        Self(AnswerInner::Ready(Some(result)))
    }
}

// Nothing in an `Answer` is pinned: the receiver is polled through `&mut`.
impl<T> Unpin for Answer<T> {}

impl<T> Future for Answer<T> {
    type Output = ServiceResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            AnswerInner::Pending(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or_else(|_| Err(shutting_down()))),
            AnswerInner::Ready(result) => {
                Poll::Ready(result.take().unwrap_or_else(|| Err(shutting_down())))
            }
        }
    }
}

/// Which jobs a listing takes: all or the ones named, narrowed by queue,
/// state and labels (the filters of `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// These jobs, in this order (every job, in id order, when empty).
    /// Unknown or repeated ids fail the listing.
    pub ids: Vec<JobId>,
    /// Only jobs of this queue.
    pub queue: Option<String>,
    /// Only jobs in one of these states (any state when empty).
    pub states: Vec<JobState>,
    /// Only jobs with every one of these labels.
    pub labels: Vec<(String, String)>,
}

impl ListQuery {
    /// True when `job` passes the filters (the ids are not a filter).
    pub fn admits(&self, job: &JobInfoRef<'_>) -> bool {
        self.queue.as_deref().is_none_or(|q| q == job.queue)
            && (self.states.is_empty() || self.states.contains(&job.state))
            && self
                .labels
                .iter()
                .all(|(k, v)| job.labels.iter().any(|(jk, jv)| jk == k && jv == v))
    }
}

/// Where the pages of a listing go, and how the door asks for the next one.
/// The driver sends one page, then parks the sink with where it stopped
/// ([`ListSink::park`]); the door gives the resulting [`ListCursor`] back
/// (through [`Mayfly::list_more`]) when it is ready for the next page. So
/// a listing in flight holds one page.
pub trait ListSink: Send + std::fmt::Debug + std::any::Any {
    /// The head of a `dump-state` listing (everything but the jobs).
    fn header(&mut self, header: StateHeader);
    /// One page of jobs. Returns how many bytes it took (to size the next
    /// page at about 64 KiB), or `None` when the listing has ended (the sink
    /// sent an error: the page cannot be sent).
    fn page(&mut self, jobs: &[JobInfoRef<'_>]) -> Option<usize>;
    /// The listing goes on from `next` once the door is ready: the sink
    /// hands `ListCursor { sink: self, next }` to its door.
    fn park(self: Box<Self>, next: NextPage);
    /// The listing is complete.
    fn end(&mut self);
    /// The listing failed.
    fn error(&mut self, error: ServiceError);
    /// True when nobody listens any more (the listing stops).
    fn is_closed(&self) -> bool;
}

/// Where a listing stopped until its door is ready for more.
#[derive(Debug)]
pub struct ListCursor {
    /// Where its pages go.
    pub sink: Box<dyn ListSink>,
    /// Where it goes on from.
    pub next: NextPage,
}

/// What a listing has yet to send.
#[derive(Debug)]
pub struct NextPage {
    /// Which jobs are left.
    pub rest: ListRest,
    /// How many jobs the next page takes: adjusted after each page so that
    /// a page comes to about 64 KiB however large the jobs are.
    pub per_page: usize,
    /// The filters.
    pub query: Arc<ListQuery>,
}

/// The jobs a listing has yet to send.
#[derive(Debug)]
pub enum ListRest {
    /// Every job after this id (ids grow in submission order).
    After(JobId),
    /// These ids, from `next` on (ids asked for by name).
    Ids {
        /// The ids asked for, in their order.
        ids: Vec<JobId>,
        /// The first one not yet sent.
        next: usize,
    },
}

/// Where the reports of a `wait` go: one per job as it ends (held until its
/// end is durable), then the end.
pub trait WaitSink: Send + Sync + std::fmt::Debug + std::any::Any {
    /// A job ended.
    fn ended(&self, job: JobInfo);
    /// Every job has ended.
    fn end(&self);
    /// The wait failed (an unknown job, or the daemon is stopping).
    fn error(&self, error: ServiceError);
}

/// An operation for the driver: the typed form of every request that needs
/// the daemon's state.
#[derive(Debug)]
pub enum Command {
    /// Queue a job.
    Submit {
        /// It.
        spec: JobSpec,
        /// Its id, once durable.
        respond: Respond<JobId>,
    },
    /// Queue jobs in one durable step.
    SubmitBatch {
        /// Them; a dependency may name an earlier line of the batch.
        specs: Vec<JobSpec>,
        /// Their ids, in order.
        respond: Respond<Vec<JobId>>,
    },
    /// Cancel jobs.
    Cancel {
        /// Them.
        ids: Vec<JobId>,
        /// What happened to each.
        respond: Respond<Vec<(JobId, CancelOutcome)>>,
    },
    /// Create a queue or change its settings.
    QueueSet {
        /// What to set.
        request: QueueSetRequest,
        /// Every queue after the change.
        respond: Respond<Vec<QueueInfo>>,
    },
    /// Remove an empty queue.
    QueueRemove {
        /// Its name.
        name: String,
        /// Every queue after the change.
        respond: Respond<Vec<QueueInfo>>,
    },
    /// List the queues.
    Queues {
        /// Every queue.
        respond: Respond<Vec<QueueInfo>>,
    },
    /// Pause or resume queues.
    Pause {
        /// Which, and how.
        request: PauseRequest,
        /// Every queue after the change.
        respond: Respond<Vec<QueueInfo>>,
    },
    /// Queue a copy of each finished job.
    Restart {
        /// The jobs.
        ids: Vec<JobId>,
        /// `(old, new)` for each.
        respond: Respond<Vec<(JobId, JobId)>>,
    },
    /// Forget finished jobs and their output.
    Clean {
        /// Which.
        request: CleanRequest,
        /// The ids forgotten.
        respond: Respond<Vec<JobId>>,
    },
    /// Change a job that has not started.
    Edit {
        /// What to change.
        request: EditRequest,
        /// The job after the change.
        respond: Respond<JobInfo>,
    },
    /// Set a job's progress text.
    Progress {
        /// The job.
        id: JobId,
        /// The text.
        text: String,
        /// Done.
        respond: Respond<()>,
    },
    /// Begin a graceful shutdown.
    Shutdown {
        /// SIGTERM-to-SIGKILL grace; `None` uses `--shutdown-timeout`.
        timeout: Option<Duration>,
        /// What asked for it, for the activity log.
        reason: String,
        /// Done.
        respond: Respond<()>,
    },
    /// One job's record.
    Job {
        /// The job.
        id: JobId,
        /// Its record.
        respond: Respond<JobInfo>,
    },
    /// A listing of jobs (with `header`, a `dump-state`).
    List {
        /// Which jobs.
        query: ListQuery,
        /// Start with the queues, system tasks and counters.
        header: bool,
        /// Where the pages go.
        sink: Box<dyn ListSink>,
    },
    /// Report jobs as they end.
    Wait {
        /// The jobs.
        ids: Vec<JobId>,
        /// Where the reports go.
        sink: Arc<dyn WaitSink>,
    },
}

impl Command {
    /// A short, stable name for the command's kind (for logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Submit { .. } => "submit",
            Command::SubmitBatch { .. } => "submit_batch",
            Command::Cancel { .. } => "cancel",
            Command::QueueSet { .. } => "queue_set",
            Command::QueueRemove { .. } => "queue_remove",
            Command::Queues { .. } => "queue_list",
            Command::Pause { .. } => "pause",
            Command::Restart { .. } => "restart",
            Command::Clean { .. } => "clean",
            Command::Edit { .. } => "edit",
            Command::Progress { .. } => "progress",
            Command::Shutdown { .. } => "shutdown",
            Command::Job { .. } => "job",
            Command::List { header: false, .. } => "status",
            Command::List { header: true, .. } => "dump_state",
            Command::Wait { .. } => "wait",
        }
    }
}

/// What the driver publishes of its state after each step, for readers
/// that must not wait on it (metrics, health).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// Every queue, with its counts by state.
    pub queues: Vec<QueueInfo>,
    /// The scheduler's settings and counters (`None` before the driver
    /// first publishes).
    pub scheduler: Option<SchedulerInfo>,
    /// The system tasks.
    pub system_tasks: Vec<SystemTaskInfo>,
}

/// How many frames a job-output or activity stream may have waiting for
/// its door: a slow reader makes the stream wait (output) or miss events
/// (told how many), never the daemon.
const STREAM_BACKLOG: usize = 16;

/// How often a followed job's output file is looked at for more.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Size of one chunk of job output.
const LOG_CHUNK: usize = 64 * 1024;

/// One item of the activity log stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EventItem {
    /// An event.
    Event(ActivityRecord),
    /// The reader fell behind and this many events were dropped for it.
    Missed(u64),
}

/// The handle: see the module documentation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mayfly {
    /// The driver's command channel (bounded: callers wait while the driver
    /// is busy).
    commands: mpsc::Sender<Command>,
    /// The driver's internal channel (activity subscriptions, listings'
    /// next pages, shutdown from inside the daemon).
    internal: mpsc::UnboundedSender<InternalMsg>,
    /// Where job output lives.
    logs_dir: PathBuf,
    /// What the driver publishes after each step.
    view: watch::Receiver<Arc<View>>,
}

impl Mayfly {
    /// A handle over the driver's channels.
    pub fn new(
        commands: mpsc::Sender<Command>,
        internal: mpsc::UnboundedSender<InternalMsg>,
        logs_dir: PathBuf,
        view: watch::Receiver<Arc<View>>,
    ) -> Self {
        Self {
            commands,
            internal,
            logs_dir,
            view,
        }
    }

    /// Sends the command `make` builds around a reply channel; the answer
    /// comes on it.
    async fn ask<T>(&self, make: impl FnOnce(Respond<T>) -> Command) -> Answer<T> {
        let (respond, rx) = oneshot::channel();
        if self.commands.send(make(respond)).await.is_err() {
            return Answer::ready(Err(shutting_down()));
        }
        Answer(AnswerInner::Pending(rx))
    }

    /// Queues a job; its id comes once it is durable. A working directory
    /// that is not a directory is refused here (the core checks the rest).
    pub async fn submit(&self, spec: JobSpec) -> Answer<JobId> {
        if let Err(e) = check_working_dirs(std::slice::from_ref(&spec)) {
            return Answer::ready(Err(e));
        }
        self.ask(|respond| Command::Submit { spec, respond }).await
    }

    /// Queues jobs in one durable step, all or none.
    pub async fn submit_batch(&self, specs: Vec<JobSpec>) -> Answer<Vec<JobId>> {
        if let Err(e) = check_working_dirs(&specs) {
            return Answer::ready(Err(e));
        }
        self.ask(|respond| Command::SubmitBatch { specs, respond })
            .await
    }

    /// Cancels jobs: queued ones end at once, running ones get SIGTERM.
    pub async fn cancel(&self, ids: Vec<JobId>) -> Answer<Vec<(JobId, CancelOutcome)>> {
        self.ask(|respond| Command::Cancel { ids, respond }).await
    }

    /// Creates a queue or changes its settings.
    pub async fn queue_set(&self, request: QueueSetRequest) -> Answer<Vec<QueueInfo>> {
        self.ask(|respond| Command::QueueSet { request, respond })
            .await
    }

    /// Removes an empty queue.
    pub async fn queue_remove(&self, name: String) -> Answer<Vec<QueueInfo>> {
        self.ask(|respond| Command::QueueRemove { name, respond })
            .await
    }

    /// Every queue.
    pub async fn queues(&self) -> Answer<Vec<QueueInfo>> {
        self.ask(|respond| Command::Queues { respond }).await
    }

    /// Pauses or resumes queues (with `running`, also their running jobs).
    pub async fn pause(&self, request: PauseRequest) -> Answer<Vec<QueueInfo>> {
        self.ask(|respond| Command::Pause { request, respond })
            .await
    }

    /// Queues a copy of each finished job.
    pub async fn restart(&self, ids: Vec<JobId>) -> Answer<Vec<(JobId, JobId)>> {
        self.ask(|respond| Command::Restart { ids, respond }).await
    }

    /// Forgets finished jobs and their output.
    pub async fn clean(&self, request: CleanRequest) -> Answer<Vec<JobId>> {
        self.ask(|respond| Command::Clean { request, respond })
            .await
    }

    /// Changes a job that has not started.
    pub async fn edit(&self, request: EditRequest) -> Answer<JobInfo> {
        self.ask(|respond| Command::Edit { request, respond }).await
    }

    /// Sets a job's progress text.
    pub async fn progress(&self, id: JobId, text: String) -> Answer<()> {
        self.ask(|respond| Command::Progress { id, text, respond })
            .await
    }

    /// Begins a graceful shutdown.
    pub async fn shutdown(&self, timeout: Option<Duration>, reason: String) -> Answer<()> {
        self.ask(|respond| Command::Shutdown {
            timeout,
            reason,
            respond,
        })
        .await
    }

    /// One job's record.
    pub async fn job(&self, id: JobId) -> Answer<JobInfo> {
        self.ask(|respond| Command::Job { id, respond }).await
    }

    /// Starts a listing into `sink` (see [`ListSink`]); with `header`, it is
    /// a `dump-state`.
    pub async fn list_into(&self, query: ListQuery, header: bool, sink: Box<dyn ListSink>) {
        let command = Command::List {
            query,
            header,
            sink,
        };
        if let Err(mpsc::error::SendError(Command::List { mut sink, .. })) =
            self.commands.send(command).await
        {
            sink.error(shutting_down());
        }
    }

    /// Hands a listing's cursor back when its door is ready for the next
    /// page.
    pub fn list_more(&self, cursor: ListCursor) {
        if let Err(mpsc::error::SendError(InternalMsg::ListMore(mut cursor))) =
            self.internal.send(InternalMsg::ListMore(cursor))
        {
            cursor.sink.error(shutting_down());
        }
    }

    /// A listing as typed pages, for doors that want [`JobInfo`]s.
    pub async fn list(&self, query: ListQuery) -> JobPages {
        let (tx, rx) = mpsc::unbounded_channel();
        self.list_into(query, false, Box::new(TypedPages(tx))).await;
        JobPages {
            rx,
            mayfly: self.clone(),
            done: false,
        }
    }

    /// Reports jobs into `sink` as they end.
    pub async fn wait_into(&self, ids: Vec<JobId>, sink: Arc<dyn WaitSink>) {
        if let Err(mpsc::error::SendError(Command::Wait { sink, .. })) =
            self.commands.send(Command::Wait { ids, sink }).await
        {
            sink.error(shutting_down());
        }
    }

    /// Jobs as they end (each once its end is durable), then the end of
    /// the stream; an unknown id is an error item.
    pub async fn wait(&self, ids: Vec<JobId>) -> mpsc::UnboundedReceiver<ServiceResult<JobInfo>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.wait_into(ids, Arc::new(TypedWait(tx))).await;
        rx
    }

    /// A job's output (`stream`): what its file holds, and with `follow`
    /// what is appended until the job ends. Chunks of up to 64 KiB.
    pub async fn logs(
        &self,
        id: JobId,
        stream: LogStream,
        follow: bool,
    ) -> mpsc::Receiver<ServiceResult<Vec<u8>>> {
        let (tx, rx) = mpsc::channel(STREAM_BACKLOG);
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.serve_logs(id, stream, follow, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    /// The body of [`Mayfly::logs`]: Ok when done or when the reader left.
    async fn serve_logs(
        &self,
        id: JobId,
        stream: LogStream,
        follow: bool,
        out: &mpsc::Sender<ServiceResult<Vec<u8>>>,
    ) -> ServiceResult<()> {
        // The job must exist; the driver says so (or why not).
        self.job(id).await.await?;
        let mut ended = if follow {
            Some(self.wait(vec![id]).await)
        } else {
            None
        };
        let path = crate::exec::log_path(&self.logs_dir, id, stream);
        let mut offset = 0u64;
        loop {
            match send_new_output(&path, &mut offset, out).await {
                Ok(true) => {}
                Ok(false) => return Ok(()), // the reader left
                Err(e) => {
                    return Err(ServiceError::new(
                        ErrorKind::Internal,
                        format!("cannot read {}: {e}", path.display()),
                    ));
                }
            }
            let Some(rx) = ended.as_mut() else {
                return Ok(());
            };
            tokio::select! {
                report = rx.recv() => match report {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    // The wait ended: one last read, then stop.
                    None => ended = None,
                },
                () = tokio::time::sleep(FOLLOW_POLL) => {}
                () = out.closed() => return Ok(()),
            }
        }
    }

    /// The activity log: the recent events, then with `follow` each new one
    /// until the daemon stops. A reader that falls behind is told how many
    /// events it missed.
    pub async fn events(&self, follow: bool) -> mpsc::Receiver<ServiceResult<EventItem>> {
        let (tx, rx) = mpsc::channel(STREAM_BACKLOG);
        let (subscribed, subscription) = oneshot::channel();
        if self
            .internal
            .send(InternalMsg::SubscribeEvents(subscribed))
            .is_err()
        {
            let _ = tx.try_send(Err(shutting_down()));
            return rx;
        }
        tokio::spawn(async move {
            let Ok((recent, mut live)) = subscription.await else {
                let _ = tx.send(Err(shutting_down())).await;
                return;
            };
            for record in recent {
                if tx.send(Ok(EventItem::Event(record))).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            loop {
                let item = tokio::select! {
                    next = live.recv() => match next {
                        Ok(record) => EventItem::Event(record),
                        Err(RecvError::Lagged(count)) => EventItem::Missed(count),
                        Err(RecvError::Closed) => return,
                    },
                    () = tx.closed() => return,
                };
                if tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// What the driver published last: queues with their counts, the
    /// scheduler's counters, the system tasks.
    pub fn view(&self) -> Arc<View> {
        self.view.borrow().clone()
    }
}

/// Sends whatever `path` holds past `offset`. Returns false if the reader
/// has gone. A file that does not exist yet (the job has not started)
/// holds nothing.
async fn send_new_output(
    path: &Path,
    offset: &mut u64,
    out: &mpsc::Sender<ServiceResult<Vec<u8>>>,
) -> std::io::Result<bool> {
    let opened = tokio::fs::OpenOptions::from(crate::private::read_options())
        .open(path)
        .await
        .map_err(crate::private::explain_link);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    file.seek(std::io::SeekFrom::Start(*offset)).await?;
    let mut buf = vec![0u8; LOG_CHUNK];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(true);
        }
        *offset += n as u64;
        if out.send(Ok(buf[..n].to_vec())).await.is_err() {
            return Ok(false);
        }
    }
}

/// Refuses specs whose working directory is not a directory: the core
/// checks what it can without I/O (an absolute path), this checks the file
/// system, so the mistake is told at submit, naming the field, instead of
/// failing the job when it starts. Each distinct directory is looked at
/// once.
fn check_working_dirs(specs: &[JobSpec]) -> Result<(), ServiceError> {
    let mut checked = HashSet::new();
    for (line, spec) in specs.iter().enumerate() {
        if !spec.cwd.starts_with('/') || !checked.insert(spec.cwd.as_str()) {
            continue; // the core refuses a relative one, naming it
        }
        let problem = match std::fs::metadata(&spec.cwd) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => "is not a directory".to_string(),
            Err(e) => format!("cannot be used: {e}"),
        };
        let at = if specs.len() > 1 {
            format!("line {}: ", line + 1)
        } else {
            String::new()
        };
        return Err(ServiceError::new(
            ErrorKind::BadRequest,
            format!(
                "{at}working directory {} {problem}; give an existing directory with --cwd",
                crate::core::excerpt(&spec.cwd)
            ),
        ));
    }
    Ok(())
}

/// A listing as typed pages: what [`Mayfly::list`] returns. Each call to
/// [`JobPages::next`] gives the next page; the driver makes a page only
/// when it is asked for.
#[derive(Debug)]
pub struct JobPages {
    /// Where the pages come.
    rx: mpsc::UnboundedReceiver<PageItem>,
    /// To ask for the next page.
    mayfly: Mayfly,
    /// True once the listing has ended.
    done: bool,
}

/// What a [`TypedPages`] sink hands on.
#[derive(Debug)]
enum PageItem {
    /// A page.
    Jobs(Vec<JobInfo>),
    /// The listing goes on from here when asked.
    More(ListCursor),
    /// The end.
    End,
    /// A failure.
    Error(ServiceError),
}

impl JobPages {
    /// The next page, `None` at the end.
    pub async fn next(&mut self) -> Option<ServiceResult<Vec<JobInfo>>> {
        while !self.done {
            match self.rx.recv().await {
                Some(PageItem::Jobs(jobs)) => return Some(Ok(jobs)),
                Some(PageItem::More(cursor)) => self.mayfly.list_more(cursor),
                Some(PageItem::End) | None => self.done = true,
                Some(PageItem::Error(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }

    /// Every remaining job, for listings known to be small.
    pub async fn collect(mut self) -> ServiceResult<Vec<JobInfo>> {
        let mut all = Vec::new();
        while let Some(page) = self.next().await {
            all.extend(page?);
        }
        Ok(all)
    }
}

/// The [`ListSink`] behind [`JobPages`].
#[derive(Debug)]
struct TypedPages(mpsc::UnboundedSender<PageItem>);

impl ListSink for TypedPages {
    fn header(&mut self, _header: StateHeader) {}

    fn page(&mut self, jobs: &[JobInfoRef<'_>]) -> Option<usize> {
        let infos: Vec<JobInfo> = jobs.iter().map(JobInfoRef::to_info).collect();
        let size = mayfly_protocol::frame_size(&mayfly_protocol::JobsRef(jobs));
        self.0.send(PageItem::Jobs(infos)).ok().map(|()| size)
    }

    fn park(self: Box<Self>, next: NextPage) {
        let tx = self.0.clone();
        let _ = tx.send(PageItem::More(ListCursor { sink: self, next }));
    }

    fn end(&mut self) {
        let _ = self.0.send(PageItem::End);
    }

    fn error(&mut self, error: ServiceError) {
        let _ = self.0.send(PageItem::Error(error));
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// The [`WaitSink`] behind [`Mayfly::wait`].
#[derive(Debug)]
struct TypedWait(mpsc::UnboundedSender<ServiceResult<JobInfo>>);

impl WaitSink for TypedWait {
    fn ended(&self, job: JobInfo) {
        let _ = self.0.send(Ok(job));
    }

    fn end(&self) {
        // Dropping the last sender ends the stream; nothing to send.
    }

    fn error(&self, error: ServiceError) {
        let _ = self.0.send(Err(error));
    }
}
