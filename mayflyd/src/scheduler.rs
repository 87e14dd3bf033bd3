//! The daemon's top level: [`Scheduler`] wires the core, the driver, the
//! executor, the listener and signal handling together, and owns shutdown.
//!
//! Its shape: build a scheduler with sane defaults (`Scheduler::new()` /
//! [`Scheduler::builder`]), run it with [`Scheduler::run_blocking`], stop
//! it with [`SchedulerHandle::shutdown`] (or SIGTERM/SIGINT), and start
//! priority-0 system tasks with [`SchedulerHandle::spawn_system`].
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
use tokio_util::task::TaskTracker;

use mayfly_protocol::JobId;
use tokio::sync::watch;

use crate::core::Core;
use crate::driver::{BootInfo, Driver, DriverConfig, DriverInbox, InternalMsg, SystemContext};
use crate::exec::{Executors, Handle, LocalExecutor, Reattached, RemoteContext, Report};
use crate::http::{self, HttpError, HttpState, Readiness};
use crate::journal::{Journal, recover};
#[cfg(feature = "ipc")]
use crate::listener::{self, BindError, Limits};
use crate::metrics::{Metrics, Refresh};
#[cfg(feature = "ipc")]
use crate::peer::PeerPolicy;
use crate::pusher::{self, PushConfig};
use crate::service::{Mayfly, View};
#[cfg(feature = "ipc")]
use crate::session::{SessionContext, SessionLimits};
use crate::settings::{GrpcListeners, HttpAddr, Settings};
use crate::shutdown::Shutdown;
use crate::wal::WalOptions;

/// A signal's name (`SIGTERM`), or its number if it has none.
fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
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
    /// The A2A front door could not start.
    #[cfg(feature = "a2a")]
    #[error(transparent)]
    A2a(#[from] crate::a2a::A2aError),
    /// The gRPC front door could not start.
    #[cfg(feature = "grpc")]
    #[error(transparent)]
    Grpc(#[from] crate::grpc::GrpcError),
    /// The metrics registry could not be built (a bug: two families clash).
    #[error("cannot set up the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The state dir could not be prepared, or is not safe to use.
    #[error(transparent)]
    StateDir(#[from] crate::private::StateDirError),
    /// The saved state could not be read; nothing was changed on disk.
    #[error("{0}")]
    Recover(#[from] crate::wal::WalError),
    /// The async runtime or signal handling could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// A second signal asked to exit without waiting for jobs.
    #[error("forced exit on a second signal; jobs that were still running were left as they were")]
    Forced,
    /// The driver stopped on a bug (a panic). Nothing unlogged was
    /// acknowledged; the next start recovers from the log.
    #[error(
        "the scheduler stopped on an internal error ({0}); the log holds every acknowledged \
         change, so start mayflyd again, and please report this"
    )]
    DriverFailed(String),
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
    /// on one worker that costs no cross-thread wakeup, which made a single
    /// client's durable submit measurably faster with the same 8-client
    /// throughput (`bench/RESULTS.md`, "Figures that used to live in code
    /// comments").
    pub fn run_blocking(mut self) -> Result<(), DaemonError> {
        fit_connections_to(&mut self.settings, raise_fd_limit());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .enable_all()
            .thread_name("mayflyd")
            .on_thread_start(crate::slice::shorten_for_this_thread)
            .build()
            .map_err(DaemonError::Runtime)?;
        runtime.block_on(async move {
            // Refuse early when another daemon serves the socket; bind it
            // only once the state is recovered, so a daemon that accepts
            // connections is one that answers them (and one that refuses to
            // start over damaged state leaves no socket behind).
            #[cfg(feature = "ipc")]
            listener::check_folder(&self.settings.socket)?;
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

    /// The body of every `run*`: start-up in small steps, then serve until
    /// shut down.
    async fn run_inner(
        self,
        socket: SocketPlan,
        http: Option<TcpListener>,
    ) -> Result<(), DaemonError> {
        // gRPC's default socket sits beside the daemon's own; when the
        // caller bound that one, only gRPC listeners it named are served.
        let grpc = match socket {
            #[cfg(feature = "ipc")]
            SocketPlan::Bind(_) => self.settings.grpc_listeners(),
            _ if self.settings.grpc_addr.is_empty() => GrpcListeners::default(),
            _ => self.settings.grpc_listeners(),
        };
        let mut startup = Startup::new(self)?;
        startup.handle_signals()?;
        let recovered = startup.recover().await?;
        let (driver, boot) = startup.driver(recovered)?;
        startup.system_tasks();
        if let Some(http) = http {
            startup.serve_http(http);
        }
        // The A2A door before the socket: a client that finds the socket
        // finds the door (and its token) too.
        startup.serve_a2a().await?;
        // gRPC first: a daemon whose socket accepts serves gRPC already.
        startup.serve_grpc(grpc).await?;
        startup.listen(socket)?;
        startup.run(driver, boot).await
    }
}

/// The daemon while it starts: what the start-up steps build, in order, for
/// the ones after them (see [`Scheduler::run_inner`]).
struct Startup {
    /// The settings.
    settings: Settings,
    /// The library's handle, for the signal handler.
    handle: SchedulerHandle,
    /// The driver's internal channel, receiving end.
    internal_rx: Option<mpsc::UnboundedReceiver<InternalMsg>>,
    /// The one shutdown.
    shutdown: Shutdown,
    /// Where job output lives.
    logs_dir: PathBuf,
    /// The daemon's metrics.
    metrics: Arc<Metrics>,
    /// What `/__health` reports.
    readiness: Arc<Readiness>,
    /// The service every front door uses (once the driver is built).
    mayfly: Option<Mayfly>,
}

/// What recovery found, for the driver.
struct Recovered {
    /// The state, replayed.
    core: Core,
    /// The log, ready for appending.
    wal: crate::wal::Wal,
    /// Figures for the `SchedulerBoot` event.
    boot: BootInfo,
    /// The events that close the books on jobs that were running.
    events: Vec<crate::core::Event>,
    /// Attempts that run elsewhere and were re-attached.
    reattached: Vec<Reattached>,
    /// The executors (with the re-attached attempts' ones made).
    executors: Executors,
    /// Where the executors report.
    reports: mpsc::UnboundedReceiver<Report>,
}

impl Startup {
    /// Makes the state dir safe to use and sets up what every later step
    /// shares.
    fn new(scheduler: Scheduler) -> Result<Self, DaemonError> {
        let Scheduler {
            settings,
            handle,
            internal_rx,
        } = scheduler;
        let tightening = crate::private::prepare_state_dir(
            &settings.state_dir,
            nix::unistd::geteuid().as_raw(),
            &["logs", "wal"],
        )?;
        let state_dir = settings.state_dir.clone();
        let started = std::thread::Builder::new()
            .name("mayfly-private".into())
            .spawn(move || {
                if let Some(warning) = tightening.finish().warning(&state_dir) {
                    tracing::warn!("{warning}");
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot start the thread that makes the files under the state dir private; its folders are");
        }
        Ok(Self {
            logs_dir: settings.state_dir.join("logs"),
            shutdown: Shutdown::new(settings.shutdown_step_timeout),
            settings,
            handle,
            internal_rx: Some(internal_rx),
            metrics: Metrics::new()?,
            readiness: Readiness::new(),
            mayfly: None,
        })
    }

    /// SIGTERM and SIGINT begin a graceful shutdown, a second one forces
    /// the exit; SIGUSR1 writes the state to the log.
    fn handle_signals(&self) -> Result<(), DaemonError> {
        if !self.settings.handle_signals {
            return Ok(());
        }
        let signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGUSR1])
            .map_err(DaemonError::Runtime)?;
        let signals_handle = signals.handle();
        let internal = self.handle.internal.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut signals = signals.fuse();
            let mut seen = 0;
            let done = shutdown.done_token();
            loop {
                tokio::select! {
                    sig = signals.next() => match sig {
                        Some(SIGUSR1) => {
                            let _ = internal.send(InternalMsg::LogState);
                        }
                        Some(sig) => {
                            seen += 1;
                            if seen == 1 {
                                tracing::info!(signal = sig, "signal received: shutting down gracefully (send it again to force)");
                                let _ = internal.send(InternalMsg::Shutdown {
                                    timeout: None,
                                    reason: format!("signal {}", signal_name(sig)),
                                });
                            } else {
                                tracing::warn!(signal = sig, "second signal: forcing exit");
                                shutdown.force();
                                break;
                            }
                        }
                        None => break,
                    },
                    () = done.cancelled() => break,
                }
            }
            signals_handle.close();
        });
        Ok(())
    }

    /// Replays the log (after `--repair-wal`, if asked), stops what a crash
    /// left running locally, re-attaches what runs elsewhere, and works out
    /// the events that close the books on the rest.
    async fn recover(&self) -> Result<Recovered, DaemonError> {
        let config = self.settings.core_config();
        let wal_dir = self.settings.state_dir.join("wal");
        let repair = self.settings.one_run.repair_wal;
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
        let boot = BootInfo {
            recovered_jobs: recovered.core.job_count() as u64,
            replayed_records: stats.records,
            replay_ms: stats.elapsed.as_millis() as u64,
            snapshot_bytes: stats.snapshot_bytes.unwrap_or(0),
            log_bytes: recovered.wal.bytes_since_snapshot(),
        };
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let local = LocalExecutor::new(
            self.logs_dir.clone(),
            self.settings.socket.clone(),
            self.settings.max_output.map(|s| s.0),
            reports_tx.clone(),
            TaskTracker::new(),
        )
        .map_err(DaemonError::Runtime)?;
        let context = RemoteContext {
            state_dir: self.settings.state_dir.clone(),
            logs_dir: self.logs_dir.clone(),
            socket: self.settings.socket.clone(),
            slurm_poll: self.settings.slurm_poll_interval,
            a2a_poll: self.settings.a2a_poll_interval,
            a2a_retry_for: self.settings.a2a_retry_for,
            metrics: Some(self.metrics.clone()),
        };
        let mut executors = Executors::new(local, reports_tx, context);
        let reattached = reattach(&recovered.core, &mut executors);
        let ids: Vec<JobId> = reattached.iter().map(|r| r.id).collect();
        let mut events = recovered
            .core
            .recovery_events(mayfly_protocol::Timestamp::now(), &ids);
        if self.settings.one_run.repair_wal
            && let Some(event) = highest_output_id(&self.logs_dir)
                .and_then(|max| recovered.core.reserve_ids_through(max))
        {
            // The repair dropped records of jobs whose output files remain;
            // their ids must not be handed out again.
            events.insert(0, event);
        }
        let interrupted = events
            .iter()
            .filter(|e| matches!(e, crate::core::Event::Interrupted { .. }))
            .count();
        if interrupted > 0 {
            tracing::warn!(
                jobs = interrupted,
                "jobs that were running when the daemon stopped are marked interrupted"
            );
        }
        Ok(Recovered {
            core: recovered.core,
            wal: recovered.wal,
            boot,
            events,
            reattached,
            executors,
            reports,
        })
    }

    /// Builds the driver over the recovered state, with its journal, and
    /// the service handle the front doors use.
    fn driver(&mut self, recovered: Recovered) -> Result<(Driver, Boot), DaemonError> {
        let Recovered {
            core,
            wal,
            boot,
            events,
            reattached,
            executors,
            reports,
        } = recovered;
        let (acks_tx, acks) = mpsc::unbounded_channel();
        let journal = Journal::start(wal, acks_tx, Some(self.metrics.clone()))
            .map_err(DaemonError::Runtime)?;
        let (commands_tx, commands) = mpsc::channel(4096);
        let (view_tx, view_rx) = watch::channel(Arc::new(View::default()));
        let internal = self
            .internal_rx
            .take()
            .ok_or_else(|| DaemonError::Runtime(std::io::Error::other("started twice")))?;
        self.mayfly = Some(Mayfly::new(
            commands_tx,
            self.handle.internal.clone(),
            self.logs_dir.clone(),
            view_rx,
        ));
        let driver = Driver::new(
            core,
            journal,
            executors,
            DriverConfig {
                quantum: self.settings.quantum,
                shutdown_timeout: self.settings.shutdown_timeout,
                snapshot_bytes: self.settings.snapshot_bytes,
                callbacks: crate::callback::CallbackConfig {
                    default_line: self.settings.on_finish.clone(),
                    timeout: self.settings.on_finish_timeout,
                    concurrency: self.settings.on_finish_concurrency,
                    logs_dir: self.logs_dir.clone(),
                    socket: self.settings.socket.clone(),
                },
            },
            DriverInbox {
                commands,
                internal,
                internal_tx: self.handle.internal.clone(),
                reports,
                acks,
            },
            view_tx,
            self.shutdown.clone(),
        )
        .with_metrics(self.metrics.clone())
        .with_reattached(reattached);
        Ok((driver, Boot { info: boot, events }))
    }

    /// The service handle (built by [`Startup::driver`]).
    fn mayfly(&self) -> Result<Mayfly, DaemonError> {
        self.mayfly
            .clone()
            .ok_or_else(|| DaemonError::Runtime(std::io::Error::other("no driver yet")))
    }

    /// Starts the system tasks: the metrics task and the WAL flusher.
    fn system_tasks(&self) {
        let metrics = self.metrics.clone();
        let refresh = self
            .mayfly
            .clone()
            .map(|m| queue_gauge_refresh(m, metrics.clone()));
        let push = PushConfig {
            gateway: self.settings.push_gateway.clone(),
            interval: self.settings.metrics_interval,
        };
        self.handle.spawn_system("looptask_metrics", move |ctx| {
            pusher::run(metrics, refresh, push, ctx.shutdown)
        });
        let flush_every = self.settings.wal_flush_interval;
        let flusher = self.handle.internal.clone();
        self.handle
            .spawn_system("looptask_wal_flush", move |ctx| async move {
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
    }

    /// Serves `/metrics` and `/__health` on `http`. Health turns 503 the
    /// moment a shutdown begins; `/metrics` keeps answering until the
    /// daemon has stopped.
    fn serve_http(&self, http: TcpListener) {
        let state = HttpState {
            metrics: self.metrics.clone(),
            readiness: self.readiness.clone(),
            refresh: self
                .mayfly
                .clone()
                .map(|m| queue_gauge_refresh(m, self.metrics.clone())),
        };
        let tasks = self.shutdown.tasks();
        tasks.spawn(http::serve(http, state, self.shutdown.done_token()));
    }

    /// Binds the socket (if asked to) and accepts connections on it.
    fn listen(&self, socket: SocketPlan) -> Result<(), DaemonError> {
        let listener = match socket {
            SocketPlan::Bound(listener) => Some(listener),
            #[cfg(feature = "ipc")]
            SocketPlan::Bind(path) => match listener::bind(&path, socket_mode(&self.settings)) {
                Ok(listener) => Some(listener),
                Err(e) => {
                    // Nothing was started for clients yet; close the log.
                    self.shutdown.driver_done();
                    return Err(e.into());
                }
            },
            SocketPlan::None => None,
        };
        #[cfg(feature = "ipc")]
        if let Some(listener) = listener {
            let settings = &self.settings;
            let session_ctx = SessionContext {
                mayfly: self.mayfly()?,
                metrics: self.metrics.clone(),
                limits: SessionLimits::from_settings(settings),
                request_budget: crate::session::request_budget(
                    usize::try_from(settings.request_buffer_bytes.0).unwrap_or(usize::MAX),
                ),
                peers: Arc::new(PeerPolicy::for_this_process(settings.allow_uid.clone())),
            };
            let done = self.shutdown.done_token();
            let tasks = self.shutdown.tasks();
            tasks.spawn(listener::run(
                listener,
                session_ctx,
                Limits {
                    max_connections: settings.max_connections,
                },
                done.clone(),
                done,
                tasks.clone(),
            ));
        }
        #[cfg(not(feature = "ipc"))]
        let _ = listener;
        Ok(())
    }

    /// Serves the A2A front door on `--a2a-addr` (nothing when it is off;
    /// the setting is refused in a build without the `a2a` feature).
    async fn serve_a2a(&self) -> Result<(), DaemonError> {
        #[cfg(feature = "a2a")]
        if let Some(addr) = self.settings.a2a_addr.0 {
            let started = async {
                let listener = crate::a2a::bind(addr).await?;
                crate::a2a::start(
                    listener,
                    crate::a2a::DoorContext {
                        mayfly: self.mayfly()?,
                        metrics: self.metrics.clone(),
                        shutdown: self.shutdown.clone(),
                        state_dir: self.settings.state_dir.clone(),
                        max_connections: self.settings.a2a_max_connections,
                        push_queue: self.settings.a2a_push_queue,
                    },
                )?;
                Ok::<_, DaemonError>(())
            };
            if let Err(e) = started.await {
                // Nothing was started for clients yet; close the log.
                self.shutdown.driver_done();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Serves the gRPC front door on `listeners` (nothing when there are
    /// none, or in a build without the `grpc` feature).
    async fn serve_grpc(&self, listeners: GrpcListeners) -> Result<(), DaemonError> {
        #[cfg(feature = "grpc")]
        if listeners.unix.is_some() || !listeners.tcp.is_empty() {
            let ctx = crate::grpc::GrpcContext::new(
                self.mayfly()?,
                self.metrics.clone(),
                self.shutdown.clone(),
                &self.settings,
                socket_mode(&self.settings),
            );
            if let Err(e) = crate::grpc::start(listeners, ctx).await {
                // Clients may be connected to the other socket already; the
                // driver has not run: close the log and stop.
                self.shutdown.driver_done();
                return Err(e.into());
            }
        }
        #[cfg(not(feature = "grpc"))]
        let _ = listeners;
        Ok(())
    }

    /// Declares the daemon ready and runs the driver until the shutdown
    /// completes (or is forced); then stops everything else, bounded, and
    /// removes the socket.
    async fn run(self, driver: Driver, boot: Boot) -> Result<(), DaemonError> {
        let settings = &self.settings;
        tracing::info!(
            socket = %settings.socket.display(),
            state_dir = %settings.state_dir.display(),
            concurrency = settings.concurrency,
            "mayflyd ready"
        );
        {
            let readiness = self.readiness.clone();
            let shutdown = self.shutdown.clone();
            self.shutdown.tasks().spawn(async move {
                shutdown.begun().await;
                readiness.set_stopping();
                crate::notify::notify("STOPPING=1");
            });
        }
        // The socket accepts and the driver is about to run: requests get
        // answers. (Set first, so no request is answered while not ready.)
        self.readiness.set_ready();
        crate::notify::notify("READY=1");
        let driver_task = tokio::spawn(driver.run(boot.info, boot.events));
        let result = tokio::select! {
            core = driver_task => match core {
                Ok(core) => {
                    if settings.one_run.dump_state {
                        println!("{:#}", crate::driver::state_json(&core));
                    }
                    Ok(())
                }
                // A panic: the sessions and tasks are still told to stop
                // below, and the socket removed, before the daemon exits.
                Err(e) => {
                    self.shutdown.driver_done();
                    Err(DaemonError::DriverFailed(e.to_string()))
                }
            },
            () = self.shutdown.forced() => Err(DaemonError::Forced),
        };
        if !self.shutdown.wait_tasks().await {
            tracing::warn!(
                "some connections did not close within {}; exiting anyway",
                humantime::format_duration(self.shutdown.step_timeout())
            );
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

/// What the driver starts with: the recovery figures and the events that
/// close the books.
struct Boot {
    /// Figures about recovery.
    info: BootInfo,
    /// The events to log first.
    events: Vec<crate::core::Event>,
}

/// For each attempt the log shows running: stops what a crash left running
/// locally (same pid and start time, so a recycled pid is never touched),
/// and asks remote executors to re-attach theirs. Returns the re-attached
/// attempts with their handles (none yet for one whose remote id was not
/// logged: its executor looks for it).
fn reattach(core: &Core, executors: &mut Executors) -> Vec<Reattached> {
    let mut reattached = Vec::new();
    for attempt in core.running_attempts() {
        if attempt.executor.is_local() {
            if let Some((pid, start_ticks)) = attempt.process
                && crate::exec::kill_leftover_group(pid, start_ticks)
            {
                tracing::warn!(job = %attempt.id, pid, "stopped the process group the previous daemon left running");
            }
            continue;
        }
        let executor = match executors.get(&attempt.executor) {
            Ok(executor) => executor,
            Err(e) => {
                tracing::warn!(job = %attempt.id, error = %e, "cannot re-attach the job");
                continue;
            }
        };
        if executor.reattach(&attempt) {
            tracing::info!(job = %attempt.id, remote_id = ?attempt.remote_id, "re-attached a job that runs elsewhere");
            reattached.push(Reattached {
                id: attempt.id,
                attempt: attempt.attempt,
                handle: attempt.remote_id.map(|id| Handle::Remote { id }),
            });
        }
    }
    reattached
}

/// The permission bits of the socket: `0600`, or `0666` when other users
/// are allowed (their peer credentials are checked on every connection).
#[cfg(feature = "ipc")]
fn socket_mode(settings: &Settings) -> u32 {
    if settings.allow_uid.is_empty() {
        0o600
    } else {
        0o666
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
/// scrape or a push: it reads the queues from the view the driver
/// publishes after each step (no request to the driver).
fn queue_gauge_refresh(mayfly: Mayfly, metrics: Arc<Metrics>) -> Refresh {
    Arc::new(move || {
        let view = mayfly.view();
        metrics.set_queue_gauges(&view.queues);
        Box::pin(std::future::ready(()))
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

/// Raises the soft limit on open files to the hard limit: every connection,
/// output file and pipe of the daemon is a file descriptor, and the common
/// soft default (1024) is far below what the system allows (the hard
/// limit, often 524288). Returns the limit in force. A job start that still
/// runs out is retried, not failed (see the executor).
fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::debug!(from = soft, to = hard, "raised the open-files limit");
                Some(hard)
            }
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "could not raise the open-files limit");
                Some(soft)
            }
        },
        Ok((soft, _)) => Some(soft),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the open-files limit");
            None
        }
    }
}

/// Keeps `--max-connections` to at most half the open-files limit, so that
/// connections alone can never use up the descriptors jobs need to start
/// (their output files, pipes). Says so when it lowers the setting.
fn fit_connections_to(settings: &mut Settings, fd_limit: Option<u64>) {
    let Some(limit) = fd_limit else { return };
    let room = usize::try_from(limit / 2).unwrap_or(usize::MAX).max(1);
    if settings.max_connections > room {
        tracing::warn!(
            max_connections = settings.max_connections,
            open_files_limit = limit,
            using = room,
            "--max-connections is more than half the open-files limit; using half of it, \
             so that connections leave descriptors for jobs (raise the limit with ulimit -n)"
        );
        settings.max_connections = room;
    }
}
