//! The HTTP endpoint (`--http-addr`, default `127.0.0.1:9479`): `GET
//! /metrics` and `GET /__health`.
//!
//! # What it owns
//!
//! The TCP listener and its connections. [`bind`] turns a busy or unusable
//! address into a startup error that names `--http-addr`; [`serve`] takes
//! the bound listener and a shutdown token (tests bind `127.0.0.1:0` and hand
//! the listener in), and serves HTTP/1.1 until the token fires, then closes
//! its connections gracefully.
//!
//! # Routes
//!
//! | request | answer |
//! |---|---|
//! | `GET /metrics` | 200, every metric in the Prometheus text format |
//! | `GET /__health` | 200 `ok` when ready; 503 `starting` / `shutting down` |
//! | another method on those paths | 405 with `Allow: GET, HEAD` |
//! | any other path | 404 |
//!
//! `HEAD` is answered like `GET` without a body (HTTP requires it of
//! general-purpose servers). Before rendering, `/metrics` awaits the
//! [`Refresh`] hook (bounded by [`REFRESH_TIMEOUT`]) so that gauges sampled
//! from the driver are current; a driver too busy to answer in time yields
//! the previous values rather than a stalled scrape.
//!
//! # Invariants
//!
//! The endpoint is read-only: nothing here changes job state, so it needs no
//! authentication beyond binding to loopback by default. A client cannot hold
//! resources for long, nor keep scrapes out: request headers must arrive
//! within [`HEADER_READ_TIMEOUT`], at most [`MAX_CONNECTIONS`] connections
//! are open at once, and when a new one comes at that limit the oldest
//! connection that is not being answered right now — one still sending its
//! headers (a slow or stalled client) or idle between requests — is closed
//! to make room. So connections that send their request slowly cannot keep
//! a scrape waiting: a scrape is answered as soon as its headers are in,
//! long before it is the oldest.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{self, Metrics, Refresh};

/// How long a client has to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a scrape waits for the [`Refresh`] hook before it renders what
/// it has.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections open at once; at the limit, the oldest one not being
/// answered makes room for a new one.
pub const MAX_CONNECTIONS: usize = 64;

/// How long open connections get to finish after shutdown before they are
/// dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The `Allow` header of a 405.
const ALLOWED: &str = "GET, HEAD";

/// Why the HTTP endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr} (--http-addr): {reason}; pass --http-addr ADDR or --http-addr off"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What went wrong, in words.
        reason: String,
    },
}

/// Binds the HTTP listener on `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr).await.map_err(|e| HttpError::Bind {
        addr,
        reason: bind_failure(&e),
    })
}

/// Why a TCP listener could not be bound, in words a user can act on (for
/// every TCP door's startup error).
pub fn bind_failure(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".to_string(),
        std::io::ErrorKind::AddrNotAvailable => "no such address on this machine".to_string(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges)".to_string()
        }
        _ => e.to_string(),
    }
}

/// Where the daemon is in its life, as `/__health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Recovering state or not yet serving its socket: 503.
    Starting,
    /// Serving: 200.
    Ready,
    /// A graceful shutdown has begun: 503, for good.
    Stopping,
}

/// The daemon's readiness, shared by whoever knows (the scheduler, the
/// driver) and the health endpoint. Starts as [`Phase::Starting`]; once
/// stopping, it never becomes ready again.
#[derive(Debug)]
pub struct Readiness {
    /// The [`Phase`], as its discriminant.
    phase: AtomicU8,
}

impl Readiness {
    /// A new readiness flag, starting.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: AtomicU8::new(Phase::Starting as u8),
        })
    }

    /// The daemon serves its socket. Has no effect once stopping.
    pub fn set_ready(&self) {
        let _ = self.phase.compare_exchange(
            Phase::Starting as u8,
            Phase::Ready as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// A graceful shutdown has begun.
    pub fn set_stopping(&self) {
        self.phase.store(Phase::Stopping as u8, Ordering::Release);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            x if x == Phase::Ready as u8 => Phase::Ready,
            x if x == Phase::Stopping as u8 => Phase::Stopping,
            _ => Phase::Starting,
        }
    }

    /// True when `/__health` answers 200.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Ready
    }
}

/// What the handlers need.
#[derive(Clone)]
pub struct HttpState {
    /// What `/metrics` renders.
    pub metrics: Arc<Metrics>,
    /// What `/__health` reports.
    pub readiness: Arc<Readiness>,
    /// Run before each render so that sampled gauges are current; `None`
    /// renders the metrics as they are.
    pub refresh: Option<Refresh>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("readiness", &self.readiness.phase())
            .field("refresh", &self.refresh.is_some())
            .finish_non_exhaustive()
    }
}

/// Serves HTTP on `listener` until `shutdown` fires, then stops accepting
/// and gives open connections `DRAIN_TIMEOUT` (2 s) to finish.
pub async fn serve(listener: TcpListener, state: HttpState, shutdown: CancellationToken) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP endpoint listening (/metrics, /__health)");
    }
    let listening = Listening {
        name: "HTTP",
        max_connections: MAX_CONNECTIONS,
        tracker: TaskTracker::new(),
        on_connection: None,
    };
    serve_connections(listener, listening, shutdown, move |busy| {
        let state = state.clone();
        service_fn(move |req| {
            let state = state.clone();
            let busy = busy.clone();
            async move {
                busy.store(true, Ordering::Release);
                let response = handle(req, &state).await;
                busy.store(false, Ordering::Release);
                Ok::<_, Infallible>(response)
            }
        })
    })
    .await;
    tracing::debug!("HTTP endpoint stopped");
}

/// How [`serve_connections`] serves one listener.
pub struct Listening {
    /// Its name in log lines ("HTTP", "A2A").
    pub name: &'static str,
    /// How many connections may be open at once; at the limit, the oldest
    /// one that is not being answered is closed to make room.
    pub max_connections: usize,
    /// Where each connection's task runs, so that its owner can wait for
    /// them.
    pub tracker: TaskTracker,
    /// Told `1` when a connection opens and `-1` when it closes.
    pub on_connection: Option<Arc<dyn Fn(i64) + Send + Sync>>,
}

/// The accept loop of every HTTP/1.1 listener of the daemon (the metrics
/// endpoint, the A2A door): serves `listener` until `stop` fires, then
/// stops accepting and gives open connections `DRAIN_TIMEOUT` to finish.
/// Request headers must arrive within [`HEADER_READ_TIMEOUT`], and at most
/// `max_connections` are open at once (see the module documentation).
/// `service_for(busy)` makes one connection's service, which sets `busy`
/// while it answers a request.
pub async fn serve_connections<M, S, B>(
    listener: TcpListener,
    listening: Listening,
    stop: CancellationToken,
    mut service_for: M,
) where
    M: FnMut(Arc<AtomicBool>) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Listening {
        name,
        max_connections,
        tracker,
        on_connection,
    } = listening;
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let permits = Arc::new(Semaphore::new(max_connections));
    let open = Arc::new(OpenConnections::default());
    let mut backoff = Duration::from_millis(1);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!(error = %e, "{name} accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(1);
        let _ = stream.set_nodelay(true);
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // At the limit: close the oldest connection that is not
                // being answered, and take its place once it has let go.
                open.evict_oldest_idle();
                tokio::select! {
                    () = stop.cancelled() => break,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let (id, busy, evicted) = open.add();
        let conn =
            graceful.watch(builder.serve_connection(TokioIo::new(stream), service_for(busy)));
        let open = open.clone();
        let on_connection = on_connection.clone();
        if let Some(count) = &on_connection {
            count(1);
        }
        tracker.spawn(async move {
            tokio::select! {
                result = conn => if let Err(e) = result {
                    tracing::debug!(error = %e, "{name} connection ended with an error");
                },
                () = evicted.cancelled() => {
                    tracing::debug!("closed an {name} connection to make room for a new one");
                }
            }
            open.remove(id);
            if let Some(count) = &on_connection {
                count(-1);
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("{name} connections still open after shutdown; dropping them");
    }
}

/// The open connections, oldest first, each with whether a request of
/// its is being answered and how to close it. The A2A door keeps its
/// connections the same way.
#[derive(Debug, Default)]
pub(crate) struct OpenConnections {
    /// By the order they were accepted in.
    conns: std::sync::Mutex<OpenList>,
}

/// The list behind [`OpenConnections`].
#[derive(Debug, Default)]
struct OpenList {
    /// The next connection's number.
    next: u64,
    /// Each open connection: busy flag and the token that closes it.
    by_age: std::collections::BTreeMap<u64, (Arc<AtomicBool>, CancellationToken)>,
}

impl OpenConnections {
    /// Registers a new connection: its number, its busy flag, and the token
    /// that fires when it must make room.
    pub(crate) fn add(&self) -> (u64, Arc<AtomicBool>, CancellationToken) {
        let mut list = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let id = list.next;
        list.next += 1;
        let busy = Arc::new(AtomicBool::new(false));
        let evict = CancellationToken::new();
        list.by_age.insert(id, (busy.clone(), evict.clone()));
        (id, busy, evict)
    }

    /// Forgets a connection that has closed.
    pub(crate) fn remove(&self, id: u64) {
        let mut list = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        list.by_age.remove(&id);
    }

    /// Closes the oldest connection that is not being answered, if any.
    pub(crate) fn evict_oldest_idle(&self) {
        let mut list = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = list
            .by_age
            .iter()
            .find(|(_, (busy, evict))| !busy.load(Ordering::Acquire) && !evict.is_cancelled())
            .map(|(id, _)| *id);
        if let Some(id) = oldest
            && let Some((_, evict)) = list.by_age.remove(&id)
        {
            evict.cancel();
        }
    }
}

/// Answers one request (see the module's route table).
async fn handle(req: Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    let known = matches!(req.uri().path(), "/metrics" | "/__health");
    if !known {
        return text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics or /__health\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(ALLOWED));
        return response;
    }
    if req.uri().path() == "/__health" {
        return match state.readiness.phase() {
            Phase::Ready => text(StatusCode::OK, "ok\n"),
            Phase::Starting => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
            Phase::Stopping => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        };
    }
    if let Some(refresh) = &state.refresh
        && tokio::time::timeout(REFRESH_TIMEOUT, refresh())
            .await
            .is_err()
    {
        tracing::debug!("metrics refresh timed out; serving the previous gauge values");
    }
    let mut response = Response::new(Full::new(Bytes::from(state.metrics.render())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

/// A plain-text response.
fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    /// A server on `127.0.0.1:0` over fresh metrics; returns its address,
    /// its state and the token that stops it.
    async fn start(refresh: Option<Refresh>) -> (SocketAddr, HttpState, CancellationToken) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = HttpState {
            metrics: Metrics::new().unwrap(),
            readiness: Readiness::new(),
            refresh,
        };
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, state.clone(), stop.clone()));
        (addr, state, stop)
    }

    /// Sends `method path` with a real HTTP client; returns status, headers
    /// and body.
    async fn call(
        addr: SocketAddr,
        method: Method,
        path: &str,
    ) -> (StatusCode, hyper::HeaderMap, String) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), client.request(req))
            .await
            .expect("the server answers in time")
            .expect("an HTTP response");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_text_format() {
        let (addr, state, stop) = start(None).await;
        state.metrics.job_submitted("default");
        let (status, headers, body) = call(addr, Method::GET, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CONTENT_TYPE], "text/plain; version=0.0.4");
        assert!(
            body.contains("mayfly_jobs_submitted_total{queue=\"default\"} 1\n"),
            "{body}"
        );
        let (status, _, body) = call(addr, Method::HEAD, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_empty(), "HEAD has no body");
        stop.cancel();
    }

    #[tokio::test]
    async fn unknown_paths_are_404_and_other_methods_405() {
        let (addr, _state, stop) = start(None).await;
        let (status, _, _) = call(addr, Method::GET, "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = call(addr, Method::POST, "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for path in ["/metrics", "/__health"] {
            for method in [Method::POST, Method::PUT, Method::DELETE] {
                let (status, headers, _) = call(addr, method.clone(), path).await;
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert_eq!(headers[ALLOW], ALLOWED, "{method} {path}");
            }
        }
        stop.cancel();
    }

    #[tokio::test]
    async fn health_is_503_starting_200_ready_and_503_stopping() {
        let (addr, state, stop) = start(None).await;
        let (status, _, body) = call(addr, Method::GET, "/__health").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
        );
        state.readiness.set_ready();
        let (status, _, body) = call(addr, Method::GET, "/__health").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
        state.readiness.set_stopping();
        state.readiness.set_ready();
        let (status, _, body) = call(addr, Method::GET, "/__health").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            "stopping is for good"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_scrape_runs_the_refresh_hook_first() {
        let metrics_slot: Arc<std::sync::OnceLock<Arc<Metrics>>> = Arc::default();
        let slot = metrics_slot.clone();
        let refresh: Refresh = Arc::new(move || {
            let slot = slot.clone();
            Box::pin(async move {
                if let Some(m) = slot.get() {
                    m.system_task_up("refreshed", true);
                }
            })
        });
        let (addr, state, stop) = start(Some(refresh)).await;
        let _ = metrics_slot.set(state.metrics.clone());
        let (_, _, body) = call(addr, Method::GET, "/metrics").await;
        assert!(
            body.contains("mayfly_system_task_up{name=\"refreshed\"} 1"),
            "{body}"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_stuck_refresh_hook_does_not_stall_the_scrape() {
        let refresh: Refresh = Arc::new(|| Box::pin(std::future::pending()));
        let (addr, _state, stop) = start(Some(refresh)).await;
        let started = std::time::Instant::now();
        let (status, _, body) = call(addr, Method::GET, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("mayfly_build_info"), "{body}");
        assert!(started.elapsed() >= REFRESH_TIMEOUT);
        stop.cancel();
    }

    #[tokio::test]
    async fn connections_that_never_send_their_request_do_not_keep_a_scrape_waiting() {
        use tokio::io::AsyncWriteExt;
        let (addr, _state, stop) = start(None).await;
        let mut slow = Vec::new();
        for _ in 0..MAX_CONNECTIONS * 3 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\n")
                .await
                .unwrap();
            slow.push(stream);
        }
        let started = std::time::Instant::now();
        let (status, _, _) = call(addr, Method::GET, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < HEADER_READ_TIMEOUT / 2,
            "the scrape waited {:?}",
            started.elapsed()
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_busy_port_is_a_clear_error_naming_the_flag() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(addr).await.unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot listen on {addr} (--http-addr): address in use; pass --http-addr ADDR or --http-addr off"
            )
        );
    }

    #[tokio::test]
    async fn shutdown_stops_the_listener() {
        let (addr, _state, stop) = start(None).await;
        let (status, _, _) = call(addr, Method::GET, "/__health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        stop.cancel();
        let mut refused = false;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "the listener still accepts after shutdown");
    }
}
