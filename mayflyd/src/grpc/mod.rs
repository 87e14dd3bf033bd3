//! The gRPC front door: the service `mayfly.v1.Mayfly` of
//! `protocol/proto/mayfly/v1/mayfly.proto`, with the standard health service
//! and server reflection, for clients generated in any language
//! (docs/grpc.md).
//!
//! It is an adapter like the Unix-socket door ([`crate::session`]): each
//! RPC is a call on the service handle ([`crate::service::Mayfly`]) in
//! [`door`], so it has the same meaning, errors and durability (a `Submit`
//! is answered once the job is in the write-ahead log).
//!
//! Where it listens ([`crate::settings::Settings::grpc_listeners`]):
//!
//! - a Unix socket, `grpc.sock` beside the daemon's socket by default, bound
//!   by the same rules as that one ([`crate::listener::bind`]: a safe
//!   folder, `0600`, a stale socket replaced, a live one refused). Each
//!   connection's peer credentials are read when it is accepted and judged
//!   by the same [`PeerPolicy`] as on the other socket; a user the daemon
//!   does not serve gets `PERMISSION_DENIED`, with the same words, on every
//!   call of that connection (the `Gate` interceptor below);
//! - TCP addresses given with `--grpc-addr HOST:PORT`, where every call must
//!   carry `authorization: Bearer <token>`, the token in `STATE_DIR/token`
//!   ([`crate::token`]); a call without it gets `UNAUTHENTICATED`.
//!
//! The gate runs before the service decodes anything, on every service
//! (health and reflection too). Limits (docs/limits.md): at most
//! `--max-connections` connections per listener (a connection past it is
//! closed at once), `--max-in-flight` calls at once per connection (HTTP/2
//! streams past it wait in the client), messages up to 16 MiB (the protocol's
//! frame limit), and HTTP/2 keepalive pings that drop a peer that stopped
//! answering.
//!
//! Shutdown goes through [`Shutdown`] like the Unix-socket sessions: health
//! turns `NOT_SERVING` when a shutdown begins (calls that change state are
//! then refused `UNAVAILABLE` by the driver), and when the driver has
//! finished the servers stop accepting and let the calls in flight end; the
//! daemon waits for them at most `--shutdown-step-timeout`.

pub mod convert;
pub mod door;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::Connected;
use tonic::{Request, Status};

use crate::listener::BindError;
use crate::metrics::Metrics;
use crate::peer::PeerPolicy;
use crate::service::Mayfly;
use crate::settings::{GrpcListeners, Settings};
use crate::shutdown::Shutdown;

pub use crate::token::Token;

/// The messages and the service, generated from the `.proto` at build time.
#[allow(
    missing_docs,
    clippy::missing_docs_in_private_items,
    clippy::all,
    clippy::pedantic,
    reason = "generated code"
)]
pub mod proto {
    tonic::include_proto!("mayfly.v1");

    /// The `.proto` as a file descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/mayfly_descriptor.bin"));
}

use self::door::Door;
use self::proto::mayfly_server::MayflyServer;

/// The largest message either way: the Unix-socket protocol's frame limit.
pub const MAX_MESSAGE: usize = mayfly_protocol::MAX_FRAME_LEN;

/// How often an idle connection is pinged, and how long the answer may
/// take before the connection is dropped.
const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(20));

/// Why the gRPC door could not start.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// Another daemon answers on the gRPC socket.
    #[error(
        "another mayflyd is already serving gRPC on {0}; stop it first, or give this one \
         another --grpc-addr unix:PATH (or --grpc-addr off)"
    )]
    InUse(PathBuf),
    /// The gRPC socket could not be bound.
    #[error("cannot serve gRPC on {path}: {source}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why not.
        source: BindError,
    },
    /// A TCP address could not be listened on.
    #[error(
        "cannot listen for gRPC on {addr}: {source}; give another --grpc-addr HOST:PORT, \
         or --grpc-addr off"
    )]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// The bearer token could not be read or made.
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
    /// The reflection service could not be built (a bug: a bad descriptor).
    #[error("cannot set up gRPC reflection: {0}")]
    Reflection(String),
}

/// What the gRPC door needs from the daemon.
#[derive(Debug, Clone)]
pub struct GrpcContext {
    /// Where every call goes.
    pub mayfly: Mayfly,
    /// Where calls are counted.
    pub metrics: Arc<Metrics>,
    /// The daemon's one shutdown.
    pub shutdown: Shutdown,
    /// Who may use the Unix socket.
    pub peers: Arc<PeerPolicy>,
    /// Where the token lives.
    pub state_dir: PathBuf,
    /// Connections per listener, at most.
    pub max_connections: usize,
    /// Calls in flight per connection, at most.
    pub max_in_flight: usize,
    /// The Unix socket's permission bits.
    pub socket_mode: u32,
}

impl GrpcContext {
    /// The limits `settings` ask for, over `mayfly`.
    pub fn new(
        mayfly: Mayfly,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
        settings: &Settings,
        socket_mode: u32,
    ) -> Self {
        Self {
            mayfly,
            metrics,
            shutdown,
            peers: Arc::new(PeerPolicy::for_this_process(settings.allow_uid.clone())),
            state_dir: settings.state_dir.clone(),
            max_connections: settings.max_connections.max(1),
            max_in_flight: settings.max_in_flight.max(1),
            socket_mode,
        }
    }
}

/// Binds every listener of `listeners` and serves the door on each, on the
/// shutdown's tasks. Nothing is served if any cannot be bound.
pub async fn start(listeners: GrpcListeners, ctx: GrpcContext) -> Result<(), GrpcError> {
    let unix = match &listeners.unix {
        Some(path) => Some((bind_unix(path, ctx.socket_mode)?, path.clone())),
        None => None,
    };
    let mut tcp = Vec::new();
    for addr in &listeners.tcp {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| GrpcError::Listen {
                addr: *addr,
                source,
            })?;
        tcp.push(listener);
    }
    let token = if tcp.is_empty() {
        None
    } else {
        Some(Token::load_or_create(&ctx.state_dir)?)
    };
    let services = services(&ctx).await?;
    if let Some((listener, path)) = unix {
        tracing::info!(socket = %path.display(), "gRPC listening on a Unix socket");
        let incoming = accepting(listener, ctx.clone());
        let server = serve(incoming, services.clone(), None, ctx.clone());
        ctx.shutdown.tasks().spawn(async move {
            server.await;
            remove_socket(&path);
        });
    }
    for listener in tcp {
        let addr = listener.local_addr().ok();
        match addr {
            Some(addr) if addr.ip().is_loopback() => tracing::info!(
                %addr,
                "gRPC listening on TCP, loopback only; every call needs the bearer token in \
                 STATE_DIR/token"
            ),
            _ => tracing::warn!(
                addr = ?addr,
                "gRPC listening on TCP on an address other machines may reach (not loopback); \
                 every call needs the bearer token in STATE_DIR/token"
            ),
        }
        let incoming = accepting(listener, ctx.clone());
        let server = serve(incoming, services.clone(), token.clone(), ctx.clone());
        ctx.shutdown.tasks().spawn(server);
    }
    Ok(())
}

/// Binds the gRPC socket by the rules of the daemon's own.
fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, GrpcError> {
    crate::listener::bind(path, mode).map_err(|source| match source {
        BindError::InUse(path) => GrpcError::InUse(path),
        source => GrpcError::Bind {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Removes the gRPC socket once its server has stopped.
fn remove_socket(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(error = %e, socket = %path.display(), "could not remove the gRPC socket")
        }
    }
}

/// The services every listener serves: the door, health, and reflection
/// (both versions: older tools ask `v1alpha`), health `SERVING` until a
/// shutdown begins.
async fn services(ctx: &GrpcContext) -> Result<Routes, GrpcError> {
    let door = MayflyServer::new(Door::new(ctx.mayfly.clone(), ctx.metrics.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<MayflyServer<Door>>().await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let shutdown = ctx.shutdown.clone();
    ctx.shutdown.tasks().spawn(async move {
        shutdown.begun().await;
        reporter.set_not_serving::<MayflyServer<Door>>().await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    });
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection()
        .build_v1()
        .map_err(|e| GrpcError::Reflection(e.to_string()))?;
    let v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| GrpcError::Reflection(e.to_string()))?;
    Ok(Routes::new(door)
        .add_service(health)
        .add_service(v1)
        .add_service(v1alpha))
}

/// Serves `services` on the connections of `incoming` until the driver has
/// finished, then lets the calls in flight end. `token`: calls must carry
/// it (TCP).
async fn serve<S, IO>(incoming: S, services: Routes, token: Option<Token>, ctx: GrpcContext)
where
    S: Stream<Item = Result<IO, io::Error>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
{
    let limit = u32::try_from(ctx.max_in_flight).unwrap_or(u32::MAX);
    let gate = tonic::service::InterceptorLayer::new(Gate {
        token,
        metrics: ctx.metrics.clone(),
    });
    let done = ctx.shutdown.done_token();
    let result = Server::builder()
        // The HTTP/2 stream limit: a client's library queues calls past it
        // (a per-connection concurrency limit on top would only add a
        // semaphore to every call).
        .max_concurrent_streams(limit)
        .http2_keepalive_interval(Some(KEEPALIVE.0))
        .http2_keepalive_timeout(Some(KEEPALIVE.1))
        .tcp_nodelay(true)
        .layer(gate)
        .add_routes(services)
        .serve_with_incoming_shutdown(incoming, done.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the gRPC server failed");
    }
    tracing::debug!("gRPC server stopped");
}

/// Who is on the other end of a connection, as the gate sees it.
#[derive(Debug, Clone)]
pub enum Peer {
    /// A Unix-socket peer: `None` when the daemon serves its user, else
    /// why not (the words every call of the connection is refused with).
    Unix(Option<Arc<str>>),
    /// A TCP peer at this address (it must show the token).
    Tcp(Option<SocketAddr>),
}

/// Refuses calls before the service sees them: a peer whose user the
/// daemon does not serve, a TCP call without the token.
#[derive(Clone)]
struct Gate {
    /// The token TCP calls must carry; `None` on the Unix socket.
    token: Option<Token>,
    /// Where refusals are counted.
    metrics: Arc<Metrics>,
}

impl tonic::service::Interceptor for Gate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        match request.extensions().get::<Peer>() {
            Some(Peer::Unix(None)) => Ok(request),
            Some(Peer::Unix(Some(refusal))) => {
                self.metrics.grpc_refused("peer");
                Err(Status::permission_denied(refusal.to_string()))
            }
            Some(Peer::Tcp(addr)) => {
                let shown = request
                    .metadata()
                    .get("authorization")
                    .map(|v| v.as_bytes());
                let token = self.token.as_ref();
                if shown
                    .zip(token)
                    .is_some_and(|(shown, token)| token.admits(shown))
                {
                    return Ok(request);
                }
                self.metrics.grpc_refused("token");
                tracing::debug!(peer = ?addr, "refused a gRPC call without the bearer token");
                Err(Status::unauthenticated(
                    "this call needs the daemon's bearer token: send the metadata \
                     authorization: Bearer TOKEN, with TOKEN from the file token in the \
                     daemon's state dir",
                ))
            }
            None => Err(Status::internal(
                "the daemon cannot tell who is calling, so it serves no one",
            )),
        }
    }
}

/// One accepted connection: the stream, who is on the other end, and its
/// place under `--max-connections` (given back when it closes).
pub struct Conn<S> {
    /// The socket.
    stream: S,
    /// Who it is.
    peer: Peer,
    /// Its place among the connections.
    _permit: OwnedSemaphorePermit,
}

impl<S> Connected for Conn<S> {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A listener whose connections the door serves.
trait Accept: Send + 'static {
    /// Its connections' sockets.
    type Stream: Send + 'static;

    /// The next connection and who is on the other end.
    fn next(
        &self,
        ctx: &GrpcContext,
    ) -> impl Future<Output = io::Result<(Self::Stream, Peer)>> + Send;
}

impl Accept for UnixListener {
    type Stream = UnixStream;

    /// Judges the peer of each connection (see [`judge`]).
    async fn next(&self, ctx: &GrpcContext) -> io::Result<(UnixStream, Peer)> {
        let (stream, _) = self.accept().await?;
        let peer = judge(&stream, ctx);
        Ok((stream, peer))
    }
}

impl Accept for TcpListener {
    type Stream = TcpStream;

    async fn next(&self, _ctx: &GrpcContext) -> io::Result<(TcpStream, Peer)> {
        let (stream, addr) = self.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, Peer::Tcp(Some(addr))))
    }
}

/// Accepts connections from `listener` while there is room for them; a
/// connection past `--max-connections` is closed at once. Accept errors
/// (out of file descriptors) back off instead of spinning.
fn accepting<L: Accept>(
    listener: L,
    ctx: GrpcContext,
) -> impl Stream<Item = Result<Conn<L::Stream>, io::Error>> + Send + 'static {
    let permits = Arc::new(Semaphore::new(ctx.max_connections));
    futures::stream::unfold(
        (listener, ctx, permits),
        |(listener, ctx, permits)| async move {
            let mut backoff = Duration::from_millis(1);
            loop {
                match listener.next(&ctx).await {
                    Ok((stream, peer)) => {
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            tracing::debug!("refusing a gRPC connection: too many open");
                            continue; // dropped: closed
                        };
                        let conn = Conn {
                            stream,
                            peer,
                            _permit: permit,
                        };
                        return Some((Ok(conn), (listener, ctx, permits)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "gRPC accept failed; backing off");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                }
            }
        },
    )
}

/// The verdict on a Unix-socket peer, logged and counted once per
/// connection when it is refused.
fn judge(stream: &UnixStream, ctx: &GrpcContext) -> Peer {
    let refusal = match stream.peer_cred() {
        Ok(cred) if ctx.peers.admits(cred.uid()) => return Peer::Unix(None),
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                pid = cred.pid().unwrap_or(0),
                "refused a gRPC connection: its user may not use this daemon (--allow-uid adds users)"
            );
            ctx.peers.refusal(cred.uid())
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused a gRPC connection whose peer credentials cannot be read");
            format!("the daemon cannot tell who is connecting ({e}), so it serves no one")
        }
    };
    Peer::Unix(Some(refusal.into()))
}
