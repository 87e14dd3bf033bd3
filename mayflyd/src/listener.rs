//! The Unix-socket listener: binds the socket safely and accepts
//! connections, each served by its own session task.
//!
//! Binding follows the contract: the socket's folder is created `0700` and
//! the socket made `0600`, so only the owner can talk to the daemon; a
//! leftover socket that no daemon answers on is replaced, and a live one makes
//! this daemon refuse to start rather than steal it. A folder that exists
//! must pass [`mayfly_protocol::socket_folder`]'s test for the daemon's uid
//! (a real directory, ours, writable by no one else), or the daemon refuses
//! to start: someone else's folder could hold someone else's socket.
//!
//! With `--allow-uid`, other users must be able to connect, so the socket is
//! made `0666`; each connection's peer credentials ([`crate::peer`]) then
//! decide who is served.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mayfly_protocol::socket_folder::{self, UnsafeFolder};
use mayfly_protocol::{HelloReply, encode_frame};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::session::{SessionContext, serve};

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another daemon answers on the socket.
    #[error(
        "another mayflyd is already serving {0}; stop it first (mayflyctl shutdown) or pass a different --socket"
    )]
    InUse(PathBuf),
    /// The socket's folder is not safe to use.
    #[error(transparent)]
    UnsafeFolder(#[from] UnsafeFolder),
    /// Something that is not a socket sits at the path.
    #[error("{0} exists and is not a socket; remove it or pass a different --socket")]
    NotASocket(PathBuf),
    /// Any other failure, with what we were doing.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
}

/// Fails with [`BindError::InUse`] when a daemon already answers at `path`
/// (a quick check before the slower start-up work; [`bind`] checks again).
pub fn refuse_if_live(path: &Path) -> Result<(), BindError> {
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse(path.to_path_buf())),
        Err(_) => Ok(()),
    }
}

/// Fails with [`BindError::UnsafeFolder`] when the folder of the socket
/// `path` exists and fails the test of the module docs; a missing folder
/// passes (it is created `0700`).
pub fn check_folder(path: &Path) -> Result<(), BindError> {
    let me = nix::unistd::geteuid().as_raw();
    let dir = socket_folder::folder_of(path);
    socket_folder::check(dir, me, &[me])
        .map_err(|source| BindError::Io {
            what: "inspect the folder of",
            path: path.to_path_buf(),
            source,
        })?
        .map_err(BindError::from)
}

/// Binds the daemon's socket at `path` with permission bits `mode` (see
/// the module docs for the rules). Must be called inside a tokio runtime.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, BindError> {
    let io_err = |what, source| BindError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err("create the socket folder for", e))?;
    }
    check_folder(path)?;
    let dir = socket_folder::folder_of(path);
    if mode & 0o007 != 0
        && let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o001 == 0
    {
        tracing::warn!(
            folder = %dir.display(),
            "--allow-uid is given, but other users cannot reach the socket: its folder is mode \
             {:04o}; run 'chmod o+x {}' or put the socket in a folder they can reach",
            meta.permissions().mode() & 0o7777,
            dir.display()
        );
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(BindError::NotASocket(path.to_path_buf()));
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(BindError::InUse(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %path.display(), "replacing a stale socket (no daemon answers on it)");
                std::fs::remove_file(path).map_err(|e| io_err("remove the stale socket", e))?;
            }
            Err(e) => return Err(io_err("probe the existing socket", e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| io_err("bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err("set permissions on", e))?;
    Ok(listener)
}

/// One open connection in `mayfly_ipc_connections`: counted when made,
/// uncounted when dropped (however the session task ends).
struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    /// Counts a connection as open.
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.ipc_connection_opened();
        Self(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.ipc_connection_closed();
    }
}

/// Limits on connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once (`--max-connections`); a client past it is
    /// refused at once.
    pub max_connections: usize,
}

/// Accepts connections until `stop_accepting` fires. Each session runs on
/// `tracker` and ends when `session_shutdown` fires.
///
/// At `max_connections` open, a new connection is still accepted, told
/// "too many connections" in a handshake refusal and closed at once — a
/// client is never left waiting in the backlog for a slot that may not
/// come (nothing was read from it, so the refusal is all the work it costs).
pub async fn run(
    listener: UnixListener,
    ctx: SessionContext,
    limits: Limits,
    stop_accepting: CancellationToken,
    session_shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let mut backoff = Duration::from_millis(1);
    loop {
        let accepted = tokio::select! {
            () = stop_accepting.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(1);
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    refuse(&stream, max);
                    continue;
                };
                let ctx = ctx.clone();
                let shutdown = session_shutdown.clone();
                let open = OpenConnection::new(ctx.metrics.clone());
                tracker.spawn(async move {
                    serve(stream, ctx, shutdown).await;
                    drop(open);
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    tracing::debug!("listener stopped accepting");
}

/// Tells a client past the connection limit so, in a handshake refusal, and
/// lets the connection close. The one write never waits: a new socket's
/// buffer is empty, and if it is not taken whole the client just sees the
/// connection close.
fn refuse(stream: &UnixStream, max: usize) {
    tracing::debug!(max, "refusing a connection: too many open");
    let reply = HelloReply::Rejected {
        reason: format!(
            "too many connections ({max} open, the daemon's --max-connections); close some \
             or try again later"
        ),
    };
    if let Ok(frame) = encode_frame(&reply) {
        let _ = stream.try_write(&frame);
    }
}
