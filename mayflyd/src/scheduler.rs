//! The daemon's top level: [`Scheduler`] wires the core, the driver, the
//! executor, the listener and signal handling together, and owns shutdown.
//!
//! The shape follows the original task card: build a scheduler with sane
//! defaults (`Scheduler::new()` / [`Scheduler::builder`]), run it with
//! [`Scheduler::run_blocking`], stop it with [`SchedulerHandle::shutdown`]
//! (or SIGTERM/SIGINT), and start priority-0 system tasks with
//! [`SchedulerHandle::spawn_system`].
//!
//! Shutdown is one path, whatever starts it: the driver stops starting jobs
//! and refuses submits, SIGTERMs every running job's process group, SIGKILLs
//! what is left after the timeout, and returns once every job has exited;
//! then sessions and system tasks are cancelled through one
//! `CancellationToken` and awaited through one `TaskTracker`.
//!
//! Observability is wired here too: one [`Metrics`] per daemon, shared with
//! the journal thread, the sessions, the HTTP endpoint ([`crate::http`]) and
//! the metrics task ([`crate::pusher`], `looptask_metrics`). `/__health`
//! reads a [`Readiness`] that turns ready just before the driver starts and
//! stopping the moment a shutdown begins; `/metrics` keeps answering until
//! the daemon has stopped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::driver::{ClientMsg, DriverConfig, DriverInbox, InternalMsg, SystemContext};
use crate::executor::Executor;
use crate::http::{self, HttpError, HttpState, Readiness};
use crate::journal::{Journal, recover};
#[cfg(feature = "ipc")]
use crate::listener::{self, BindError, Limits};
use crate::metrics::{Metrics, Refresh};
use crate::pusher::{self, PushConfig};
#[cfg(feature = "ipc")]
use crate::session::SessionContext;
use crate::settings::{HttpAddr, Settings};
use crate::wal::WalOptions;

/// `SIGTERM` or `SIGINT` for the signals we handle, the number otherwise.
fn signal_name(sig: i32) -> String {
    match sig {
        SIGTERM => "SIGTERM".into(),
        SIGINT => "SIGINT".into(),
        n => n.to_string(),
    }
}

/// The highest job id that has an output file in `logs_dir`.
fn highest_output_id(logs_dir: &Path) -> Option<u64> {
    std::fs::read_dir(logs_dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            let (id, ext) = name.split_once('.')?;
            matches!(ext, "out" | "err")
                .then(|| id.parse::<u64>().ok())
                .flatten()
        })
        .max()
}

/// Where the Unix socket comes from.
#[derive(Debug)]
enum SocketPlan {
    /// The caller bound it.
    Bound(UnixListener),
    /// Bind this path once the state is recovered.
    #[cfg(feature = "ipc")]
    Bind(PathBuf),
    /// Serve no socket.
    None,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The socket could not be bound.
    #[cfg(feature = "ipc")]
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The HTTP endpoint could not be bound.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The metrics registry could not be built (a bug: two families clash).
    #[error("cannot set up the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The state dir could not be prepared.
    #[error("cannot prepare state dir {path}: {source}")]
    StateDir {
        /// The folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The saved state could not be read; nothing was changed on disk.
    #[error("{0}")]
    Recover(#[from] crate::wal::WalError),
    /// The async runtime or signal handling could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// A second signal asked to exit without waiting for jobs.
    #[error("forced exit on a second signal; jobs that were still running were left as they were")]
    Forced,
}

/// Builds a [`Scheduler`] from defaults plus overrides.
#[derive(Debug, Default)]
pub struct SchedulerBuilder {
    /// The settings so far.
    settings: Settings,
}

impl SchedulerBuilder {
    /// Serve this socket.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.socket = path.into();
        self
    }

    /// Keep state in this folder.
    pub fn state_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.state_dir = path.into();
        self
    }

    /// Run at most `n` jobs at once.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.settings.concurrency = n.max(1);
        self
    }

    /// Give running jobs this long after SIGTERM at shutdown.
    pub fn shutdown_timeout(mut self, t: Duration) -> Self {
        self.settings.shutdown_timeout = t;
        self
    }

    /// Serve `/metrics` and `/__health` on `addr` (`None`: no HTTP).
    pub fn http_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.settings.http_addr = HttpAddr(addr);
        self
    }

    /// Install (or not) SIGTERM/SIGINT handling in `run_blocking`.
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.settings.handle_signals = yes;
        self
    }

    /// Replace all settings at once.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The scheduler.
    pub fn build(self) -> Scheduler {
        Scheduler::with_settings(self.settings)
    }
}

/// A cloneable handle for controlling a [`Scheduler`] from elsewhere (another
/// thread, a signal handler, a test).
#[derive(Debug, Clone)]
pub struct SchedulerHandle {
    /// The driver's internal channel.
    internal: mpsc::UnboundedSender<InternalMsg>,
}

impl SchedulerHandle {
    /// Begins a graceful shutdown: running jobs get SIGTERM, then SIGKILL
    /// after `timeout` (`None`: the configured `--shutdown-timeout`).
    pub fn shutdown(&self, timeout: Option<Duration>) {
        let _ = self.internal.send(InternalMsg::Shutdown {
            timeout,
            reason: "requested through the scheduler handle".into(),
        });
    }

    /// Starts a system task at priority 0 (the WAL flusher, the metrics
    /// pusher, …). It is listed in `dump-state` and gets a cancellation
    /// token that fires at shutdown. Works before and while the scheduler runs.
    pub fn spawn_system<F, Fut>(&self, name: &str, task: F)
    where
        F: FnOnce(SystemContext) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let _ = self.internal.send(InternalMsg::SpawnSystem {
            name: name.to_string(),
            task: Box::new(move |ctx| Box::pin(task(ctx))),
        });
    }
}

/// The daemon: see the module documentation.
#[derive(Debug)]
pub struct Scheduler {
    /// Settings.
    settings: Settings,
    /// A handle, kept so one can be handed out before `run`.
    handle: SchedulerHandle,
    /// The receiving end of the handle's channel.
    internal_rx: mpsc::UnboundedReceiver<InternalMsg>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler {
    /// A scheduler with the daemon's defaults.
    pub fn new() -> Self {
        Self::with_settings(Settings::default())
    }

    /// A builder starting from the defaults.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder::default()
    }

    /// A scheduler with these settings.
    pub fn with_settings(settings: Settings) -> Self {
        let (internal, internal_rx) = mpsc::unbounded_channel();
        Self {
            settings,
            handle: SchedulerHandle { internal },
            internal_rx,
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A handle to shut it down or add system tasks.
    pub fn handle(&self) -> SchedulerHandle {
        self.handle.clone()
    }

    /// Builds the runtime, binds the socket and runs until a graceful
    /// shutdown completes. With `handle_signals`, SIGTERM/SIGINT begin the
    /// shutdown and a second one forces the exit.
    ///
    /// One worker thread (unless `TOKIO_WORKER_THREADS` says otherwise):
    /// the driver does the scheduling work alone anyway, and the heavy
    /// parts run on threads of their own (the log's writes and fsyncs and
    /// snapshot encoding on the journal thread, process starts on the
    /// blocking pool, output files on their own thread). What is left —
    /// sessions, the driver, HTTP — hands a request from task to task, and
    /// on one worker that costs no cross-thread wakeup: a single client's
    /// durable submit took a median 207–211 µs against 258–261 µs with a
    /// worker per core (2,000 samples each, twice), with the same 8-client
    /// throughput (20.3k/22.1k/21.0k against 19.5k/22.6k/21.1k submits/s).
    pub fn run_blocking(self) -> Result<(), DaemonError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .enable_all()
            .thread_name("mayflyd")
            .build()
            .map_err(DaemonError::Runtime)?;
        runtime.block_on(async move {
            // Refuse early when another daemon serves the socket; bind it
            // only once the state is recovered, so a daemon that accepts
            // connections is one that answers them (and one that refuses to
            // start over damaged state leaves no socket behind).
            #[cfg(feature = "ipc")]
            listener::refuse_if_live(&self.settings.socket)?;
            #[cfg(feature = "ipc")]
            let socket = SocketPlan::Bind(self.settings.socket.clone());
            #[cfg(not(feature = "ipc"))]
            let socket = SocketPlan::None;
            let http = bind_http(self.settings.http_addr.0).await?;
            self.run_inner(socket, http).await
        })
    }

    /// Runs on the current runtime with an already-bound listener (tests
    /// bind their own socket and hand it in); `None` serves no socket. The
    /// HTTP endpoint is bound here from [`Settings::http_addr`].
    pub async fn run(self, listener: Option<UnixListener>) -> Result<(), DaemonError> {
        let http = bind_http(self.settings.http_addr.0).await?;
        self.run_with_http(listener, http).await
    }

    /// Like [`Scheduler::run`], with the HTTP listener bound by the caller
    /// too (`None` serves no HTTP; [`Settings::http_addr`] is not used).
    pub async fn run_with_http(
        self,
        listener: Option<UnixListener>,
        http: Option<TcpListener>,
    ) -> Result<(), DaemonError> {
        let socket = match listener {
            Some(listener) => SocketPlan::Bound(listener),
            None => SocketPlan::None,
        };
        self.run_inner(socket, http).await
    }

    /// The body of every `run*`: recover, bind the socket if asked to, serve
    /// until shut down.
    async fn run_inner(
        self,
        socket: SocketPlan,
        http: Option<TcpListener>,
    ) -> Result<(), DaemonError> {
        let Scheduler {
            settings,
            handle,
            internal_rx,
        } = self;
        let logs_dir = settings.state_dir.join("logs");
        std::fs::create_dir_all(&logs_dir).map_err(|source| DaemonError::StateDir {
            path: logs_dir.clone(),
            source,
        })?;

        let shutdown = CancellationToken::new();
        let shutdown_begun = CancellationToken::new();
        let forced = CancellationToken::new();
        let tracker = TaskTracker::new();

        if settings.handle_signals {
            let signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGUSR1])
                .map_err(DaemonError::Runtime)?;
            let signals_handle = signals.handle();
            let handle = handle.clone();
            let forced = forced.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut signals = signals.fuse();
                let mut seen = 0;
                loop {
                    tokio::select! {
                        sig = signals.next() => match sig {
                            Some(SIGUSR1) => {
                                let _ = handle.internal.send(InternalMsg::LogState);
                            }
                            Some(sig) => {
                                seen += 1;
                                if seen == 1 {
                                    tracing::info!(signal = sig, "signal received: shutting down gracefully (send it again to force)");
                                    let _ = handle.internal.send(InternalMsg::Shutdown {
                                        timeout: None,
                                        reason: format!("signal {}", signal_name(sig)),
                                    });
                                } else {
                                    tracing::warn!(signal = sig, "second signal: forcing exit");
                                    forced.cancel();
                                    break;
                                }
                            }
                            None => break,
                        },
                        () = stop.cancelled() => break,
                    }
                }
                signals_handle.close();
            });
        }

        let (clients_tx, clients_rx) = mpsc::channel(4096);
        let (processes_tx, processes_rx) = mpsc::unbounded_channel();
        let executor = Executor::new(
            logs_dir.clone(),
            settings.socket.clone(),
            processes_tx,
            TaskTracker::new(),
        )
        .map_err(DaemonError::Runtime)?;
        let config = settings.core_config();
        let wal_dir = settings.state_dir.join("wal");
        let repair = settings.one_run.repair_wal;
        let recovered = tokio::task::spawn_blocking(move || {
            if repair {
                let report = crate::wal::repair(&wal_dir)?;
                tracing::warn!(%report, "--repair-wal");
            }
            recover(&wal_dir, WalOptions::default(), config)
        })
        .await
        .map_err(|e| DaemonError::Runtime(std::io::Error::other(e)))??;
        let stats = &recovered.stats;
        tracing::info!(
            records = stats.records,
            bytes = stats.bytes,
            snapshot_bytes = stats.snapshot_bytes.unwrap_or(0),
            torn_bytes_cut = stats.torn_bytes_cut,
            elapsed_ms = stats.elapsed.as_secs_f64() * 1000.0,
            jobs = recovered.core.job_count(),
            "state recovered from the write-ahead log"
        );
        let boot = crate::driver::BootInfo {
            recovered_jobs: recovered.core.job_count() as u64,
            replayed_records: stats.records,
            replay_ms: stats.elapsed.as_millis() as u64,
            snapshot_bytes: stats.snapshot_bytes.unwrap_or(0),
            log_bytes: recovered.wal.bytes_since_snapshot(),
        };
        let core = recovered.core;
        // A crash leaves job processes running: stop exactly those the log
        // names (same pid and start time), since they are now interrupted.
        for (id, pid, start_ticks) in core.logged_processes() {
            if crate::executor::kill_leftover_group(pid, start_ticks) {
                tracing::warn!(job = %id, pid, "stopped the process group the previous daemon left running");
            }
        }
        let mut recovery_events = core.recovery_events(mayfly_protocol::Timestamp::now());
        if settings.one_run.repair_wal
            && let Some(event) =
                highest_output_id(&logs_dir).and_then(|max| core.reserve_ids_through(max))
        {
            // The repair dropped records of jobs whose output files remain;
            // their ids must not be handed out again.
            recovery_events.insert(0, event);
        }
        if !recovery_events.is_empty() {
            tracing::warn!(
                jobs = recovery_events
                    .iter()
                    .filter(|e| matches!(e, crate::core::Event::Interrupted { .. }))
                    .count(),
                "jobs that were running when the daemon stopped are marked interrupted"
            );
        }
        let metrics = Metrics::new()?;
        let readiness = Readiness::new();
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let journal = Journal::start(recovered.wal, acks_tx, Some(metrics.clone()))
            .map_err(DaemonError::Runtime)?;
        let refresh = queue_gauge_refresh(clients_tx.clone(), metrics.clone());

        let metrics_task = metrics.clone();
        let metrics_refresh = refresh.clone();
        let push = PushConfig {
            gateway: settings.push_gateway.clone(),
            interval: settings.metrics_interval,
        };
        handle.spawn_system("looptask_metrics", move |ctx| {
            pusher::run(metrics_task, Some(metrics_refresh), push, ctx.shutdown)
        });

        let flush_every = settings.wal_flush_interval;
        let flusher = handle.internal.clone();
        handle.spawn_system("looptask_wal_flush", move |ctx| async move {
            let mut tick = tokio::time::interval(flush_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if flusher.send(InternalMsg::FlushWal).is_err() {
                            break;
                        }
                    }
                    () = ctx.shutdown.cancelled() => break,
                }
            }
            Ok(())
        });

        let driver = crate::driver::Driver::new(
            core,
            journal,
            executor,
            DriverConfig {
                quantum: settings.quantum,
                shutdown_timeout: settings.shutdown_timeout,
                logs_dir: logs_dir.clone(),
                snapshot_bytes: settings.snapshot_bytes,
            },
            DriverInbox {
                clients: clients_rx,
                internal: internal_rx,
                internal_tx: handle.internal.clone(),
                processes: processes_rx,
                acks: acks_rx,
            },
            shutdown_begun.clone(),
            shutdown.clone(),
            tracker.clone(),
        )
        .with_metrics(metrics.clone());

        if let Some(http) = http {
            let state = HttpState {
                metrics: metrics.clone(),
                readiness: readiness.clone(),
                refresh: Some(refresh),
            };
            // Health turns 503 the moment a shutdown begins; /metrics keeps
            // answering until the daemon has stopped.
            tracker.spawn(http::serve(http, state, shutdown.clone()));
        }
        {
            let readiness = readiness.clone();
            let begun = shutdown_begun.clone();
            let done = shutdown.clone();
            tracker.spawn(async move {
                tokio::select! {
                    () = begun.cancelled() => {}
                    () = done.cancelled() => {}
                }
                readiness.set_stopping();
                crate::notify::notify("STOPPING=1");
            });
        }

        let listener = match socket {
            SocketPlan::Bound(listener) => Some(listener),
            #[cfg(feature = "ipc")]
            SocketPlan::Bind(path) => match listener::bind(&path) {
                Ok(listener) => Some(listener),
                Err(e) => {
                    // Nothing was started for clients yet; close the log.
                    shutdown.cancel();
                    return Err(e.into());
                }
            },
            SocketPlan::None => None,
        };
        #[cfg(feature = "ipc")]
        if let Some(listener) = listener {
            let session_ctx = SessionContext {
                driver: clients_tx,
                internal: handle.internal.clone(),
                logs_dir,
                handshake_timeout: settings.handshake_timeout,
                metrics: metrics.clone(),
            };
            tracker.spawn(listener::run(
                listener,
                session_ctx,
                Limits {
                    max_connections: settings.max_connections,
                },
                shutdown.clone(),
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        #[cfg(not(feature = "ipc"))]
        let _ = (listener, clients_tx);
        tracing::info!(
            socket = %settings.socket.display(),
            state_dir = %settings.state_dir.display(),
            concurrency = settings.concurrency,
            "mayflyd ready"
        );

        // The socket accepts and the driver is about to run: requests get
        // answers. (Set first, so no request is answered while not ready.)
        readiness.set_ready();
        crate::notify::notify("READY=1");
        let driver_task = tokio::spawn(driver.run(boot, recovery_events));
        let result = tokio::select! {
            core = driver_task => {
                match core {
                    Ok(core) if settings.one_run.dump_state => {
                        println!("{:#}", crate::driver::state_json(&core));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "driver task failed"),
                }
                Ok(())
            }
            () = forced.cancelled() => Err(DaemonError::Forced),
        };
        shutdown.cancel();
        tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 5s; exiting anyway");
        }
        match std::fs::remove_file(&settings.socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "could not remove the socket"),
        }
        if result.is_ok() {
            tracing::info!("mayflyd stopped");
        }
        result
    }
}

/// Binds the HTTP endpoint at `addr`, if there is one.
async fn bind_http(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, DaemonError> {
    match addr {
        Some(addr) => Ok(Some(http::bind(addr).await?)),
        None => Ok(None),
    }
}

/// The hook that makes the queued and running gauges current before a
/// scrape or a push: it asks the driver for its queues (`QueueList`, cheap:
/// one entry per queue, counts kept by the core) and sets the gauges from
/// the answer. Callers bound how long they wait for it.
fn queue_gauge_refresh(driver: mpsc::Sender<ClientMsg>, metrics: Arc<Metrics>) -> Refresh {
    Arc::new(move || {
        let driver = driver.clone();
        let metrics = metrics.clone();
        Box::pin(async move {
            let (reply, mut answer) = mpsc::unbounded_channel();
            let msg = ClientMsg {
                request: mayfly_protocol::Request::QueueList,
                reply,
            };
            if driver.send(msg).await.is_err() {
                return; // the driver has stopped
            }
            if let Some(crate::driver::Outgoing::Response(mayfly_protocol::Response::Queues(
                queues,
            ))) = answer.recv().await
            {
                metrics.set_queue_gauges(&queues);
            }
        })
    })
}

/// The runtime's worker threads: `TOKIO_WORKER_THREADS` if set to a
/// positive number (tokio's own variable, which an explicit
/// `worker_threads` would otherwise override), else 1 (see
/// [`Scheduler::run_blocking`]).
fn worker_threads() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(1)
}
