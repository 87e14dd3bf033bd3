//! The driver: the one task that owns the scheduler core.
//!
//! Front doors (through [`crate::service::Mayfly`]), executors, signal
//! handlers and system tasks talk to the driver only through messages;
//! nothing else touches job state, so there is no shared lock on the
//! request path. The loop:
//!
//! 1. wait for a message or the core's next deadline;
//! 2. take a *batch*: the first command and every further one already
//!    waiting, for at most one quantum (`--quantum`), so a flood of submits
//!    cannot starve timers and job exits;
//! 3. for each command: `decide`, `apply`, and queue the events for the log
//!    (`dispatch`); replies are held back;
//! 4. start whatever may start;
//! 5. commit: hand the batch's records to the journal thread as one group,
//!    with its held replies, its activity and the core's actions
//!    (`commit`: group commit, pipelined, released strictly in order).
//!
//! The parts, each in its file: `commit` (the books of group commit,
//! without I/O), `dispatch` (one function per request), `listing`
//! (listings page by page), `waiters` (who waits for which jobs),
//! `processes` (where each running attempt runs), `activity` (what the
//! activity log and the metrics tell), `rebuild` (a failed write), and
//! `system` (system tasks). See `docs/architecture.md`.
//!
//! Time: the core gets `now` from a clock that is the wall clock at start
//! plus monotonic time since, so a step of the wall clock moves no timeout,
//! backoff or SIGKILL.

mod activity;
mod callbacks;
mod commit;
mod dispatch;
mod listing;
mod processes;
mod rebuild;
mod system;
#[cfg(test)]
mod tests;
mod waiters;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mayfly_protocol::{Activity, ActivityRecord, JobId, JobInfo, StateHeader, Timestamp};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::commit::{Acked, Delivery, Held, Pipeline};
use self::processes::{ProcessTable, Route};
use self::waiters::Waiters;
use crate::core::{Action, Core, Event, ExitOutcome};
use crate::exec::{Executors, Handle, Report, Where};
use crate::journal::{Journal, WalAck, WalCmd, encode_event};
use crate::logbuf;
use crate::service::{Command, ListCursor, View};
use crate::shutdown::Shutdown;

pub use self::activity::Reporter;

/// How long a job whose start failed for the daemon's passing trouble (out
/// of file descriptors) waits before it starts again.
const START_RETRY_MS: u64 = 1_000;

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

/// A message from inside the daemon (not a front door's request).
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
    /// A door is ready for the next page of a listing.
    ListMore(ListCursor),
    /// A job's end is durable and it is owed its finish callback: launch it.
    CallbackOwed(JobId),
    /// A finish callback ran (a `CallbackFinished` activity).
    CallbackFinished(Activity),
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
            InternalMsg::ListMore(cursor) => f.debug_tuple("ListMore").field(cursor).finish(),
            InternalMsg::CallbackOwed(id) => f.debug_tuple("CallbackOwed").field(id).finish(),
            InternalMsg::CallbackFinished(finished) => {
                f.debug_tuple("CallbackFinished").field(finished).finish()
            }
        }
    }
}

/// Settings the driver needs beyond the core's.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The longest one batch of commands may take.
    pub quantum: Duration,
    /// Default grace between SIGTERM and SIGKILL at shutdown.
    pub shutdown_timeout: Duration,
    /// Take a snapshot once the log has grown this much past the last one.
    pub snapshot_bytes: u64,
    /// Finish callbacks.
    pub callbacks: crate::callback::CallbackConfig,
}

/// The receiving ends of the driver's channels.
#[derive(Debug)]
pub struct DriverInbox {
    /// Commands from the front doors (bounded: callers wait when the
    /// driver is busy).
    pub commands: mpsc::Receiver<Command>,
    /// Internal messages.
    pub internal: mpsc::UnboundedReceiver<InternalMsg>,
    /// A sender onto `internal`, so system tasks can report their exit.
    pub internal_tx: mpsc::UnboundedSender<InternalMsg>,
    /// Starts and exits from the executors.
    pub reports: mpsc::UnboundedReceiver<Report>,
    /// Acknowledgements from the journal thread.
    pub acks: mpsc::UnboundedReceiver<WalAck>,
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

/// The wall clock at the driver's start plus monotonic time since: what the
/// core is given as `now`, so that a step of the wall clock moves no timer.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// The wall clock at `at`.
    wall: Timestamp,
    /// The monotonic clock then.
    at: Instant,
}

impl Clock {
    /// A clock anchored now.
    fn start() -> Self {
        Self {
            wall: Timestamp::now(),
            at: Instant::now(),
        }
    }

    /// The time now.
    fn now(&self) -> Timestamp {
        let elapsed = u64::try_from(self.at.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.wall.plus_millis(elapsed)
    }

    /// The monotonic instant at which `at` comes.
    fn instant(&self, at: Timestamp) -> Instant {
        self.at + Duration::from_millis(at.0.saturating_sub(self.wall.0))
    }
}

/// The driver task's state.
pub struct Driver {
    /// When the driver started, for the uptime in `ShutdownComplete`.
    started: Instant,
    /// What the core is given as `now`.
    clock: Clock,
    /// The scheduler core: the only copy of job state.
    core: Core,
    /// What runs jobs, by queue.
    executors: Executors,
    /// Driver settings.
    config: DriverConfig,
    /// Incoming messages.
    inbox: DriverInbox,
    /// Where system tasks report their exit (our own inbox).
    internal_tx: mpsc::UnboundedSender<InternalMsg>,
    /// The journal thread.
    journal: Option<Journal>,
    /// The books of group commit.
    pipeline: Pipeline,
    /// The activity log and the metrics.
    reporter: Reporter,
    /// Who waits for which jobs.
    waiters: Waiters,
    /// Where each running attempt runs.
    processes: ProcessTable,
    /// Queued jobs whose output files the executor was asked to create
    /// ahead of their start.
    prepared: HashSet<JobId>,
    /// What readers that must not wait see of the state.
    view: watch::Sender<Arc<View>>,
    /// True when the state changed since the view was last published.
    view_stale: bool,
    /// The daemon's shutdown.
    shutdown: Shutdown,
    /// When a shutdown gives up waiting for job processes.
    give_up_at: Option<Instant>,
    /// What runs finish callbacks (from [`Driver::run`] on).
    callback_runner: Option<crate::callback::Runner>,
    /// Jobs whose finish callback was handed to the runner and has not
    /// reported yet.
    callbacks_running: HashSet<JobId>,
}

impl Driver {
    /// A driver over `core`, publishing its view on `view`.
    pub fn new(
        core: Core,
        journal: Journal,
        executors: Executors,
        config: DriverConfig,
        inbox: DriverInbox,
        view: watch::Sender<Arc<View>>,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            started: Instant::now(),
            clock: Clock::start(),
            core,
            executors,
            config,
            internal_tx: inbox.internal_tx.clone(),
            inbox,
            journal: Some(journal),
            pipeline: Pipeline::default(),
            reporter: Reporter::default(),
            waiters: Waiters::default(),
            processes: ProcessTable::default(),
            prepared: HashSet::new(),
            view,
            view_stale: true,
            shutdown,
            give_up_at: None,
            callback_runner: None,
            callbacks_running: HashSet::new(),
        }
    }

    /// Moves `metrics` with the driver's activity (jobs submitted, started,
    /// finished; system tasks up or down).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.reporter.set_metrics(metrics);
        self
    }

    /// Follows attempts that run elsewhere and were re-attached after the
    /// restart: their signals go to their handle, or wait for it while the
    /// executor looks for an attempt whose remote id was not logged.
    pub fn with_reattached(mut self, attempts: Vec<crate::exec::Reattached>) -> Self {
        for attempt in attempts {
            match attempt.handle {
                Some(handle) => self.processes.adopt(attempt.id, handle),
                None => self.processes.starting(attempt.id, attempt.attempt),
            }
        }
        self
    }

    /// Runs until a graceful shutdown has stopped every job; returns the core
    /// (for a final snapshot or `--dump-state`).
    ///
    /// `recovery` are the events that close the books on a replayed log
    /// (jobs that were running are interrupted); they are logged first.
    pub async fn run(mut self, boot: BootInfo, recovery: Vec<Event>) -> Core {
        self.reporter.tell(Activity::SchedulerBoot {
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
        self.pipeline = Pipeline::new(boot.snapshot_bytes, boot.log_bytes);
        let internal = self.internal_tx.clone();
        self.callback_runner = Some(crate::callback::Runner::start(
            &self.config.callbacks,
            move |finished| {
                let _ = internal.send(InternalMsg::CallbackFinished(finished));
            },
        ));
        // Those the last run did not get to (they are durable); the ends
        // recovery records launch theirs once released.
        self.launch_due_callbacks();
        for event in recovery {
            self.record(event);
        }
        self.pipeline.needs_sync();
        self.step();
        while !self.stopped() {
            self.turn().await;
            logbuf::batch(|| self.step());
        }
        self.finish().await;
        self.core
    }

    /// One turn of the loop: waits for a message or a deadline and handles
    /// what came (see the module documentation).
    async fn turn(&mut self) {
        let deadline = self.core.next_deadline().map(|at| self.clock.instant(at));
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
            Some(report) = self.inbox.reports.recv() => logbuf::batch(|| {
                self.on_report(report);
                while let Ok(report) = self.inbox.reports.try_recv() {
                    self.on_report(report);
                }
            }),
            Some(msg) = self.inbox.internal.recv() => self.on_internal(msg),
            Some(command) = self.inbox.commands.recv() => logbuf::batch(|| {
                let started = Instant::now();
                self.on_command(command);
                while started.elapsed() < self.config.quantum {
                    match self.inbox.commands.try_recv() {
                        Ok(command) => self.on_command(command),
                        Err(_) => break,
                    }
                }
            }),
            () = sleep_until(wake) => {}
        }
    }

    /// True once a shutdown has seen every local job end (or given up on
    /// them), and every attempt handed elsewhere has its remote id logged.
    /// Jobs that run elsewhere go on without the daemon: the next start
    /// re-attaches them.
    fn stopped(&self) -> bool {
        if !self.core.is_shutting_down() {
            return false;
        }
        let running = self.core.running_local_count();
        let gave_up = self.give_up_at.is_some_and(|t| Instant::now() >= t);
        if gave_up && running > 0 {
            tracing::error!(
                running,
                "job processes did not exit after SIGKILL; stopping anyway"
            );
        }
        (running == 0 && !self.processes.any_starting()) || gave_up
    }

    /// After a batch: fire timers, start what may start, commit, publish.
    fn step(&mut self) {
        // Releasing a group carries out actions, which may record events
        // (a spawn that failed); a few rounds settle that.
        for _ in 0..4 {
            let now = self.clock.now();
            self.core.on_timer(now);
            for event in self.core.due_events(now) {
                self.record(event);
            }
            self.schedule();
            self.commit();
            if self.pipeline.batch_is_empty() {
                break;
            }
        }
        self.prepare_upcoming();
        self.publish_view();
    }

    /// Publishes what readers that must not wait see (queue counts for the
    /// metrics, counters, system tasks), when it changed.
    fn publish_view(&mut self) {
        if !std::mem::take(&mut self.view_stale) {
            return;
        }
        let view = View {
            queues: self.core.queue_infos(),
            scheduler: Some(self.core.scheduler_info()),
            system_tasks: self.core.system_infos(),
        };
        self.view.send_if_modified(|old| {
            let changed = **old != view;
            if changed {
                *old = Arc::new(view);
            }
            changed
        });
    }

    /// Asks the local executor to create the output files of the jobs
    /// likely to start next, so that creating them is not on the path from
    /// one job's exit to the next one's start. Tops the prepared jobs up to
    /// a window of twice the concurrency (8 to 64) once half of it has
    /// started, so the output thread wakes once every few starts, not at
    /// each.
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
        self.executors.local().prepare_output(fresh);
    }

    /// Final flush at shutdown: waits (bounded) for the groups in flight,
    /// settles the finish callbacks the last ends owe, stops the system
    /// tasks, syncs and closes the log, and tells waiters the daemon is
    /// going.
    async fn finish(&mut self) {
        let wait = self.shutdown.step_timeout();
        self.write_out(Instant::now() + wait).await;
        // The last ends owe callbacks; what they log must be written too.
        self.settle_callbacks(Instant::now() + wait).await;
        self.write_out(Instant::now() + wait).await;
        self.callback_runner = None;
        self.stop_system_tasks().await;
        self.executors.local().drain_outputs(wait).await;
        if let Some(journal) = self.journal.take() {
            match journal.stop().await {
                Ok(()) => tracing::info!("write-ahead log flushed and closed"),
                Err(e) => {
                    tracing::error!(error = %e, "could not flush the write-ahead log at shutdown")
                }
            }
        }
        let gone = crate::service::ServiceError::new(
            mayfly_protocol::ErrorKind::ShuttingDown,
            "the daemon shut down before the job ended; wait again once it is back",
        );
        for sink in self.waiters.drain() {
            sink.error(gone.clone());
        }
        self.reporter.tell(Activity::ShutdownComplete {
            uptime_ms: self.started.elapsed().as_millis() as u64,
        });
        self.shutdown.driver_done();
    }

    /// Commits the batch and waits (until `deadline`) for every group in
    /// flight to be acknowledged and released.
    async fn write_out(&mut self, deadline: Instant) {
        self.commit();
        while self.pipeline.groups_out() > 0 {
            match tokio::time::timeout_at(deadline, self.inbox.acks.recv()).await {
                Ok(Some(ack)) => self.on_ack(ack).await,
                _ => {
                    tracing::error!(
                        groups = self.pipeline.groups_out(),
                        "the log did not acknowledge the last writes"
                    );
                    break;
                }
            }
        }
    }

    /// Applies one event the core decided and queues it for the log, with
    /// what the activity log will tell of it and the reports to the waits
    /// of jobs it ends.
    fn record(&mut self, event: Event) {
        if let Err(e) = self.core.apply(&event) {
            // decide_* only produces events that fit; this is a bug.
            tracing::error!(error = %e, ?event, "core refused its own event");
            return;
        }
        self.view_stale = true;
        if let Some(activity) = activity::of_event(&event) {
            self.pipeline.tell(activity);
        }
        let record = encode_event(&event);
        self.pipeline.record(event, record);
        for (id, state) in self.core.take_transitions() {
            if let Some(activity) = activity::of_transition(&self.core, id, state) {
                self.pipeline.tell(activity);
            }
            if state.is_terminal() {
                self.prepared.remove(&id);
                self.job_ended(id);
                self.callback_owed(id);
            }
        }
    }

    /// [`Driver::record`] for a change a client asked for: its batch must be
    /// fsynced before the client hears of it.
    fn record_for_client(&mut self, event: Event) {
        self.pipeline.needs_sync();
        self.record(event);
    }

    /// Tells everyone waiting for `id` that it ended. The reports are held
    /// until the job's end is durable (the batch is fsynced): a client told
    /// "it exited 0" must never see the job come back `interrupted` — or run
    /// again — after a crash.
    fn job_ended(&mut self, id: JobId) {
        let reports = self.waiters.ended(id);
        if reports.is_empty() {
            return;
        }
        let Some(info) = self.core.job_info(id) else {
            return;
        };
        self.pipeline.needs_sync_for_replies();
        for report in reports {
            self.hold_end(report.sink, info.clone(), report.last);
        }
    }

    /// Holds the report of `job`'s end for a wait (and, when it was the
    /// wait's last job, its end) until the batch is released.
    fn hold_end(&mut self, sink: Arc<dyn crate::service::WaitSink>, job: JobInfo, last: bool) {
        // An end that happened stays true even if its group's write fails:
        // the rebuild applies it again.
        self.pipeline.hold(Held::new(move |_: Delivery<'_>| {
            sink.ended(job);
            if last {
                sink.end();
            }
        }));
    }

    /// Hands the batch to the journal as one group, with its replies and the
    /// core's pending actions, and releases whatever groups are ready.
    fn commit(&mut self) {
        let actions: Vec<Action> = std::iter::from_fn(|| self.core.poll_action()).collect();
        let (write, ready) = self.pipeline.commit(actions);
        if let Some(write) = write {
            self.send(write.into_cmd());
        }
        self.release(ready);
        self.maybe_snapshot();
    }

    /// Hands a command to the journal thread.
    fn send(&self, cmd: WalCmd) {
        let sent = self.journal.as_ref().is_some_and(|j| j.send(cmd));
        if !sent {
            tracing::error!("the write-ahead log thread is gone; changes are not durable");
        }
    }

    /// Releases groups, in order: tells their activity, sends their replies
    /// and carries out their actions.
    fn release(&mut self, groups: Vec<commit::Group>) {
        for group in groups {
            for activity in group.activity {
                self.reporter.tell(activity);
            }
            for held in group.held {
                held.deliver(Delivery::Durable);
            }
            for action in group.actions {
                self.run_action(action);
            }
        }
    }

    /// Starts a snapshot when the log has grown past the threshold.
    fn maybe_snapshot(&mut self) {
        if !self.pipeline.snapshot_due(self.config.snapshot_bytes) || self.journal.is_none() {
            return;
        }
        let started = Instant::now();
        // Copying the state is all the driver does; encoding and writing
        // happen on the journal thread.
        let snapshot = Box::new(self.core.snapshot());
        tracing::debug!(
            jobs = snapshot.jobs.len(),
            copy_ms = started.elapsed().as_millis() as u64,
            "snapshot taken"
        );
        let ticket = self.pipeline.start_snapshot();
        self.send(WalCmd::Snapshot { ticket, snapshot });
    }

    /// Handles the journal's acknowledgement of a write or snapshot.
    async fn on_ack(&mut self, ack: WalAck) {
        match self.pipeline.on_ack(ack.ticket, ack.result) {
            Acked::Stale | Acked::Snapshot(Ok(())) => {}
            Acked::Snapshot(Err(e)) => {
                tracing::warn!(error = %e, "snapshot failed; the log keeps growing until one succeeds")
            }
            Acked::Released(groups) => {
                self.release(groups);
                self.maybe_snapshot();
            }
            Acked::Failed(error) => self.storage_failed(error).await,
        }
    }

    /// The WAL flusher's tick: make logged-but-unsynced records durable.
    fn flush_wal(&mut self) {
        // Nothing waits on it: its acknowledgement only tells which acted-on
        // events became durable (or that the disk failed).
        if let Some(write) = self.pipeline.flush() {
            self.send(write.into_cmd());
        }
    }

    /// Handles a message from inside the daemon.
    fn on_internal(&mut self, msg: InternalMsg) {
        match msg {
            InternalMsg::Shutdown { timeout, reason } => self.begin_shutdown(timeout, reason),
            InternalMsg::SubscribeEvents(reply) => {
                let _ = reply.send(self.reporter.pal.subscribe());
            }
            InternalMsg::FlushWal => self.flush_wal(),
            InternalMsg::LogState => {
                tracing::info!(target: "mayflyd::state", state = %state_json(&self.core), "state snapshot (SIGUSR1)");
            }
            InternalMsg::SpawnSystem { name, task } => self.spawn_system(name, task),
            InternalMsg::SystemExited { name, error } => self.system_exited(name, error),
            InternalMsg::ListMore(cursor) => self.list_more(cursor),
            InternalMsg::CallbackOwed(id) => self.launch_callback(id),
            InternalMsg::CallbackFinished(finished) => self.callback_finished(finished),
        }
    }

    /// Begins a graceful shutdown (idempotent).
    fn begin_shutdown(&mut self, timeout: Option<Duration>, reason: String) {
        if self.core.is_shutting_down() {
            return;
        }
        let timeout = timeout.unwrap_or(self.config.shutdown_timeout);
        self.reporter.tell(Activity::ShutdownBegin {
            reason,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            running_jobs: self.core.running_count(),
        });
        self.shutdown.begin();
        let grace_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        for event in self.core.begin_shutdown(self.clock.now(), grace_ms) {
            self.record(event);
        }
        // SIGKILL goes out at the timeout; allow a little more for the exits
        // to be reaped before giving up on them.
        self.give_up_at = Some(Instant::now() + timeout + self.shutdown.step_timeout());
    }

    /// Handles what an executor reports: an attempt started, could not
    /// start, or ended.
    fn on_report(&mut self, report: Report) {
        match &report {
            Report::Started { id, .. } => self.count_start(*id, true),
            Report::StartFailed { id, .. } => self.count_start(*id, false),
            Report::Exited { .. } | Report::Found { .. } => {}
        }
        match report {
            Report::Started { id, at } => self.on_started(id, &at),
            Report::Found { id, at } => {
                // Logged and fsynced like a start's remote id; the start
                // itself was told before the restart. A cancel asked for
                // while it was looked for goes out now.
                let (_, signals) = self.processes.started(id, Handle::from(&at));
                if let Where::Remote { id: remote_id } = at {
                    self.record_for_client(Event::Attached { id, remote_id });
                }
                for signal in signals {
                    self.signal(id, signal);
                }
            }
            Report::StartFailed {
                id,
                reason,
                transient: true,
            } => {
                self.processes.gone(id);
                let at = self.clock.now();
                tracing::warn!(job = %id, %reason, "job could not start yet; trying again in 1s");
                self.record(Event::StartDeferred {
                    id,
                    at,
                    retry_at: at.plus_millis(START_RETRY_MS),
                    reason,
                });
            }
            Report::StartFailed { id, reason, .. } => {
                self.processes.gone(id);
                tracing::warn!(job = %id, %reason, "job could not start");
                self.record(Event::Exited {
                    id,
                    at: self.clock.now(),
                    outcome: ExitOutcome::SpawnFailed(reason),
                });
            }
            Report::Exited { id, outcome, usage } => {
                self.processes.gone(id);
                if let Some(usage) = usage {
                    self.record(Event::Usage { id, usage });
                }
                self.record(Event::Exited {
                    id,
                    at: self.clock.now(),
                    outcome,
                });
            }
        }
    }

    /// Counts a start (`ok`) or a failed one in the metrics of the job's
    /// executor.
    fn count_start(&self, id: JobId, ok: bool) {
        if let Some(metrics) = self.reporter.metrics()
            && let Some(job) = self.core.job_view(id)
        {
            metrics.executor_start(self.core.executor_of(job.queue).kind(), ok);
        }
    }

    /// An attempt runs: log where (a remote id fsynced at once, so a crash
    /// cannot make the daemon start it twice), tell the activity log, and
    /// send the signals that were asked for while it was starting. An
    /// attempt that runs elsewhere counts as started (`JobStarted` in the
    /// activity log and the metrics) only once its remote id is durable.
    fn on_started(&mut self, id: JobId, at: &Where) {
        let (attempt, signals) = self.processes.started(id, Handle::from(at));
        let pid = match at {
            Where::Process { pid, start_ticks } => {
                // A start time that could not be read is 0, which matches no
                // process: recovery then leaves the group alone.
                self.record(Event::Spawned {
                    id,
                    pid: *pid,
                    start_ticks: start_ticks.unwrap_or(0),
                });
                *pid
            }
            Where::Remote { id: remote_id } => {
                self.record_for_client(Event::Attached {
                    id,
                    remote_id: remote_id.clone(),
                });
                0
            }
        };
        if let Some(info) = self.core.job_view(id) {
            let waited_ms = info
                .started_at
                .map_or(0, |s| s.millis_since(info.submitted_at));
            let queue = info.queue.to_owned();
            let activity = Activity::JobStarted {
                id,
                queue,
                attempt,
                pid,
                waited_ms,
            };
            match at {
                Where::Process { .. } => self.reporter.tell(activity),
                // Told when the group holding `Attached` is released, which
                // is after its fsync.
                Where::Remote { .. } => self.pipeline.tell(activity),
            }
        }
        for signal in signals {
            tracing::info!(job = %id, ?signal, "signalling job (asked while it started)");
            self.signal(id, signal);
        }
    }

    /// Starts every job that may start now. A start handed elsewhere (a
    /// Slurm cluster) is fsynced before the executor is asked: a crash
    /// must not leave the log showing queued a job that was submitted
    /// (the next daemon would submit it again).
    fn schedule(&mut self) {
        let now = self.clock.now();
        while let Some(event) = self.core.next_start(now) {
            if let Event::Started { id, .. } = &event
                && !self.core.runs_locally(*id)
            {
                self.pipeline.needs_sync();
            }
            self.record(event);
        }
    }

    /// Sends `signal` to job `id`'s attempt, through its executor (kept
    /// until the attempt's start is reported, if it is still starting).
    fn signal(&mut self, id: JobId, signal: crate::core::Signal) {
        if let Route::To(handle) = self.processes.route(id, signal) {
            let Some(queue) = self.core.job_view(id).map(|j| j.queue.to_owned()) else {
                return;
            };
            let spec = self.core.executor_of(&queue);
            match self.executors.get(&spec) {
                Ok(executor) => {
                    tracing::info!(job = %id, ?handle, ?signal, "signalling job");
                    executor.signal(id, &handle, signal);
                }
                Err(e) => tracing::warn!(job = %id, error = %e, "cannot signal the job"),
            }
        }
    }

    /// Carries out one of the core's actions.
    fn run_action(&mut self, action: Action) {
        match action {
            Action::Spawn { id, attempt } => {
                let Some(spec) = self.core.spec(id) else {
                    return;
                };
                // Reported back through `on_report`; the group that holds
                // the job's Started record is already with the journal.
                self.prepared.remove(&id);
                self.processes.starting(id, attempt);
                match self.executors.get(&self.core.executor_of(&spec.queue)) {
                    Ok(executor) => executor.start(id, attempt, spec),
                    Err(reason) => self.on_report(Report::StartFailed {
                        id,
                        reason,
                        transient: false,
                    }),
                }
            }
            Action::Signal { id, signal } => self.signal(id, signal),
            Action::RemoveOutput { id } => self.executors.local().remove_output(id),
            Action::SweepGroup { pgid } => {
                self.executors
                    .local()
                    .signal_group(pgid, crate::core::Signal::Kill);
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

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
