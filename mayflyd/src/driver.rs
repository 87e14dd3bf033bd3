//! The driver: the one task that owns the scheduler core.
//!
//! Sessions, the executor, signal handlers and system tasks talk to the driver
//! only through messages; nothing else touches job state, so there is no
//! shared lock on the request path. The loop:
//!
//! 1. wait for a message or the core's next deadline;
//! 2. take a *batch*: the first client command and every further one already
//!    waiting, for at most one quantum (`--quantum`), so a flood of submits
//!    cannot starve timers and job exits;
//! 3. for each command: `decide`, append the events to the log, `apply`;
//!    replies are held back;
//! 4. commit the batch (one fsync for the whole batch, once the write-ahead
//!    log is wired in), then release the replies;
//! 5. start whatever may start and carry out the core's actions.
//!
//! Replies and effects leave the driver only after step 4, so no client ever
//! hears of a change that is not durable.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use mayfly_protocol::{
    CancelRequest, ErrorKind, ErrorResponse, JobId, JobInfo, Request, Response, StateHeader,
    StatusRequest, SubmitRequest, Timestamp, WaitRequest,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::core::{Action, Core, CoreError, Event};
use crate::executor::{Executor, JobExit};

/// Where a request's response frames go. Unbounded on purpose: the driver
/// must never wait on a slow client; what it sends is bounded by the request
/// (one frame, or the listing it asked for).
pub type Reply = mpsc::UnboundedSender<Response>;

/// How many jobs go in one `Jobs` frame of a listing.
const JOBS_PER_FRAME: usize = 1000;

/// A command from a client session.
#[derive(Debug)]
pub struct ClientMsg {
    /// The request.
    pub request: Request,
    /// Where its response frames go.
    pub reply: Reply,
}

/// A system task's body: given a context, runs until it returns.
pub type SystemTaskFn = Box<
    dyn FnOnce(SystemContext) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send,
>;

/// What a system task gets to work with.
#[derive(Debug, Clone)]
pub struct SystemContext {
    /// Cancelled when the daemon shuts down; the task should return soon after.
    pub shutdown: CancellationToken,
}

/// A message from inside the daemon (not a client).
pub enum InternalMsg {
    /// Begin a graceful shutdown; `None` uses the configured timeout.
    Shutdown(Option<Duration>),
    /// Start a system task at priority 0.
    SpawnSystem {
        /// Its name, shown in `dump-state`.
        name: String,
        /// Its body.
        task: SystemTaskFn,
    },
    /// A system task returned.
    SystemExited {
        /// Its name.
        name: String,
        /// False when it returned an error.
        ok: bool,
    },
}

impl std::fmt::Debug for InternalMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InternalMsg::Shutdown(t) => f.debug_tuple("Shutdown").field(t).finish(),
            InternalMsg::SpawnSystem { name, .. } => {
                f.debug_struct("SpawnSystem").field("name", name).finish()
            }
            InternalMsg::SystemExited { name, ok } => f
                .debug_struct("SystemExited")
                .field("name", name)
                .field("ok", ok)
                .finish(),
        }
    }
}

/// Settings the driver needs beyond the core's.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The longest one batch of client commands may take.
    pub quantum: Duration,
    /// Default grace between SIGTERM and SIGKILL at shutdown.
    pub shutdown_timeout: Duration,
    /// Where job output lives (for `logs`).
    pub logs_dir: PathBuf,
}

/// The receiving ends of the driver's channels.
#[derive(Debug)]
pub struct DriverInbox {
    /// Client commands (bounded: sessions wait when the driver is busy).
    pub clients: mpsc::Receiver<ClientMsg>,
    /// Internal messages.
    pub internal: mpsc::UnboundedReceiver<InternalMsg>,
    /// A sender onto `internal`, so system tasks can report their exit.
    pub internal_tx: mpsc::UnboundedSender<InternalMsg>,
    /// Job exits from the executor.
    pub exits: mpsc::UnboundedReceiver<JobExit>,
}

/// A pending `wait`: the jobs it still waits for and where to report.
#[derive(Debug)]
struct WaitGroup {
    /// Jobs not yet ended.
    remaining: usize,
    /// Where `JobEnded` and `End` go.
    reply: Reply,
}

/// The driver task's state.
pub struct Driver {
    /// The scheduler core: the only copy of job state.
    core: Core,
    /// Starts and signals processes.
    executor: Executor,
    /// Driver settings.
    config: DriverConfig,
    /// Incoming messages.
    inbox: DriverInbox,
    /// Where system tasks report their exit (our own inbox).
    internal_tx: mpsc::UnboundedSender<InternalMsg>,
    /// Replies held until the batch is committed.
    held: Vec<(Reply, Response)>,
    /// Pending waits by id.
    wait_groups: HashMap<u64, WaitGroup>,
    /// Which waits each job has.
    waiters: HashMap<JobId, Vec<u64>>,
    /// Next wait-group id.
    next_wait: u64,
    /// Cancelled when shutdown begins: listeners stop accepting.
    stop_accepting: CancellationToken,
    /// Cancelled when the driver has finished: system tasks and sessions stop.
    shutdown: CancellationToken,
    /// Tracks system tasks.
    tracker: TaskTracker,
    /// When a shutdown gives up waiting for job processes.
    give_up_at: Option<Instant>,
}

impl Driver {
    /// A driver over `core`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        core: Core,
        executor: Executor,
        config: DriverConfig,
        inbox: DriverInbox,
        stop_accepting: CancellationToken,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            core,
            executor,
            config,
            internal_tx: inbox.internal_tx.clone(),
            inbox,
            held: Vec::new(),
            wait_groups: HashMap::new(),
            waiters: HashMap::new(),
            next_wait: 0,
            stop_accepting,
            shutdown,
            tracker,
            give_up_at: None,
        }
    }

    /// Runs until a graceful shutdown has stopped every job; returns the core
    /// (for a final snapshot or `--dump-state`).
    pub async fn run(mut self) -> Core {
        loop {
            let deadline = self.core.next_deadline().map(deadline_instant);
            let wake = match (deadline, self.give_up_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                biased;
                Some(exit) = self.inbox.exits.recv() => {
                    self.on_exit(exit);
                    while let Ok(exit) = self.inbox.exits.try_recv() {
                        self.on_exit(exit);
                    }
                }
                Some(msg) = self.inbox.internal.recv() => self.on_internal(msg),
                Some(msg) = self.inbox.clients.recv() => {
                    let started = Instant::now();
                    self.on_client(msg);
                    while started.elapsed() < self.config.quantum {
                        match self.inbox.clients.try_recv() {
                            Ok(msg) => self.on_client(msg),
                            Err(_) => break,
                        }
                    }
                }
                () = sleep_until(wake) => {}
            }
            self.core.on_timer(Timestamp::now());
            self.commit();
            self.schedule();
            self.run_actions();
            if self.core.is_shutting_down() {
                let gave_up = self.give_up_at.is_some_and(|t| Instant::now() >= t);
                if self.core.running_count() == 0 || gave_up {
                    if gave_up {
                        tracing::error!(
                            running = self.core.running_count(),
                            "job processes did not exit after SIGKILL; stopping anyway"
                        );
                    }
                    break;
                }
            }
        }
        self.commit();
        for (_, group) in self.wait_groups.drain() {
            let _ = group.reply.send(Response::Error(ErrorResponse::new(
                ErrorKind::ShuttingDown,
                "the daemon shut down before the job ended; wait again once it is back",
            )));
        }
        self.shutdown.cancel();
        self.core
    }

    /// Logs and applies one event the core decided.
    fn record(&mut self, event: Event) {
        if let Err(e) = self.core.apply(&event) {
            // decide_* only produces events that fit; this is a bug.
            tracing::error!(error = %e, ?event, "core refused its own event");
            return;
        }
        if let Some(id) = event.job_id()
            && self.core.state_of(id).is_some_and(|s| s.is_terminal())
        {
            self.job_ended(id);
        }
    }

    /// Holds a reply until the batch is committed.
    fn hold(&mut self, reply: &Reply, response: Response) {
        self.held.push((reply.clone(), response));
    }

    /// Makes the batch durable and releases its replies.
    fn commit(&mut self) {
        for (reply, response) in self.held.drain(..) {
            // A client that hung up does not care.
            let _ = reply.send(response);
        }
    }

    /// Handles one client command: the one `match` over requests.
    fn on_client(&mut self, msg: ClientMsg) {
        let ClientMsg { request, reply } = msg;
        tracing::debug!(kind = request.kind(), "request");
        match request {
            Request::Submit(SubmitRequest { spec }) => {
                match self.core.decide_submit(Timestamp::now(), spec) {
                    Ok(event) => {
                        let id = event.job_id().unwrap_or_default();
                        self.record(event);
                        self.hold(&reply, Response::Submitted { id });
                    }
                    Err(e) => self.hold(&reply, error_response(&e)),
                }
            }
            Request::Status(StatusRequest { ids }) => self.list_jobs(&reply, &ids, None),
            Request::DumpState => {
                let header = StateHeader {
                    scheduler: self.core.scheduler_info(),
                    queues: self.core.queue_infos(),
                    system_tasks: self.core.system_infos(),
                };
                self.list_jobs(&reply, &[], Some(header));
            }
            Request::Cancel(CancelRequest { ids }) => {
                let now = Timestamp::now();
                let mut outcomes = Vec::with_capacity(ids.len());
                for id in ids {
                    let (outcome, event) = self.core.decide_cancel(now, id);
                    if let Some(event) = event {
                        self.record(event);
                    }
                    outcomes.push((id, outcome));
                }
                self.hold(&reply, Response::Cancelled(outcomes));
            }
            Request::Wait(WaitRequest { ids }) => self.add_wait(reply, ids),
            Request::Logs(_) => {
                // Sessions serve logs from the files; they only ask us for
                // status and wait. Reaching here is a session bug.
                self.hold(
                    &reply,
                    Response::Error(ErrorResponse::new(
                        ErrorKind::Internal,
                        "logs requests are served by the session",
                    )),
                );
            }
            Request::Shutdown(req) => {
                self.hold(&reply, Response::ShuttingDown);
                self.begin_shutdown(req.timeout_ms.map(Duration::from_millis));
            }
        }
    }

    /// Streams the listed jobs (all when `ids` is empty), preceded by
    /// `header` for a dump. Unknown ids fail the whole request.
    fn list_jobs(&mut self, reply: &Reply, ids: &[JobId], header: Option<StateHeader>) {
        if let Some(missing) = ids.iter().find(|id| self.core.state_of(**id).is_none()) {
            self.hold(reply, error_response(&CoreError::NotFound(*missing)));
            return;
        }
        // Listings change no state, so they need not wait for the commit.
        if let Some(header) = header {
            let _ = reply.send(Response::State(header));
        }
        let infos: Box<dyn Iterator<Item = JobInfo>> = if ids.is_empty() {
            Box::new(self.core.job_ids().filter_map(|id| self.core.job_info(id)))
        } else {
            Box::new(ids.iter().filter_map(|id| self.core.job_info(*id)))
        };
        let mut chunk = Vec::with_capacity(JOBS_PER_FRAME.min(self.core.job_count()));
        for info in infos {
            chunk.push(info);
            if chunk.len() == JOBS_PER_FRAME {
                let _ = reply.send(Response::Jobs(std::mem::take(&mut chunk)));
            }
        }
        if !chunk.is_empty() {
            let _ = reply.send(Response::Jobs(chunk));
        }
        let _ = reply.send(Response::End);
    }

    /// Registers a wait; jobs that already ended are reported at once.
    fn add_wait(&mut self, reply: Reply, mut ids: Vec<JobId>) {
        ids.sort();
        ids.dedup();
        if let Some(missing) = ids.iter().find(|id| self.core.state_of(**id).is_none()) {
            self.hold(&reply, error_response(&CoreError::NotFound(*missing)));
            return;
        }
        let mut pending = Vec::new();
        for id in ids {
            match self.core.state_of(id) {
                Some(s) if s.is_terminal() => {
                    if let Some(info) = self.core.job_info(id) {
                        self.hold(&reply, Response::JobEnded(info));
                    }
                }
                _ => pending.push(id),
            }
        }
        if pending.is_empty() {
            self.hold(&reply, Response::End);
            return;
        }
        let key = self.next_wait;
        self.next_wait += 1;
        for id in &pending {
            self.waiters.entry(*id).or_default().push(key);
        }
        self.wait_groups.insert(
            key,
            WaitGroup {
                remaining: pending.len(),
                reply,
            },
        );
    }

    /// Reports a job's end to everyone waiting for it.
    fn job_ended(&mut self, id: JobId) {
        let Some(keys) = self.waiters.remove(&id) else {
            return;
        };
        let Some(info) = self.core.job_info(id) else {
            return;
        };
        for key in keys {
            let Some(group) = self.wait_groups.get_mut(&key) else {
                continue;
            };
            group.remaining -= 1;
            let reply = group.reply.clone();
            let done = group.remaining == 0;
            self.hold(&reply, Response::JobEnded(info.clone()));
            if done {
                self.wait_groups.remove(&key);
                self.hold(&reply, Response::End);
            }
        }
    }

    /// Handles a message from inside the daemon.
    fn on_internal(&mut self, msg: InternalMsg) {
        match msg {
            InternalMsg::Shutdown(timeout) => self.begin_shutdown(timeout),
            InternalMsg::SpawnSystem { name, task } => self.spawn_system(name, task),
            InternalMsg::SystemExited { name, ok } => {
                self.core.system_exited(&name, ok);
            }
        }
    }

    /// Starts a system task on the tracker and registers it in the core.
    fn spawn_system(&mut self, name: String, task: SystemTaskFn) {
        self.core.system_started(&name, Timestamp::now());
        tracing::info!(task = %name, priority = 0, "system task started");
        let ctx = SystemContext {
            shutdown: self.shutdown.clone(),
        };
        let fut = task(ctx);
        let report = self.internal_tx.clone();
        self.tracker.spawn(async move {
            let ok = match fut.await {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(task = %name, error = %e, "system task failed");
                    false
                }
            };
            tracing::info!(task = %name, ok, "system task exited");
            let _ = report.send(InternalMsg::SystemExited { name, ok });
        });
    }

    /// Begins a graceful shutdown (idempotent).
    fn begin_shutdown(&mut self, timeout: Option<Duration>) {
        if self.core.is_shutting_down() {
            return;
        }
        let timeout = timeout.unwrap_or(self.config.shutdown_timeout);
        tracing::info!(
            running = self.core.running_count(),
            timeout = %humantime::format_duration(timeout),
            "shutdown begins: no new jobs start; running jobs get SIGTERM"
        );
        self.stop_accepting.cancel();
        let grace_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        for event in self.core.begin_shutdown(Timestamp::now(), grace_ms) {
            self.record(event);
        }
        // SIGKILL goes out at the timeout; allow a little more for the exits
        // to be reaped before giving up on them.
        self.give_up_at = Some(Instant::now() + timeout + Duration::from_secs(5));
    }

    /// Handles a job's exit.
    fn on_exit(&mut self, exit: JobExit) {
        let event = Event::Exited {
            id: exit.id,
            at: Timestamp::now(),
            outcome: exit.outcome,
        };
        self.record(event);
    }

    /// Starts every job that may start now.
    fn schedule(&mut self) {
        let now = Timestamp::now();
        while let Some(event) = self.core.next_start(now) {
            self.record(event);
        }
    }

    /// Carries out the core's actions.
    fn run_actions(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Spawn { id, attempt } => {
                    let Some(spec) = self.core.spec(id) else {
                        continue;
                    };
                    match self.executor.spawn(id, spec) {
                        Ok(pid) => {
                            tracing::info!(job = %id, attempt, pid, "job started");
                            self.core.note_pid(id, pid);
                        }
                        Err(reason) => {
                            tracing::warn!(job = %id, %reason, "job could not start");
                            self.record(Event::Exited {
                                id,
                                at: Timestamp::now(),
                                outcome: crate::core::ExitOutcome::SpawnFailed(reason),
                            });
                        }
                    }
                }
                Action::Signal { id, signal } => {
                    if let Some(pid) = self.core.pid(id) {
                        tracing::info!(job = %id, pid, ?signal, "signalling job");
                        self.executor.signal_group(pid, signal);
                    }
                }
                Action::SweepGroup { pgid } => {
                    self.executor.signal_group(pgid, crate::core::Signal::Kill);
                }
            }
        }
        // Replies to anything recorded while carrying out actions.
        self.commit();
    }
}

/// Maps a core refusal to a response frame.
fn error_response(e: &CoreError) -> Response {
    let kind = match e {
        CoreError::BadRequest(_) => ErrorKind::BadRequest,
        CoreError::ShuttingDown => ErrorKind::ShuttingDown,
        CoreError::NotFound(_) => ErrorKind::NotFound,
        CoreError::Inconsistent(_) => ErrorKind::Internal,
    };
    Response::Error(ErrorResponse::new(kind, e.to_string()))
}

/// The tokio instant at which wall-clock `at` arrives.
fn deadline_instant(at: Timestamp) -> Instant {
    Instant::now() + Duration::from_millis(at.0.saturating_sub(Timestamp::now().0))
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
