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

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::core::CoreConfig;
use crate::driver::{DriverConfig, DriverInbox, InternalMsg, SystemContext};
use crate::executor::Executor;
use crate::journal::{Journal, recover};
#[cfg(feature = "ipc")]
use crate::listener::{self, BindError, Limits};
#[cfg(feature = "ipc")]
use crate::session::SessionContext;
use crate::wal::WalOptions;

/// Everything a daemon is configured with. [`Settings::default`] gives the
/// daemon's defaults (socket and state dir from the environment as the
/// contract says).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Unix socket to serve.
    pub socket: PathBuf,
    /// Where the WAL, snapshots and job logs live.
    pub state_dir: PathBuf,
    /// The global limit on running jobs.
    pub concurrency: u32,
    /// The driver's time slice.
    pub quantum: Duration,
    /// How long running jobs get between SIGTERM and SIGKILL at shutdown.
    pub shutdown_timeout: Duration,
    /// How long a cancelled job gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a new connection has to complete the handshake.
    pub handshake_timeout: Duration,
    /// Install SIGTERM/SIGINT handlers in [`Scheduler::run_blocking`].
    pub handle_signals: bool,
    /// How often the WAL flusher makes the daemon's own records durable.
    pub wal_flush_interval: Duration,
    /// Take a snapshot once the log has grown this many bytes past the last.
    pub snapshot_bytes: u64,
    /// Before opening the log, back up and cut off damaged records.
    pub repair_wal: bool,
    /// Print a JSON snapshot of tasks and queues to stdout on shutdown.
    pub dump_state: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            socket: default_socket_path(),
            state_dir: default_state_dir(),
            concurrency: std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1),
            quantum: Duration::from_millis(10),
            shutdown_timeout: Duration::from_secs(10),
            kill_grace: Duration::from_secs(5),
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(5),
            handle_signals: true,
            wal_flush_interval: Duration::from_millis(100),
            snapshot_bytes: 64 << 20,
            repair_wal: false,
            dump_state: false,
        }
    }
}

/// `SIGTERM` or `SIGINT` for the signals we handle, the number otherwise.
fn signal_name(sig: i32) -> String {
    match sig {
        SIGTERM => "SIGTERM".into(),
        SIGINT => "SIGINT".into(),
        n => n.to_string(),
    }
}

/// The contract's default socket: `$XDG_RUNTIME_DIR/mayfly/mayfly.sock`, else
/// `/tmp/mayfly-$UID/mayfly.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Path::new(&dir).join("mayfly").join("mayfly.sock"),
        None => PathBuf::from(format!("/tmp/mayfly-{}/mayfly.sock", nix::unistd::getuid())),
    }
}

/// The contract's default state dir: `$XDG_STATE_HOME/mayfly`, else
/// `~/.local/state/mayfly`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Path::new(&dir).join("mayfly");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    Path::new(&home).join(".local/state/mayfly")
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The socket could not be bound.
    #[cfg(feature = "ipc")]
    #[error(transparent)]
    Bind(#[from] BindError),
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

    /// Builds a multi-threaded runtime, binds the socket and runs until a
    /// graceful shutdown completes. With `handle_signals`, SIGTERM/SIGINT
    /// begin the shutdown and a second one forces the exit.
    pub fn run_blocking(self) -> Result<(), DaemonError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("mayflyd")
            .build()
            .map_err(DaemonError::Runtime)?;
        runtime.block_on(async move {
            #[cfg(feature = "ipc")]
            let listener = Some(listener::bind(&self.settings.socket)?);
            #[cfg(not(feature = "ipc"))]
            let listener = None;
            self.run(listener).await
        })
    }

    /// Runs on the current runtime with an already-bound listener (tests
    /// bind their own socket and hand it in); `None` serves no socket.
    pub async fn run(self, listener: Option<UnixListener>) -> Result<(), DaemonError> {
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
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let executor = Executor::new(
            logs_dir.clone(),
            settings.socket.clone(),
            exits_tx,
            TaskTracker::new(),
        );
        let config = CoreConfig {
            concurrency: settings.concurrency,
            kill_grace_ms: u64::try_from(settings.kill_grace.as_millis()).unwrap_or(u64::MAX),
            quantum_ms: u64::try_from(settings.quantum.as_millis()).unwrap_or(u64::MAX),
        };
        let wal_dir = settings.state_dir.join("wal");
        let repair = settings.repair_wal;
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
        };
        let core = recovered.core;
        let recovery_events = core.recovery_events(mayfly_protocol::Timestamp::now());
        if !recovery_events.is_empty() {
            tracing::warn!(
                jobs = recovery_events.len(),
                "jobs that were running when the daemon stopped are marked interrupted"
            );
        }
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let journal = Journal::start(recovered.wal, acks_tx).map_err(DaemonError::Runtime)?;

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
                exits: exits_rx,
                acks: acks_rx,
            },
            shutdown_begun.clone(),
            shutdown.clone(),
            tracker.clone(),
        );

        #[cfg(feature = "ipc")]
        if let Some(listener) = listener {
            let session_ctx = SessionContext {
                driver: clients_tx,
                internal: handle.internal.clone(),
                logs_dir,
                handshake_timeout: settings.handshake_timeout,
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

        let driver_task = tokio::spawn(driver.run(boot, recovery_events));
        let result = tokio::select! {
            core = driver_task => {
                match core {
                    Ok(core) if settings.dump_state => {
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
