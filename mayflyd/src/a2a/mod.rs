//! The A2A front door (feature `a2a`, `--a2a-addr`): Agent2Agent 1.0 over
//! JSON-RPC 2.0 and server-sent events, so that agents built on any A2A SDK
//! can hand Mayfly work and follow it like any A2A task (`docs/a2a.md`).
//!
//! Like every door it is an adapter over the service ([`Mayfly`]): a message
//! becomes a submit, a task is a job (its id the job id in decimal), and an
//! answer that changes state is given only once the change is durable.
//!
//! | module | owns |
//! |---|---|
//! | [`server`] | the HTTP listener: connection limits, the bearer token, the agent card, routing, server-sent events |
//! | [`rpc`] | the JSON-RPC methods |
//! | [`task`] | a job as a task: states, artifacts |
//! | [`watch`] | following tasks as their jobs move (streams, webhooks) |
//! | [`push`] | push notification webhooks and their bounded delivery |
//! | [`wire`] | the A2A wire types |
//!
//! Who may call: everyone may read the agent card; every other request
//! needs `Authorization: Bearer <STATE_DIR/token>` ([`crate::token`]). The
//! door listens on loopback unless `--a2a-addr` names another address.

pub mod push;
pub mod rpc;
pub mod server;
pub mod task;
pub mod watch;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mayflyctl::ClientContext;
use mayflyctl::cli::SubmitArgs;
use mayflyctl::cmd::submit::JobDefaults;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::service::Mayfly;
use crate::shutdown::Shutdown;
use crate::token::{Token, TokenError};

/// Why the A2A door could not start.
#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr} (--a2a-addr): {reason}; pass --a2a-addr HOST:PORT or --a2a-addr off"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What went wrong, in words.
        reason: String,
    },
    /// The bearer token could not be had.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The defaults of the jobs messages become could not be set up.
    #[error("cannot set up the A2A door: {0}")]
    Defaults(String),
}

/// Binds the door's listener on `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, A2aError> {
    TcpListener::bind(addr).await.map_err(|e| A2aError::Bind {
        addr,
        reason: crate::http::bind_failure(&e),
    })
}

/// How the jobs that messages become are set up, besides what a message
/// says: as `mayflyctl submit` would set them up, run from the daemon's
/// home folder with the daemon's environment.
#[derive(Debug, Clone)]
pub struct JobBase {
    /// The settings of a plain `submit`.
    pub defaults: JobDefaults,
    /// The context `--json-input` jobs are read in (relative paths, `at`
    /// times).
    pub context: ClientContext,
}

impl JobBase {
    /// The daemon's own: `$HOME` (or `/`) as the working directory, its
    /// environment as the jobs'.
    pub fn of_daemon() -> Result<Self, A2aError> {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|h| h.is_absolute() && h.is_dir())
            .unwrap_or_else(|| PathBuf::from("/"));
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let context = ClientContext::detached(home, env);
        let defaults = JobDefaults::from_args(&SubmitArgs::default(), &context)
            .map_err(|e| A2aError::Defaults(e.to_string()))?;
        Ok(Self { defaults, context })
    }
}

/// What the door's connections share.
#[derive(Debug)]
pub struct Door {
    /// The service.
    pub mayfly: Mayfly,
    /// What every request but the card must present.
    pub token: Token,
    /// Where job output lives (for artifacts).
    pub logs_dir: PathBuf,
    /// How jobs are set up.
    pub jobs: JobBase,
    /// Who follows which job.
    pub watch: watch::Watch,
    /// Webhooks.
    pub push: push::Push,
    /// The daemon's metrics.
    pub metrics: Arc<Metrics>,
    /// Fires when the daemon is done: streams and follows end.
    pub stop: CancellationToken,
    /// Where the door's tasks run (drained at shutdown).
    pub tracker: TaskTracker,
}

/// What [`start`] needs of the daemon.
#[derive(Debug, Clone)]
pub struct DoorContext {
    /// The service.
    pub mayfly: Mayfly,
    /// The daemon's metrics.
    pub metrics: Arc<Metrics>,
    /// The daemon's shutdown.
    pub shutdown: Shutdown,
    /// The state dir (the token lives there).
    pub state_dir: PathBuf,
    /// `--a2a-max-connections`.
    pub max_connections: usize,
    /// `--a2a-push-queue`.
    pub push_queue: usize,
}

/// Starts the door on `listener`: loads (or makes) the token, follows the
/// activity log, and serves until the daemon is done.
pub fn start(listener: TcpListener, ctx: DoorContext) -> Result<(), A2aError> {
    let token = crate::token::load_or_create(&ctx.state_dir)?;
    let jobs = JobBase::of_daemon()?;
    let stop = ctx.shutdown.done_token();
    let tracker = ctx.shutdown.tasks().clone();
    let logs_dir = ctx.state_dir.join("logs");
    let watch = watch::Watch::default();
    tracker.spawn(watch.clone().start(ctx.mayfly.clone(), stop.clone()));
    let push = push::Push::new(push::PushContext {
        mayfly: ctx.mayfly.clone(),
        watch: watch.clone(),
        logs_dir: logs_dir.clone(),
        metrics: ctx.metrics.clone(),
        bound: ctx.push_queue,
        stop: stop.clone(),
        tracker: tracker.clone(),
    });
    let door = Arc::new(Door {
        mayfly: ctx.mayfly,
        token,
        logs_dir,
        jobs,
        watch,
        push,
        metrics: ctx.metrics,
        stop: stop.clone(),
        tracker: tracker.clone(),
    });
    // Like the Unix socket, the door serves until the daemon is done: a
    // client can still follow its tasks while running jobs are stopped.
    tracker.spawn(server::serve(listener, door, ctx.max_connections, stop));
    Ok(())
}
