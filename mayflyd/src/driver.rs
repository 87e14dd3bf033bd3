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
//! 3. for each command: `decide`, `apply`, and queue the events for the log;
//!    replies are held back;
//! 4. start whatever may start;
//! 5. commit: hand the batch's records to the journal thread as one *group*
//!    (fsynced if a client asked for a change; the thread shares one fsync
//!    among all groups waiting), together with the group's held replies and
//!    the core's actions (spawns, signals).
//!
//! Groups are released (replies sent, actions carried out) strictly in
//! order, and never before their records are handed to the journal — so no
//! process is started or signalled before the records it depends on are in
//! the log, in order. A group that must be fsynced (a client's change) is
//! released only when the journal acknowledges the fsync, so no client hears
//! of a change before it is durable; the driver does not wait for it: it
//! goes on collecting the next batch (pipelined group commit). A group of
//! the daemon's own facts (a job started, a job exited) is not fsynced — the
//! WAL flusher syncs those every `--wal-flush-interval` — so waiting for its
//! acknowledgement would only add a round trip to the journal thread to
//! every job start: once the groups before it are released, it is released
//! as soon as it is handed over (*eager* release).
//!
//! If a write fails (disk full, I/O error), the journal drops everything
//! since its last sync. The driver then fails the unreleased groups (their
//! clients get a storage error), rebuilds its state from the log on disk,
//! re-applies the facts it had already acted on (jobs it started, exits it
//! saw: the events of every group released since the last sync), and logs
//! them again. Reads keep being served throughout.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use mayfly_protocol::{
    Activity, ActivityRecord, CancelRequest, ErrorKind, ErrorResponse, JobId, JobInfo, JobInfoRef,
    JobsRef, Request, Response, StateHeader, StatusRequest, SubmitRequest, Timestamp, WaitRequest,
    encode_frame,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::collections::VecDeque;

use crate::core::{Action, Core, CoreError, Event, Signal};
use crate::executor::{Executor, JobExit, ProcessReport};
use crate::journal::{Journal, WalAck, WalCmd, encode_event};
use crate::logbuf;
use crate::pal::Pal;

/// Where a request's response frames go. Unbounded on purpose: the driver
/// must never wait on a slow client; what it sends is bounded by the request
/// (one frame, or the listing it asked for).
pub type Reply = mpsc::UnboundedSender<Outgoing>;

/// One frame of an answer on its way to a session.
#[derive(Debug)]
pub enum Outgoing {
    /// A response for the session to encode.
    Response(Response),
    /// A whole frame, length prefix included, that the driver encoded
    /// itself: the chunks of a listing, encoded straight from the core's
    /// jobs (see [`mayfly_protocol::JobsRef`]) rather than copied into
    /// `JobInfo`s for the session to encode and then drop. It decodes as a
    /// [`Response::Jobs`].
    Frame(Vec<u8>),
}

impl From<Response> for Outgoing {
    fn from(response: Response) -> Self {
        Outgoing::Response(response)
    }
}

/// How much of a command the activity log tells (`JobSubmitted`); `status`
/// shows it whole.
const COMMAND_CHARS_TOLD: usize = 1024;

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
    /// Begin a graceful shutdown.
    Shutdown {
        /// SIGTERM-to-SIGKILL grace; `None` uses `--shutdown-timeout`.
        timeout: Option<Duration>,
        /// What asked for it, for the activity log.
        reason: String,
    },
    /// Subscribe to the activity log: the recent events and a receiver for
    /// the ones to come.
    SubscribeEvents(
        tokio::sync::oneshot::Sender<(
            Vec<ActivityRecord>,
            tokio::sync::broadcast::Receiver<ActivityRecord>,
        )>,
    ),
    /// Make everything logged so far durable (the WAL flusher's tick).
    FlushWal,
    /// Write a JSON snapshot of tasks and queues to the log (SIGUSR1).
    LogState,
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
        /// The error it returned, if it failed.
        error: Option<String>,
    },
}

impl std::fmt::Debug for InternalMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InternalMsg::Shutdown { timeout, reason } => f
                .debug_struct("Shutdown")
                .field("timeout", timeout)
                .field("reason", reason)
                .finish(),
            InternalMsg::SubscribeEvents(_) => f.write_str("SubscribeEvents"),
            InternalMsg::FlushWal => f.write_str("FlushWal"),
            InternalMsg::LogState => f.write_str("LogState"),
            InternalMsg::SpawnSystem { name, .. } => {
                f.debug_struct("SpawnSystem").field("name", name).finish()
            }
            InternalMsg::SystemExited { name, error } => f
                .debug_struct("SystemExited")
                .field("name", name)
                .field("error", error)
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
    /// Take a snapshot once the log has grown this much past the last one.
    pub snapshot_bytes: u64,
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
    /// Job starts and exits from the executor.
    pub processes: mpsc::UnboundedReceiver<ProcessReport>,
    /// Acknowledgements from the journal thread.
    pub acks: mpsc::UnboundedReceiver<WalAck>,
}

/// A reply held until its group is durable.
#[derive(Debug)]
struct Held {
    /// Where it goes.
    reply: Reply,
    /// What it says.
    response: Response,
    /// True when it tells a client its change was made (submit, cancel,
    /// shutdown): if the group fails, the client gets a storage error instead.
    acknowledges_change: bool,
}

/// One commit group: a batch's records and everything waiting on them.
#[derive(Debug)]
struct Group {
    /// The journal ticket, or `None` when the group wrote nothing (it is
    /// released as soon as the groups before it are).
    ticket: Option<u64>,
    /// True while the group waits for the journal to acknowledge its fsync
    /// (it holds a client's change). A group that is not fsynced never
    /// waits: it is released once the groups before it are.
    awaits_ack: bool,
    /// The events it logged (to re-apply the facts among them after a failure).
    events: Vec<Event>,
    /// Replies to release.
    held: Vec<Held>,
    /// Effects to carry out.
    actions: Vec<Action>,
    /// What the activity log (and the metrics fed from it) will tell of its
    /// events, once they are durable: a refused change is never told.
    activity: Vec<Activity>,
}

/// A job whose process the executor is starting.
#[derive(Debug)]
struct Starting {
    /// Which attempt it is, for the activity log.
    attempt: u32,
    /// Signals the core asked for before the pid was known, in order; they
    /// go out as soon as it is.
    signals: Vec<Signal>,
}

/// A pending `wait`: the jobs it still waits for and where to report.
#[derive(Debug)]
struct WaitGroup {
    /// Jobs not yet ended.
    remaining: usize,
    /// Where `JobEnded` and `End` go.
    reply: Reply,
}

/// Figures about recovery, for the `SchedulerBoot` event.
#[derive(Debug, Clone, Default)]
pub struct BootInfo {
    /// Jobs recovered from the log.
    pub recovered_jobs: u64,
    /// Records replayed.
    pub replayed_records: u64,
    /// How long recovery took.
    pub replay_ms: u64,
    /// Payload size of the snapshot recovery started from (0 if none): the
    /// next snapshot waits for at least this much log, as it would have
    /// had the daemon not restarted.
    pub snapshot_bytes: u64,
    /// Log bytes recovery replayed after that snapshot: they count towards
    /// the next one.
    pub log_bytes: u64,
}

/// The driver task's state.
pub struct Driver {
    /// The activity log.
    pal: Pal,
    /// When the driver started, for the uptime in `ShutdownComplete`.
    started: Instant,
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
    /// The journal thread.
    journal: Option<Journal>,
    /// This batch's events, applied but not yet handed to the journal.
    batch_events: Vec<Event>,
    /// This batch's records (the encoded `batch_events`).
    batch_records: Vec<Vec<u8>>,
    /// True when a client waits on this batch: it must be fsynced.
    batch_needs_sync: bool,
    /// Replies held for this batch.
    held: Vec<Held>,
    /// What this batch's events will tell the activity log when the batch
    /// is released.
    batch_activity: Vec<Activity>,
    /// Groups handed to the journal and not yet released, oldest first.
    groups: VecDeque<Group>,
    /// Next journal ticket.
    next_ticket: u64,
    /// Events already acted on that the journal has not yet synced, by the
    /// ticket they were written under (ascending): what a rebuild after a
    /// storage failure must re-apply and log again. An acknowledged fsync of
    /// ticket `t` makes every ticket up to `t` durable.
    since_durable: VecDeque<(u64, Vec<Event>)>,
    /// The ticket of the latest write sent without an fsync, until an fsync
    /// covers it: what the WAL flusher's tick has to make durable.
    last_unsynced: Option<u64>,
    /// Acknowledgements of tickets below this one are stale: they belong to
    /// writes that a storage failure already accounted for.
    failed_before: u64,
    /// The ticket of the snapshot being written, if one is.
    snapshot_ticket: Option<u64>,
    /// Log bytes since the last snapshot, as the journal last reported.
    bytes_since_snapshot: u64,
    /// The size of the last snapshot written.
    last_snapshot_bytes: u64,
    /// Pending waits by id.
    wait_groups: HashMap<u64, WaitGroup>,
    /// Which waits each job has.
    waiters: HashMap<JobId, Vec<u64>>,
    /// Jobs whose start the executor has not reported yet.
    starting: HashMap<JobId, Starting>,
    /// Queued jobs whose output files the executor was asked to create
    /// ahead of their start.
    prepared: HashSet<JobId>,
    /// Next wait-group id.
    next_wait: u64,
    /// Cancelled when shutdown begins: listeners stop accepting.
    stop_accepting: CancellationToken,
    /// Cancelled when the driver has finished: sessions stop.
    shutdown: CancellationToken,
    /// Cancelled near the end of a shutdown, before the log is closed:
    /// system tasks stop (and their exit is still recorded).
    system_stop: CancellationToken,
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
        journal: Journal,
        executor: Executor,
        config: DriverConfig,
        inbox: DriverInbox,
        stop_accepting: CancellationToken,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            pal: Pal::new(),
            started: Instant::now(),
            core,
            executor,
            config,
            internal_tx: inbox.internal_tx.clone(),
            inbox,
            journal: Some(journal),
            batch_events: Vec::new(),
            batch_records: Vec::new(),
            batch_needs_sync: false,
            held: Vec::new(),
            batch_activity: Vec::new(),
            groups: VecDeque::new(),
            next_ticket: 0,
            since_durable: VecDeque::new(),
            last_unsynced: None,
            failed_before: 0,
            snapshot_ticket: None,
            bytes_since_snapshot: 0,
            last_snapshot_bytes: 0,
            wait_groups: HashMap::new(),
            waiters: HashMap::new(),
            starting: HashMap::new(),
            prepared: HashSet::new(),
            next_wait: 0,
            stop_accepting,
            system_stop: shutdown.child_token(),
            shutdown,
            tracker,
            give_up_at: None,
        }
    }

    /// Feeds `metrics` from the driver's activity (jobs submitted, started,
    /// finished; system tasks up or down).
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.pal.set_metrics(metrics);
        self
    }

    /// Runs until a graceful shutdown has stopped every job; returns the core
    /// (for a final snapshot or `--dump-state`).
    ///
    /// `recovery` are the events that close the books on a replayed log
    /// (jobs that were running are interrupted); they are logged first.
    pub async fn run(mut self, boot: BootInfo, recovery: Vec<Event>) -> Core {
        self.pal.emit(Activity::SchedulerBoot {
            version: env!("CARGO_PKG_VERSION").to_string(),
            concurrency: self.core.config().concurrency,
            recovered_jobs: boot.recovered_jobs,
            replayed_records: boot.replayed_records,
            replay_ms: boot.replay_ms,
            interrupted_jobs: recovery
                .iter()
                .filter(|e| matches!(e, Event::Interrupted { .. }))
                .count() as u64,
        });
        self.last_snapshot_bytes = boot.snapshot_bytes;
        self.bytes_since_snapshot = boot.log_bytes;
        for event in recovery {
            self.record(event);
        }
        self.batch_needs_sync = true;
        self.step();
        loop {
            let deadline = self.core.next_deadline().map(deadline_instant);
            let wake = match (deadline, self.give_up_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                biased;
                Some(ack) = self.inbox.acks.recv() => {
                    self.on_ack(ack).await;
                    while let Ok(ack) = self.inbox.acks.try_recv() {
                        self.on_ack(ack).await;
                    }
                }
                // The activity lines of a batch go out in one write.
                Some(report) = self.inbox.processes.recv() => logbuf::batch(|| {
                    self.on_process(report);
                    while let Ok(report) = self.inbox.processes.try_recv() {
                        self.on_process(report);
                    }
                }),
                Some(msg) = self.inbox.internal.recv() => self.on_internal(msg),
                Some(msg) = self.inbox.clients.recv() => logbuf::batch(|| {
                    let started = Instant::now();
                    self.on_client(msg);
                    while started.elapsed() < self.config.quantum {
                        match self.inbox.clients.try_recv() {
                            Ok(msg) => self.on_client(msg),
                            Err(_) => break,
                        }
                    }
                }),
                () = sleep_until(wake) => {}
            }
            logbuf::batch(|| self.step());
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
        self.finish().await;
        self.core
    }

    /// After a batch: fire timers, start what may start, commit.
    fn step(&mut self) {
        // Releasing a group carries out actions, which may record events
        // (a spawn that failed); a few rounds settle that.
        for _ in 0..4 {
            let now = Timestamp::now();
            self.core.on_timer(now);
            for event in self.core.due_events(now) {
                self.record(event);
            }
            self.schedule();
            self.commit();
            if self.batch_events.is_empty() && self.held.is_empty() {
                break;
            }
        }
        self.prepare_upcoming();
    }

    /// Asks the executor to create the output files of the jobs likely to
    /// start next, so that creating them is not on the path from one job's
    /// exit to the next one's start. Tops the prepared jobs up to a window
    /// of twice the concurrency (8 to 64) once half of it has started, so
    /// the output thread wakes once every few starts, not at each.
    fn prepare_upcoming(&mut self) {
        let concurrency = usize::try_from(self.core.config().concurrency).unwrap_or(usize::MAX);
        let window = concurrency.saturating_mul(2).clamp(8, 64);
        if self.prepared.len() > window / 2 {
            return;
        }
        let fresh: Vec<JobId> = self
            .core
            .upcoming(window)
            .into_iter()
            .filter(|id| self.prepared.insert(*id))
            .collect();
        self.executor.prepare_output(fresh);
    }

    /// Final flush at shutdown: waits (bounded) for the groups in flight,
    /// syncs and closes the log, and tells waiters the daemon is going.
    async fn finish(&mut self) {
        self.commit();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.groups.is_empty() {
            match tokio::time::timeout_at(deadline, self.inbox.acks.recv()).await {
                Ok(Some(ack)) => self.on_ack(ack).await,
                _ => {
                    tracing::error!(
                        groups = self.groups.len(),
                        "the log did not acknowledge the last writes"
                    );
                    break;
                }
            }
        }
        self.stop_system_tasks().await;
        self.executor.drain_outputs(Duration::from_secs(5)).await;
        if let Some(journal) = self.journal.take() {
            match journal.stop().await {
                Ok(()) => tracing::info!("write-ahead log flushed and closed"),
                Err(e) => {
                    tracing::error!(error = %e, "could not flush the write-ahead log at shutdown")
                }
            }
        }
        for (_, group) in self.wait_groups.drain() {
            let _ = group.reply.send(
                Response::Error(ErrorResponse::new(
                    ErrorKind::ShuttingDown,
                    "the daemon shut down before the job ended; wait again once it is back",
                ))
                .into(),
            );
        }
        self.pal.emit(Activity::ShutdownComplete {
            uptime_ms: self.started.elapsed().as_millis() as u64,
        });
        self.shutdown.cancel();
    }

    /// Stops the system tasks and waits (bounded) until each has reported
    /// its exit, so `SystemTaskExit` is in the activity log before
    /// `ShutdownComplete`.
    async fn stop_system_tasks(&mut self) {
        self.system_stop.cancel();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self
            .core
            .system_infos()
            .iter()
            .any(|t| t.state == "running")
        {
            match tokio::time::timeout_at(deadline, self.inbox.internal.recv()).await {
                Ok(Some(msg @ InternalMsg::SystemExited { .. })) => self.on_internal(msg),
                Ok(Some(_)) => {} // too late for anything else
                Ok(None) | Err(_) => {
                    tracing::warn!("some system tasks did not stop within 5s");
                    break;
                }
            }
        }
    }

    /// Applies one event the core decided and queues it for the log.
    fn record(&mut self, event: Event) {
        if let Err(e) = self.core.apply(&event) {
            // decide_* only produces events that fit; this is a bug.
            tracing::error!(error = %e, ?event, "core refused its own event");
            return;
        }
        self.batch_records.push(encode_event(&event));
        self.log_activity(&event);
        self.batch_events.push(event);
        for (id, state) in self.core.take_transitions() {
            self.log_transition(id, state);
            if state.is_terminal() {
                self.prepared.remove(&id);
                self.job_ended(id);
            }
        }
    }

    /// What the activity log will tell of a job's change of state, queued
    /// with the batch (see [`Driver::release`]).
    fn log_transition(&mut self, id: JobId, state: mayfly_protocol::JobState) {
        if let Some(activity) = self.transition_activity(id, state) {
            self.batch_activity.push(activity);
        }
    }

    /// The activity that tells of job `id` reaching `state`, if any.
    fn transition_activity(&self, id: JobId, state: mayfly_protocol::JobState) -> Option<Activity> {
        use mayfly_protocol::JobState as S;
        // Borrowed: a submit passes through here twice (waiting, queued),
        // and copying the whole job each time for a few fields is waste.
        let info = self.core.job_view(id)?;
        let activity = match state {
            S::Running => return None, // told at spawn, with the pid
            S::Waiting if info.attempts > 0 => Activity::JobRetrying {
                id,
                attempt: info.attempts,
                retry_at: info.retry_at,
                exit_code: info.exit_code,
                signal: info.signal,
            },
            S::Waiting => Activity::JobWaiting { id },
            S::Queued => Activity::JobQueued { id },
            _ => Activity::JobFinished {
                id,
                ran_ms: info
                    .started_at
                    .zip(info.finished_at)
                    .map(|(start, end)| end.millis_since(start)),
                queue: info.queue.to_owned(),
                state: info.state,
                exit_code: info.exit_code,
                signal: info.signal,
                reason: info.reason.map(str::to_owned),
            },
        };
        Some(activity)
    }

    /// Queues what the activity log will tell of an event beyond state
    /// changes (those are told by [`Driver::log_transition`]).
    fn log_activity(&mut self, event: &Event) {
        let activity = match event {
            Event::Submitted { id, spec, .. } => Activity::JobSubmitted {
                id: *id,
                queue: spec.queue.clone(),
                priority: spec.priority,
                command: crate::core::shorten(&spec.command.to_string(), COMMAND_CHARS_TOLD)
                    .into_owned(),
            },
            Event::StopRequested {
                id,
                reason,
                grace_ms,
                ..
            } => Activity::JobStopRequested {
                id: *id,
                reason: match reason {
                    crate::core::StopReason::Cancel => "cancel".into(),
                    crate::core::StopReason::Shutdown => "shutdown".into(),
                    crate::core::StopReason::Timeout => "timeout".into(),
                },
                grace_ms: *grace_ms,
            },
            _ => return,
        };
        self.batch_activity.push(activity);
    }

    /// [`Driver::record`] for a change a client asked for: its batch must be
    /// fsynced before the client hears of it.
    fn record_for_client(&mut self, event: Event) {
        self.batch_needs_sync = true;
        self.record(event);
    }

    /// Holds a reply until the batch is committed.
    fn hold(&mut self, reply: &Reply, response: Response) {
        let acknowledges_change = matches!(
            response,
            Response::Submitted { .. }
                | Response::SubmittedBatch { .. }
                | Response::Cancelled(_)
                | Response::ShuttingDown
                | Response::Queues(_)
                | Response::Restarted(_)
                | Response::Cleaned { .. }
                | Response::Jobs(_)
                | Response::Ok
        );
        self.held.push(Held {
            reply: reply.clone(),
            response,
            acknowledges_change,
        });
    }

    /// Hands the batch to the journal as one group, with its replies and the
    /// core's pending actions, and releases whatever groups are ready.
    fn commit(&mut self) {
        let actions: Vec<Action> = std::iter::from_fn(|| self.core.poll_action()).collect();
        if self.batch_events.is_empty()
            && self.held.is_empty()
            && actions.is_empty()
            && self.batch_activity.is_empty()
        {
            return;
        }
        let events = std::mem::take(&mut self.batch_events);
        let records = std::mem::take(&mut self.batch_records);
        let sync = std::mem::take(&mut self.batch_needs_sync);
        let ticket = if records.is_empty() && !sync {
            None
        } else {
            self.send_write(records, sync)
        };
        self.groups.push_back(Group {
            ticket,
            awaits_ack: sync,
            events,
            held: std::mem::take(&mut self.held),
            actions,
            activity: std::mem::take(&mut self.batch_activity),
        });
        self.release_ready();
        self.maybe_snapshot();
    }

    /// Sends records to the journal; returns the ticket.
    fn send_write(&mut self, records: Vec<Vec<u8>>, sync: bool) -> Option<u64> {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if !sync {
            self.last_unsynced = Some(ticket);
        }
        let sent = self.journal.as_ref().is_some_and(|j| {
            j.send(WalCmd::Write {
                ticket,
                records,
                sync,
            })
        });
        if !sent {
            tracing::error!("the write-ahead log thread is gone; changes are not durable");
        }
        Some(ticket)
    }

    /// Starts a snapshot when the log has grown past the threshold.
    fn maybe_snapshot(&mut self) {
        // Events applied but not yet sent (a failed spawn's exit, recorded
        // while releasing a group) would be in the snapshot *and* logged after
        // it, so replay would apply them twice: wait for the next commit.
        //
        // The threshold grows with the state (at least the size of the last
        // snapshot), so the cost of snapshots per logged byte stays constant
        // however many jobs are held.
        let threshold = self.config.snapshot_bytes.max(self.last_snapshot_bytes);
        if self.snapshot_ticket.is_some()
            || !self.batch_events.is_empty()
            || self.bytes_since_snapshot < threshold
        {
            return;
        }
        let Some(journal) = self.journal.as_ref() else {
            return;
        };
        let started = Instant::now();
        // Copying the state is all the driver does; encoding and writing
        // happen on the journal thread.
        let snapshot = Box::new(self.core.snapshot());
        tracing::debug!(
            jobs = snapshot.jobs.len(),
            copy_ms = started.elapsed().as_millis() as u64,
            "snapshot taken"
        );
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if journal.send(WalCmd::Snapshot { ticket, snapshot }) {
            self.snapshot_ticket = Some(ticket);
            // Until the journal reports again, do not start another.
            self.bytes_since_snapshot = 0;
        }
    }

    /// Releases the groups at the front that wait for no acknowledgement.
    fn release_ready(&mut self) {
        while self.groups.front().is_some_and(|g| !g.awaits_ack) {
            if let Some(group) = self.groups.pop_front() {
                self.release(group);
            }
        }
    }

    /// Sends a group's replies, tells the activity log of its events (now
    /// durable, or facts of the world) and carries out its actions.
    fn release(&mut self, group: Group) {
        for activity in group.activity {
            self.pal.emit(activity);
        }
        for held in group.held {
            // A client that hung up does not care.
            let _ = held.reply.send(held.response.into());
        }
        if let Some(ticket) = group.ticket
            && !group.events.is_empty()
        {
            self.since_durable.push_back((ticket, group.events));
        }
        for action in group.actions {
            self.run_action(action);
        }
    }

    /// Forgets the acted-on events that tickets up to `ticket` wrote: they
    /// are durable now.
    fn durable_through(&mut self, ticket: u64) {
        while self
            .since_durable
            .front()
            .is_some_and(|(t, _)| *t <= ticket)
        {
            self.since_durable.pop_front();
        }
        if self.last_unsynced.is_some_and(|t| t <= ticket) {
            self.last_unsynced = None;
        }
    }

    /// Handles the journal's acknowledgement of a write or snapshot.
    async fn on_ack(&mut self, ack: WalAck) {
        if ack.ticket < self.failed_before {
            return; // a write the last storage failure already accounted for
        }
        if self.snapshot_ticket == Some(ack.ticket) {
            self.snapshot_ticket = None;
            match ack.result {
                Ok(info) => {
                    // Everything sent before the snapshot is covered by it.
                    if let Some(before) = ack.ticket.checked_sub(1) {
                        self.durable_through(before);
                    }
                    self.bytes_since_snapshot = info.bytes_since_snapshot;
                    self.last_snapshot_bytes = info.snapshot_bytes;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "snapshot failed; the log keeps growing until one succeeds")
                }
            }
            return;
        }
        match ack.result {
            Ok(info) => {
                // Acks come in ticket order, and every group before the one
                // acknowledged was released or acknowledged already: so it is
                // at the front, if it is still held at all.
                if let Some(group) = self
                    .groups
                    .iter_mut()
                    .find(|g| g.ticket == Some(ack.ticket))
                {
                    group.awaits_ack = false;
                }
                self.release_ready();
                if info.synced {
                    self.durable_through(ack.ticket);
                }
                self.bytes_since_snapshot = info.bytes_since_snapshot;
                self.maybe_snapshot();
            }
            Err(e) => self.storage_failed(e).await,
        }
    }

    /// Recovers from a failed write: see the module documentation.
    async fn storage_failed(&mut self, error: String) {
        tracing::error!(%error, "write-ahead log write failed; failing the changes that were not durable");
        let message = format!(
            "the daemon could not save the change: {error}; nothing was changed — free disk space under the state dir and retry"
        );
        // Every write sent so far was dropped or is accounted for here; the
        // journal's answers to them are stale.
        self.failed_before = self.next_ticket;
        let mut facts: Vec<Event> = std::mem::take(&mut self.since_durable)
            .into_iter()
            .flat_map(|(_, events)| events)
            .collect();
        // The facts before this index were released, so the activity log
        // has told them; those of the failed groups it has not.
        let told = facts.len();
        let failed: Vec<Group> = self.groups.drain(..).collect();
        for group in failed {
            // What happened in the world stays true: exits were observed.
            facts.extend(group.events.into_iter().filter(|e| {
                matches!(
                    e,
                    Event::Exited { .. } | Event::Interrupted { .. } | Event::Spawned { .. }
                )
            }));
            for held in group.held {
                let response = if held.acknowledges_change {
                    Response::Error(ErrorResponse::new(ErrorKind::Storage, message.clone()))
                } else {
                    held.response
                };
                let _ = held.reply.send(response.into());
            }
            // Its actions never ran: the rebuilt state does not ask for them.
        }
        self.snapshot_ticket = None;
        let Some(journal) = self.journal.as_ref() else {
            return;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let config = self.core.config().clone();
        if !journal.send(WalCmd::Reopen { config, reply: tx }) {
            return;
        }
        let mut core = match rx.await {
            Ok(Ok(core)) => core,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot re-read the write-ahead log; changes stay refused");
                // Kept under the next ticket, so that only a later fsync
                // (which the journal refuses until a rebuild works) clears them.
                self.since_durable.push_back((self.next_ticket, facts));
                return;
            }
            Err(_) => return,
        };
        core.adopt_runtime_state(&self.core);
        let mut untold = Vec::new();
        for (n, event) in facts.iter().enumerate() {
            if n == told {
                // Replaying the log and the told facts changed nothing the
                // activity log has not seen.
                core.take_transitions();
            }
            if let Err(e) = core.apply(event) {
                tracing::warn!(error = %e, ?event, "could not re-apply an event after a storage failure");
            }
        }
        if told < facts.len() {
            untold = core.take_transitions();
        }
        core.take_transitions();
        while core.poll_action().is_some() {}
        let old = std::mem::replace(&mut self.core, core);
        // The facts of the failed groups happened in the world (a job
        // exited): told now, as they stand in the rebuilt state.
        for (id, state) in untold {
            if let Some(activity) = self.transition_activity(id, state) {
                self.pal.emit(activity);
            }
        }
        if old.is_shutting_down() {
            // The stop requests may have been among the lost records.
            for event in self
                .core
                .begin_shutdown(Timestamp::now(), self.shutdown_grace_ms())
            {
                self.record(event);
            }
        }
        tracing::info!(
            facts = facts.len(),
            jobs = self.core.job_count(),
            "state rebuilt from the log after a storage failure"
        );
        if !facts.is_empty() {
            let records = facts.iter().map(encode_event).collect::<Vec<_>>();
            if let Some(ticket) = self.send_write(records, false) {
                self.since_durable.push_back((ticket, facts));
            }
        }
    }

    /// The SIGTERM-to-SIGKILL grace of the shutdown in progress.
    fn shutdown_grace_ms(&self) -> u64 {
        let left = self
            .give_up_at
            .map(|t| {
                t.saturating_duration_since(Instant::now())
                    .saturating_sub(Duration::from_secs(5))
            })
            .unwrap_or(self.config.shutdown_timeout);
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
    }

    /// The WAL flusher's tick: make logged-but-unsynced records durable.
    fn flush_wal(&mut self) {
        // Nothing waits on it: its acknowledgement only tells which acted-on
        // events became durable (or that the disk failed).
        if self.last_unsynced.is_some() {
            self.send_write(Vec::new(), true);
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
                        self.record_for_client(event);
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
                if let Err(e) = crate::core::refuse_duplicates(&ids) {
                    self.hold(&reply, error_response(&e));
                    return;
                }
                let now = Timestamp::now();
                let mut outcomes = Vec::with_capacity(ids.len());
                for id in ids {
                    let (outcome, event) = self.core.decide_cancel(now, id);
                    if let Some(event) = event {
                        self.record_for_client(event);
                    }
                    outcomes.push((id, outcome));
                }
                self.hold(&reply, Response::Cancelled(outcomes));
            }
            Request::Wait(WaitRequest { ids }) => self.add_wait(reply, ids),
            Request::Logs(_) | Request::Events(_) => {
                // Sessions serve logs (from the files) and events (from a
                // subscription); reaching here is a session bug.
                self.hold(
                    &reply,
                    Response::Error(ErrorResponse::new(
                        ErrorKind::Internal,
                        "logs and events requests are served by the session",
                    )),
                );
            }
            Request::SubmitBatch(req) => {
                match self.core.decide_batch(Timestamp::now(), req.specs) {
                    Ok(events) => {
                        let ids = events.iter().filter_map(Event::job_id).collect();
                        for event in events {
                            self.record_for_client(event);
                        }
                        self.hold(&reply, Response::SubmittedBatch { ids });
                    }
                    Err(e) => self.hold(&reply, error_response(&e)),
                }
            }
            Request::QueueSet(req) => {
                let decided = self
                    .core
                    .decide_queue_set(&req.name, req.concurrency, req.create)
                    .map(|e| vec![e]);
                self.apply_queue_change(&reply, decided);
            }
            Request::QueueRemove(req) => {
                let decided = self.core.decide_queue_remove(&req.name).map(|e| vec![e]);
                self.apply_queue_change(&reply, decided);
            }
            Request::QueueList => self.apply_queue_change(&reply, Ok(Vec::new())),
            Request::Pause(req) => {
                let decided = self.core.decide_pause(&req.queues, req.paused, req.running);
                self.apply_queue_change(&reply, decided);
            }
            Request::Restart(req) => match self.core.decide_restart(Timestamp::now(), &req.ids) {
                Ok(events) => {
                    let pairs = req
                        .ids
                        .iter()
                        .copied()
                        .zip(events.iter().filter_map(Event::job_id))
                        .collect();
                    for event in events {
                        self.record_for_client(event);
                    }
                    self.hold(&reply, Response::Restarted(pairs));
                }
                Err(e) => self.hold(&reply, error_response(&e)),
            },
            Request::Clean(req) => {
                match self
                    .core
                    .decide_clean(Timestamp::now(), &req.states, req.older_than_ms)
                {
                    Ok(event) => {
                        let ids = match &event {
                            Some(Event::Removed { ids }) => ids.clone(),
                            _ => Vec::new(),
                        };
                        if let Some(event) = event {
                            self.record_for_client(event);
                        }
                        self.hold(&reply, Response::Cleaned { ids });
                    }
                    Err(e) => self.hold(&reply, error_response(&e)),
                }
            }
            Request::Edit(req) => {
                match self
                    .core
                    .decide_edit(req.id, req.priority, req.queue, req.labels)
                {
                    Ok(event) => {
                        self.record_for_client(event);
                        let info = self.core.job_info(req.id).into_iter().collect();
                        self.hold(&reply, Response::Jobs(info));
                    }
                    Err(e) => self.hold(&reply, error_response(&e)),
                }
            }
            Request::Progress(req) => match self.core.decide_progress(req.id, req.text) {
                Ok(event) => {
                    self.record_for_client(event);
                    self.hold(&reply, Response::Ok);
                }
                Err(e) => self.hold(&reply, error_response(&e)),
            },
            Request::Shutdown(req) => {
                self.hold(&reply, Response::ShuttingDown);
                self.begin_shutdown(
                    req.timeout_ms.map(Duration::from_millis),
                    "requested by a client (mayflyctl shutdown)".into(),
                );
            }
        }
    }

    /// Logs a queue change (if any) and answers with every queue.
    fn apply_queue_change(&mut self, reply: &Reply, decided: Result<Vec<Event>, CoreError>) {
        match decided {
            Ok(events) => {
                for event in events {
                    self.record_for_client(event);
                }
                let queues = self.core.queue_infos();
                self.hold(reply, Response::Queues(queues));
            }
            Err(e) => self.hold(reply, error_response(&e)),
        }
    }

    /// Streams the listed jobs (all when `ids` is empty), preceded by
    /// `header` for a dump. Unknown ids fail the whole request.
    fn list_jobs(&mut self, reply: &Reply, ids: &[JobId], header: Option<StateHeader>) {
        if let Err(e) = crate::core::refuse_duplicates(ids) {
            self.hold(reply, error_response(&e));
            return;
        }
        if let Some(missing) = ids.iter().find(|id| self.core.state_of(**id).is_none()) {
            self.hold(reply, error_response(&CoreError::NotFound(*missing)));
            return;
        }
        // Listings change no state, so they need not wait for the commit.
        if let Some(header) = header {
            let _ = reply.send(Response::State(header).into());
        }
        let views: Box<dyn Iterator<Item = JobInfoRef<'_>>> = if ids.is_empty() {
            Box::new(self.core.job_views())
        } else {
            Box::new(ids.iter().filter_map(|id| self.core.job_view(*id)))
        };
        let mut chunk = Vec::with_capacity(JOBS_PER_FRAME.min(self.core.job_count()));
        for view in views {
            chunk.push(view);
            if chunk.len() == JOBS_PER_FRAME {
                if !send_jobs(reply, &chunk) {
                    return;
                }
                chunk.clear();
            }
        }
        if !chunk.is_empty() && !send_jobs(reply, &chunk) {
            return;
        }
        let _ = reply.send(Response::End.into());
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
                    // Its end may not be durable yet: see `job_ended`. (With
                    // nothing left unsynced, the journal skips the fsync.)
                    self.batch_needs_sync = true;
                    if let Some(info) = self.core.job_info(id) {
                        self.hold(&reply, Response::JobEnded(Box::new(info)));
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

    /// Reports a job's end to everyone waiting for it. The report is held
    /// until the job's end is durable (the batch is fsynced): a client told
    /// "it exited 0" must never see the job come back `interrupted` — or run
    /// again — after a crash.
    fn job_ended(&mut self, id: JobId) {
        let Some(keys) = self.waiters.remove(&id) else {
            return;
        };
        self.batch_needs_sync = true;
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
            self.hold(&reply, Response::JobEnded(Box::new(info.clone())));
            if done {
                self.wait_groups.remove(&key);
                self.hold(&reply, Response::End);
            }
        }
    }

    /// Handles a message from inside the daemon.
    fn on_internal(&mut self, msg: InternalMsg) {
        match msg {
            InternalMsg::Shutdown { timeout, reason } => self.begin_shutdown(timeout, reason),
            InternalMsg::SubscribeEvents(reply) => {
                let _ = reply.send(self.pal.subscribe());
            }
            InternalMsg::FlushWal => self.flush_wal(),
            InternalMsg::LogState => {
                tracing::info!(target: "mayflyd::state", state = %state_json(&self.core), "state snapshot (SIGUSR1)");
            }
            InternalMsg::SpawnSystem { name, task } => self.spawn_system(name, task),
            InternalMsg::SystemExited { name, error } => {
                self.core.system_exited(&name, error.is_none());
                self.pal.emit(Activity::SystemTaskExit {
                    ok: error.is_none(),
                    name,
                    error,
                });
            }
        }
    }

    /// Starts a system task on the tracker and registers it in the core.
    fn spawn_system(&mut self, name: String, task: SystemTaskFn) {
        self.core.system_started(&name, Timestamp::now());
        self.pal.emit(Activity::SystemTaskStart {
            name: name.clone(),
            priority: 0,
        });
        let ctx = SystemContext {
            shutdown: self.system_stop.clone(),
        };
        let fut = task(ctx);
        let report = self.internal_tx.clone();
        self.tracker.spawn(async move {
            let error = fut.await.err().map(|e| format!("{e:#}"));
            let _ = report.send(InternalMsg::SystemExited { name, error });
        });
    }

    /// Begins a graceful shutdown (idempotent).
    fn begin_shutdown(&mut self, timeout: Option<Duration>, reason: String) {
        if self.core.is_shutting_down() {
            return;
        }
        let timeout = timeout.unwrap_or(self.config.shutdown_timeout);
        self.pal.emit(Activity::ShutdownBegin {
            reason,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            running_jobs: self.core.running_count(),
        });
        self.stop_accepting.cancel();
        let grace_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        for event in self.core.begin_shutdown(Timestamp::now(), grace_ms) {
            self.record(event);
        }
        // SIGKILL goes out at the timeout; allow a little more for the exits
        // to be reaped before giving up on them.
        self.give_up_at = Some(Instant::now() + timeout + Duration::from_secs(5));
    }

    /// Handles what the executor reports: a job's process started, could
    /// not start, or ended.
    fn on_process(&mut self, report: ProcessReport) {
        match report {
            ProcessReport::Started {
                id,
                pid,
                start_ticks,
            } => self.on_started(id, pid, start_ticks),
            ProcessReport::StartFailed { id, reason } => {
                self.starting.remove(&id);
                tracing::warn!(job = %id, %reason, "job could not start");
                self.record(Event::Exited {
                    id,
                    at: Timestamp::now(),
                    outcome: crate::core::ExitOutcome::SpawnFailed(reason),
                });
            }
            ProcessReport::Exited(exit) => self.on_exit(exit),
        }
    }

    /// A job's process is running: note and log its pid, and send the
    /// signals that were asked for while it was starting.
    fn on_started(&mut self, id: JobId, pid: u32, start_ticks: Option<u64>) {
        let Starting { attempt, signals } = self.starting.remove(&id).unwrap_or(Starting {
            attempt: 0,
            signals: Vec::new(),
        });
        self.core.note_pid(id, pid);
        if let Some(start_ticks) = start_ticks {
            self.record(Event::Spawned {
                id,
                pid,
                start_ticks,
            });
        }
        if let Some(info) = self.core.job_view(id) {
            let waited_ms = info
                .started_at
                .map_or(0, |s| s.millis_since(info.submitted_at));
            let queue = info.queue.to_owned();
            self.pal.emit(Activity::JobStarted {
                id,
                queue,
                attempt,
                pid,
                waited_ms,
            });
        }
        for signal in signals {
            tracing::info!(job = %id, pid, ?signal, "signalling job (asked while it started)");
            self.executor.signal_group(pid, signal);
        }
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

    /// Carries out one of the core's actions.
    fn run_action(&mut self, action: Action) {
        match action {
            Action::Spawn { id, attempt } => {
                let Some(spec) = self.core.spec(id) else {
                    return;
                };
                // Reported back through `on_process`; the group that holds
                // the job's Started record is already with the journal.
                let spec = spec.clone();
                self.prepared.remove(&id);
                self.starting.insert(
                    id,
                    Starting {
                        attempt,
                        signals: Vec::new(),
                    },
                );
                self.executor.start(id, spec);
            }
            Action::Signal { id, signal } => {
                if let Some(pid) = self.core.pid(id) {
                    tracing::info!(job = %id, pid, ?signal, "signalling job");
                    self.executor.signal_group(pid, signal);
                } else if let Some(starting) = self.starting.get_mut(&id) {
                    starting.signals.push(signal);
                }
            }
            Action::RemoveOutput { id } => self.executor.remove_output(id),
            Action::SweepGroup { pgid } => {
                self.executor.signal_group(pgid, crate::core::Signal::Kill);
            }
        }
    }
}

/// The `dump-state` JSON object of a core: every task and queue and the
/// scheduler's counters (what `mayflyctl dump-state` prints).
pub fn state_json(core: &Core) -> serde_json::Value {
    let header = StateHeader {
        scheduler: core.scheduler_info(),
        queues: core.queue_infos(),
        system_tasks: core.system_infos(),
    };
    let jobs: Vec<JobInfo> = core.job_ids().filter_map(|id| core.job_info(id)).collect();
    mayfly_protocol::json::dump_state_json(&header, &jobs)
}

/// Sends `jobs` as one `Jobs` frame, encoded here from the borrowed jobs.
/// A chunk too large for one frame goes out in halves; a single job too
/// large for a frame ends the stream with an error. Returns false when the
/// stream has ended.
fn send_jobs(reply: &Reply, jobs: &[JobInfoRef<'_>]) -> bool {
    match encode_frame(&JobsRef(jobs)) {
        Ok(frame) => {
            let _ = reply.send(Outgoing::Frame(frame));
            true
        }
        Err(_) if jobs.len() > 1 => {
            let (first, second) = jobs.split_at(jobs.len() / 2);
            send_jobs(reply, first) && send_jobs(reply, second)
        }
        Err(e) => {
            let id = jobs.first().map_or(JobId(0), |job| job.id);
            let _ = reply.send(
                Response::Error(ErrorResponse::new(
                    ErrorKind::Internal,
                    format!("job {id} cannot be listed: {e}"),
                ))
                .into(),
            );
            false
        }
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

#[cfg(test)]
mod tests;
