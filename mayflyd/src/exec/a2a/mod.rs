//! The `a2a` executor: a queue whose jobs are handed to a remote A2A agent
//! (`mayflyctl queue add NAME --executor a2a --a2a-url URL`), another
//! Mayfly or any agent that speaks A2A 1.0 over JSON-RPC (`docs/a2a.md`).
//!
//! # An attempt
//!
//! 1. **Send.** The job's spec goes out as one `SendMessage` with
//!    `returnImmediately`: a data part in the form of
//!    `mayflyctl submit --json-input` (command, cwd, environment, labels).
//!    An agent that cannot be reached is tried again, waiting 1 s and then
//!    twice as long each time (at most 30 s), for `--a2a-retry-for`; then
//!    the attempt fails, saying why. A request that reached the agent is
//!    never sent again: if its answer is lost, the attempt fails, since the
//!    agent may be running it.
//! 2. **Started.** The task id of the answer is reported as the attempt's
//!    remote id; the driver logs it (fsynced) before the job counts as
//!    started, so after a crash the attempt is re-attached by that id and
//!    never sent twice. The message's context id names the attempt
//!    (`mayfly-EMITTER-JOB-ATTEMPT`): a crash before the remote id is
//!    logged is followed by a `ListTasks` for it (`Inner::find`).
//! 3. **Follow.** If the agent's card says it streams, a `SubscribeToTask`
//!    stream tells when the task moves (at most `MAX_STREAMS` at once
//!    per executor, each holding a connection); otherwise, or once a
//!    stream breaks,
//!    the job joins the poll list: one task of the executor asks `GetTask`
//!    for every job on the list once per `--a2a-poll-interval` tick. An
//!    agent that stops answering is asked again with the same backoff, and
//!    after `--a2a-retry-for` the attempt fails, saying the task may still
//!    run there.
//! 4. **End.** Once the task has ended, its artifacts are written to the
//!    job's output files ([`output`]) and its state becomes the attempt's
//!    outcome ([`output::outcome_of`]).
//!
//! A cancel (or a timeout) sends `CancelTask`; the task's end is then told
//! as any other. An agent cannot freeze a task: `pause --running` is
//! refused for these queues.

mod client;
pub mod output;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use mayfly_protocol::{Command, JobId, JobSpec};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use self::client::{AgentClient, CallError};
use super::{Executor, Handle, Report, Where};
use crate::a2a::wire::{ListTasksResponse, SendMessageResponse, Task};
use crate::core::{ExitOutcome, RunningAttempt, Signal};

/// The first wait before trying an unreachable agent again.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How many `GetTask` calls a tick makes at once.
const POLLS_AT_ONCE: usize = 16;

/// The most tasks one executor follows on streams at once (each stream
/// holds a connection to the agent); the others are polled, so a queue
/// with many jobs at the agent does not take all of its connections.
const MAX_STREAMS: usize = 64;

/// Whether a queue may use an a2a executor with `url` and `token_file`;
/// the error says what to change.
pub fn check(url: &str, token_file: Option<&str>) -> Result<(), String> {
    client::parse_url(url)?;
    if let Some(file) = token_file
        && !Path::new(file).is_absolute()
    {
        return Err(format!(
            "--a2a-token-file {file:?} is relative; give an absolute path (the daemon reads it)"
        ));
    }
    Ok(())
}

/// The a2a executor of one agent (one URL and token file): see the module
/// documentation.
#[derive(Debug)]
pub struct A2aExecutor {
    /// What its tasks share.
    inner: Arc<Inner>,
}

/// What the executor's tasks share.
#[derive(Debug)]
struct Inner {
    /// The agent.
    client: AgentClient,
    /// Where the driver hears of starts and ends.
    reports: mpsc::UnboundedSender<Report>,
    /// Where job output files live.
    logs_dir: PathBuf,
    /// The poll list's tick.
    poll: Duration,
    /// How long an unreachable agent is tried.
    retry_for: Duration,
    /// This daemon's id as an emitter ([`emitter_id`]): makes message and
    /// context ids unique to this state dir, and the same after a restart.
    emitter: String,
    /// The jobs followed by polling.
    polled: Mutex<HashMap<JobId, Polled>>,
    /// Wakes the poller early (a job joined the list to be asked now).
    wake: Notify,
    /// Whether the agent streams, once its card has been read.
    streams: Mutex<Option<bool>>,
    /// Room for one more stream ([`MAX_STREAMS`]).
    stream_room: Arc<tokio::sync::Semaphore>,
}

/// A job on the poll list.
#[derive(Debug, Clone)]
struct Polled {
    /// Its task's id at the agent.
    remote: String,
    /// When to ask next.
    next_try: Instant,
    /// When the agent stopped answering about it, if it has.
    failing_since: Option<Instant>,
    /// The wait before the next try after a failure.
    backoff: Duration,
}

impl Polled {
    /// A job to ask about now.
    fn now(remote: String) -> Self {
        Self {
            remote,
            next_try: Instant::now(),
            failing_since: None,
            backoff: FIRST_BACKOFF,
        }
    }
}

impl A2aExecutor {
    /// The executor for the agent at `url` (checked by [`check`]), sending
    /// the token in `token_file` if there is one. Starts its poller: call
    /// inside the runtime.
    pub fn new(
        url: &str,
        token_file: Option<&str>,
        context: &super::RemoteContext,
        reports: mpsc::UnboundedSender<Report>,
    ) -> Result<Self, String> {
        check(url, token_file)?;
        let client = AgentClient::new(
            client::parse_url(url)?,
            token_file.map(PathBuf::from),
            context.metrics.clone(),
        )?;
        let emitter = emitter_id(&context.state_dir)?;
        let inner = Arc::new(Inner {
            client,
            reports,
            logs_dir: context.logs_dir.clone(),
            poll: context.a2a_poll.max(Duration::from_millis(10)),
            retry_for: context.a2a_retry_for,
            emitter,
            polled: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            streams: Mutex::new(None),
            stream_room: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
        });
        tokio::spawn(poller(inner.clone()));
        Ok(Self { inner })
    }
}

impl Executor for A2aExecutor {
    fn start(&self, id: JobId, attempt: u32, spec: JobSpec) {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.run(id, attempt, spec).await });
    }

    fn signal(&self, id: JobId, handle: &Handle, signal: Signal) {
        let Handle::Remote { id: remote } = handle else {
            return;
        };
        match signal {
            Signal::Term | Signal::Kill => {
                let inner = self.inner.clone();
                let remote = remote.clone();
                tokio::spawn(async move { inner.cancel(id, remote).await });
            }
            Signal::Stop => {
                tracing::warn!(job = %id, %remote, "an A2A task cannot be frozen; the job keeps running at the agent");
            }
            // Follows every stop (a cancel's too): nothing was frozen.
            Signal::Cont => {}
        }
    }

    fn can_suspend(&self) -> Result<(), String> {
        Err(
            "pause --running is not supported for a2a queues: an A2A task cannot be frozen; \
             pause without --running, which starts nothing new and leaves running jobs be"
                .into(),
        )
    }

    fn reattach(&self, attempt: &RunningAttempt) -> bool {
        let inner = self.inner.clone();
        let id = attempt.id;
        match attempt.remote_id.clone() {
            Some(remote) => {
                tokio::spawn(async move { inner.follow(id, remote).await });
            }
            // Handed over but its task id never logged: look for it.
            None => {
                let number = attempt.attempt;
                tokio::spawn(async move { inner.find(id, number).await });
            }
        }
        true
    }
}

impl Inner {
    /// Tells the driver.
    fn report(&self, report: Report) {
        // The driver has gone only when the daemon is stopping; the log
        // keeps the job running and the next start re-attaches it.
        let _ = self.reports.send(report);
    }

    /// The id of the message of attempt `attempt` of job `id`, also the
    /// context id of its task: what finds the task again if the daemon
    /// stops before its id is logged.
    fn message_id(&self, id: JobId, attempt: u32) -> String {
        format!("mayfly-{}-{id}-{attempt}", self.emitter)
    }

    /// Sends attempt `attempt` of job `id` and follows it.
    async fn run(self: Arc<Self>, id: JobId, attempt: u32, spec: JobSpec) {
        let params = json!({
            "message": {
                "messageId": self.message_id(id, attempt),
                "contextId": self.message_id(id, attempt),
                "role": "ROLE_USER",
                "parts": [{"data": job_data(&spec), "mediaType": "application/json"}],
                "metadata": {"mayflyJob": id.0, "mayflyAttempt": attempt},
            },
            "configuration": {"returnImmediately": true},
        });
        let answer = match self.send(params).await {
            Ok(answer) => answer,
            Err(reason) => {
                self.report(Report::StartFailed {
                    id,
                    reason,
                    transient: false,
                });
                return;
            }
        };
        match answer {
            SendMessageResponse {
                task: Some(task), ..
            } if !task.id.is_empty() => {
                let remote = task.id.clone();
                self.report(Report::Started {
                    id,
                    at: Where::Remote { id: remote.clone() },
                });
                self.follow(id, remote).await;
            }
            SendMessageResponse {
                message: Some(message),
                ..
            } => {
                // The agent answered at once, with no task to follow: its
                // words are the job's output.
                self.report(Report::Started {
                    id,
                    at: Where::Remote {
                        id: format!("message:{}", message.message_id),
                    },
                });
                let done = output::message_task(message);
                self.finish(id, done).await;
            }
            _ => self.report(Report::StartFailed {
                id,
                reason: format!(
                    "the A2A agent at {} answered SendMessage with neither a task nor a message",
                    self.client.url()
                ),
                transient: false,
            }),
        }
    }

    /// Sends a `SendMessage` with `params`, trying an unreachable agent
    /// again with backoff; the error is the attempt's reason.
    async fn send(&self, params: Value) -> Result<SendMessageResponse, String> {
        let began = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0;
        loop {
            tries += 1;
            match self.client.call("SendMessage", params.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(CallError::Unreachable(why)) => {
                    let waited = began.elapsed();
                    let Some(left) = self.retry_for.checked_sub(waited).filter(|l| !l.is_zero())
                    else {
                        return Err(format!(
                            "{why}; gave up after {tries} tries in {}s (--a2a-retry-for)",
                            waited.as_secs()
                        ));
                    };
                    let wait = backoff.min(left);
                    tracing::debug!(%why, wait_ms = wait.as_millis() as u64, "A2A agent unreachable; trying again");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e @ CallError::Lost(_)) => {
                    return Err(format!(
                        "{e}; the agent may have taken the job, so it is not sent again"
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "the A2A agent at {} refused the job: {e}",
                        self.client.url()
                    ));
                }
            }
        }
    }

    /// After a restart: looks for the task of attempt `attempt` of job
    /// `id`, handed over before the daemon stopped but its id not logged,
    /// by its context id (`ListTasks`). Found, it is followed; not there,
    /// the attempt was lost on the way and ends interrupted (run again if
    /// the job has retries); if the agent cannot say, the attempt fails
    /// rather than run twice.
    async fn find(self: Arc<Self>, id: JobId, attempt: u32) {
        let context = self.message_id(id, attempt);
        let params = json!({"contextId": context, "pageSize": 10});
        let began = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let failed = loop {
            match self
                .client
                .call::<ListTasksResponse>("ListTasks", params.clone())
                .await
            {
                Ok(list) => {
                    // An agent that ignores the filter lists others' tasks.
                    let found = list.tasks.into_iter().find(|t| t.context_id == context);
                    let Some(task) = found else {
                        self.report_end(id, lost(format!(
                            "the daemon stopped while handing the job to the A2A agent at {}, \
                             which does not have it",
                            self.client.url()
                        ), mayfly_protocol::JobState::Interrupted));
                        return;
                    };
                    tracing::info!(job = %id, remote = %task.id, "found the A2A task of a job whose remote id was not logged");
                    self.report(Report::Found {
                        id,
                        at: Where::Remote {
                            id: task.id.clone(),
                        },
                    });
                    self.follow(id, task.id).await;
                    return;
                }
                Err(CallError::Unreachable(why)) if began.elapsed() < self.retry_for => {
                    tracing::debug!(job = %id, %why, "cannot reach the A2A agent to look for a task; trying again");
                    let left = self.retry_for.saturating_sub(began.elapsed());
                    tokio::time::sleep(backoff.min(left)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => break e,
            }
        };
        self.report_end(id, lost(format!(
            "the daemon stopped while handing the job to the A2A agent at {}, and cannot tell \
             whether the agent has it ({failed}); it is not sent again",
            self.client.url()
        ), mayfly_protocol::JobState::Failed));
    }

    /// Follows job `id`'s task `remote` until it has ended: on a stream if
    /// the agent streams, then (or else) on the poll list.
    async fn follow(self: &Arc<Self>, id: JobId, remote: String) {
        if self.agent_streams().await
            && let Ok(_room) = self.stream_room.clone().try_acquire_owned()
        {
            self.watch_stream(id, &remote).await;
        }
        self.lock_polled().insert(id, Polled::now(remote));
        self.wake.notify_one();
    }

    /// Whether the agent streams (its card, read once; an agent whose card
    /// cannot be read is polled, and asked again next time).
    async fn agent_streams(&self) -> bool {
        if let Some(known) = *self.streams.lock().unwrap_or_else(|e| e.into_inner()) {
            return known;
        }
        match self.client.capabilities().await {
            Ok(card) => {
                let streams = card.capabilities.streaming;
                *self.streams.lock().unwrap_or_else(|e| e.into_inner()) = Some(streams);
                streams
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the A2A agent's card; polling its tasks");
                false
            }
        }
    }

    /// Watches task `remote` on a `SubscribeToTask` stream until the stream
    /// says it has ended (or stopped for input), ends, or breaks; the poll
    /// list takes it from there either way.
    async fn watch_stream(&self, id: JobId, remote: &str) {
        let mut items = match self
            .client
            .stream("SubscribeToTask", json!({"id": remote}))
            .await
        {
            Ok(items) => items,
            Err(e) => {
                tracing::debug!(job = %id, %remote, error = %e, "no stream of the A2A task; polling it");
                return;
            }
        };
        while let Some(item) = items.recv().await {
            let state = match item {
                Ok(item) => item
                    .task
                    .map(|t| t.status.state)
                    .or(item.status_update.map(|u| u.status.state)),
                Err(e) => {
                    tracing::debug!(job = %id, %remote, error = %e, "the A2A task's stream broke; polling it");
                    return;
                }
            };
            if state.is_some_and(|s| s.is_terminal() || s.is_interrupted()) {
                return;
            }
        }
    }

    /// The poll list, locked.
    fn lock_polled(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Polled>> {
        self.polled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One tick of the poller: asks about every job on the list that is
    /// due, at most [`POLLS_AT_ONCE`] at a time.
    async fn tick(self: &Arc<Self>) {
        let now = Instant::now();
        let due: Vec<(JobId, String)> = self
            .lock_polled()
            .iter()
            .filter(|(_, p)| p.next_try <= now)
            .map(|(id, p)| (*id, p.remote.clone()))
            .collect();
        futures::stream::iter(due)
            .for_each_concurrent(POLLS_AT_ONCE, |(id, remote)| async move {
                let answer = self
                    .client
                    .call::<Task>("GetTask", json!({"id": remote}))
                    .await;
                self.polled(id, &remote, answer).await;
            })
            .await;
    }

    /// Acts on what `GetTask` said of job `id`'s task `remote`.
    async fn polled(self: &Arc<Self>, id: JobId, remote: &str, answer: Result<Task, CallError>) {
        match answer {
            Ok(task) if task.status.state.is_terminal() => {
                if self.lock_polled().remove(&id).is_some() {
                    self.finish(id, task).await;
                }
            }
            Ok(task) if task.status.state.is_interrupted() => {
                if self.lock_polled().remove(&id).is_some() {
                    self.refuse_input(id, task).await;
                }
            }
            Ok(_) => {
                if let Some(p) = self.lock_polled().get_mut(&id) {
                    p.failing_since = None;
                    p.backoff = FIRST_BACKOFF;
                    p.next_try = Instant::now() + self.poll;
                }
            }
            Err(e) if e.is(CallError::TASK_NOT_FOUND) => {
                if self.lock_polled().remove(&id).is_some() {
                    self.report_end(
                        id,
                        ExitOutcome::Ended {
                            state: mayfly_protocol::JobState::Interrupted,
                            exit_code: None,
                            signal: None,
                            reason: format!(
                                "the A2A agent at {} no longer knows task {remote} ({e})",
                                self.client.url()
                            ),
                        },
                    );
                }
            }
            Err(e) => self.poll_failed(id, remote, &e),
        }
    }

    /// `GetTask` about job `id` failed: ask again after a backoff, or give
    /// up once the agent has failed for `--a2a-retry-for`.
    fn poll_failed(&self, id: JobId, remote: &str, e: &CallError) {
        let now = Instant::now();
        let gave_up = {
            let mut list = self.lock_polled();
            let Some(p) = list.get_mut(&id) else { return };
            let since = *p.failing_since.get_or_insert(now);
            match self
                .retry_for
                .checked_sub(now.duration_since(since))
                .filter(|left| !left.is_zero())
            {
                None => {
                    list.remove(&id);
                    true
                }
                Some(left) => {
                    p.next_try = now + p.backoff.min(left);
                    p.backoff = (p.backoff * 2).min(MAX_BACKOFF);
                    false
                }
            }
        };
        tracing::debug!(job = %id, %remote, error = %e, gave_up, "cannot ask the A2A agent about a task");
        if gave_up {
            self.report_end(
                id,
                ExitOutcome::Ended {
                    state: mayfly_protocol::JobState::Failed,
                    exit_code: None,
                    signal: None,
                    reason: format!(
                        "lost contact with the A2A agent for {}s (--a2a-retry-for): {e}; task \
                         {remote} may still run there",
                        self.retry_for.as_secs()
                    ),
                },
            );
        }
    }

    /// The task of job `id` waits for input, which a job cannot give:
    /// cancel it there and fail the attempt.
    async fn refuse_input(&self, id: JobId, task: Task) {
        let asked = output::status_text(&task);
        let _ = self
            .client
            .call::<Value>("CancelTask", json!({"id": task.id}))
            .await;
        self.report_end(
            id,
            ExitOutcome::Ended {
                state: mayfly_protocol::JobState::Failed,
                exit_code: None,
                signal: None,
                reason: format!(
                    "the A2A agent asked for input ({}{asked}), which a job cannot give; task {} \
                     was cancelled there",
                    task.status.state.name(),
                    task.id
                ),
            },
        );
    }

    /// Job `id`'s task has ended as `task` says: its artifacts become the
    /// job's output, its state the attempt's outcome.
    async fn finish(&self, id: JobId, task: Task) {
        let logs_dir = self.logs_dir.clone();
        let (task, written) = tokio::task::spawn_blocking(move || {
            let written = output::write(&logs_dir, id, &task);
            (task, written)
        })
        .await
        .unwrap_or_else(|e| (Task::default(), Err(std::io::Error::other(e.to_string()))));
        if let Err(e) = written {
            tracing::warn!(job = %id, error = %e, "cannot write the A2A task's artifacts to the job's output files");
        }
        let usage = output::usage_of(&task);
        let outcome = output::outcome_of(&task);
        self.report(Report::Exited { id, outcome, usage });
    }

    /// Ends job `id`'s attempt with `outcome`.
    fn report_end(&self, id: JobId, outcome: ExitOutcome) {
        self.report(Report::Exited {
            id,
            outcome,
            usage: None,
        });
    }

    /// Cancels job `id`'s task `remote`, trying an unreachable agent again;
    /// the task's end is told as any other.
    async fn cancel(&self, id: JobId, remote: String) {
        let began = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self
                .client
                .call::<Value>("CancelTask", json!({"id": remote}))
                .await
            {
                Ok(_) => break,
                Err(e)
                    if e.is(CallError::TASK_NOT_CANCELABLE) || e.is(CallError::TASK_NOT_FOUND) =>
                {
                    break;
                }
                Err(CallError::Unreachable(why)) if began.elapsed() < self.retry_for => {
                    tracing::debug!(job = %id, %why, "cannot reach the A2A agent to cancel; trying again");
                    let left = self.retry_for.saturating_sub(began.elapsed());
                    tokio::time::sleep(backoff.min(left)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    tracing::warn!(job = %id, %remote, error = %e, "the A2A agent did not cancel the task");
                    break;
                }
            }
        }
        // Ask about it at once, if it is polled.
        if let Some(p) = self.lock_polled().get_mut(&id) {
            p.next_try = Instant::now();
        }
        self.wake.notify_one();
    }
}

/// An attempt that ended in `state` for `reason`, with no exit status.
fn lost(reason: String, state: mayfly_protocol::JobState) -> ExitOutcome {
    ExitOutcome::Ended {
        state,
        exit_code: None,
        signal: None,
        reason,
    }
}

/// The file under the state dir that keeps this daemon's emitter id.
const EMITTER_FILE: &str = "a2a-emitter-id";

/// This daemon's id as an emitter of A2A messages: random, made once and
/// kept in `STATE_DIR/a2a-emitter-id`, so the context id of an attempt's
/// task is the same after a restart and no other daemon's. Blocking, once
/// per executor.
fn emitter_id(state_dir: &Path) -> Result<String, String> {
    let path = state_dir.join(EMITTER_FILE);
    let err = |what: &str, e: std::io::Error| {
        format!(
            "cannot {what} {} ({e}); remove it and start again",
            path.display()
        )
    };
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        if (8..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(text.to_string());
        }
        return Err(err("use", std::io::Error::other("it holds no hex id")));
    }
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| err("make", std::io::Error::other(e)))?;
    let id: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = crate::private::file_options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| err("create", crate::private::explain_link(e)))?;
    std::io::Write::write_all(&mut file, format!("{id}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| err("write", e))?;
    Ok(id)
}

/// The poller of one executor: a tick every poll interval while jobs are on
/// its list, asleep until one joins while none are. Executors live as long
/// as the daemon; so does this.
async fn poller(inner: Arc<Inner>) {
    loop {
        if inner.lock_polled().is_empty() {
            inner.wake.notified().await;
            continue;
        }
        inner.tick().await;
        let _ = tokio::time::timeout(inner.poll, inner.wake.notified()).await;
    }
}

/// A job spec as the data part of a message: the `--json-input` fields
/// that say what to run and where (the queue, priority, limits and retries
/// stay with this daemon, which enforces them). Variables of this daemon's
/// own (`MAYFLY_*`) are left out.
pub fn job_data(spec: &JobSpec) -> Value {
    let command = match &spec.command {
        Command::Argv(argv) => json!(argv.iter().collect::<Vec<_>>()),
        Command::Shell(line) => json!(line),
    };
    let env: Map<String, Value> = spec
        .env
        .iter()
        .filter(|(k, _)| !k.starts_with("MAYFLY_"))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let labels: Map<String, Value> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({"command": command, "cwd": spec.cwd, "env": env, "labels": labels})
}
