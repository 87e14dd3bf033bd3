//! The A2A door's HTTP/1.1 server.
//!
//! # Routes
//!
//! | request | answer |
//! |---|---|
//! | `GET /.well-known/agent-card.json` | the agent card (no token needed) |
//! | `POST /` with the bearer token | one JSON-RPC request ([`super::rpc`]): a JSON answer, or for the streaming methods `text/event-stream` |
//! | `POST /` without it | 401, `WWW-Authenticate: Bearer`, and a JSON-RPC error |
//! | another method on those paths | 405 with `Allow` |
//! | any other path | 404 |
//!
//! # Limits
//!
//! As the metrics endpoint ([`crate::http`], whose accept loop it shares):
//! request headers must arrive within
//! [`crate::http::HEADER_READ_TIMEOUT`], and at most `--a2a-max-connections`
//! connections are open at once — at the limit, the oldest connection that
//! is not being answered (still sending its headers, or idle between
//! requests) is closed to make room, so slow clients cannot keep others
//! out. A request body may be at most [`MAX_BODY`] and must arrive within
//! [`BODY_TIMEOUT`]; a request without the token is refused before its
//! body is read. A `SendMessage` that waits for its job and a stream count
//! as being answered for as long as they last; a stream sends a comment
//! every 15 seconds while nothing happens, so a client that has gone is
//! noticed and its stream ends. Streams end when the daemon has stopped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, HeaderValue, WWW_AUTHENTICATE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Door;
use super::rpc::{self, KEEPALIVE, Reply, RpcError};
use super::wire::PROTOCOL_VERSION;
use crate::http::{Listening, serve_connections};

/// The largest request body taken.
pub const MAX_BODY: usize = 4 << 20;

/// How long a request body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of the agent card.
pub const CARD_PATH: &str = "/.well-known/agent-card.json";

/// The path of the JSON-RPC endpoint.
pub const RPC_PATH: &str = "/";

/// A response body: whole, or a stream.
type Body = BoxBody<Bytes, Infallible>;

/// Serves the door on `listener` until `stop` fires, then gives open
/// connections a moment to finish ([`crate::http::serve_connections`]).
pub async fn serve(
    listener: TcpListener,
    door: Arc<Door>,
    max_connections: usize,
    stop: CancellationToken,
) {
    let local = listener.local_addr().ok();
    if let Some(addr) = local {
        tracing::info!(%addr, "A2A front door listening (agent card at {CARD_PATH})");
    }
    let metrics = door.metrics.clone();
    let listening = Listening {
        name: "A2A",
        max_connections,
        tracker: door.tracker.clone(),
        on_connection: Some(Arc::new(move |delta| metrics.a2a_connection(delta))),
    };
    serve_connections(listener, listening, stop, move |busy| {
        let door = door.clone();
        service_fn(move |req| {
            let door = door.clone();
            let busy = busy.clone();
            async move { Ok::<_, Infallible>(handle(req, &door, local, busy).await) }
        })
    })
    .await;
    tracing::debug!("A2A front door stopped");
}

/// Clears a connection's busy flag when dropped: a request is being
/// answered until its response (a stream included) is done.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Answers one request (see the module's route table).
async fn handle(
    req: Request<Incoming>,
    door: &Door,
    local: Option<SocketAddr>,
    busy: Arc<AtomicBool>,
) -> Response<Body> {
    busy.store(true, Ordering::Release);
    let busy = Busy(busy);
    match req.uri().path() {
        CARD_PATH if req.method() == Method::GET || req.method() == Method::HEAD => {
            let card = card(&base_url(&req, local));
            let mut response = json_response(StatusCode::OK, &card);
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
            response
        }
        CARD_PATH => not_allowed("GET, HEAD"),
        RPC_PATH if req.method() == Method::POST => rpc_request(req, door, busy).await,
        RPC_PATH => not_allowed("POST"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the agent card is at /.well-known/agent-card.json, JSON-RPC at POST /\n",
        ),
    }
}

/// Answers a JSON-RPC request: the token, the body, the call.
async fn rpc_request(req: Request<Incoming>, door: &Door, busy: Busy) -> Response<Body> {
    let started = Instant::now();
    let admitted = req
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|h| door.token.admits(h.as_bytes()));
    if !admitted {
        door.metrics.a2a_unauthorized();
        let error = RpcError::new(
            RpcError::UNAUTHENTICATED,
            "missing or wrong bearer token: send Authorization: Bearer <token>, the token being \
             the contents of the daemon's STATE_DIR/token",
        );
        let mut response = json_response(StatusCode::UNAUTHORIZED, &error.response(&Value::Null));
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"mayfly\""),
        );
        return response;
    }
    let version = req
        .headers()
        .get(super::wire::VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match read_body(req).await {
        Ok(body) => body,
        Err((status, error)) => {
            door.metrics
                .a2a_request("invalid", false, started.elapsed());
            return json_response(status, &error.response(&Value::Null));
        }
    };
    let (method, reply) = rpc::call(door, &body, version.as_deref()).await;
    match reply {
        Reply::Json(answer) => {
            let ok = answer.get("error").is_none();
            door.metrics.a2a_request(method, ok, started.elapsed());
            json_response(StatusCode::OK, &answer)
        }
        Reply::Stream(stream) => {
            door.metrics.a2a_request(method, true, started.elapsed());
            sse_response(stream, door, busy)
        }
    }
}

/// Reads a request body of at most [`MAX_BODY`] within [`BODY_TIMEOUT`].
async fn read_body(req: Request<Incoming>) -> Result<Bytes, (StatusCode, RpcError)> {
    let limited = Limited::new(req.into_body(), MAX_BODY);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            RpcError::new(
                RpcError::INVALID_REQUEST,
                format!("the request is larger than {MAX_BODY} bytes, the most this agent reads"),
            ),
        )),
        Ok(Err(e)) => Err((
            StatusCode::BAD_REQUEST,
            RpcError::new(
                RpcError::INVALID_REQUEST,
                format!("cannot read the request: {e}"),
            ),
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            RpcError::new(
                RpcError::INVALID_REQUEST,
                format!(
                    "the request body did not arrive within {}s",
                    BODY_TIMEOUT.as_secs()
                ),
            ),
        )),
    }
}

/// A stream's items as server-sent events: each a JSON-RPC response on one
/// `data:` line; a comment every [`KEEPALIVE`] while nothing happens; an
/// error response last if the stream failed.
fn sse_response(stream: rpc::Stream, door: &Door, busy: Busy) -> Response<Body> {
    /// What the body's stream carries from one event to the next.
    struct State {
        /// The request's id.
        id: Value,
        /// The items.
        items: tokio::sync::mpsc::Receiver<super::wire::StreamResponse>,
        /// Why the stream failed, until it is told.
        failed: Option<tokio::sync::oneshot::Receiver<RpcError>>,
        /// False once the items have ended.
        open: bool,
        /// Counts the stream in the metrics while it lasts.
        _gauge: StreamGauge,
        /// Keeps the connection busy while it lasts.
        _busy: Busy,
    }
    let state = State {
        id: stream.id,
        items: stream.items,
        failed: Some(stream.failed),
        open: true,
        _gauge: StreamGauge::new(door),
        _busy: busy,
    };
    let events = futures::stream::unfold(state, |mut state| async move {
        if state.open {
            match tokio::time::timeout(KEEPALIVE, state.items.recv()).await {
                Ok(Some(item)) => {
                    let frame = rpc::success(
                        &state.id,
                        serde_json::to_value(&item).unwrap_or(Value::Null),
                    );
                    return Some((event(&frame), state));
                }
                Ok(None) => state.open = false,
                Err(_) => return Some((Bytes::from_static(b": keepalive\n\n"), state)),
            }
        }
        // The items have ended: an error, if the stream failed, then the end.
        let error = state.failed.take()?.await.ok()?;
        let frame = error.response(&state.id);
        Some((event(&frame), state))
    })
    .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(events)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// One server-sent event holding `value`.
fn event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// Counts an open stream in `mayfly_a2a_streams` while it lives.
struct StreamGauge(Arc<crate::metrics::Metrics>);

impl StreamGauge {
    /// Counts one more stream.
    fn new(door: &Door) -> Self {
        door.metrics.a2a_stream(1);
        Self(door.metrics.clone())
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.a2a_stream(-1);
    }
}

/// The base URL clients reach this door at: the request's `Host` (what the
/// client used, so the card works behind a name or a forwarded port), else
/// the address the door listens on.
fn base_url(req: &Request<Incoming>, local: Option<SocketAddr>) -> String {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .map(str::to_owned)
        .or_else(|| local.map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1".to_string());
    format!("http://{host}")
}

/// The agent card, for a door reached at `base` (`http://HOST:PORT`).
pub fn card(base: &str) -> Value {
    let modes = json!(["text/plain", "application/json"]);
    json!({
        "name": "Mayfly",
        "description": "A durable local job queue. Hand it a shell line or a job spec and it \
            runs it as a job of this machine's Mayfly daemon, with its queues, priorities, \
            limits and write-ahead log; the task id is the job id, so `mayflyctl status ID` \
            shows the same job. An ended task carries the job's stdout and stderr (their last \
            64 KiB) and its exit status as artifacts.",
        "supportedInterfaces": [{
            "url": format!("{base}{RPC_PATH}"),
            "protocolBinding": "JSONRPC",
            "protocolVersion": PROTOCOL_VERSION,
        }],
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": {
            "streaming": true,
            "pushNotifications": true,
            "extendedAgentCard": false,
        },
        "securitySchemes": {
            "bearer": {
                "httpAuthSecurityScheme": {
                    "scheme": "Bearer",
                    "description": "the token in the daemon's STATE_DIR/token",
                },
            },
        },
        "securityRequirements": [{"schemes": {"bearer": {"list": []}}}],
        "defaultInputModes": modes,
        "defaultOutputModes": modes,
        "skills": [{
            "id": "run-command",
            "name": "run a command",
            "description": "Runs one command as a Mayfly job. A text part is a shell line \
                (run with sh -c in the daemon's home folder, with its environment). A data \
                part is a job: the JSON object of `mayflyctl submit --json-input` (command as \
                an argv array or a shell string; queue, priority, cwd, env, labels, timeout, \
                retries, after, delay, at, max_output).",
            "tags": ["shell", "command", "job", "queue", "batch"],
            "examples": [
                "make -j4 test",
                "{\"command\": [\"python3\", \"train.py\", \"--epochs\", \"10\"], \"queue\": \"gpu\", \"timeout\": \"2h\"}",
                "{\"command\": \"tar czf /backup/home.tgz ~\", \"priority\": 80, \"retries\": 2}",
            ],
            "inputModes": modes,
            "outputModes": modes,
        }],
    })
}

/// A JSON response.
fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A plain-text response.
fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A 405 naming what is allowed.
fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_names_its_interface_skill_and_scheme() {
        let card = card("http://127.0.0.1:9480");
        assert_eq!(
            card["supportedInterfaces"][0]["url"],
            json!("http://127.0.0.1:9480/")
        );
        assert_eq!(
            card["supportedInterfaces"][0]["protocolVersion"],
            json!("1.0")
        );
        assert_eq!(card["capabilities"]["streaming"], json!(true));
        assert_eq!(card["capabilities"]["pushNotifications"], json!(true));
        assert_eq!(card["skills"][0]["name"], json!("run a command"));
        assert_eq!(
            card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"],
            json!("Bearer")
        );
    }
}
