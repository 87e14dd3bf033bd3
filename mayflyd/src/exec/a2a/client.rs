//! The a2a executor's client of one remote agent: JSON-RPC calls over
//! HTTP/1.1, server-sent event streams, and the agent card.
//!
//! Every failure says which of three things happened, because what may be
//! done next depends on it ([`CallError`]): the request never reached the
//! agent (safe to send again), it reached it but no usable answer came back
//! (the agent may have acted on it), or the agent answered with an error.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::a2a::wire::{CardCapabilities, PROTOCOL_VERSION, StreamResponse, VERSION_HEADER};
use crate::metrics::Metrics;

/// How long a call may take, from sending it to the end of its answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stream may stay silent (no event, no comment) before it is
/// taken for broken. Agents send a comment every 15 s or so while nothing
/// happens.
const STREAM_IDLE: Duration = Duration::from_secs(60);

/// The largest answer, or stream event, read.
const MAX_ANSWER: usize = 16 << 20;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request never reached the agent (no connection): sending it
    /// again cannot do the work twice.
    Unreachable(String),
    /// The request was sent, but no usable answer came back (a timeout, a
    /// cut connection, a server error, an answer that is not JSON-RPC): the
    /// agent may have acted on it.
    Lost(String),
    /// The agent answered with a JSON-RPC error.
    Refused {
        /// The error's code.
        code: i64,
        /// Its message.
        message: String,
    },
}

impl CallError {
    /// The JSON-RPC code of "no such task".
    pub const TASK_NOT_FOUND: i64 = -32001;
    /// The JSON-RPC code of "the task has ended".
    pub const TASK_NOT_CANCELABLE: i64 = -32002;

    /// True when the agent answered with error `code`.
    pub fn is(&self, code: i64) -> bool {
        matches!(self, CallError::Refused { code: c, .. } if *c == code)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(why) | CallError::Lost(why) => f.write_str(why),
            CallError::Refused { code, message } => write!(f, "{message} (error {code})"),
        }
    }
}

/// One remote agent, as the executor calls it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentClient {
    /// Its JSON-RPC endpoint.
    url: Uri,
    /// Where its agent card is.
    card_url: Uri,
    /// The file holding the bearer token to send, if any.
    token_file: Option<PathBuf>,
    /// The HTTP client (keeps connections to the agent open).
    http: Client<HttpConnector, Full<Bytes>>,
    /// The daemon's metrics.
    metrics: Option<Arc<Metrics>>,
}

/// Parses the agent's URL: `http://HOST[:PORT][/PATH]`. The error says
/// what is wrong and what to write.
pub fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| {
        format!("--a2a-url {url:?} is not a URL ({e}); write it like http://HOST:9480/")
    })?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        Some("https") => Err(format!(
            "--a2a-url {url:?}: this mayflyd has no TLS client; reach the agent through an SSH \
             tunnel or a local TLS-terminating proxy, and give its http:// URL"
        )),
        _ => Err(format!(
            "--a2a-url {url:?} is not an http:// URL with a host; write it like \
             http://HOST:9480/"
        )),
    }
}

impl AgentClient {
    /// A client of the agent whose JSON-RPC endpoint is `url` (checked by
    /// [`parse_url`]); its card is read from the same host.
    pub fn new(
        url: Uri,
        token_file: Option<PathBuf>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, String> {
        let authority = url
            .authority()
            .map(ToString::to_string)
            .ok_or_else(|| format!("--a2a-url {url} has no host"))?;
        let card_url = format!("http://{authority}{}", crate::a2a::server::CARD_PATH)
            .parse()
            .map_err(|e| format!("cannot make the agent card's URL from {url}: {e}"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            url,
            card_url,
            token_file,
            http,
            metrics,
        })
    }

    /// The agent's JSON-RPC endpoint, for messages.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The bearer token, read from its file at each call (a replaced
    /// token is picked up without a restart).
    async fn token(&self) -> Result<Option<HeaderValue>, CallError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            CallError::Unreachable(format!(
                "cannot read the agent's token file {} ({e}); fix it (mayflyctl queue set … \
                 --a2a-token-file FILE) and the next try uses it",
                path.display()
            ))
        })?;
        HeaderValue::from_str(&format!("Bearer {}", text.trim()))
            .map(Some)
            .map_err(|_| {
                CallError::Unreachable(format!(
                    "the token file {} holds characters a header cannot carry",
                    path.display()
                ))
            })
    }

    /// Sends a JSON-RPC request for `method` with `params`, accepting
    /// `accept`; returns the HTTP response once its headers are in.
    async fn send(
        &self,
        method: &str,
        params: Value,
        accept: &'static str,
    ) -> Result<Response<Incoming>, CallError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .header(VERSION_HEADER, PROTOCOL_VERSION);
        if let Some(token) = self.token().await? {
            request = request.header(AUTHORIZATION, token);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| CallError::Unreachable(format!("cannot make the request: {e}")))?;
        let url = &self.url;
        match tokio::time::timeout(CALL_TIMEOUT, self.http.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_connect() => Err(CallError::Unreachable(format!(
                "cannot connect to the A2A agent at {url}: {}",
                root_cause(&e)
            ))),
            Ok(Err(e)) => Err(CallError::Lost(format!(
                "the A2A agent at {url} did not answer {method}: {}",
                error_chain(&e)
            ))),
            Err(_) => Err(CallError::Lost(format!(
                "the A2A agent at {url} did not answer {method} within {}s",
                CALL_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Calls `method` with `params` and decodes its result.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, CallError> {
        let result = async {
            let response = self.send(method, params, "application/json").await?;
            let status = response.status();
            let body = tokio::time::timeout(
                CALL_TIMEOUT,
                Limited::new(response.into_body(), MAX_ANSWER).collect(),
            )
            .await
            .map_err(|_| self.lost(method, "the answer did not arrive in time"))?
            .map_err(|e| self.lost(method, &format!("cannot read the answer: {e}")))?
            .to_bytes();
            let answer = self.answer(method, status, &body)?;
            serde_json::from_value(answer)
                .map_err(|e| self.lost(method, &format!("the result is not what A2A says: {e}")))
        }
        .await;
        self.count(method, result.is_ok());
        result
    }

    /// Calls a streaming `method` with `params`: the stream's items, as
    /// they come, on the returned channel; the last item is the error that
    /// ended the stream, if one did.
    pub async fn stream(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<StreamResponse, CallError>>, CallError> {
        let opened = async {
            let response = self.send(method, params, "text/event-stream").await?;
            let status = response.status();
            let is_sse = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !is_sse {
                // An error comes as a plain JSON-RPC answer.
                let body = Limited::new(response.into_body(), MAX_ANSWER)
                    .collect()
                    .await
                    .map(http_body_util::Collected::to_bytes)
                    .unwrap_or_default();
                self.answer(method, status, &body)?;
                return Err(self.lost(method, "the answer is not a stream"));
            }
            Ok(response)
        }
        .await;
        self.count(method, opened.is_ok());
        let response = opened?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let this = self.clone();
        tokio::spawn(async move { this.read_events(method, response.into_body(), tx).await });
        Ok(rx)
    }

    /// Reads server-sent events from `body` onto `tx` until the stream
    /// ends, breaks, or `tx` is dropped.
    async fn read_events(
        &self,
        method: &'static str,
        mut body: Incoming,
        tx: tokio::sync::mpsc::Sender<Result<StreamResponse, CallError>>,
    ) {
        let mut buffer = BytesMut::new();
        loop {
            while let Some(event) = next_event(&mut buffer) {
                let Some(data) = event_data(&event) else {
                    continue;
                };
                let item = self
                    .answer(method, hyper::StatusCode::OK, data.as_bytes())
                    .and_then(|result| {
                        serde_json::from_value(result).map_err(|e| {
                            self.lost(method, &format!("a stream event is not what A2A says: {e}"))
                        })
                    });
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
            if buffer.len() > MAX_ANSWER {
                let _ = tx
                    .send(Err(self.lost(method, "a stream event is too large")))
                    .await;
                return;
            }
            let frame = tokio::select! {
                frame = tokio::time::timeout(STREAM_IDLE, body.frame()) => frame,
                () = tx.closed() => return,
            };
            match frame {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                // The stream ended: the follower tells an end from a break.
                Ok(None) => return,
                Ok(Some(Err(e))) => {
                    let _ = tx
                        .send(Err(self.lost(method, &format!("the stream broke: {e}"))))
                        .await;
                    return;
                }
                Err(_) => {
                    let _ = tx
                        .send(Err(self.lost(
                            method,
                            &format!("the stream was silent for {}s", STREAM_IDLE.as_secs()),
                        )))
                        .await;
                    return;
                }
            }
        }
    }

    /// What the agent's card says it can do.
    pub async fn capabilities(&self) -> Result<CardCapabilities, CallError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(self.card_url.clone())
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        let card_url = &self.card_url;
        let fetched = tokio::time::timeout(CALL_TIMEOUT, async {
            let response = self.http.request(request).await.map_err(|e| {
                CallError::Unreachable(format!(
                    "cannot read the agent card at {card_url}: {}",
                    error_chain(&e)
                ))
            })?;
            if !response.status().is_success() {
                return Err(CallError::Lost(format!(
                    "the agent card at {card_url} answered {}",
                    response.status()
                )));
            }
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| CallError::Lost(format!("cannot read the agent card: {e}")))?
                .to_bytes();
            serde_json::from_slice(&body)
                .map_err(|e| CallError::Lost(format!("the agent card is not JSON: {e}")))
        })
        .await
        .unwrap_or_else(|_| {
            Err(CallError::Lost(format!(
                "the agent card at {card_url} did not come"
            )))
        });
        self.count("agent-card", fetched.is_ok());
        fetched
    }

    /// The result of a JSON-RPC answer with `status` and `body`, or why
    /// there is none.
    fn answer(
        &self,
        method: &str,
        status: hyper::StatusCode,
        body: &[u8],
    ) -> Result<Value, CallError> {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        if let Some(error) = parsed.as_ref().and_then(|v| v.get("error")) {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string();
            return Err(CallError::Refused { code, message });
        }
        if status == hyper::StatusCode::UNAUTHORIZED || status == hyper::StatusCode::FORBIDDEN {
            return Err(CallError::Refused {
                code: i64::from(status.as_u16()),
                message: format!(
                    "the A2A agent at {} refused the token (HTTP {status}); give the queue the \
                     right one with --a2a-token-file",
                    self.url
                ),
            });
        }
        match parsed.and_then(|mut v| v.get_mut("result").map(Value::take)) {
            Some(result) if status.is_success() => Ok(result),
            _ => Err(self.lost(
                method,
                &format!("the answer (HTTP {status}) is not a JSON-RPC result"),
            )),
        }
    }

    /// A lost answer to `method`, saying `why`.
    fn lost(&self, method: &str, why: &str) -> CallError {
        CallError::Lost(format!("the A2A agent at {} and {method}: {why}", self.url))
    }

    /// Counts a call of `method` in the metrics.
    fn count(&self, method: &str, ok: bool) {
        if let Some(metrics) = &self.metrics {
            metrics.a2a_remote_call(method, ok);
        }
    }
}

/// An error with its causes, in one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The innermost cause of an error (for a connection: what the system
/// said, like "Connection refused").
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        last = cause.to_string();
        source = cause.source();
    }
    last
}

/// Takes the next whole event (up to a blank line) off the front of
/// `buffer`, if one has arrived.
fn next_event(buffer: &mut BytesMut) -> Option<Bytes> {
    let text = &buffer[..];
    let (at, len) = [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"]
        .iter()
        .filter_map(|sep| {
            text.windows(sep.len())
                .position(|w| w == *sep)
                .map(|at| (at, sep.len()))
        })
        .min()?;
    let event = buffer.split_to(at + len).freeze();
    Some(event.slice(..at))
}

/// The data of an event: its `data:` lines joined with newlines; `None`
/// for an event without data (a comment, a keepalive).
fn event_data(event: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(event);
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        if let Some(rest) = line.strip_prefix("data:") {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(rest);
                }
                None => data = Some(rest.to_string()),
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_at_blank_lines_and_comments_carry_no_data() {
        let mut buffer = BytesMut::from(
            &b": keepalive\n\ndata: {\"a\":1}\n\ndata: x\r\ndata: y\r\n\r\npartial"[..],
        );
        let first = next_event(&mut buffer).unwrap();
        assert_eq!(event_data(&first), None);
        let second = next_event(&mut buffer).unwrap();
        assert_eq!(event_data(&second).as_deref(), Some("{\"a\":1}"));
        let third = next_event(&mut buffer).unwrap();
        assert_eq!(event_data(&third).as_deref(), Some("x\ny"));
        assert!(next_event(&mut buffer).is_none());
        assert_eq!(&buffer[..], b"partial");
    }

    #[test]
    fn urls_must_be_plain_http_with_a_host() {
        assert!(parse_url("http://127.0.0.1:9480/").is_ok());
        assert!(parse_url("http://agent.example:80/a2a").is_ok());
        assert!(
            parse_url("https://agent.example/")
                .unwrap_err()
                .contains("no TLS client")
        );
        assert!(parse_url("agent:9480").is_err());
        assert!(parse_url("http://").is_err());
    }

    #[tokio::test]
    async fn answers_tell_errors_from_results() {
        let client = AgentClient::new("http://127.0.0.1:1/".parse().unwrap(), None, None).unwrap();
        let ok = client.answer(
            "GetTask",
            hyper::StatusCode::OK,
            br#"{"jsonrpc":"2.0","id":1,"result":{"id":"7"}}"#,
        );
        assert_eq!(ok, Ok(json!({"id": "7"})));
        let refused = client
            .answer(
                "GetTask",
                hyper::StatusCode::OK,
                br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"no task"}}"#,
            )
            .unwrap_err();
        assert!(refused.is(CallError::TASK_NOT_FOUND));
        let unauthorized = client
            .answer("GetTask", hyper::StatusCode::UNAUTHORIZED, b"nope")
            .unwrap_err();
        assert!(unauthorized.to_string().contains("--a2a-token-file"));
        let garbled = client.answer("GetTask", hyper::StatusCode::BAD_GATEWAY, b"<html>");
        assert!(matches!(garbled, Err(CallError::Lost(_))));
        // Nothing listens on port 1: the request never reached anyone.
        let unreachable = client
            .call::<Value>("GetTask", json!({"id": "1"}))
            .await
            .unwrap_err();
        assert!(
            matches!(unreachable, CallError::Unreachable(_)),
            "{unreachable:?}"
        );
    }
}
